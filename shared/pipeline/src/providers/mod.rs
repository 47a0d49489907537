//! Provider ports (story writer, moderator, illustrator, narrator), the real providers that speak
//! each service's wire format, and the offline ones local mode and tests use when no key is set.
//!
//! - [`offline`]: deterministic, network-free text, PNGs and WAVs.
//! - [`openai`]: OpenAI-compatible chat (the story), moderation, images and speech.
//! - [`replicate`], [`fal`]: image predictions and fal's queue, each answering an output URL.
//! - [`wire`]: one HTTP client setup, one error classification, retries honouring `Retry-After`.
//! - [`chain`]: an ordered fallback chain per capability, behind a circuit breaker per provider.
//! - [`fetch`]: SSRF-safe fetching of the URLs providers hand back.
//! - [`story`]: what a story must hold (its JSON schema, its checks), whoever writes it.
//! - [`designer`]: what a character's sheet must hold, whoever fills it in.
//! - [`settings`]: which providers serve, from the environment.

pub mod chain;
pub mod designer;
pub mod fal;
pub mod fetch;
pub mod offline;
pub mod openai;
pub mod replicate;
pub mod set;
pub mod settings;
pub mod story;
pub mod wire;

use async_trait::async_trait;
use bytes::Bytes;
use storybook_core::domain::book::{BookRequest, Language, Style, TargetAge};

use std::time::Duration;

pub use set::Providers;
pub(crate) use storybook_core::config::ProviderNames;

pub(crate) use storybook_core::domain::book::{StoryPage, WrittenStory};
pub(crate) use storybook_core::domain::spend::Usage;

/// Why a provider call failed, classified once where the answer is read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider timed out")]
    Timeout,
    /// 429: wait `retry_after` when the provider said how long.
    #[error("the provider is rate limiting us")]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx, 408, a refused or broken connection: worth another try.
    #[error("the provider is unavailable: {0}")]
    Unavailable(String),
    /// A body we cannot use (bad JSON, a story that breaks its schema, a wrong content type).
    #[error("the provider answered something we cannot use: {0}")]
    Malformed(String),
    /// Any other 4xx: asking again the same way will not help.
    #[error("the provider rejected the request: {0}")]
    Rejected(String),
    /// The provider's own safety system refused (a `refusal`, `moderation_blocked`, an NSFW flag).
    #[error("the provider refused for safety: {0}")]
    Refused(String),
    /// Not called: its circuit is open for `for_at_least` more.
    #[error("the provider is skipped while its circuit is open")]
    CircuitOpen { for_at_least: Duration },
}

impl ProviderError {
    /// Whether another call may succeed where this one failed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ProviderError::Timeout
                | ProviderError::RateLimited { .. }
                | ProviderError::Unavailable(_)
                | ProviderError::CircuitOpen { .. }
        )
    }

    /// How long the provider asked us to wait, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::RateLimited { retry_after } => *retry_after,
            // A step waits for the circuit rather than spend its deliveries on it.
            ProviderError::CircuitOpen { for_at_least } => Some(*for_at_least),
            _ => None,
        }
    }
}

/// A provider's answer with what it cost.
#[derive(Debug, Clone, PartialEq)]
pub struct Metered<T> {
    pub value: T,
    pub usage: Usage,
}

/// What the story writer is asked.
#[derive(Debug, Clone, PartialEq)]
pub struct StoryBrief {
    pub request: BookRequest,
    /// Asked again after moderation refused the first story: keep well within what is gentle.
    pub stricter: bool,
}

/// What the story writer is asked to write again: one page of a finished book, with the
/// parent's feedback.
#[derive(Debug, Clone, PartialEq)]
pub struct PageBrief {
    pub request: BookRequest,
    pub title: String,
    /// Every page's text, in order (page 1 first).
    pub pages: Vec<String>,
    /// The page to write again, from 1.
    pub page: u8,
    pub feedback: Option<String>,
    /// The version the new text becomes (2 for the first regeneration).
    pub version: u32,
}

#[async_trait]
pub trait StoryWriter: Send + Sync {
    /// A story that passed [`story::check`] for the request.
    async fn write(&self, brief: &StoryBrief) -> Result<Metered<WrittenStory>, ProviderError>;

    /// One page written again: its text (within the reader's length) and its scene.
    async fn rewrite_page(&self, brief: &PageBrief) -> Result<Metered<StoryPage>, ProviderError>;
}

/// What moderation decided about a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Refused, with the reason a parent may read.
    Refused(String),
}

#[async_trait]
pub trait Moderator: Send + Sync {
    async fn check(&self, text: &str) -> Result<Metered<Verdict>, ProviderError>;
}

/// What keeps a character looking the same on every page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharacterReference {
    pub name: String,
    /// The character sheet's English master description and features, or the parent's words.
    pub description: Option<String>,
    /// The offline illustrator derives its palette from this.
    pub seed: u64,
}

/// Which picture of a book is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PictureKind {
    /// The hero alone, made first; every other picture passes it as its reference.
    Reference,
    Cover,
    Page,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ImagePrompt {
    pub prompt: String,
    pub negative_prompt: String,
    pub style: Style,
    /// One per book: the same prompt and seed give the same picture.
    pub seed: u64,
    pub reference: CharacterReference,
    pub kind: PictureKind,
    /// The book's reference image (PNG, JPEG or WebP), for providers that take one.
    pub reference_image: Option<Bytes>,
}

impl ImagePrompt {
    /// The prompt passing `image` as the book's reference picture.
    pub fn with_reference(mut self, image: Option<Bytes>) -> Self {
        self.reference_image = image;
        self
    }
}

/// A picture as a provider hands it back: the bytes (base64 answers), or a URL to fetch.
#[derive(Debug, Clone, PartialEq)]
pub enum Artwork {
    Bytes(Bytes),
    Url(String),
}

#[async_trait]
pub trait Illustrator: Send + Sync {
    async fn illustrate(&self, prompt: &ImagePrompt) -> Result<Metered<Artwork>, ProviderError>;
}

/// What the narrator is asked to read.
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechRequest {
    pub text: String,
    pub language: Language,
    pub age: TargetAge,
}

/// An audio file as the provider made it.
#[derive(Debug, Clone, PartialEq)]
pub struct Speech {
    pub audio: Bytes,
    /// The file's extension, which fixes its content type: `mp3`, `wav`.
    pub format: &'static str,
}

#[async_trait]
pub trait Narrator: Send + Sync {
    async fn narrate(&self, request: &SpeechRequest) -> Result<Metered<Speech>, ProviderError>;
}

/// What a character designer is asked: a sheet from a parent's words, or from a child's photo
/// or drawing (already checked, its metadata gone).
#[derive(Debug, Clone)]
pub enum DesignBrief {
    Words(storybook_core::ports::studio::CharacterWords),
    Picture {
        kind: storybook_core::domain::character::UploadKind,
        /// The picture as a PNG of at most 768 pixels a side.
        png: Bytes,
        /// The colours it is mostly made of, most common first.
        colours: Vec<&'static str>,
        name: Option<String>,
        style: String,
    },
}

#[async_trait]
pub trait CharacterDesigner: Send + Sync {
    /// A sheet that passed [`designer::check`].
    async fn design(
        &self,
        brief: &DesignBrief,
    ) -> Result<Metered<storybook_core::domain::character::Sheet>, ProviderError>;
}

/// A stable 64-bit seed from text (FNV-1a): the same name always gives the same look.
pub fn seed_of(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100000001b3)
    })
}
