//! API keys on the way in, cheapest check first: presence, format and environment (no read), then
//! the failed-attempts limit of the client IP and the keyed-hash lookup (one read each), then
//! revoked, expired, IP allow-list and scope. Every refusal is audited with a
//! truncated hash of what was presented (never the key), and failed authentications are limited
//! per client IP so that keys cannot be guessed.

use crate::catalogue::Access;
use crate::config::Environment;
use crate::context::{audit, client_ip, route_of};
use crate::domain::api_key::{ApiKeyRecord, ApiKeySecret, KeyEnvironment, Scope};
use crate::domain::audit::AuditEvent;
use crate::domain::credential::CredentialKind;
use crate::domain::user::{User, UserKey};
use crate::error::{ApiError, Problem};
use crate::limits::enforce;
use crate::ports::store::Window;
use crate::state::AppState;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
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

/// Verifies the key `header` carries for `needed`. Answers the key's record, or the refusal.
pub async fn verify(
    state: &AppState,
    parts: &mut Parts,
    header: KeyHeader,
    needed: Scope,
) -> Result<ApiKeyRecord, ApiError> {
    let ip = client_ip(parts).unwrap_or_else(|| "unknown".into());
    let route = route_of(parts);
    let now = state.clock.now();
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
    let window = Window::fixed(MINUTE, now);
    // A refusal is audited; an authentication failure counts against the address (once: a
    // refusal after the lookup already holds its slot), and a slot is given back when the
    // refusal is not an authentication failure (a refused IP or scope).
    let refuse = |event: AuditEvent, message: &'static str, holding_slot: bool| {
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
            // Best effort, like the audit: a refusal stands even when it cannot be counted.
            let counted = match (is_authentication, holding_slot) {
                (true, false) => state
                    .store
                    .take(&failures, u32::MAX, window)
                    .await
                    .map(|_| ()),
                (false, true) => state.store.give_back(&failures, window).await,
                _ => Ok(()),
            };
            if let Err(error) = counted {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "failed authentication not counted"
                );
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
        return refuse(AuditEvent::MissingKey, "An API key is required", false).await;
    };
    let Ok(secret) = ApiKeySecret::parse(raw) else {
        return refuse(AuditEvent::BadFormat, "The API key is not valid", false).await;
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
        return refuse(AuditEvent::BadFormat, "The API key is not valid", false).await;
    }
    // An address that failed too often is refused before its key is even looked up. The lookup
    // takes a slot of the address's failed-authentication count first, atomically, and gives it
    // back when the key is good: concurrent guesses cannot all pass a count none of them is in
    // yet. A key this process verified within the minute needs no slot.
    let hash = state.hasher.hash(CredentialKind::ApiKey, secret.expose());
    let holding_slot = !state.limiter.recently_verified(hash.as_str());
    if holding_slot
        && !state
            .store
            .take(&failures, limits.auth_failures_per_minute, window)
            .await?
            .allowed
    {
        state.store.give_back(&failures, window).await?;
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
    let Some(record) = state.store.find_api_key(&hash).await? else {
        return refuse(
            AuditEvent::UnknownKey,
            "The API key is not valid",
            holding_slot,
        )
        .await;
    };
    if record.revoked_at.is_some_and(|at| at <= now) {
        return refuse(
            AuditEvent::RevokedKey,
            "The API key has been revoked",
            holding_slot,
        )
        .await;
    }
    if record.expires_at.is_some_and(|at| at <= now) {
        return refuse(
            AuditEvent::ExpiredKey,
            "The API key has expired",
            holding_slot,
        )
        .await;
    }
    if !record.allows_ip(&ip) {
        return refuse(
            AuditEvent::IpRefused,
            "The API key may not be used from this address",
            holding_slot,
        )
        .await;
    }
    if !record.allows(needed) {
        return refuse(
            AuditEvent::ScopeRefused,
            "The API key lacks the scope this needs",
            holding_slot,
        )
        .await;
    }
    // A good key: its slot goes back, and its next requests here need none.
    if holding_slot {
        state.store.give_back(&failures, window).await?;
    }
    state.limiter.mark_verified(hash.as_str());
    if let Err(error) = state
        .store
        .record_key_use(&record.key_id, &route, now)
        .await
    {
        tracing::warn!(error = format!("{error:#}"), key_id = %record.key_id, "key use not counted");
    }
    Ok(record)
}

/// Authentication as a layer on every route that needs it, by the route's [`Access`]: it runs
/// before the handler and its extractors, so the order of a handler's arguments never decides
/// who is let in (nor whether a user is made for a caller who is then refused).
pub async fn authenticate(
    State((state, access)): State<(AppState, Access)>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    match let_in(&state, access, &mut parts).await {
        Ok(()) => next.run(Request::from_parts(parts, body)).await,
        Err(error) => error.into_response(),
    }
}

/// Checks `access` and leaves who was let in in the request's extensions.
async fn let_in(state: &AppState, access: Access, parts: &mut Parts) -> Result<(), ApiError> {
    match access {
        Access::Public => {}
        Access::User => {
            let user = app_user(state, parts).await?;
            parts.extensions.insert(AppUser(user));
        }
        Access::AdminApiKey => {
            let record = verify(state, parts, KeyHeader::ApiHeaders, Scope::Admin).await?;
            enforce(state, parts, &format!("key:{}", record.key_id)).await?;
            parts.extensions.insert(AdminCaller(record));
        }
        Access::AdminForUser => {
            let record = verify(state, parts, KeyHeader::AdminHeader, Scope::Admin).await?;
            parts.extensions.insert(AdminKey(record));
            let user = app_user(state, parts).await?;
            parts.extensions.insert(AppUser(user));
        }
    }
    Ok(())
}

pub const USER_KEY_HEADER: &str = "x-user-key";

/// The app user behind `X-User-Key`. A missing key is a schema error (422), a malformed one a
/// 400, both before any store read; an unknown well-formed key creates the user.
async fn app_user(state: &AppState, parts: &Parts) -> Result<User, ApiError> {
    let Some(raw) = parts.headers.get(USER_KEY_HEADER) else {
        return Err(ApiError::schema(Problem::new(
            &["header", USER_KEY_HEADER],
            "Field required",
            "missing",
        )));
    };
    let key = raw
        .to_str()
        .ok()
        .and_then(|raw| UserKey::parse(raw).ok())
        .ok_or_else(|| ApiError::BadRequest("Invalid X-User-Key format".into()))?;
    let id = state.hasher.hash(CredentialKind::UserKey, key.expose());
    let caller = format!("user:{}", id.as_str());
    if let Some(user) = state.store.find_user(&id).await? {
        enforce(state, parts, &caller).await?;
        return Ok(user);
    }
    // Making accounts is limited per client IP, so one client cannot mint free credits.
    let ip = client_ip(parts).unwrap_or_else(|| "unknown".into());
    let now = state.clock.now();
    let decision = state
        .store
        .take(
            &format!("signup:{ip}"),
            state.settings.account_creations_per_ip_per_hour,
            Window::fixed(Duration::from_secs(3600), now),
        )
        .await?;
    if !decision.allowed {
        tracing::warn!(client_ip = %ip, "account creation limited");
        return Err(ApiError::RateLimited {
            limit: decision.limit,
            retry_after: decision.reset_after,
        });
    }
    let lookup = state
        .store
        .create_user(&id, state.settings.opening_credits, now)
        .await?;
    if lookup.created {
        tracing::info!(user = lookup.user.id.truncated(), "user created");
        audit(
            state,
            AuditEvent::UserCreated,
            Some(id.truncated().to_owned()),
            &ip,
            &route_of(parts),
            None,
        )
        .await;
    }
    enforce(state, parts, &caller).await?;
    Ok(lookup.user)
}

/// The app user the route's layer let in.
#[derive(Clone)]
pub struct AppUser(pub User);

/// The admin-scoped API key (`Authorization`/`X-API-Key`) the route's layer let in.
#[derive(Clone)]
pub struct AdminCaller(pub ApiKeyRecord);

/// The admin key in `X-Admin-Key` (the app contract's header for admin calls) the route's layer
/// let in. Anything but an active admin key of this environment answers 403 `FORBIDDEN`.
#[derive(Clone)]
pub struct AdminKey(pub ApiKeyRecord);

/// Each identity is read from what the layer left; a handler asking for one its route's access
/// does not give is a wiring mistake, answered 500 (every route's test would show it).
macro_rules! let_in_by_layer {
    ($($identity:ident),*) => {$(
        impl<S: Send + Sync> FromRequestParts<S> for $identity {
            type Rejection = ApiError;

            async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
                parts.extensions.get::<$identity>().cloned().ok_or_else(|| {
                    ApiError::Internal(anyhow::anyhow!(
                        "{} asks for {} without the access that gives it",
                        route_of(parts),
                        stringify!($identity)
                    ))
                })
            }
        }
    )*};
}

let_in_by_layer!(AppUser, AdminCaller, AdminKey);
