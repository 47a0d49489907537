//! Per-caller rate limits by route class, enforced atomically in the store (so every process
//! shares one count), with a per-process in-memory limiter in front as a cheap first line, and
//! the `RateLimit-*` / `X-RateLimit-*` headers on the answer.

use crate::context::request_of;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use storybook_core::catalogue::RouteClass;
use storybook_core::domain::audit::AuditEvent;
use storybook_core::ports::LimitDecision;
use storybook_core::ports::store::Window;
use storybook_core::usecases::{Refusal, audit};

const MINUTE: Duration = Duration::from_secs(60);

/// Where the limit decision of a request waits for its answer's headers.
#[derive(Clone, Default)]
struct DecisionSlot(Arc<Mutex<Option<LimitDecision>>>);

/// Counts one request of `caller` against the route's `class`; refuses past the limit. When the store
/// cannot count, reads go through if so configured, everything else is refused (fail closed).
pub async fn enforce(
    state: &AppState,
    parts: &Parts,
    class: RouteClass,
    caller: &str,
) -> Result<(), ApiError> {
    let limits = &state.config.limits;
    let limit = class.limit(limits);
    if !state.limiter.allows(class, caller) {
        return Err(refuse(state, parts, caller, class, limit, 60).await);
    }
    let counter = format!("rate:{}:{caller}", class.name());
    match state
        .store
        .take(&counter, limit, Window::fixed(MINUTE, state.clock.now()))
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
        let label: String = caller.chars().take(17).collect();
        let detail = Some(format!("{} limit {limit}/min", class.name()));
        let request = request_of(state, parts, ());
        audit(
            state,
            &request,
            AuditEvent::RateLimited,
            Some(label),
            detail,
        )
        .await;
    }
    Refusal::RateLimited { limit, retry_after }.into()
}

/// Puts the decision of [`enforce`] on the answer as `RateLimit-*` and `X-RateLimit-*` headers.
pub async fn headers(mut request: Request, next: Next) -> Response {
    let slot = DecisionSlot::default();
    request.extensions_mut().insert(slot.clone());
    let mut response = next.run(request).await;
    let decision = *slot.0.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(decision) = decision {
        crate::rate_limit_headers::write(
            response.headers_mut(),
            decision.limit,
            decision.remaining,
            decision.reset_after,
        );
    }
    response
}
