//! Per-caller rate limits by route class, enforced atomically in the store (so every process
//! shares one count), with a per-process in-memory limiter in front as a cheap first line, and
//! the `RateLimit-*` / `X-RateLimit-*` headers on the answer.

use super::AppState;
use super::error::ApiError;
use crate::catalogue::RouteClass;
use crate::config::Limits;
use crate::domain::audit::AuditEvent;
use crate::ports::LimitDecision;
use crate::ports::store::Window;
use axum::extract::{MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);

/// The per-process first line: refuses what the store would refuse anyway, without a write.
pub struct LocalLimiter {
    classes: [DefaultKeyedRateLimiter<String>; 3],
    /// One audit entry per limited caller per minute is enough to see who was limited.
    audits: DefaultKeyedRateLimiter<String>,
}

impl LocalLimiter {
    pub fn new(limits: &Limits) -> Self {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).expect("at least 1"));
        Self {
            classes: [
                RateLimiter::keyed(quota(limits.generation_per_minute)),
                RateLimiter::keyed(quota(limits.writes_per_minute)),
                RateLimiter::keyed(quota(limits.reads_per_minute)),
            ],
            audits: RateLimiter::keyed(quota(1)),
        }
    }

    fn allows(&self, class: RouteClass, caller: &str) -> bool {
        let limiter = &self.classes[class as usize];
        // Forget idle callers now and then so the map stays small.
        if limiter.len() > 10_000 {
            limiter.retain_recent();
        }
        limiter.check_key(&caller.to_owned()).is_ok()
    }

    fn should_audit(&self, caller: &str) -> bool {
        if self.audits.len() > 10_000 {
            self.audits.retain_recent();
        }
        self.audits.check_key(&caller.to_owned()).is_ok()
    }
}

/// Where the limit decision of a request waits for its answer's headers.
#[derive(Clone, Default)]
struct DecisionSlot(Arc<Mutex<Option<LimitDecision>>>);

/// The route as the log and the audit name it: `METHOD /path/{param}`.
pub fn route_of(parts: &Parts) -> String {
    format!("{} {}", parts.method, path_of(parts))
}

/// The route's path pattern (`/v1/books/{job_id}`), or the raw path when no route matched.
fn path_of(parts: &Parts) -> &str {
    parts
        .extensions
        .get::<MatchedPath>()
        .map(|p| p.as_str())
        .unwrap_or_else(|| parts.uri.path())
}

/// Counts one request of `caller` against its route class; refuses past the limit. When the store
/// cannot count, reads go through if so configured, everything else is refused (fail closed).
pub async fn enforce(state: &AppState, parts: &Parts, caller: &str) -> Result<(), ApiError> {
    let class = RouteClass::of(&parts.method, path_of(parts));
    let limits = &state.settings.limits;
    let limit = class.limit(limits);
    if !state.limiter.allows(class, caller) {
        return Err(refuse(state, parts, caller, class, limit, 60).await);
    }
    let counter = format!("rate:{}:{caller}", class.name());
    match state
        .store
        .take(&counter, limit, Window::fixed(MINUTE, chrono::Utc::now()))
        .await
    {
        Ok(decision) => {
            if let Some(slot) = parts.extensions.get::<DecisionSlot>() {
                *slot.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(decision);
            }
            if decision.allowed {
                return Ok(());
            }
            Err(refuse(
                state,
                parts,
                caller,
                class,
                limit,
                decision.reset_after.max(1),
            )
            .await)
        }
        Err(error) if class == RouteClass::Read && limits.reads_fail_open => {
            tracing::warn!(
                error = format!("{error:#}"),
                "rate limit store unreachable; read let through"
            );
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

/// The refusal, audited at most once a minute per caller.
async fn refuse(
    state: &AppState,
    parts: &Parts,
    caller: &str,
    class: RouteClass,
    limit: u32,
    retry_after: u64,
) -> ApiError {
    if state.limiter.should_audit(caller) {
        let ip = super::extract::client_ip(parts).unwrap_or_else(|| "unknown".into());
        let label: String = caller.chars().take(17).collect();
        let detail = Some(format!("{} limit {limit}/min", class.name()));
        super::auth::audit(
            state,
            AuditEvent::RateLimited,
            Some(label),
            &ip,
            &route_of(parts),
            detail,
        )
        .await;
    }
    ApiError::RateLimited { limit, retry_after }
}

fn set(headers: &mut HeaderMap, name: &'static str, value: u64) {
    headers.insert(name, HeaderValue::from(value));
}

/// Puts the decision of [`enforce`] on the answer as `RateLimit-*` and `X-RateLimit-*` headers.
pub async fn headers(mut request: Request, next: Next) -> Response {
    let slot = DecisionSlot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    let decision = *slot.0.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(decision) = decision {
        let headers = response.headers_mut();
        for (limit, remaining, reset) in [
            ("ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"),
            (
                "x-ratelimit-limit",
                "x-ratelimit-remaining",
                "x-ratelimit-reset",
            ),
        ] {
            set(headers, limit, u64::from(decision.limit));
            set(headers, remaining, u64::from(decision.remaining));
            set(headers, reset, decision.reset_after);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_counts_per_caller_and_class() {
        let limiter = LocalLimiter::new(&Limits {
            generation_per_minute: 2,
            ..Limits::default()
        });
        assert!(
            limiter.allows(RouteClass::Generation, "a")
                && limiter.allows(RouteClass::Generation, "a")
        );
        assert!(!limiter.allows(RouteClass::Generation, "a"));
        assert!(limiter.allows(RouteClass::Generation, "b"));
        assert!(limiter.allows(RouteClass::Read, "a"));
    }
}
