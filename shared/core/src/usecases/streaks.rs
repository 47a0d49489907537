//! Reading streaks: recording a reading, and the streak and sessions as the user's local days
//! have them (their settings' time zone); timestamps are kept in UTC.

use super::books::owned_book;
use super::users::settings_of;
use super::{Refusal, Request};
use crate::app::App;
use crate::domain::settings::TimeZone;
use crate::domain::streak::{
    Milestone, Reading, ReadingDay, Streak, StreakView, days_ending, milestones_reached, month_days,
};
use crate::domain::user::User;
use crate::ports::store::StreakAdvance;
use chrono::NaiveDate;

/// A recorded reading: the streak after it, whether it made a new streak day, and the
/// milestones it reached.
pub struct Recorded {
    pub streak: Streak,
    pub new_streak_day: bool,
    pub reached: Vec<Milestone>,
}

/// Records a reading session of a finished book. The first of a local day moves the account's
/// streak (and pays a milestone's reward) in the same atomic step as the session; concurrent
/// first reads count the day once. Under a child profile the session is tagged with it and the
/// profile's own streak moves too (first, so that a crash between the two never leaves a
/// recorded session its profile did not count); rewards are the account's, paid once whoever
/// read. The answer is the profile's streak when one is named.
#[tracing::instrument(skip_all)]
pub async fn record_reading(
    app: &App,
    request: &Request<User>,
    raw_book_id: &str,
    reading_time: u32,
    completed: bool,
) -> Result<Recorded, Refusal> {
    let user = &request.caller;
    super::profiles::require_own_profile(app, request).await?;
    // Any of the account's books: a child may read a sibling's.
    let book = owned_book(app, user, raw_book_id, "book").await?;
    // Only a book there is to read counts: not one still being made, nor a failed one.
    if !book.is_readable() {
        return Err(Refusal::Invalid("The book is not finished".into()));
    }
    let zone = settings_of(app, user).await?.timezone;
    let now = request.now;
    let reading = Reading {
        book_id: book.id,
        read_at: now,
        day: zone.day_of(now),
        reading_time,
        completed,
        profile: request.profile.clone(),
    };
    let profile_streak = match &request.profile {
        Some(profile) => Some(advance_profile_streak(app, request, &zone, profile).await?),
        None => None,
    };
    let recorded = record_for_account(app, request, &zone, &reading).await?;
    Ok(match profile_streak {
        Some((streak, new_streak_day)) => Recorded {
            streak,
            new_streak_day,
            ..recorded
        },
        None => recorded,
    })
}

/// Moves a profile's own streak for a read now: the streak after it, and whether the read
/// counted a new day for it.
async fn advance_profile_streak(
    app: &App,
    request: &Request<User>,
    zone: &TimeZone,
    profile: &str,
) -> Result<(Streak, bool), Refusal> {
    let user = &request.caller.id;
    for _ in 0..8 {
        let stored = app.store.find_profile_streak(user, profile).await?;
        let Some(next) = stored.streak.after_read_in(zone, request.now) else {
            return Ok((stored.streak, false));
        };
        if app
            .store
            .replace_profile_streak(user, profile, &next, stored.version)
            .await?
        {
            return Ok((next, true));
        }
    }
    Err(Refusal::unavailable(anyhow::anyhow!(
        "too much contention on one streak"
    )))
}

/// Records the session and moves the account's streak, paying its milestones.
async fn record_for_account(
    app: &App,
    request: &Request<User>,
    zone: &TimeZone,
    reading: &Reading,
) -> Result<Recorded, Refusal> {
    let (user, now) = (&request.caller, request.now);
    // A lost race means another read moved the streak; the next pass sees what it did.
    for _ in 0..8 {
        let stored = app.store.find_streak(&user.id).await?;
        let Some(next) = stored.streak.after_read_in(zone, now) else {
            app.store.record_reading(&user.id, reading, None).await?;
            return Ok(Recorded {
                streak: stored.streak,
                new_streak_day: false,
                reached: Vec::new(),
            });
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
        if app
            .store
            .record_reading(&user.id, reading, Some(&advance))
            .await?
        {
            if advance.reward > 0 {
                tracing::info!(
                    user = user.id.truncated(),
                    credits = advance.reward,
                    "reading milestone rewarded"
                );
            }
            return Ok(Recorded {
                streak: advance.streak,
                new_streak_day: true,
                reached,
            });
        }
    }
    Err(Refusal::unavailable(anyhow::anyhow!(
        "too much contention on one streak"
    )))
}

/// The streak as it stands on the user's local today: the profile's when one is named, else
/// the account's.
#[tracing::instrument(skip_all)]
pub async fn streak_today(
    app: &App,
    request: &Request<User>,
) -> Result<(Streak, StreakView), Refusal> {
    let zone = settings_of(app, &request.caller).await?.timezone;
    let today = zone.day_of(request.now);
    let user = &request.caller.id;
    let streak = match &request.profile {
        Some(profile) => app.store.find_profile_streak(user, profile).await?.streak,
        None => app.store.find_streak(user).await?.streak,
    };
    let view = streak.as_of(today);
    Ok((streak, view))
}

/// Local days of reading: which days, in which time zone, and the sessions of each day read
/// (oldest day first).
pub struct ReadingSpan {
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub zone: TimeZone,
    pub days: Vec<ReadingDay>,
    pub sessions: usize,
}

/// The reading of one calendar month of the user's local days.
#[tracing::instrument(skip_all)]
pub async fn month_of_reading(
    app: &App,
    request: &Request<User>,
    year: i32,
    month: u32,
) -> Result<ReadingSpan, Refusal> {
    let (first, last) = month_days(year, month)
        .ok_or_else(|| Refusal::Invalid(format!("no month {year}-{month}")))?;
    let zone = settings_of(app, &request.caller).await?.timezone;
    span_of_reading(app, request, zone, first, last).await
}

/// The reading of the last `days` local days, today included.
#[tracing::instrument(skip_all)]
pub async fn recent_reading(
    app: &App,
    request: &Request<User>,
    days: u32,
) -> Result<ReadingSpan, Refusal> {
    let zone = settings_of(app, &request.caller).await?.timezone;
    let (first, last) = days_ending(zone.day_of(request.now), days)
        .ok_or_else(|| Refusal::Invalid(format!("no span of {days} days")))?;
    span_of_reading(app, request, zone, first, last).await
}

/// The readings of local days `first..=last` in the user's `zone`: the profile's when one is
/// named, else every one of the account's.
async fn span_of_reading(
    app: &App,
    request: &Request<User>,
    zone: TimeZone,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<ReadingSpan, Refusal> {
    let mut readings = app.store.readings(&request.caller.id, first, last).await?;
    if let Some(profile) = &request.profile {
        readings.retain(|r| r.profile.as_ref() == Some(profile));
    }
    let sessions = readings.len();
    Ok(ReadingSpan {
        first,
        last,
        zone,
        days: ReadingDay::group(readings),
        sessions,
    })
}
