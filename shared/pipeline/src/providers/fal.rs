//! fal's queue: submit to `https://queue.fal.run/{model}`, poll the status URL until
//! `COMPLETED`, read the result URL; the picture is an output URL.

use super::wire::{
    ApiSecret, RetryPolicy, before_next_poll, checked, client, hosted_image_input, json,
    same_origin, transport,
};
use super::{Artwork, Illustrator, ImagePrompt, Metered, ProviderError, Usage};
use async_trait::async_trait;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct FalSettings {
    /// `https://queue.fal.run`.
    pub base_url: String,
    pub key: ApiSecret,
    /// A text-to-image model id (`fal-ai/flux/dev`).
    pub model: String,
    /// A model that takes the reference as `image_url` (Kontext-style).
    pub reference_model: Option<String>,
    /// fal's `image_size` (`square_hd`, `landscape_4_3`...).
    pub image_size: String,
    pub poll_every: Duration,
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

pub struct FalImages {
    config: FalSettings,
    http: reqwest::Client,
}

impl FalImages {
    pub fn new(config: FalSettings) -> Self {
        Self {
            http: client(config.timeout),
            config,
        }
    }

    fn authorised(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.header(
            reqwest::header::AUTHORIZATION,
            format!("Key {}", self.config.key.expose()),
        )
    }

    async fn get<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, ProviderError> {
        if !same_origin(url, &self.config.base_url) {
            return Err(ProviderError::Malformed(
                "a queue URL points away from the API".into(),
            ));
        }
        self.config
            .retry
            .run(|| async {
                let response = self
                    .authorised(self.http.get(url))
                    .send()
                    .await
                    .map_err(transport)?;
                json(checked(response).await?).await
            })
            .await
    }
}

#[derive(Deserialize)]
struct Submitted {
    status_url: String,
    response_url: String,
}

#[derive(Deserialize)]
struct Status {
    status: String,
}

#[derive(Deserialize)]
struct Result_ {
    #[serde(default)]
    images: Vec<FalImage>,
    #[serde(default)]
    has_nsfw_concepts: Vec<bool>,
}

#[derive(Deserialize)]
struct FalImage {
    url: String,
}

#[async_trait]
impl Illustrator for FalImages {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn illustrate(&self, prompt: &ImagePrompt) -> Result<Metered<Artwork>, ProviderError> {
        let deadline = tokio::time::Instant::now() + self.config.timeout;
        let (model, input) = hosted_image_input(
            prompt,
            serde_json::json!({
                "image_size": self.config.image_size,
                "num_images": 1,
                "enable_safety_checker": true,
                "output_format": "png",
            }),
            &self.config.model,
            self.config.reference_model.as_deref(),
            "image_url",
        );
        let submit_url = format!("{}/{model}", self.config.base_url.trim_end_matches('/'));
        let submitted: Submitted = self
            .config
            .retry
            .run(|| async {
                let response = self
                    .authorised(self.http.post(&submit_url))
                    .json(&input)
                    .send()
                    .await
                    .map_err(transport)?;
                json(checked(response).await?).await
            })
            .await?;
        loop {
            let status: Status = self.get(&submitted.status_url).await?;
            match status.status.as_str() {
                "COMPLETED" => break,
                "IN_QUEUE" | "IN_PROGRESS" => {}
                other => {
                    return Err(ProviderError::Malformed(format!(
                        "a queued request in status {other:?}"
                    )));
                }
            }
            before_next_poll(deadline, self.config.poll_every).await?;
        }
        let result: Result_ = self.get(&submitted.response_url).await?;
        if result.has_nsfw_concepts.iter().any(|flag| *flag) {
            return Err(ProviderError::Refused(
                "the picture was flagged as not safe for work".into(),
            ));
        }
        let url = result
            .images
            .into_iter()
            .next()
            .map(|i| i.url)
            .ok_or_else(|| ProviderError::Malformed("a result without images".into()))?;
        let mut usage = Usage::new("fal", model);
        usage.images = 1;
        usage.image_size = Some(self.config.image_size.clone());
        Ok(Metered {
            value: Artwork::Url(url),
            usage,
        })
    }
}
