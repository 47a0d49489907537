//! The API key lifecycle, for operators: make, list, read, change, revoke, rotate, and a key's
//! usage. A key's secret exists only in the answer that made it.

use super::{Refusal, Request, audit};
use crate::app::App;
use crate::domain::api_key::{ApiKeyRecord, ApiKeySecret, KeyEnvironment, Scope};
use crate::domain::audit::AuditEvent;
use crate::domain::credential::{CredentialHash, CredentialKind};
use crate::ports::store::KeyUsage;
use chrono::{DateTime, Utc};

/// A key to make, checked by the caller.
pub struct NewKey {
    pub name: String,
    pub scopes: Vec<Scope>,
    pub environment: KeyEnvironment,
    pub expires_at: Option<DateTime<Utc>>,
    pub allowed_ips: Vec<String>,
}

/// A key just made: its secret (shown once) and its record.
pub struct MadeKey {
    pub secret: ApiKeySecret,
    pub record: ApiKeyRecord,
}

async fn store_new_key(
    app: &App,
    template: ApiKeyRecord,
    now: DateTime<Utc>,
) -> Result<MadeKey, Refusal> {
    let secret = ApiKeySecret::generate(template.environment);
    let record = ApiKeyRecord {
        key_id: ApiKeyRecord::new_id(),
        hash: app.hasher.hash(CredentialKind::ApiKey, secret.expose()),
        display_prefix: secret.display_prefix(),
        created_at: now,
        revoked_at: None,
        rotated_to: None,
        ..template
    };
    app.store.put_api_key(&record).await?;
    Ok(MadeKey { secret, record })
}

/// Makes a key; audited.
#[tracing::instrument(skip_all)]
pub async fn create_key(
    app: &App,
    request: &Request<ApiKeyRecord>,
    key: NewKey,
) -> Result<MadeKey, Refusal> {
    let template = ApiKeyRecord {
        key_id: String::new(),
        name: key.name,
        hash: CredentialHash::from_stored(String::new()),
        display_prefix: String::new(),
        environment: key.environment,
        scopes: key.scopes,
        created_at: request.now,
        expires_at: key.expires_at,
        revoked_at: None,
        allowed_ips: key.allowed_ips,
        rotated_to: None,
    };
    let made = store_new_key(app, template, request.now).await?;
    let by = format!("by {}", request.caller.key_id);
    let credential = Some(made.record.key_id.clone());
    audit(app, request, AuditEvent::KeyCreated, credential, Some(by)).await;
    Ok(made)
}

#[tracing::instrument(skip_all)]
pub async fn list_keys(app: &App) -> Result<Vec<ApiKeyRecord>, Refusal> {
    Ok(app.store.list_api_keys().await?)
}

/// A key by its id; an id that cannot be one is not found like a missing one.
#[tracing::instrument(skip_all)]
pub async fn key_by_id(app: &App, key_id: &str) -> Result<ApiKeyRecord, Refusal> {
    let not_found = || Refusal::not_found("api_key", key_id);
    if key_id.len() > 40
        || !key_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(not_found());
    }
    app.store
        .find_api_key_by_id(key_id)
        .await?
        .ok_or_else(not_found)
}

/// A key and when it was last used (from its usage counters).
#[tracing::instrument(skip_all)]
pub async fn key_with_last_use(
    app: &App,
    key_id: &str,
) -> Result<(ApiKeyRecord, Option<DateTime<Utc>>), Refusal> {
    let record = key_by_id(app, key_id).await?;
    let usage = app.store.key_usage(key_id).await?;
    Ok((record, usage.iter().map(|u| u.last_used_at).max()))
}

/// The fields a change names; `expires_at: Some(None)` clears the expiry.
#[derive(Default)]
pub struct KeyChange {
    pub name: Option<String>,
    pub scopes: Option<Vec<Scope>>,
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub allowed_ips: Option<Vec<String>>,
}

/// Changes a key's name, scopes, expiry or addresses; audited.
#[tracing::instrument(skip_all)]
pub async fn update_key(
    app: &App,
    request: &Request<ApiKeyRecord>,
    key_id: &str,
    change: KeyChange,
) -> Result<ApiKeyRecord, Refusal> {
    let mut record = key_by_id(app, key_id).await?;
    if let Some(name) = change.name {
        record.name = name;
    }
    if let Some(scopes) = change.scopes {
        record.scopes = scopes;
    }
    if let Some(expires_at) = change.expires_at {
        record.expires_at = expires_at;
    }
    if let Some(ips) = change.allowed_ips {
        record.allowed_ips = ips;
    }
    app.store.update_api_key(&record).await?;
    let by = format!("by {}", request.caller.key_id);
    audit(
        app,
        request,
        AuditEvent::KeyUpdated,
        Some(record.key_id.clone()),
        Some(by),
    )
    .await;
    Ok(record)
}

/// Revokes a key at once (a revoked key stays revoked); audited when it changes.
#[tracing::instrument(skip_all)]
pub async fn revoke_key(
    app: &App,
    request: &Request<ApiKeyRecord>,
    key_id: &str,
) -> Result<ApiKeyRecord, Refusal> {
    let mut record = key_by_id(app, key_id).await?;
    if record.revoked_at.is_none() {
        record.revoked_at = Some(request.now);
        app.store.update_api_key(&record).await?;
        let by = format!("by {}", request.caller.key_id);
        audit(
            app,
            request,
            AuditEvent::KeyRevoked,
            Some(record.key_id.clone()),
            Some(by),
        )
        .await;
    }
    Ok(record)
}

/// A rotation's answer: the new key (its secret shown once) and the old one, now ending.
pub struct Rotated {
    pub new: MadeKey,
    pub previous: ApiKeyRecord,
}

/// Replaces an active key with a new one like it; the old key works for `grace_seconds` more
/// (the configured grace when `None`). Audited.
#[tracing::instrument(skip_all)]
pub async fn rotate_key(
    app: &App,
    request: &Request<ApiKeyRecord>,
    key_id: &str,
    grace_seconds: Option<i64>,
) -> Result<Rotated, Refusal> {
    let grace = grace_seconds.unwrap_or(app.config.rotation_grace.as_secs() as i64);
    let mut old = key_by_id(app, key_id).await?;
    let now = request.now;
    if !old.is_active(now) || old.rotated_to.is_some() {
        return Err(Refusal::Conflict(
            "Only an active key that was not rotated yet can be rotated".into(),
        ));
    }
    let new = store_new_key(app, old.clone(), now).await?;
    let grace_end = now + chrono::Duration::seconds(grace);
    old.expires_at = Some(old.expires_at.map_or(grace_end, |at| at.min(grace_end)));
    old.rotated_to = Some(new.record.key_id.clone());
    app.store.update_api_key(&old).await?;
    let detail = format!(
        "by {}; replaced by {}; old key works until {}",
        request.caller.key_id,
        new.record.key_id,
        grace_end.to_rfc3339()
    );
    audit(
        app,
        request,
        AuditEvent::KeyRotated,
        Some(old.key_id.clone()),
        Some(detail),
    )
    .await;
    Ok(Rotated { new, previous: old })
}

/// A key's requests per day and route, for the last 90 days.
#[tracing::instrument(skip_all)]
pub async fn key_usage(app: &App, key_id: &str) -> Result<UsageByDay, Refusal> {
    key_by_id(app, key_id).await?;
    Ok(UsageByDay::of(&app.store.key_usage(key_id).await?))
}

/// A key's requests per day, newest day first, each day's counted per route.
pub struct UsageByDay {
    pub last_used_at: Option<chrono::DateTime<chrono::Utc>>,
    pub days: Vec<UsageDay>,
}

pub struct UsageDay {
    pub day: String,
    pub requests: u64,
    pub routes: std::collections::BTreeMap<String, u64>,
}

impl UsageByDay {
    fn of(usage: &[KeyUsage]) -> Self {
        let mut days: std::collections::BTreeMap<&str, UsageDay> = Default::default();
        for entry in usage {
            let day = days.entry(&entry.day).or_insert_with(|| UsageDay {
                day: entry.day.clone(),
                requests: 0,
                routes: Default::default(),
            });
            day.requests += entry.count;
            day.routes.insert(entry.route.clone(), entry.count);
        }
        UsageByDay {
            last_used_at: usage.iter().map(|u| u.last_used_at).max(),
            days: days.into_values().rev().collect(),
        }
    }
}
