//! Our additions for operators: today's provider spend against its limits, and the kill switch
//! that stops generation (admin-scoped API keys; switching is audited).

use crate::auth::AdminCaller;
use crate::context::{AuditContext, audit};
use crate::domain::audit::AuditEvent;
use crate::domain::spend::{KillSwitch, spend_day};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::spend::SpendGuard;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::{Value, json};

/// How many of the day's dearest books the report lists.
const BOOKS_LISTED: usize = 20;

fn switch_view(switch: Option<&KillSwitch>) -> Value {
    match switch {
        Some(s) => json!({
            "enabled": s.on,
            "reason": s.reason,
            "set_by": s.by,
            "set_at": s.at.to_rfc3339(),
        }),
        None => json!({"enabled": false, "reason": null, "set_by": null, "set_at": null}),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpendQuery {
    /// A UTC day (`YYYY-MM-DD`); today when absent.
    #[serde(default)]
    day: Option<String>,
}

/// A day's provider spend (today by default): the total against the alert threshold and the
/// hard limit, the calls and books behind it, and the average cost of a book finished that day.
pub async fn report(
    State(state): State<AppState>,
    _caller: AdminCaller,
    QueryParams(query): QueryParams<SpendQuery>,
) -> Result<Json<Value>, ApiError> {
    let (today, resets_in) = spend_day(state.clock.now());
    let day = match query.day.as_deref() {
        None => today,
        Some(raw) => NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| {
            ApiError::schema(Problem::new(
                &["query", "day"],
                "Give a UTC day as YYYY-MM-DD",
                "value_error",
            ))
        })?,
    };
    let (spend, switch) = tokio::try_join!(state.store.day_spend(day), state.store.kill_switch())?;
    let limits = state.settings.spend;
    let average =
        (spend.finished_books > 0).then(|| spend.finished_cost.usd() / spend.finished_books as f64);
    let books: Vec<Value> = spend
        .books
        .iter()
        .take(BOOKS_LISTED)
        .map(|b| json!({"book_id": b.book, "spent_usd": b.cost.usd(), "provider_calls": b.calls}))
        .collect();
    Ok(Json(json!({
        "day": day.format("%Y-%m-%d").to_string(),
        "spent_usd": spend.total.usd(),
        "alert_threshold_usd": limits.alert.usd(),
        "hard_limit_usd": limits.hard_limit.usd(),
        "alert_crossed": spend.total >= limits.alert,
        "hard_limit_reached": spend.total >= limits.hard_limit,
        "resets_in_seconds": if day == today { Some(resets_in) } else { None },
        "provider_calls": spend.calls,
        "books_charged": spend.books.len(),
        "books": books,
        "finished_books": spend.finished_books,
        "average_finished_book_usd": average,
        "kill_switch": switch_view(switch.as_ref()),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchRequest {
    enabled: bool,
    #[serde(default)]
    reason: Option<String>,
}

/// Turns generation off (`enabled: true`) or on again. While the switch is on, new books answer
/// 503 `SERVICE_UNAVAILABLE` and workers stop before their next provider call. Audited.
pub async fn kill_switch(
    State(state): State<AppState>,
    context: AuditContext,
    AdminCaller(caller): AdminCaller,
    JsonBody(request): JsonBody<SwitchRequest>,
) -> Result<Json<Value>, ApiError> {
    let reason = request.reason.as_deref().unwrap_or_default().trim();
    if reason.chars().count() > 200 || reason.chars().any(char::is_control) {
        return Err(ApiError::schema(Problem::new(
            &["body", "reason"],
            "String should have at most 200 characters",
            "value_error",
        )));
    }
    let switch = SpendGuard::new(&state)
        .switch(request.enabled, reason, &caller.key_id)
        .await?;
    audit(
        &state,
        AuditEvent::KillSwitchSet,
        Some(caller.key_id.clone()),
        &context.ip,
        &context.route,
        Some(format!(
            "{} by {}{}",
            if switch.on { "on" } else { "off" },
            caller.key_id,
            if reason.is_empty() {
                String::new()
            } else {
                format!(": {reason}")
            }
        )),
    )
    .await;
    Ok(Json(switch_view(Some(&switch))))
}
