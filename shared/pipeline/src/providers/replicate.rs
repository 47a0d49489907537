//! Replicate predictions: `POST /v1/models/{owner}/{name}/predictions` with `Prefer: wait`, then
//! polling `urls.get` until the prediction settles; the picture is an output URL.

use super::wire::{
    ApiSecret, RetryPolicy, before_next_poll, checked, client, hosted_image_input, json,
    same_origin, transport,
};
use super::{Artwork, Illustrator, ImagePrompt, Metered, ProviderError, Usage};
use async_trait::async_trait;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct ReplicateSettings {
    /// `https://api.replicate.com/v1`.
    pub base_url: String,
    pub token: ApiSecret,
    /// `owner/name` of a text-to-image model.
    pub model: String,
    /// `owner/name` of a model that takes a reference image as `input_image` (Kontext-style).
    pub reference_model: Option<String>,
    pub aspect_ratio: String,
    pub poll_every: Duration,
    /// The whole prediction, polling included.
    pub timeout: Duration,
    pub retry: RetryPolicy,
}

pub struct ReplicateImages {
    config: ReplicateSettings,
    http: reqwest::Client,
}

impl ReplicateImages {
    pub fn new(config: ReplicateSettings) -> Self {
        Self {
            http: client(config.timeout),
            config,
        }
    }
}

#[derive(Deserialize)]
struct Prediction {
    #[serde(default)]
    status: String,
    #[serde(default)]
    output: Option<serde_json::Value>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default)]
    urls: Option<PredictionUrls>,
}

#[derive(Deserialize)]
struct PredictionUrls {
    #[serde(default)]
    get: Option<String>,
}

/// The first URL of a prediction's output (a string, or a list of them).
fn output_url(output: &serde_json::Value) -> Option<String> {
    match output {
        serde_json::Value::String(url) => Some(url.clone()),
        serde_json::Value::Array(items) => items.iter().find_map(output_url),
        _ => None,
    }
}

impl ReplicateImages {
    async fn create(
        &self,
        model: &str,
        input: &serde_json::Value,
    ) -> Result<Prediction, ProviderError> {
        let url = format!(
            "{}/models/{model}/predictions",
            self.config.base_url.trim_end_matches('/')
        );
        let body = serde_json::json!({ "input": input });
        self.config
            .retry
            .run(|| async {
                let response = self
                    .http
                    .post(&url)
                    .bearer_auth(self.config.token.expose())
                    .header("Prefer", "wait")
                    .json(&body)
                    .send()
                    .await
                    .map_err(transport)?;
                json(checked(response).await?).await
            })
            .await
    }

    async fn poll(&self, url: &str) -> Result<Prediction, ProviderError> {
        self.config
            .retry
            .run(|| async {
                let response = self
                    .http
                    .get(url)
                    .bearer_auth(self.config.token.expose())
                    .send()
                    .await
                    .map_err(transport)?;
                json(checked(response).await?).await
            })
            .await
    }
}

#[async_trait]
impl Illustrator for ReplicateImages {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn illustrate(&self, prompt: &ImagePrompt) -> Result<Metered<Artwork>, ProviderError> {
        let deadline = tokio::time::Instant::now() + self.config.timeout;
        let (model, input) = hosted_image_input(
            prompt,
            serde_json::json!({
                "aspect_ratio": self.config.aspect_ratio,
                "output_format": "png",
            }),
            &self.config.model,
            self.config.reference_model.as_deref(),
            "input_image",
        );
        let mut prediction = self.create(model, &input).await?;
        loop {
            match prediction.status.as_str() {
                "succeeded" => break,
                "failed" | "canceled" | "aborted" => {
                    let error = prediction
                        .error
                        .map(|e| e.to_string())
                        .unwrap_or_else(|| prediction.status.clone());
                    return Err(if error.to_lowercase().contains("nsfw") {
                        ProviderError::Refused(error)
                    } else {
                        ProviderError::Unavailable(format!(
                            "prediction {}: {error}",
                            prediction.status
                        ))
                    });
                }
                "starting" | "processing" => {}
                other => {
                    return Err(ProviderError::Malformed(format!(
                        "a prediction in status {other:?}"
                    )));
                }
            }
            let Some(get) = prediction.urls.as_ref().and_then(|u| u.get.clone()) else {
                return Err(ProviderError::Malformed(
                    "a running prediction without urls.get".into(),
                ));
            };
            if !same_origin(&get, &self.config.base_url) {
                return Err(ProviderError::Malformed(
                    "urls.get points away from the API".into(),
                ));
            }
            before_next_poll(deadline, self.config.poll_every).await?;
            prediction = self.poll(&get).await?;
        }
        let url = prediction
            .output
            .as_ref()
            .and_then(output_url)
            .ok_or_else(|| ProviderError::Malformed("a prediction without an output URL".into()))?;
        let mut usage = Usage::new("replicate", model);
        usage.images = 1;
        usage.image_size = Some(self.config.aspect_ratio.clone());
        Ok(Metered {
            value: Artwork::Url(url),
            usage,
        })
    }
}
