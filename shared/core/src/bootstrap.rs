//! The first admin API key: seeded from `BOOTSTRAP_ADMIN_KEY`, or made fresh for local mode to
//! print once.

use crate::domain::api_key::{ApiKeyRecord, ApiKeySecret, KeyEnvironment, Scope};
use crate::domain::credential::{CredentialHasher, CredentialKind};
use crate::ports::Store;

/// Stores `secret` as an admin key; storing the same key again changes nothing.
pub async fn store_admin_key(
    store: &dyn Store,
    hasher: &CredentialHasher,
    secret: &ApiKeySecret,
    name: &str,
) -> anyhow::Result<()> {
    let record = ApiKeyRecord {
        key_id: ApiKeyRecord::new_id(),
        name: name.to_owned(),
        hash: hasher.hash(CredentialKind::ApiKey, secret.expose()),
        display_prefix: secret.display_prefix(),
        environment: secret.environment(),
        scopes: vec![Scope::Admin],
        created_at: chrono::Utc::now(),
        expires_at: None,
        revoked_at: None,
        allowed_ips: Vec::new(),
        rotated_to: None,
    };
    store.put_api_key(&record).await?;
    Ok(())
}

/// Seeds the configured key, or (when `configured` is `None`) makes a fresh live key and returns
/// it so that the caller can show it once.
pub async fn seed_admin_key(
    store: &dyn Store,
    hasher: &CredentialHasher,
    configured: Option<&str>,
) -> anyhow::Result<Option<ApiKeySecret>> {
    match configured {
        Some(raw) => {
            let secret = ApiKeySecret::parse(raw)
                .map_err(|e| anyhow::anyhow!("BOOTSTRAP_ADMIN_KEY: {e}"))?;
            store_admin_key(store, hasher, &secret, "bootstrap").await?;
            Ok(None)
        }
        None => {
            let secret = ApiKeySecret::generate(KeyEnvironment::Live);
            store_admin_key(store, hasher, &secret, "printed at start-up").await?;
            Ok(Some(secret))
        }
    }
}
