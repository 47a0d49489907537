//! Reading streaks: `POST /v1/streak/read` and `GET /v1/streak/info`, `/calendar`, `/history`.
//! Days are the user's local days (their settings' time zone); timestamps are kept in UTC.

use super::books::owned_book;
use super::settings::settings_of;
use crate::auth::AppUser;
use crate::domain::streak::{MAX_READING_SECONDS, Milestone, Reading, Streak, milestones_reached};
use crate::error::ApiError;
use crate::extract::{JsonBody, QueryParams, check_profile_header};
use crate::ports::store::StreakAdvance;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use chrono::{Datelike, Days, Months, NaiveDate};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

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
fn reading_result(streak: &Streak, new_streak_day: bool, reached: &[Milestone]) -> Json<Value> {
    let milestones: Vec<Value> = reached
        .iter()
        .map(|m| {
            json!({"type": m.kind, "value": m.value, "reward_credits": m.reward_credits, "message": m.message()})
        })
        .collect();
    Json(json!({
        "current_streak": streak.current,
        "longest_streak": streak.longest,
        "total_days": streak.total_days,
        "new_streak_day": new_streak_day,
        "milestones": milestones,
    }))
}

/// Records a reading session. The first of a local day moves the streak (and pays a milestone's
/// reward) in the same atomic step as the session; concurrent first reads count the day once.
pub async fn read(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppUser(user): AppUser,
    JsonBody(log): JsonBody<ReadingLog>,
) -> Result<Json<Value>, ApiError> {
    check_profile_header(&headers)?;
    ApiError::unless_between(
        &["body", "reading_time"],
        log.reading_time,
        0,
        MAX_READING_SECONDS,
    )?;
    let book = owned_book(&state, &user, &log.book_id, "book").await?;
    // Only a book there is to read counts: not one still being made, nor a failed one.
    if !book.is_readable() {
        return Err(ApiError::Invalid("The book is not finished".into()));
    }
    let zone = settings_of(&state, &user).await?.timezone;
    let now = state.clock.now();
    let reading = Reading {
        book_id: book.id,
        read_at: now,
        day: zone.day_of(now),
        reading_time: log.reading_time as u32,
        completed: log.completed,
    };
    // A lost race means another read moved the streak; the next pass sees what it did.
    for _ in 0..8 {
        let stored = state.store.find_streak(&user.id).await?;
        let Some(next) = stored.streak.after_read_in(&zone, now) else {
            state.store.record_reading(&user.id, &reading, None).await?;
            return Ok(reading_result(&stored.streak, false, &[]));
        };
        let reached = milestones_reached(&stored.streak, &next);
        let rewarded: Vec<&Milestone> = reached.iter().filter(|m| m.reward_credits > 0).collect();
        let advance = StreakAdvance {
            streak: next,
            expected_version: stored.version,
            reward: rewarded.iter().map(|m| m.reward_credits).sum(),
            reward_description: rewarded
                .iter()
                .map(|m| m.ledger_description())
                .collect::<Vec<_>>()
                .join("; "),
        };
        if state
            .store
            .record_reading(&user.id, &reading, Some(&advance))
            .await?
        {
            if advance.reward > 0 {
                tracing::info!(
                    user = user.id.truncated(),
                    credits = advance.reward,
                    "reading milestone rewarded"
                );
            }
            return Ok(reading_result(&next, true, &reached));
        }
    }
    Err(ApiError::Unavailable(anyhow::anyhow!(
        "too much contention on one streak"
    )))
}

/// The seed's `StreakInfoResponse`, as the streak stands on the user's local today.
pub async fn info(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppUser(user): AppUser,
) -> Result<Json<Value>, ApiError> {
    check_profile_header(&headers)?;
    let zone = settings_of(&state, &user).await?.timezone;
    let today = zone.day_of(state.clock.now());
    let streak = state.store.find_streak(&user.id).await?.streak;
    let view = streak.as_of(today);
    Ok(Json(json!({
        "current_streak": view.current,
        "longest_streak": streak.longest,
        "total_days": streak.total_days,
        "last_read_date": streak.last_day.map(|d| d.to_string()),
        "read_today": view.read_today,
        "streak_broken": view.broken,
    })))
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
pub async fn calendar(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppUser(user): AppUser,
    QueryParams(query): QueryParams<CalendarQuery>,
) -> Result<Json<Value>, ApiError> {
    check_profile_header(&headers)?;
    ApiError::unless_between(&["query", "year"], query.year, 2020, 2100)?;
    ApiError::unless_between(&["query", "month"], query.month, 1, 12)?;
    let first = NaiveDate::from_ymd_opt(query.year as i32, query.month as u32, 1)
        .expect("a checked year and month");
    let last = first
        .checked_add_months(Months::new(1))
        .and_then(|next| next.pred_opt())
        .expect("a month has a last day");
    let zone = settings_of(&state, &user).await?.timezone;
    let readings = state.store.readings(&user.id, first, last).await?;
    let days: Vec<Value> = by_day(&readings)
        .iter()
        .map(|(day, sessions)| {
            json!({
                "date": day.to_string(),
                "day": day.day(),
                "sessions": sessions.len(),
                "reading_time": seconds_read(sessions),
                "completed": sessions.iter().filter(|r| r.completed).count(),
            })
        })
        .collect();
    Ok(Json(json!({
        "year": query.year,
        "month": query.month,
        "timezone": zone.name(),
        "days_read": days.len(),
        "total_sessions": readings.len(),
        "days": days,
    })))
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
pub async fn history(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppUser(user): AppUser,
    QueryParams(query): QueryParams<HistoryQuery>,
) -> Result<Json<Value>, ApiError> {
    check_profile_header(&headers)?;
    ApiError::unless_between(&["query", "days"], query.days, 1, 365)?;
    let zone = settings_of(&state, &user).await?.timezone;
    let today = zone.day_of(state.clock.now());
    let first = today
        .checked_sub_days(Days::new(query.days as u64 - 1))
        .expect("a representable day");
    let readings = state.store.readings(&user.id, first, today).await?;
    let history: Vec<Value> = by_day(&readings)
        .iter()
        .rev()
        .map(|(day, sessions)| {
            let entries: Vec<Value> = sessions
                .iter()
                .map(|r| {
                    json!({
                        "book_id": r.book_id.as_str(),
                        "read_at": r.read_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        "reading_time": r.reading_time,
                        "completed": r.completed,
                    })
                })
                .collect();
            json!({"date": day.to_string(), "reading_time": seconds_read(sessions), "sessions": entries})
        })
        .collect();
    Ok(Json(json!({
        "days": query.days,
        "from_date": first.to_string(),
        "to_date": today.to_string(),
        "timezone": zone.name(),
        "total_sessions": readings.len(),
        "history": history,
    })))
}
