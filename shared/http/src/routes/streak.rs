//! Reading streaks: `POST /v1/streak/read` and `GET /v1/streak/info`, `/calendar`, `/history`.
//! Days are the user's local days (their settings' time zone); timestamps are kept in UTC.

use crate::auth::UserRequest;
use crate::catalogue::Family;
use crate::domain::streak::{MAX_READING_SECONDS, MilestoneKind, Reading};
use crate::endpoints::{Endpoint, Feature};
use crate::error::ApiError;
use crate::extract::{JsonBody, QueryParams, check_profile_header};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::{Datelike, Days, Months, NaiveDate};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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

/// The seed's `ReadingLogRequest`; `reading_time` is in seconds.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadingLog {
    book_id: String,
    #[serde(default)]
    reading_time: i64,
    #[serde(default)]
    completed: bool,
}

/// The seed's `ReadingResultResponse`.
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
    headers: HeaderMap,
    UserRequest(request): UserRequest,
    JsonBody(log): JsonBody<ReadingLog>,
) -> Result<Json<ReadingResult>, ApiError> {
    check_profile_header(&headers)?;
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

/// The seed's `StreakInfoResponse`, as the streak stands on the user's local today.
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
    headers: HeaderMap,
    UserRequest(request): UserRequest,
) -> Result<Json<StreakInfo>, ApiError> {
    check_profile_header(&headers)?;
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

/// Sessions grouped by local day, oldest day first.
fn by_day(readings: &[Reading]) -> BTreeMap<NaiveDate, Vec<&Reading>> {
    let mut days: BTreeMap<NaiveDate, Vec<&Reading>> = BTreeMap::new();
    for reading in readings {
        days.entry(reading.day).or_default().push(reading);
    }
    days
}

fn seconds_read(sessions: &[&Reading]) -> u64 {
    sessions.iter().map(|r| u64::from(r.reading_time)).sum()
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
    headers: HeaderMap,
    UserRequest(request): UserRequest,
    QueryParams(query): QueryParams<CalendarQuery>,
) -> Result<Json<Calendar>, ApiError> {
    check_profile_header(&headers)?;
    ApiError::unless_between(&["query", "year"], query.year, 2020, 2100)?;
    ApiError::unless_between(&["query", "month"], query.month, 1, 12)?;
    let first = NaiveDate::from_ymd_opt(query.year as i32, query.month as u32, 1)
        .expect("a checked year and month");
    let last = first
        .checked_add_months(Months::new(1))
        .and_then(|next| next.pred_opt())
        .expect("a month has a last day");
    let (_, zone) = streaks::local_today(&state, &request).await?;
    let readings = streaks::readings(&state, &request, first, last).await?;
    let days: Vec<CalendarDay> = by_day(&readings)
        .iter()
        .map(|(day, sessions)| CalendarDay {
            date: day.to_string(),
            day: day.day(),
            sessions: sessions.len(),
            reading_time: seconds_read(sessions),
            completed: sessions.iter().filter(|r| r.completed).count(),
        })
        .collect();
    Ok(Json(Calendar {
        year: query.year,
        month: query.month,
        timezone: zone.name(),
        days_read: days.len(),
        total_sessions: readings.len(),
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
    headers: HeaderMap,
    UserRequest(request): UserRequest,
    QueryParams(query): QueryParams<HistoryQuery>,
) -> Result<Json<History>, ApiError> {
    check_profile_header(&headers)?;
    ApiError::unless_between(&["query", "days"], query.days, 1, 365)?;
    let (today, zone) = streaks::local_today(&state, &request).await?;
    let first = today
        .checked_sub_days(Days::new(query.days as u64 - 1))
        .expect("a representable day");
    let readings = streaks::readings(&state, &request, first, today).await?;
    let history = by_day(&readings)
        .iter()
        .rev()
        .map(|(day, sessions)| HistoryDay {
            date: day.to_string(),
            reading_time: seconds_read(sessions),
            sessions: sessions
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
        from_date: first.to_string(),
        to_date: today.to_string(),
        timezone: zone.name(),
        total_sessions: readings.len(),
        history,
    }))
}
