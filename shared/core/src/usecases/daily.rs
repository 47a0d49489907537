//! The daily story (one theme and topic a day, made into the parent's own book on request) and
//! the reading report of the parent's dashboard. Days are the parent's local days.

use super::books::{Created, Making, Named, in_scope, make_book};
use super::streaks::{recent_reading, streak_today};
use super::users::settings_of;
use super::{Refusal, Request};
use crate::app::App;
use crate::domain::book::{BookId, BookRequest, IdempotencyKey, Name, PageCount, Topic};
use crate::domain::daily::DailyStory;
use crate::domain::settings::TimeZone;
use crate::domain::streak::{Streak, StreakView};
use crate::domain::user::User;
use chrono::{DateTime, NaiveDate, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// Today's story for a caller (or for anyone), and the caller's book of it if one is finished.
pub struct Today {
    pub day: NaiveDate,
    /// When the day began, in UTC.
    pub starts_at: DateTime<Utc>,
    pub story: DailyStory,
    pub book_id: Option<BookId>,
}

/// Today's theme and topic on the caller's local day (Seoul's without a caller), with the
/// caller's newest finished book of it, within the request's profile scope.
#[tracing::instrument(skip_all)]
pub async fn today(
    app: &App,
    caller: Option<&Request<User>>,
    now: DateTime<Utc>,
) -> Result<Today, Refusal> {
    let zone = match caller {
        Some(request) => settings_of(app, &request.caller).await?.timezone,
        None => TimeZone::DEFAULT,
    };
    let day = zone.day_of(now);
    let book_id = match caller {
        Some(request) => app
            .store
            .books_of(&request.caller.id)
            .await?
            .into_iter()
            .filter(|b| b.daily_story_of == Some(day) && b.is_readable())
            .filter(|b| in_scope(request, b).is_ok())
            .max_by_key(|b| b.created_at)
            .map(|b| b.id),
        None => None,
    };
    Ok(Today {
        day,
        starts_at: zone.start_of(day),
        story: DailyStory::of(day),
        book_id,
    })
}

/// What a parent sends to make today's story their own book.
pub struct DailyAsk {
    pub target_age: crate::domain::book::TargetAge,
    pub style: crate::domain::book::Style,
    pub language: crate::domain::book::Language,
    pub protagonist: Option<Name>,
    pub character_id: Option<String>,
}

/// Makes today's story (the parent's local day) into a book, charged and polled like any other:
/// today's topic, today's theme, the default length.
#[tracing::instrument(skip_all)]
pub async fn make_todays_book(
    app: &App,
    request: &Request<User>,
    ask: DailyAsk,
    idempotency_key: Option<IdempotencyKey>,
) -> Result<Created, Refusal> {
    let zone = settings_of(app, &request.caller).await?.timezone;
    let day = zone.day_of(request.now);
    let story = DailyStory::of(day);
    let topic = Topic::parse(story.topic())
        .map_err(|e| Refusal::internal(format!("daily topic {:?}: {e}", story.topic())))?;
    let book = BookRequest {
        topic,
        target_age: ask.target_age,
        style: ask.style,
        language: ask.language,
        page_count: PageCount::DEFAULT,
        protagonist: ask.protagonist,
        character_appearance: None,
        forbidden_elements: Vec::new(),
        theme: Some(story.theme.name.to_owned()),
        narration: false,
        characters: Vec::new(),
        hero_character: None,
        series: None,
        from_picture: false,
    };
    let named = Named {
        ids: ask.character_id.into_iter().collect(),
        inline: None,
    };
    let making = Making {
        idempotency_key,
        dry_run: false,
        daily_story_of: Some(day),
    };
    make_book(app, request, book, &named, making).await
}

/// One local day of the report.
pub struct ReportDay {
    pub day: NaiveDate,
    pub sessions: usize,
    pub seconds: u64,
    pub completed: usize,
}

/// The reading of the last `days` local days (today included), within the request's scope.
pub struct Report {
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub days: Vec<ReportDay>,
    pub books_read: usize,
    pub sessions: usize,
    pub completed: usize,
    pub seconds: u64,
    /// The theme of the books read most often, if any had one.
    pub preferred_theme: Option<String>,
    pub streak: Streak,
    pub view: StreakView,
}

#[tracing::instrument(skip_all)]
pub async fn reading_report(
    app: &App,
    request: &Request<User>,
    days: u32,
) -> Result<Report, Refusal> {
    let span = recent_reading(app, request, days).await?;
    let (streak, view) = streak_today(app, request).await?;
    let sessions: Vec<_> = span.days.iter().flat_map(|d| &d.sessions).collect();
    let books: BTreeSet<&BookId> = sessions.iter().map(|r| &r.book_id).collect();
    // Themes of the books read, counted per session; ties go to the first read.
    let themes: BTreeMap<BookId, String> = app
        .store
        .books_of(&request.caller.id)
        .await?
        .into_iter()
        .filter(|b| books.contains(&b.id))
        .filter_map(|b| b.request.theme.clone().map(|theme| (b.id, theme)))
        .collect();
    let mut counts: Vec<(String, usize)> = Vec::new();
    for reading in &sessions {
        if let Some(theme) = themes.get(&reading.book_id) {
            match counts.iter_mut().find(|(t, _)| t == theme) {
                Some((_, count)) => *count += 1,
                None => counts.push((theme.clone(), 1)),
            }
        }
    }
    let preferred_theme = counts
        .iter()
        .fold(None::<&(String, usize)>, |best, entry| match best {
            Some(best) if best.1 >= entry.1 => Some(best),
            _ => Some(entry),
        })
        .map(|(theme, _)| theme.clone());
    let mut report_days = Vec::new();
    let mut day = span.first;
    while day <= span.last {
        let read = span.days.iter().find(|d| d.day == day);
        report_days.push(ReportDay {
            day,
            sessions: read.map_or(0, |d| d.sessions.len()),
            seconds: read.map_or(0, |d| d.seconds_read()),
            completed: read.map_or(0, |d| d.completed()),
        });
        day = day.succ_opt().expect("a later day");
    }
    Ok(Report {
        first: span.first,
        last: span.last,
        books_read: books.len(),
        sessions: sessions.len(),
        completed: sessions.iter().filter(|r| r.completed).count(),
        seconds: sessions.iter().map(|r| u64::from(r.reading_time)).sum(),
        days: report_days,
        preferred_theme,
        streak,
        view,
    })
}
