//! Speech (`/audio/speech`), its answer capped as it streams.

use super::api::{Model, OpenAi};
use crate::providers::wire::{capped_body, checked, transport};
use crate::providers::{Metered, Narrator, ProviderError, Speech, SpeechRequest, Usage};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::time::Duration;
use storybook_core::domain::book::{Language, TargetAge};

/// OpenAI-compatible speech (`/audio/speech`): a voice per language, slower for younger children.
pub struct OpenAiSpeech {
    model: Model,
    voices: VoiceChoice,
    format: &'static str,
    /// The largest answer kept (`MAX_AUDIO_BYTES`); a larger one is refused as it streams.
    max_bytes: u64,
}

/// The largest narration of one page kept by default: minutes of speech in either format.
pub const MAX_AUDIO_BYTES: u64 = 10 * 1024 * 1024;

/// Which voice reads which language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VoiceChoice {
    pub default: String,
    pub by_language: BTreeMap<String, String>,
}

impl VoiceChoice {
    pub fn for_language(&self, language: Language) -> &str {
        self.by_language
            .get(language.as_str())
            .unwrap_or(&self.default)
    }
}

/// How fast narration reads for a child of this age (1.0 is the voice's own pace).
pub fn speed_for(age: TargetAge) -> f64 {
    match age {
        TargetAge::ThreeToFive => 0.85,
        TargetAge::FiveToSeven => 0.9,
        TargetAge::SevenToNine => 0.95,
        TargetAge::Adult => 1.0,
    }
}

impl OpenAiSpeech {
    /// `format` is what we ask for and store: `mp3` or `wav`.
    pub fn new(
        api: OpenAi,
        model: impl Into<String>,
        voices: VoiceChoice,
        format: &'static str,
        timeout: Duration,
    ) -> Self {
        Self {
            model: Model::new(api, model, timeout),
            voices,
            format,
            max_bytes: MAX_AUDIO_BYTES,
        }
    }

    /// The same speech, keeping answers of at most `max_bytes`.
    pub fn with_max_bytes(self, max_bytes: u64) -> Self {
        Self { max_bytes, ..self }
    }
}

#[async_trait]
impl Narrator for OpenAiSpeech {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn narrate(&self, request: &SpeechRequest) -> Result<Metered<Speech>, ProviderError> {
        let body = serde_json::json!({
            "model": self.model.name,
            "input": request.text,
            "voice": self.voices.for_language(request.language),
            "speed": speed_for(request.age),
            "response_format": self.format,
        });
        let audio = self
            .model
            .api
            .retry
            .run(|| async {
                let response = self
                    .model
                    .post("audio/speech")
                    .json(&body)
                    .send()
                    .await
                    .map_err(transport)?;
                let response = checked(response).await?;
                let kind = response
                    .headers()
                    .get(reqwest::header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                if !(kind.starts_with("audio/") || kind == "application/octet-stream") {
                    return Err(ProviderError::Malformed(format!(
                        "speech answered {kind:?}, not audio"
                    )));
                }
                let audio = capped_body(response, self.max_bytes, "speech").await?;
                if audio.is_empty() {
                    return Err(ProviderError::Malformed("empty audio".into()));
                }
                Ok(audio)
            })
            .await?;
        let mut usage = Usage::new("openai", &self.model.name);
        usage.characters_spoken = request.text.chars().count() as u64;
        Ok(Metered {
            value: Speech {
                audio,
                format: self.format,
            },
            usage,
        })
    }
}
