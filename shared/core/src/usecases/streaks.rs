//! Reading streaks: recording a reading, and the streak and sessions as the user's local days
//! have them (their settings' time zone); timestamps are kept in UTC.

use super::books::owned_book;
use super::users::settings_of;
use super::{Refusal, Request};
use crate::app::App;
use crate::domain::settings::TimeZone;
use crate::domain::streak::{Milestone, Reading, Streak, StreakView, milestones_reached};
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

/// Records a reading session of a finished book. The first of a local day moves the streak (and
/// pays a milestone's reward) in the same atomic step as the session; concurrent first reads
/// count the day once.
pub async fn record_reading(
    app: &App,
    request: &Request<User>,
    raw_book_id: &str,
    reading_time: u32,
    completed: bool,
) -> Result<Recorded, Refusal> {
    let user = &request.caller;
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
    };
    // A lost race means another read moved the streak; the next pass sees what it did.
    for _ in 0..8 {
        let stored = app.store.find_streak(&user.id).await?;
        let Some(next) = stored.streak.after_read_in(&zone, now) else {
            app.store.record_reading(&user.id, &reading, None).await?;
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
            return Ok(Recorded {
                streak: advance.streak,
                new_streak_day: true,
                reached,
            });
        }
    }
    Err(Refusal::Unavailable(anyhow::anyhow!(
        "too much contention on one streak"
    )))
}

/// The streak as it stands on the user's local today.
pub async fn streak_today(
    app: &App,
    request: &Request<User>,
) -> Result<(Streak, StreakView), Refusal> {
    let zone = settings_of(app, &request.caller).await?.timezone;
    let today = zone.day_of(request.now);
    let streak = app.store.find_streak(&request.caller.id).await?.streak;
    let view = streak.as_of(today);
    Ok((streak, view))
}

/// The user's local today and their time zone.
pub async fn local_today(
    app: &App,
    request: &Request<User>,
) -> Result<(NaiveDate, TimeZone), Refusal> {
    let zone = settings_of(app, &request.caller).await?.timezone;
    Ok((zone.day_of(request.now), zone))
}

/// The sessions of local days `first..=last`, oldest first.
pub async fn readings(
    app: &App,
    request: &Request<User>,
    first: NaiveDate,
    last: NaiveDate,
) -> Result<Vec<Reading>, Refusal> {
    Ok(app.store.readings(&request.caller.id, first, last).await?)
}
