//! Changing a stored book safely: every change is a compare-and-swap on the book's version, so
//! concurrent steps never overwrite each other, and a change that finds its work already done
//! writes nothing (what makes redelivered steps harmless).

use crate::clock::Clock;
use crate::domain::book::{Book, BookId, JobState};
use crate::domain::credits::{EntryKind, Grant, TransactionId};
use crate::domain::failure::FailureCode;
use crate::ports::store::Settlement;
use crate::ports::{Store, StoreError};
use backon::{ExponentialBuilder, Retryable};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;

/// What a change to a book decided.
pub enum Change {
    Write,
    /// Write, and settle the book's charge (refund or clawback) in the same atomic step.
    WriteAndSettle(Settlement),
    /// Nothing to do: the work was done already (or the book is past caring).
    Unchanged,
}

#[derive(Debug)]
enum Try {
    Lost,
    Failed(StoreError),
}

fn retries() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(2))
        .with_max_delay(Duration::from_millis(200))
        .with_jitter()
        .with_max_times(100)
}

fn settle<T>(result: Result<T, Try>) -> Result<T, StoreError> {
    result.map_err(|t| match t {
        Try::Failed(e) => e,
        Try::Lost => StoreError::unavailable(anyhow::anyhow!("too much contention on one book")),
    })
}

/// Ends page `number`'s regeneration without a new version (refused, or failed for good): its
/// charge is given back first (once, by the refund's transaction id, so a crash before the next
/// write loses nothing and a redelivery refunds nothing twice), then the page is unmarked and
/// stays as it was.
pub async fn end_regeneration(
    store: &dyn Store,
    now: DateTime<Utc>,
    id: &BookId,
    number: u8,
) -> Result<(), StoreError> {
    let Some(stored) = store.find_book(id).await? else {
        return Ok(());
    };
    let book = stored.book;
    let Some(page) = book.pages.iter().find(|p| p.number == number) else {
        return Ok(());
    };
    let Some(regeneration) = &page.regeneration else {
        return Ok(());
    };
    if regeneration.charged > 0 {
        let refund = format!("refund:{}", regeneration.transaction(id, page));
        let grant = Grant {
            user: book.user.clone(),
            delta: regeneration.charged,
            transaction_id: TransactionId::parse(&refund).map_err(StoreError::unavailable)?,
            kind: EntryKind::Refund,
            reason: Some(format!("page {number} of {} not made again", id.as_str())),
            at: now,
        };
        store.grant(&grant).await?;
    }
    let version = page.version;
    update_book(store, now, id, |book| {
        match book.pages.iter_mut().find(|p| p.number == number) {
            Some(page) if page.version == version && page.regeneration.is_some() => {
                page.regeneration = None;
                Change::Write
            }
            _ => Change::Unchanged,
        }
    })
    .await?;
    Ok(())
}

/// Applies `change` to the current book until it sticks. Answers the book as it now stands and
/// whether this call wrote it, or `None` when the book is gone (deleted).
pub async fn update_book(
    store: &dyn Store,
    now: DateTime<Utc>,
    id: &BookId,
    change: impl Fn(&mut Book) -> Change,
) -> Result<Option<(Book, bool)>, StoreError> {
    let attempt = || async {
        let Some(stored) = store.find_book(id).await.map_err(Try::Failed)? else {
            return Ok(None);
        };
        let mut book = stored.book;
        let change = change(&mut book);
        if matches!(change, Change::Unchanged) {
            return Ok(Some((book, false)));
        }
        book.updated_at = now;
        let written = match change {
            Change::WriteAndSettle(settlement) => {
                store
                    .replace_and_settle(&book, stored.version, settlement, book.updated_at)
                    .await
            }
            _ => store.replace_book(&book, stored.version).await,
        };
        match written.map_err(Try::Failed)? {
            true => Ok(Some((book, true))),
            false => Err(Try::Lost),
        }
    };
    settle(
        attempt
            .retry(retries())
            .when(|t: &Try| matches!(t, Try::Lost))
            .await,
    )
}

/// Marks the book failed with an `ErrorCode` of the app contract and gives its charge back, exactly once however
/// often it is called: a finished book (failed or done) is left as it is.
pub async fn fail_book(
    store: &dyn Store,
    now: DateTime<Utc>,
    id: &BookId,
    code: FailureCode,
    refusal: Option<&str>,
) -> Result<(), StoreError> {
    let changed = update_book(store, now, id, |book| {
        if book.is_finished() {
            return Change::Unchanged;
        }
        book.refusal = refusal.map(str::to_owned);
        mark_failed(book, code)
    })
    .await?;
    if let Some((book, true)) = changed {
        count_failed(&book);
        count_outcome(store, false, now).await;
    }
    Ok(())
}

/// How long a bucket of job outcomes counts.
const OUTCOME_BUCKET: std::time::Duration = std::time::Duration::from_secs(300);

/// The five-minute bucket of job outcomes `at` falls in, kept (not counted) for an hour past
/// its end so that the last hour can be summed.
fn outcome_bucket(at: DateTime<Utc>) -> crate::domain::Window {
    let bucket = crate::domain::Window::fixed(OUTCOME_BUCKET, at);
    crate::domain::Window {
        end: bucket.end + chrono::Duration::hours(1),
        ..bucket
    }
}

/// Counts a job that just finished (`done`) or failed into its five-minute bucket, for the
/// detailed health; a count that cannot be written is logged, never fatal to the book.
pub async fn count_outcome(store: &dyn Store, done: bool, at: DateTime<Utc>) {
    let counter = if done { "jobs:done" } else { "jobs:failed" };
    if let Err(error) = store.take(counter, u32::MAX, outcome_bucket(at)).await {
        tracing::warn!(error = format!("{error:#}"), "job outcome not counted");
    }
}

/// Jobs finished and failed in the last hour (twelve buckets of five minutes, the current one
/// included: 55 to 60 minutes), in twelve reads whatever the library's size.
pub async fn outcomes_in_last_hour(
    store: &dyn Store,
    now: DateTime<Utc>,
) -> Result<(u64, u64), StoreError> {
    let (mut done, mut failed) = (0, 0);
    for bucket in 0..12 {
        let at = now - chrono::Duration::minutes(5 * bucket);
        let window = crate::domain::Window {
            now,
            ..outcome_bucket(at)
        };
        done += u64::from(store.peek("jobs:done", window).await?);
        failed += u64::from(store.peek("jobs:failed", window).await?);
    }
    Ok((done, failed))
}

/// The metrics of a book that just failed: one failure, and the credits given back.
fn count_failed(book: &Book) {
    let refunded = if book.refunded { book.charged } else { 0 };
    crate::metrics::emit(
        &[
            (
                crate::metrics::BOOKS_FAILED,
                1.0,
                crate::metrics::Unit::Count,
            ),
            (
                crate::metrics::CREDITS_REFUNDED,
                refunded as f64,
                crate::metrics::Unit::Count,
            ),
        ],
        &[],
    );
}

/// Fails an unfinished book and settles a refund, once: the one place a book becomes failed.
fn mark_failed(book: &mut Book, code: FailureCode) -> Change {
    book.state = JobState::Failed;
    book.failure = Some(code);
    if book.charged > 0 && !book.refunded {
        book.refunded = true;
        Change::WriteAndSettle(Settlement::Refund)
    } else {
        Change::Write
    }
}

/// How many unfinished books one sweep looks at; the next sweep takes the rest.
const SWEEP_BATCH: u32 = 100;

/// Fails and refunds the unfinished books that made no progress since `now - stuck_after`,
/// each once however many sweeps run at once. Their steps may still finish them (see
/// [`Book::in_production`]). Answers how many books this sweep failed.
pub async fn sweep_stuck_books(
    store: &dyn Store,
    now: DateTime<Utc>,
    stuck_after: chrono::Duration,
) -> Result<u32, StoreError> {
    let cutoff = now - stuck_after;
    let mut swept = 0;
    for stored in store.unfinished_books(cutoff, SWEEP_BATCH).await? {
        if stored.book.updated_at > cutoff {
            continue;
        }
        let changed = update_book(store, now, &stored.book.id, |book| {
            // Progress since the index was read, or another sweep first: leave it.
            if book.is_finished() || book.updated_at > cutoff {
                return Change::Unchanged;
            }
            book.swept_at = Some(now);
            mark_failed(book, FailureCode::Stuck)
        })
        .await?;
        if let Some((book, true)) = changed {
            swept += 1;
            count_failed(&book);
            count_outcome(store, false, now).await;
            tracing::warn!(
                book = book.id.as_str(),
                state_before = stored.book.state.as_str(),
                stuck_since = %stored.book.updated_at,
                "stuck book failed and refunded"
            );
        }
    }
    Ok(swept)
}

/// How often local mode sweeps for stuck books (on Lambda a schedule in `template.yaml` does).
const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Local mode's stuck-book sweep, until the process ends. The first sweep waits `stuck_after`,
/// so that books resumed after a restart can show progress before they are judged.
pub async fn sweep_local(store: Arc<dyn Store>, clock: Clock, stuck_after: Duration) {
    let first = tokio::time::Instant::now() + stuck_after;
    let mut tick = tokio::time::interval_at(first, SWEEP_EVERY);
    loop {
        tick.tick().await;
        sweep_logged(&*store, clock.now(), stuck_after).await;
    }
}

/// The scheduled sweep, as of the time its schedule `fired_at` (now when the event said none).
pub async fn scheduled_sweep(
    store: &dyn Store,
    clock: &Clock,
    stuck_after: Duration,
    fired_at: Option<DateTime<Utc>>,
) -> Result<serde_json::Value, crate::ports::StoreError> {
    let now = fired_at.unwrap_or_else(|| clock.now());
    let swept = sweep_stuck_books(store, now, chrono_duration(stuck_after)).await?;
    Ok(serde_json::json!({ "swept": swept }))
}

async fn sweep_logged(
    store: &dyn Store,
    now: chrono::DateTime<chrono::Utc>,
    stuck_after: Duration,
) {
    match sweep_stuck_books(store, now, chrono_duration(stuck_after)).await {
        Ok(0) => {}
        Ok(swept) => tracing::info!(swept, "stuck-book sweep"),
        Err(error) => tracing::warn!(error = format!("{error:#}"), "stuck-book sweep failed"),
    }
}

fn chrono_duration(duration: Duration) -> chrono::Duration {
    chrono::Duration::from_std(duration).unwrap_or(chrono::Duration::MAX)
}
