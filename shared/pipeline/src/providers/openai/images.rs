//! Images: generations, and edits with the book's reference image.

use super::api::{Model, OpenAi, TokenUsage};
use crate::providers::wire::{checked, json, transport};
use crate::providers::{Artwork, Illustrator, ImagePrompt, Metered, ProviderError, Usage};
use async_trait::async_trait;
use base64::Engine;
use serde::Deserialize;
use std::time::Duration;

/// OpenAI-compatible images: `/images/generations`, or `/images/edits` when the prompt carries a
/// reference image.
pub struct OpenAiImages {
    model: Model,
    size: String,
    quality: Option<String>,
}

impl OpenAiImages {
    pub fn new(
        api: OpenAi,
        model: impl Into<String>,
        size: impl Into<String>,
        quality: Option<String>,
        timeout: Duration,
    ) -> Self {
        Self {
            model: Model::new(api, model, timeout),
            size: size.into(),
            quality,
        }
    }
}

#[derive(Deserialize)]
struct ImagesAnswer {
    #[serde(default)]
    data: Vec<ImageDatum>,
    #[serde(default)]
    usage: Option<TokenUsage>,
}

#[derive(Deserialize)]
struct ImageDatum {
    #[serde(default)]
    b64_json: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

/// OpenAI's models take no negative prompt: it is said in words.
pub fn with_negatives(prompt: &ImagePrompt) -> String {
    if prompt.negative_prompt.is_empty() {
        prompt.prompt.clone()
    } else {
        format!("{} Do not show: {}.", prompt.prompt, prompt.negative_prompt)
    }
}

#[async_trait]
impl Illustrator for OpenAiImages {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn illustrate(&self, prompt: &ImagePrompt) -> Result<Metered<Artwork>, ProviderError> {
        let text = with_negatives(prompt);
        let answer: ImagesAnswer = self
            .model
            .api
            .retry
            .run(|| async {
                let request = match &prompt.reference_image {
                    Some(reference) => {
                        let mut form = reqwest::multipart::Form::new()
                            .text("model", self.model.name.clone())
                            .text("prompt", text.clone())
                            .text("size", self.size.clone())
                            .text("n", "1")
                            .part(
                                "image[]",
                                reqwest::multipart::Part::bytes(reference.to_vec())
                                    .file_name("reference.png")
                                    .mime_str("image/png")
                                    .expect("a valid content type"),
                            );
                        if let Some(quality) = &self.quality {
                            form = form.text("quality", quality.clone());
                        }
                        self.model.post("images/edits").multipart(form)
                    }
                    None => {
                        let mut body = serde_json::json!({
                            "model": self.model.name, "prompt": text, "n": 1, "size": self.size,
                        });
                        if let Some(quality) = &self.quality {
                            body["quality"] = quality.clone().into();
                        }
                        self.model.post("images/generations").json(&body)
                    }
                };
                let response = request.send().await.map_err(transport)?;
                json(checked(response).await?).await
            })
            .await?;
        let datum = answer
            .data
            .into_iter()
            .next()
            .ok_or_else(|| ProviderError::Malformed("an images answer without data".into()))?;
        let artwork = match (datum.b64_json, datum.url) {
            (Some(b64), _) => Artwork::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|e| ProviderError::Malformed(format!("b64_json: {e}")))?
                    .into(),
            ),
            (None, Some(url)) => Artwork::Url(url),
            (None, None) => {
                return Err(ProviderError::Malformed(
                    "an image with neither b64_json nor url".into(),
                ));
            }
        };
        let tokens = answer.usage.unwrap_or_default();
        let mut usage = Usage::new("openai", &self.model.name);
        usage.images = 1;
        usage.image_size = Some(self.size.clone());
        usage.image_quality = self.quality.clone();
        usage.input_tokens = tokens.prompt_tokens;
        usage.output_tokens = tokens.completion_tokens;
        Ok(Metered {
            value: artwork,
            usage,
        })
    }
}
