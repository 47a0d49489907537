//! The first admin API key: stored from `BOOTSTRAP_ADMIN_KEY`, or made fresh for local mode to
//! print once.

use crate::app::App;
use crate::domain::api_key::{ApiKeyRecord, ApiKeySecret, KeyEnvironment, Scope};
use crate::domain::credential::CredentialKind;

/// Stores `secret` as an admin key; storing the same key again changes nothing.
pub async fn store_admin_key(app: &App, secret: &ApiKeySecret, name: &str) -> anyhow::Result<()> {
    let record = ApiKeyRecord {
        key_id: ApiKeyRecord::new_id(),
        name: name.to_owned(),
        hash: app.hasher.hash(CredentialKind::ApiKey, secret.expose()),
        display_prefix: secret.display_prefix(),
        environment: secret.environment(),
        scopes: vec![Scope::Admin],
        created_at: app.clock.now(),
        expires_at: None,
        revoked_at: None,
        allowed_ips: Vec::new(),
        rotated_to: None,
    };
    app.store.put_api_key(&record).await?;
    Ok(())
}

/// Stores the configured key, or (when `configured` is `None`) makes a fresh live key and
/// returns it so that the caller can show it once.
pub async fn bootstrap_admin_key(
    app: &App,
    configured: Option<&str>,
) -> anyhow::Result<Option<ApiKeySecret>> {
    match configured {
        Some(raw) => {
            let secret = ApiKeySecret::parse(raw)
                .map_err(|e| anyhow::anyhow!("BOOTSTRAP_ADMIN_KEY: {e}"))?;
            store_admin_key(app, &secret, "bootstrap").await?;
            Ok(None)
        }
        None => {
            let secret = ApiKeySecret::generate(KeyEnvironment::Live);
            store_admin_key(app, &secret, "printed at start-up").await?;
            Ok(Some(secret))
        }
    }
}
