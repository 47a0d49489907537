//! The daily story and the parent's dashboard: `GET /v1/streak/today` (key optional),
//! `GET /v1/streak/themes` (no key) and `GET /v1/streak/report`. Making today's story a book is
//! the books function's (`POST /v1/streak/today/generate`).

use crate::auth::ScopedRequest;
use crate::context::request_of;
use crate::endpoints::Endpoint;
use crate::error::ApiError;
use crate::extract::{ProfileScope, QueryParams};
use crate::state::AppState;
use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use storybook_core::catalogue::Family;
use storybook_core::domain::daily::DAILY_THEMES;
use storybook_core::domain::user::{User, UserKey};
use storybook_core::usecases::{Request, access, daily};

/// The routes this file serves.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(Family::Users, "/v1/streak/today", today).visitor(),
        Endpoint::get(Family::Users, "/v1/streak/themes", themes).public(),
        Endpoint::get(Family::Users, "/v1/streak/report", report),
    ]
}

/// The caller of a route whose key is optional: the user of a well-formed `X-User-Key` that
/// exists (no account is made by asking), scoped to `X-Profile-Id` (malformed: 400, as
/// everywhere); any other key is no caller.
pub struct OptionalUser(Option<Request<User>>);

impl FromRequestParts<AppState> for OptionalUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let key = parts
            .headers
            .get(crate::auth::USER_KEY_HEADER)
            .and_then(|raw| raw.to_str().ok())
            .and_then(|raw| UserKey::parse(raw).ok());
        let Some(key) = key else {
            return Ok(OptionalUser(None));
        };
        let Some(user) = access::known_user(state, &key).await? else {
            return Ok(OptionalUser(None));
        };
        let ProfileScope(profile) = ProfileScope::from_request_parts(parts, state).await?;
        let mut request = request_of(state, parts, user);
        request.profile = profile;
        Ok(OptionalUser(Some(request)))
    }
}

/// The app contract's `TodayStoryResponse`.
#[derive(Serialize)]
pub struct TodayStory {
    /// The local day's midnight, as a UTC time without an offset (the contract's form: Seoul's
    /// 2026-07-07 is `2026-07-06T15:00:00`).
    date: String,
    theme: &'static str,
    theme_name: &'static str,
    topic: &'static str,
    topic_id: String,
    book_id: Option<String>,
}

pub async fn today(
    State(state): State<AppState>,
    OptionalUser(caller): OptionalUser,
) -> Result<Json<TodayStory>, ApiError> {
    let today = daily::today(&state, caller.as_ref(), state.clock.now()).await?;
    Ok(Json(TodayStory {
        date: today.starts_at.format("%Y-%m-%dT%H:%M:%S").to_string(),
        theme: today.story.theme.id,
        theme_name: today.story.theme.name,
        topic: today.story.topic(),
        topic_id: today.story.topic_id(),
        book_id: today.book_id.map(|id| id.as_str().to_owned()),
    }))
}

pub async fn themes() -> Json<Value> {
    let themes: Vec<Value> = DAILY_THEMES
        .iter()
        .map(|t| json!({"id": t.id, "name": t.name, "topics": t.topics}))
        .collect();
    Json(json!({ "themes": themes }))
}

#[derive(Deserialize, Clone, Copy, Default)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    #[default]
    Weekly,
    Monthly,
}

#[derive(Deserialize)]
pub struct ReportQuery {
    #[serde(default)]
    period: Period,
}

/// Minutes to one decimal.
fn tenths(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

/// Whole minutes of `seconds`, to the nearest.
fn minutes(seconds: u64) -> u64 {
    (seconds + 30) / 60
}

/// The app contract's `ReadingReportResponse`: the last 7 or 30 local days, today included.
pub async fn report(
    State(state): State<AppState>,
    ScopedRequest(request): ScopedRequest,
    QueryParams(query): QueryParams<ReportQuery>,
) -> Result<Json<Value>, ApiError> {
    let (name, days) = match query.period {
        Period::Weekly => ("weekly", 7),
        Period::Monthly => ("monthly", 30),
    };
    let report = daily::reading_report(&state, &request, days).await?;
    let average = match report.sessions {
        0 => 0.0,
        n => tenths(report.seconds as f64 / 60.0 / n as f64),
    };
    let completion = match report.sessions {
        0 => 0.0,
        n => tenths(100.0 * report.completed as f64 / n as f64),
    };
    let breakdown: Vec<Value> = report
        .days
        .iter()
        .map(|d| {
            json!({
                "date": d.day.to_string(),
                "sessions": d.sessions,
                "minutes": minutes(d.seconds),
                "completed": d.completed,
            })
        })
        .collect();
    Ok(Json(json!({
        "period": name,
        "period_days": days,
        "from_date": report.first.to_string(),
        "to_date": report.last.to_string(),
        "total_books_read": report.books_read,
        "total_sessions": report.sessions,
        "total_reading_minutes": minutes(report.seconds),
        "average_reading_minutes": average,
        "preferred_theme": report.preferred_theme,
        "streak": {
            "current": report.view.current,
            "longest": report.streak.longest,
            "total_days": report.streak.total_days,
            "read_today": report.view.read_today,
        },
        "learning_progress": {
            "sessions": report.sessions,
            "completed_sessions": report.completed,
            "completion_rate": completion,
        },
        "daily_breakdown": breakdown,
    })))
}
