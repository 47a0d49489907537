//! What every OpenAI-compatible capability shares: where the API is, a model's client, and the
//! tokens an answer reports.

use crate::providers::ProviderError;
use crate::providers::wire::{ApiSecret, RetryPolicy, checked, client, json, transport};
use std::time::Duration;

/// Where an OpenAI-compatible API is and how to reach it.
#[derive(Debug, Clone)]
pub struct OpenAi {
    /// With the version: `https://api.openai.com/v1`.
    pub base_url: String,
    pub key: ApiSecret,
    pub retry: RetryPolicy,
}

impl OpenAi {
    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.base_url.trim_end_matches('/'))
    }
}

/// One model of an OpenAI-compatible API, with a client whose timeout is the model's.
#[derive(Debug, Clone)]
pub(super) struct Model {
    pub(super) api: OpenAi,
    http: reqwest::Client,
    pub(super) name: String,
}

impl Model {
    pub(super) fn new(api: OpenAi, name: impl Into<String>, timeout: Duration) -> Self {
        Self {
            api,
            http: client(timeout),
            name: name.into(),
        }
    }

    pub(super) fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(self.api.url(path))
            .bearer_auth(self.api.key.expose())
    }

    /// POSTs `body` to `path` and reads its JSON answer, retried as [`RetryPolicy`] says.
    pub(super) async fn post_json<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<T, ProviderError> {
        self.api
            .retry
            .run(|| async {
                let response = self.post(path).json(body).send().await.map_err(transport)?;
                json(checked(response).await?).await
            })
            .await
    }
}

/// Tokens a chat or image answer reports (the images API names them `input_tokens` and
/// `output_tokens`).
#[derive(serde::Deserialize, Default)]
pub(super) struct TokenUsage {
    #[serde(default, alias = "input_tokens")]
    pub(super) prompt_tokens: u64,
    #[serde(default, alias = "output_tokens")]
    pub(super) completion_tokens: u64,
}
