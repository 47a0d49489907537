//! Secrets read from Secrets Manager once, at start: the key pepper, the providers' keys and the
//! first admin key. Only the secrets' ids are in the functions' environment (what
//! `GetFunctionConfiguration` shows); their values live in this process's memory alone.

use crate::sdk::describe;
use std::collections::HashMap;
use storybook_core::domain::Invalid;
use storybook_core::domain::credential::Pepper;

/// Where each secret is, by id or ARN (`*_SECRET_ID` in the environment); `None`: not used by
/// this function, or not configured.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SecretIds {
    /// `KEY_PEPPER_SECRET_ID`: at least 32 characters.
    pub pepper: Option<String>,
    /// `PROVIDER_KEYS_SECRET_ID`: a JSON object of the providers' own variable names
    /// (`OPENAI_API_KEY`, `REPLICATE_API_TOKEN`, `FAL_KEY`); empty values are unset.
    pub provider_keys: Option<String>,
    /// `BOOTSTRAP_ADMIN_KEY_SECRET_ID`: an admin key (`sbk_live_...`), or the 43 random letters
    /// and digits the stack generates, which become one behind `sbk_live_`.
    pub bootstrap_admin_key: Option<String>,
}

impl SecretIds {
    pub fn from_lookup(lookup: &dyn Fn(&str) -> Option<String>) -> Self {
        let id = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        Self {
            pepper: id("KEY_PEPPER_SECRET_ID"),
            provider_keys: id("PROVIDER_KEYS_SECRET_ID"),
            bootstrap_admin_key: id("BOOTSTRAP_ADMIN_KEY_SECRET_ID"),
        }
    }

    pub fn from_env() -> Self {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }
}

/// The secrets' values. `Debug` names what is there, never a value.
#[derive(Default)]
pub struct Secrets {
    pub pepper: Option<Pepper>,
    pub provider_keys: HashMap<String, String>,
    pub bootstrap_admin_key: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("pepper", &self.pepper.as_ref().map(|_| "***"))
            .field(
                "provider_keys",
                &self.provider_keys.keys().collect::<Vec<_>>(),
            )
            .field(
                "bootstrap_admin_key",
                &self.bootstrap_admin_key.as_ref().map(|_| "***"),
            )
            .finish()
    }
}

/// The prefix a generated bootstrap secret is given.
const GENERATED_KEY_PREFIX: &str = "sbk_live_";

impl Secrets {
    /// Reads every configured secret, concurrently. A secret that is configured but cannot be
    /// read or is malformed stops the start (named by its id, never its value).
    pub async fn load(
        client: &aws_sdk_secretsmanager::Client,
        ids: &SecretIds,
    ) -> anyhow::Result<Self> {
        let (pepper, provider_keys, bootstrap) = tokio::try_join!(
            read(client, ids.pepper.as_deref()),
            read(client, ids.provider_keys.as_deref()),
            read(client, ids.bootstrap_admin_key.as_deref()),
        )?;
        let pepper = pepper
            .map(|value| {
                Pepper::new(value.into_bytes()).map_err(|e| {
                    anyhow::anyhow!("secret {}: {e}", ids.pepper.as_deref().unwrap_or_default())
                })
            })
            .transpose()?;
        let provider_keys = match provider_keys {
            Some(json) => parse_provider_keys(&json).map_err(|e| {
                anyhow::anyhow!(
                    "secret {}: {e}",
                    ids.provider_keys.as_deref().unwrap_or_default()
                )
            })?,
            None => HashMap::new(),
        };
        let bootstrap_admin_key = bootstrap.map(|value| {
            let value = value.trim().to_owned();
            if value.starts_with("sbk_") {
                value
            } else {
                format!("{GENERATED_KEY_PREFIX}{value}")
            }
        });
        Ok(Self {
            pepper,
            provider_keys,
            bootstrap_admin_key,
        })
    }

    /// A variable lookup that answers the providers' keys from the secret first, then the
    /// environment: what the step worker's provider settings read.
    pub fn provider_lookup(&self) -> impl Fn(&str) -> Option<String> + '_ {
        move |name| {
            self.provider_keys
                .get(name)
                .cloned()
                .or_else(|| std::env::var(name).ok())
        }
    }
}

fn parse_provider_keys(json: &str) -> Result<HashMap<String, String>, Invalid> {
    let keys: HashMap<String, String> = serde_json::from_str(json).map_err(|_| {
        Invalid::new("not a JSON object of strings (OPENAI_API_KEY, REPLICATE_API_TOKEN, FAL_KEY)")
    })?;
    Ok(keys
        .into_iter()
        .filter(|(_, value)| !value.trim().is_empty())
        .collect())
}

async fn read(
    client: &aws_sdk_secretsmanager::Client,
    id: Option<&str>,
) -> anyhow::Result<Option<String>> {
    let Some(id) = id else {
        return Ok(None);
    };
    let answer = client
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("reading secret {id}: {:#}", describe(e)))?;
    answer
        .secret_string
        .map(Some)
        .ok_or_else(|| anyhow::anyhow!("secret {id} holds no string"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_keys_drop_empty_values_and_refuse_other_shapes() {
        let keys = parse_provider_keys(
            r#"{"OPENAI_API_KEY": "sk-1", "FAL_KEY": "", "REPLICATE_API_TOKEN": " "}"#,
        )
        .unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys["OPENAI_API_KEY"], "sk-1");
        assert!(parse_provider_keys(r#"["sk-1"]"#).is_err());
        let error = parse_provider_keys(r#"{"OPENAI_API_KEY": 1}"#).unwrap_err();
        assert!(!error.0.contains('1'), "the value is never echoed");
    }

    #[test]
    fn debug_names_the_secrets_but_shows_no_value() {
        let secrets = Secrets {
            pepper: Some(Pepper::new(vec![7; 32]).unwrap()),
            provider_keys: HashMap::from([("OPENAI_API_KEY".into(), "sk-secret".into())]),
            bootstrap_admin_key: Some("sbk_live_secret".into()),
        };
        let shown = format!("{secrets:?}");
        assert!(shown.contains("OPENAI_API_KEY") && !shown.contains("sk-secret"));
        assert!(!shown.contains("sbk_live_secret"));
    }
}
