//! API keys on the way in, cheapest check first: presence, format and environment (no read), then
//! the failed-attempts limit of the client IP and the keyed-hash lookup (one read each), then
//! revoked, expired, IP allow-list and scope. Every refusal is audited with a
//! truncated hash of what was presented (never the key), and failed authentications are limited
//! per client IP so that keys cannot be guessed.

use super::AppState;
use super::error::ApiError;
use super::extract::ClientIp;
use super::limits::route_of;
use crate::config::Environment;
use crate::domain::api_key::{ApiKeyRecord, ApiKeySecret, KeyEnvironment, Scope};
use crate::domain::audit::{AuditEntry, AuditEvent};
use crate::domain::credential::CredentialKind;
use crate::ports::store::Window;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);

/// Which header carried the key, which decides how a refusal is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyHeader {
    /// The app contract's `X-Admin-Key`: every refusal is 403 `FORBIDDEN`.
    AdminHeader,
    /// `Authorization: Bearer …` or `X-API-Key` on `/v1/admin/…`: 401 `UNAUTHORIZED` for a
    /// missing, malformed, unknown, revoked or expired key; 403 for a refused IP or scope.
    ApiHeaders,
}

impl KeyHeader {
    fn read(self, parts: &Parts) -> Option<&str> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        match self {
            KeyHeader::AdminHeader => header("x-admin-key"),
            KeyHeader::ApiHeaders => header("authorization")
                .map(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                        .unwrap_or(v)
                        .trim()
                })
                .or_else(|| header("x-api-key")),
        }
    }
}

/// Where a request came from, for its audit entries: the client IP and the route.
pub struct AuditContext {
    pub ip: String,
    pub route: String,
}

impl<S: Send + Sync> FromRequestParts<S> for AuditContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(AuditContext {
            ip: super::extract::client_ip(parts).unwrap_or_else(|| "unknown".into()),
            route: route_of(parts),
        })
    }
}

/// Records an audit entry; an audit that cannot be written is logged, never fatal to the answer.
pub async fn audit(
    state: &AppState,
    event: AuditEvent,
    credential: Option<String>,
    ip: &str,
    route: &str,
    detail: Option<String>,
) {
    let entry = AuditEntry::new(event, credential, ip, route, detail);
    if let Err(error) = state.store.append_audit(&entry).await {
        tracing::error!(
            error = format!("{error:#}"),
            event = event.as_str(),
            "audit entry not written"
        );
    }
}

/// Verifies the key `header` carries for `needed`. Answers the key's record, or the refusal.
pub async fn verify(
    state: &AppState,
    parts: &mut Parts,
    header: KeyHeader,
    needed: Scope,
) -> Result<ApiKeyRecord, ApiError> {
    let ClientIp(ip) = ClientIp::from_request_parts(parts, state)
        .await
        .unwrap_or_else(|never| match never {});
    let route = route_of(parts);
    let now = chrono::Utc::now();
    let failures = format!("authfail:{ip}");
    let limits = &state.settings.limits;
    let raw = header.read(parts);
    // What was presented, as a truncated keyed hash: enough to correlate, useless to an attacker.
    let presented = raw.map(|r| {
        state
            .hasher
            .hash(CredentialKind::ApiKey, r)
            .truncated()
            .to_owned()
    });
    let refuse = |event: AuditEvent, message: &'static str| {
        let (ip, route, presented, failures) = (
            ip.clone(),
            route.clone(),
            presented.clone(),
            failures.clone(),
        );
        async move {
            audit(state, event, presented, &ip, &route, None).await;
            let is_authentication =
                !matches!(event, AuditEvent::IpRefused | AuditEvent::ScopeRefused);
            if is_authentication {
                // Best effort, like the audit: a refusal stands even when it cannot be counted.
                let window = Window::fixed(MINUTE, chrono::Utc::now());
                if let Err(error) = state.store.take(&failures, u32::MAX, window).await {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "failed authentication not counted"
                    );
                }
            }
            Err(match (header, is_authentication) {
                (KeyHeader::AdminHeader, _) => ApiError::Forbidden("Admin access required".into()),
                (KeyHeader::ApiHeaders, true) => ApiError::Unauthorized(message.into()),
                (KeyHeader::ApiHeaders, false) => ApiError::Forbidden(message.into()),
            })
        }
    };
    // Cheapest checks first, before any read: presence, format, environment.
    let Some(raw) = raw else {
        return refuse(AuditEvent::MissingKey, "An API key is required").await;
    };
    let Ok(secret) = ApiKeySecret::parse(raw) else {
        return refuse(AuditEvent::BadFormat, "The API key is not valid").await;
    };
    if secret.environment() == KeyEnvironment::Test
        && state.settings.environment == Environment::Prod
    {
        tracing::warn!(key_prefix = %secret.display_prefix(), client_ip = %ip, "security violation: a test key in production");
        audit(
            state,
            AuditEvent::SecurityViolation,
            presented.clone(),
            &ip,
            &route,
            Some("test key used in production".into()),
        )
        .await;
        return refuse(AuditEvent::BadFormat, "The API key is not valid").await;
    }
    // An address that failed too often is refused before its key is even looked up.
    if state
        .store
        .peek(&failures, Window::fixed(MINUTE, now))
        .await?
        >= limits.auth_failures_per_minute
    {
        audit(
            state,
            AuditEvent::RateLimited,
            presented,
            &ip,
            &route,
            Some("failed authentications".into()),
        )
        .await;
        return Err(ApiError::RateLimited {
            limit: limits.auth_failures_per_minute,
            retry_after: 60,
        });
    }
    let hash = state.hasher.hash(CredentialKind::ApiKey, secret.expose());
    let Some(record) = state.store.find_api_key(&hash).await? else {
        return refuse(AuditEvent::UnknownKey, "The API key is not valid").await;
    };
    if record.revoked_at.is_some_and(|at| at <= now) {
        return refuse(AuditEvent::RevokedKey, "The API key has been revoked").await;
    }
    if record.expires_at.is_some_and(|at| at <= now) {
        return refuse(AuditEvent::ExpiredKey, "The API key has expired").await;
    }
    if !record.allows_ip(&ip) {
        return refuse(
            AuditEvent::IpRefused,
            "The API key may not be used from this address",
        )
        .await;
    }
    if !record.allows(needed) {
        return refuse(
            AuditEvent::ScopeRefused,
            "The API key lacks the scope this needs",
        )
        .await;
    }
    if let Err(error) = state
        .store
        .record_key_use(&record.key_id, &route, now)
        .await
    {
        tracing::warn!(error = format!("{error:#}"), key_id = %record.key_id, "key use not counted");
    }
    Ok(record)
}

/// A caller of `/v1/admin/…` with an active admin-scoped API key.
pub struct AdminCaller(pub ApiKeyRecord);

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let record = verify(state, parts, KeyHeader::ApiHeaders, Scope::Admin).await?;
        super::limits::enforce(state, parts, &format!("key:{}", record.key_id)).await?;
        Ok(AdminCaller(record))
    }
}
