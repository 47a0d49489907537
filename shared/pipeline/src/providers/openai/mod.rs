//! OpenAI-compatible providers: chat completions for the story (structured output), the
//! moderation endpoint, images (generations and edits) and speech. Any server that speaks the
//! same API works by its base URL (OpenAI, a LiteLLM proxy, vLLM, Ollama).
//!
//! One file per capability: `chat` (stories and characters' sheets), `moderation`, `images`,
//! `speech`; `api` holds what they share (the API's place and a model's client).

mod api;
mod chat;
mod images;
mod moderation;
mod speech;

pub use api::OpenAi;
pub use chat::{ChatCharacterDesigner, ChatStoryWriter};
pub use images::{OpenAiImages, with_negatives};
pub use moderation::ModerationEndpoint;
pub use speech::{MAX_AUDIO_BYTES, OpenAiSpeech, VoiceChoice, speed_for};
