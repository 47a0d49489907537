//! Reading streaks: `POST /v1/streak/read` and `GET /v1/streak/info`, `/calendar`, `/history`.
//! Days are the user's local days (their settings' time zone); timestamps are kept in UTC.

use crate::auth::ScopedRequest;
use crate::endpoints::{Endpoint, Feature};
use crate::error::ApiError;
use crate::extract::{JsonBody, QueryParams};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use chrono::Datelike;
use serde::{Deserialize, Serialize};
use storybook_core::catalogue::Family;
use storybook_core::domain::streak::{MAX_READING_SECONDS, MilestoneKind};
use storybook_core::usecases::streaks;

/// The routes this file serves.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::post(Family::Users, "/v1/streak/read", read).gives(Feature::Streaks),
        Endpoint::get(Family::Users, "/v1/streak/info", info),
        Endpoint::get(Family::Users, "/v1/streak/calendar", calendar),
        Endpoint::get(Family::Users, "/v1/streak/history", history),
    ]
}

/// The app contract's `ReadingLogRequest`; `reading_time` is in seconds.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadingLog {
    book_id: String,
    #[serde(default)]
    reading_time: i64,
    #[serde(default)]
    completed: bool,
}

/// The app contract's `ReadingResultResponse`.
#[derive(Serialize)]
pub struct ReadingResult {
    current_streak: u32,
    longest_streak: u32,
    total_days: u32,
    new_streak_day: bool,
    milestones: Vec<MilestoneReached>,
}

#[derive(Serialize)]
struct MilestoneReached {
    #[serde(rename = "type")]
    kind: MilestoneKind,
    value: u32,
    reward_credits: i64,
    message: String,
}

/// Records a reading session; the first of a local day moves the streak.
pub async fn read(
    State(state): State<AppState>,
    ScopedRequest(request): ScopedRequest,
    JsonBody(log): JsonBody<ReadingLog>,
) -> Result<Json<ReadingResult>, ApiError> {
    ApiError::unless_between(
        &["body", "reading_time"],
        log.reading_time,
        0,
        MAX_READING_SECONDS,
    )?;
    let recorded = streaks::record_reading(
        &state,
        &request,
        &log.book_id,
        log.reading_time as u32,
        log.completed,
    )
    .await?;
    let streak = recorded.streak;
    Ok(Json(ReadingResult {
        current_streak: streak.current,
        longest_streak: streak.longest,
        total_days: streak.total_days,
        new_streak_day: recorded.new_streak_day,
        milestones: recorded
            .reached
            .iter()
            .map(|m| MilestoneReached {
                kind: m.kind,
                value: m.value,
                reward_credits: m.reward_credits,
                message: m.message(),
            })
            .collect(),
    }))
}

/// The app contract's `StreakInfoResponse`, as the streak stands on the user's local today.
#[derive(Serialize)]
pub struct StreakInfo {
    current_streak: u32,
    longest_streak: u32,
    total_days: u32,
    last_read_date: Option<String>,
    read_today: bool,
    streak_broken: bool,
}

pub async fn info(
    State(state): State<AppState>,
    ScopedRequest(request): ScopedRequest,
) -> Result<Json<StreakInfo>, ApiError> {
    let (streak, view) = streaks::streak_today(&state, &request).await?;
    Ok(Json(StreakInfo {
        current_streak: view.current,
        longest_streak: streak.longest,
        total_days: streak.total_days,
        last_read_date: streak.last_day.map(|d| d.to_string()),
        read_today: view.read_today,
        streak_broken: view.broken,
    }))
}

#[derive(Deserialize)]
pub struct CalendarQuery {
    year: i64,
    month: i64,
}

/// The local days of one month on which the child read.
#[derive(Serialize)]
pub struct Calendar {
    year: i64,
    month: i64,
    timezone: &'static str,
    days_read: usize,
    total_sessions: usize,
    days: Vec<CalendarDay>,
}

#[derive(Serialize)]
struct CalendarDay {
    date: String,
    day: u32,
    sessions: usize,
    reading_time: u64,
    completed: usize,
}

pub async fn calendar(
    State(state): State<AppState>,
    ScopedRequest(request): ScopedRequest,
    QueryParams(query): QueryParams<CalendarQuery>,
) -> Result<Json<Calendar>, ApiError> {
    ApiError::unless_between(&["query", "year"], query.year, 2020, 2100)?;
    ApiError::unless_between(&["query", "month"], query.month, 1, 12)?;
    let span =
        streaks::month_of_reading(&state, &request, query.year as i32, query.month as u32).await?;
    let days: Vec<CalendarDay> = span
        .days
        .iter()
        .map(|read| CalendarDay {
            date: read.day.to_string(),
            day: read.day.day(),
            sessions: read.sessions.len(),
            reading_time: read.seconds_read(),
            completed: read.completed(),
        })
        .collect();
    Ok(Json(Calendar {
        year: query.year,
        month: query.month,
        timezone: span.zone.name(),
        days_read: days.len(),
        total_sessions: span.sessions,
        days,
    }))
}

#[derive(Deserialize)]
pub struct HistoryQuery {
    #[serde(default = "thirty")]
    days: i64,
}

fn thirty() -> i64 {
    30
}

/// The sessions of the last `days` local days (today included), newest day first.
#[derive(Serialize)]
pub struct History {
    days: i64,
    from_date: String,
    to_date: String,
    timezone: &'static str,
    total_sessions: usize,
    history: Vec<HistoryDay>,
}

#[derive(Serialize)]
struct HistoryDay {
    date: String,
    reading_time: u64,
    sessions: Vec<Session>,
}

#[derive(Serialize)]
struct Session {
    book_id: String,
    read_at: String,
    reading_time: u32,
    completed: bool,
}

pub async fn history(
    State(state): State<AppState>,
    ScopedRequest(request): ScopedRequest,
    QueryParams(query): QueryParams<HistoryQuery>,
) -> Result<Json<History>, ApiError> {
    ApiError::unless_between(&["query", "days"], query.days, 1, 365)?;
    let span = streaks::recent_reading(&state, &request, query.days as u32).await?;
    let history = span
        .days
        .iter()
        .rev()
        .map(|read| HistoryDay {
            date: read.day.to_string(),
            reading_time: read.seconds_read(),
            sessions: read
                .sessions
                .iter()
                .map(|r| Session {
                    book_id: r.book_id.as_str().to_owned(),
                    read_at: r.read_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    reading_time: r.reading_time,
                    completed: r.completed,
                })
                .collect(),
        })
        .collect();
    Ok(Json(History {
        days: query.days,
        from_date: span.first.to_string(),
        to_date: span.last.to_string(),
        timezone: span.zone.name(),
        total_sessions: span.sessions,
        history,
    }))
}
