//! The moderation endpoint.

use super::api::{Model, OpenAi};
use crate::providers::{Metered, Moderator, ProviderError, Usage, Verdict};
use async_trait::async_trait;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// The moderation endpoint (`omni-moderation-latest` and compatible).
pub struct ModerationEndpoint {
    model: Model,
}

impl ModerationEndpoint {
    pub fn new(api: OpenAi, model: impl Into<String>, timeout: Duration) -> Self {
        Self {
            model: Model::new(api, model, timeout),
        }
    }
}

#[derive(Deserialize)]
struct ModerationAnswer {
    results: Vec<ModerationResult>,
}

#[derive(Deserialize)]
struct ModerationResult {
    flagged: bool,
    /// Category names change between models: read as a map.
    #[serde(default)]
    categories: BTreeMap<String, Option<bool>>,
}

#[async_trait]
impl Moderator for ModerationEndpoint {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn check(&self, text: &str) -> Result<Metered<Verdict>, ProviderError> {
        let body = serde_json::json!({"model": self.model.name, "input": text});
        let answer: ModerationAnswer = self.model.post_json("moderations", &body).await?;
        let result = answer.results.into_iter().next().ok_or_else(|| {
            ProviderError::Malformed("a moderation answer without results".into())
        })?;
        let verdict = if result.flagged {
            let flagged: Vec<String> = result
                .categories
                .into_iter()
                .filter(|(_, on)| *on == Some(true))
                .map(|(name, _)| name)
                .collect();
            Verdict::Refused(format!(
                "The text was refused by moderation ({}).",
                if flagged.is_empty() {
                    "flagged".to_owned()
                } else {
                    flagged.join(", ")
                }
            ))
        } else {
            Verdict::Allowed
        };
        Ok(Metered {
            value: verdict,
            usage: Usage::new("openai", &self.model.name),
        })
    }
}
