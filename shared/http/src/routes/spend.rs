//! Our additions for operators: today's provider spend against its limits, and the kill switch
//! that stops generation (admin-scoped API keys; switching is audited).

use crate::auth::AdminRequest;
use crate::endpoints::Endpoint;
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use storybook_core::catalogue::{Access, Family};
use storybook_core::domain::spend::KillSwitch;
use storybook_core::usecases::spend;

/// The routes this file serves.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(Family::Admin, "/v1/admin/spend", report).access(Access::AdminApiKey),
        Endpoint::put(Family::Admin, "/v1/admin/kill-switch", kill_switch)
            .access(Access::AdminApiKey),
    ]
}

/// How many of the day's dearest books the report lists.
const BOOKS_LISTED: usize = 20;

/// The kill switch as operators see it.
#[derive(Serialize)]
pub struct SwitchView {
    enabled: bool,
    reason: Option<String>,
    set_by: Option<String>,
    set_at: Option<String>,
}

impl SwitchView {
    fn of(switch: Option<KillSwitch>) -> Self {
        match switch {
            Some(s) => SwitchView {
                enabled: s.on,
                reason: Some(s.reason),
                set_by: Some(s.by),
                set_at: Some(s.at.to_rfc3339()),
            },
            None => SwitchView {
                enabled: false,
                reason: None,
                set_by: None,
                set_at: None,
            },
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpendQuery {
    /// A UTC day (`YYYY-MM-DD`); today when absent.
    #[serde(default)]
    day: Option<String>,
}

/// A day's provider spend: the total against the alert threshold and the hard limit, the calls
/// and books behind it, and the average cost of a book finished that day.
#[derive(Serialize)]
pub struct SpendReport {
    day: String,
    spent_usd: f64,
    alert_threshold_usd: f64,
    hard_limit_usd: f64,
    alert_crossed: bool,
    hard_limit_reached: bool,
    resets_in_seconds: Option<u64>,
    provider_calls: u64,
    books_charged: usize,
    books: Vec<BookSpend>,
    finished_books: u64,
    average_finished_book_usd: Option<f64>,
    kill_switch: SwitchView,
}

#[derive(Serialize)]
struct BookSpend {
    book_id: String,
    spent_usd: f64,
    provider_calls: u64,
}

pub async fn report(
    State(state): State<AppState>,
    AdminRequest(request): AdminRequest,
    QueryParams(query): QueryParams<SpendQuery>,
) -> Result<Json<SpendReport>, ApiError> {
    let day = query
        .day
        .as_deref()
        .map(|raw| NaiveDate::parse_from_str(raw, "%Y-%m-%d"))
        .transpose()
        .map_err(|_| {
            ApiError::schema(Problem::new(
                &["query", "day"],
                "Give a UTC day as YYYY-MM-DD",
                "value_error",
            ))
        })?;
    let report = spend::spend_report(&state, &request, day).await?;
    let (spent, limits) = (report.spend, state.config.spend);
    Ok(Json(SpendReport {
        day: report.day.format("%Y-%m-%d").to_string(),
        spent_usd: spent.total.usd(),
        alert_threshold_usd: limits.alert.usd(),
        hard_limit_usd: limits.hard_limit.usd(),
        alert_crossed: spent.total >= limits.alert,
        hard_limit_reached: spent.total >= limits.hard_limit,
        resets_in_seconds: report.resets_in,
        provider_calls: spent.calls,
        books_charged: spent.books.len(),
        books: spent
            .books
            .iter()
            .take(BOOKS_LISTED)
            .map(|b| BookSpend {
                book_id: b.book.clone(),
                spent_usd: b.cost.usd(),
                provider_calls: b.calls,
            })
            .collect(),
        finished_books: spent.finished_books,
        average_finished_book_usd: (spent.finished_books > 0)
            .then(|| spent.finished_cost.usd() / spent.finished_books as f64),
        kill_switch: SwitchView::of(report.switch),
    }))
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
    AdminRequest(request): AdminRequest,
    JsonBody(body): JsonBody<SwitchRequest>,
) -> Result<Json<SwitchView>, ApiError> {
    let reason = body.reason.as_deref().unwrap_or_default().trim();
    if reason.chars().count() > 200 || reason.chars().any(char::is_control) {
        return Err(ApiError::schema(Problem::new(
            &["body", "reason"],
            "String should have at most 200 characters",
            "value_error",
        )));
    }
    let switch = spend::set_kill_switch(&state, &request, body.enabled, reason).await?;
    Ok(Json(SwitchView::of(Some(switch))))
}
