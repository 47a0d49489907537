//! Who is calling: an API key verified (with the per-address limit on failed attempts) and an
//! app user found or made from their key.

use super::{Refusal, Request, audit};
use crate::app::App;
use crate::config::Environment;
use crate::domain::api_key::{ApiKeyRecord, ApiKeySecret, KeyEnvironment, Scope};
use crate::domain::audit::AuditEvent;
use crate::domain::credential::CredentialKind;
use crate::domain::user::{User, UserKey};
use crate::ports::store::Window;
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// The keys this process verified lately: they need no failed-authentication slot (so a good
/// key is never refused while guesses from its address are being counted).
pub trait VerifiedKeys: Send + Sync {
    fn recently_verified(&self, hash: &str) -> bool;
    fn mark_verified(&self, hash: &str);
}

/// Verifies the presented API key for `needed`. Each failure is audited and counted against
/// the address; a slot of the address's failures is taken before the lookup (so concurrent
/// guesses cannot all pass a check made before any of them counted) and given back for a good
/// key or for a refusal that is not a failed authentication (address, scope).
#[tracing::instrument(skip_all)]
pub async fn verify_key(
    app: &App,
    verified: &dyn VerifiedKeys,
    request: &Request<()>,
    presented_key: Option<&str>,
    needed: Scope,
) -> Result<ApiKeyRecord, Refusal> {
    let (ip, now) = (&request.client_ip, request.now);
    let failures = format!("authfail:{ip}");
    let limits = &app.config.limits;
    // The raw key travels beside the request, not in it: a request is Debug, a key never is.
    let raw = presented_key;
    // What was presented, as a truncated keyed hash: enough to correlate, useless to an attacker.
    let presented = raw.map(|r| {
        app.hasher
            .hash(CredentialKind::ApiKey, r)
            .truncated()
            .to_owned()
    });
    let window = Window::fixed(MINUTE, now);
    // A refusal is audited; an authentication failure counts against the address (once: a
    // refusal after the lookup already holds its slot), and a slot is given back when the
    // refusal is not an authentication failure (a refused IP or scope).
    let refuse = |event: AuditEvent, message: &'static str, holding_slot: bool| {
        let (presented, failures) = (presented.clone(), failures.clone());
        async move {
            audit(app, request, event, presented, None).await;
            let is_authentication =
                !matches!(event, AuditEvent::IpRefused | AuditEvent::ScopeRefused);
            // Best effort, like the audit: a refusal stands even when it cannot be counted.
            let counted = match (is_authentication, holding_slot) {
                (true, false) => app
                    .store
                    .take(&failures, u32::MAX, window)
                    .await
                    .map(|_| ()),
                (false, true) => app.store.give_back(&failures, window).await,
                _ => Ok(()),
            };
            if let Err(error) = counted {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "failed authentication not counted"
                );
            }
            Err(if is_authentication {
                Refusal::Unauthorized(message.into())
            } else {
                Refusal::Forbidden(message.into())
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
    if secret.environment() == KeyEnvironment::Test && app.config.environment == Environment::Prod {
        tracing::warn!(key_prefix = %secret.display_prefix(), client_ip = %ip, "security violation: a test key in production");
        let detail = Some("test key used in production".into());
        audit(
            app,
            request,
            AuditEvent::SecurityViolation,
            presented.clone(),
            detail,
        )
        .await;
        return refuse(AuditEvent::BadFormat, "The API key is not valid", false).await;
    }
    // An address that failed too often is refused before its key is even looked up. The lookup
    // takes a slot of the address's failed-authentication count first, atomically, and gives it
    // back when the key is good: concurrent guesses cannot all pass a count none of them is in
    // yet. A key this process verified within the minute needs no slot.
    let hash = app.hasher.hash(CredentialKind::ApiKey, secret.expose());
    let holding_slot = !verified.recently_verified(hash.as_str());
    if holding_slot
        && !app
            .store
            .take(&failures, limits.auth_failures_per_minute, window)
            .await?
            .allowed
    {
        app.store.give_back(&failures, window).await?;
        let detail = Some("failed authentications".into());
        audit(app, request, AuditEvent::RateLimited, presented, detail).await;
        return Err(Refusal::RateLimited {
            limit: limits.auth_failures_per_minute,
            retry_after: 60,
        });
    }
    let Some(record) = app.store.find_api_key(&hash).await? else {
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
    if !record.allows_ip(ip) {
        let message = "The API key may not be used from this address";
        return refuse(AuditEvent::IpRefused, message, holding_slot).await;
    }
    if !record.allows(needed) {
        let message = "The API key lacks the scope this needs";
        return refuse(AuditEvent::ScopeRefused, message, holding_slot).await;
    }
    // A good key: its slot goes back, and its next requests here need none.
    if holding_slot {
        app.store.give_back(&failures, window).await?;
    }
    verified.mark_verified(hash.as_str());
    if let Err(error) = app
        .store
        .record_key_use(&record.key_id, &request.route, now)
        .await
    {
        tracing::warn!(error = format!("{error:#}"), key_id = %record.key_id, "key use not counted");
    }
    Ok(record)
}

/// The user of an `X-User-Key` if there is one: a read that makes no account.
#[tracing::instrument(skip_all)]
pub async fn known_user(app: &App, key: &UserKey) -> Result<Option<User>, Refusal> {
    let id = app.hasher.hash(CredentialKind::UserKey, key.expose());
    Ok(app.store.find_user(&id).await?)
}

/// The user of an `X-User-Key`, made with the opening credits on first sight; making accounts
/// is limited per address and hour.
#[tracing::instrument(skip_all)]
pub async fn user_for_key(app: &App, request: &Request<&UserKey>) -> Result<User, Refusal> {
    let id = app
        .hasher
        .hash(CredentialKind::UserKey, request.caller.expose());
    if let Some(user) = app.store.find_user(&id).await? {
        return Ok(user);
    }
    // Making accounts is limited per client IP, so one client cannot mint free credits.
    let ip = &request.client_ip;
    let decision = app
        .store
        .take(
            &format!("signup:{ip}"),
            app.config.account_creations_per_ip_per_hour,
            Window::fixed(HOUR, request.now),
        )
        .await?;
    if !decision.allowed {
        tracing::warn!(client_ip = %ip, "account creation limited");
        return Err(Refusal::RateLimited {
            limit: decision.limit,
            retry_after: decision.reset_after,
        });
    }
    let lookup = app
        .store
        .create_user(&id, app.config.opening_credits, request.now)
        .await?;
    if lookup.created {
        tracing::info!(user = lookup.user.id.truncated(), "user created");
        let credential = Some(id.truncated().to_owned());
        audit(app, request, AuditEvent::UserCreated, credential, None).await;
    }
    Ok(lookup.user)
}
