//! Whether this deployment can serve: each dependency asked at once, with a time limit.

use crate::app::App;
use std::time::Duration;

/// Each dependency by name, and whether it answered within three seconds.
#[tracing::instrument(skip_all)]
pub async fn readiness(app: &App) -> [(&'static str, bool); 3] {
    let limit = Duration::from_secs(3);
    let (store, queue, blobs) = tokio::join!(
        tokio::time::timeout(limit, app.store.ping()),
        tokio::time::timeout(limit, app.queue.ping()),
        tokio::time::timeout(limit, app.blobs.ping()),
    );
    [
        ("store", matches!(store, Ok(Ok(())))),
        ("queue", matches!(queue, Ok(Ok(())))),
        ("blobs", matches!(blobs, Ok(Ok(())))),
    ]
}

/// The unfinished books one detailed health check counts at most: each is a read, and the
/// check must answer within its function's time even under a backlog.
pub const UNFINISHED_COUNTED: u32 = 200;

/// Jobs by where they are: unfinished ones from the index of unfinished books (at most
/// [`UNFINISHED_COUNTED`]), and the last hour's outcomes from their counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct JobCounts {
    pub queued: u64,
    pub running: u64,
    /// Unfinished, without progress for the stuck-book sweep's time (`STUCK_BOOK_AFTER_SECONDS`).
    pub stuck: u64,
    pub done_last_hour: u64,
    pub failed_last_hour: u64,
}

/// What an operator sees in the detailed health: each dependency, today's spend against its
/// limits, the kill switch and the jobs. A part the store cannot give is `None`, never an
/// error's text.
pub struct Detailed {
    pub dependencies: [(&'static str, bool); 3],
    pub spent_today: Option<crate::domain::spend::Microdollars>,
    pub kill_switch: Option<Option<crate::domain::spend::KillSwitch>>,
    pub jobs: Option<JobCounts>,
}

#[tracing::instrument(skip_all)]
pub async fn detailed(app: &App, now: chrono::DateTime<chrono::Utc>) -> Detailed {
    let dependencies = readiness(app).await;
    let logged = |part: &str, error: &dyn std::fmt::Display| {
        tracing::warn!(part, error = %error, "detailed health could not read a part");
    };
    let spent_today = match app.store.spent_on(now.date_naive()).await {
        Ok(spent) => Some(spent),
        Err(e) => {
            logged("spend", &e);
            None
        }
    };
    let kill_switch = match app.store.kill_switch().await {
        Ok(switch) => Some(switch),
        Err(e) => {
            logged("kill switch", &e);
            None
        }
    };
    let jobs = match job_counts(app, now).await {
        Ok(jobs) => Some(jobs),
        Err(e) => {
            logged("jobs", &e);
            None
        }
    };
    Detailed {
        dependencies,
        spent_today,
        kill_switch,
        jobs,
    }
}

async fn job_counts(
    app: &App,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<JobCounts, crate::ports::StoreError> {
    use crate::domain::book::JobState;
    let stuck_after = chrono::Duration::from_std(app.config.stuck_book_after)
        .unwrap_or(chrono::Duration::minutes(15));
    let stuck_before = now - stuck_after;
    let mut counts = JobCounts::default();
    // Every unfinished book, those made this very instant too.
    let created_before = now + chrono::Duration::days(1);
    for stored in app
        .store
        .unfinished_books(created_before, UNFINISHED_COUNTED)
        .await?
    {
        let book = stored.book;
        match book.state {
            JobState::Queued => counts.queued += 1,
            JobState::Running => counts.running += 1,
            // A swept book its steps still work on.
            JobState::Failed | JobState::Done => continue,
        }
        counts.stuck += u64::from(book.updated_at < stuck_before);
    }
    let (done, failed) = crate::book_records::outcomes_in_last_hour(&*app.store, now).await?;
    counts.done_last_hour = done;
    counts.failed_last_hour = failed;
    Ok(counts)
}
