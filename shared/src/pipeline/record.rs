//! Changing a stored book safely: every change is a compare-and-swap on the book's version, so
//! concurrent steps never overwrite each other, and a change that finds its work already done
//! writes nothing (what makes redelivered steps harmless).

use crate::domain::book::{Book, BookId, JobState};
use crate::ports::{Store, StoreError};
use backon::{ExponentialBuilder, Retryable};
use std::time::Duration;

/// What a change to a book decided.
pub enum Change {
    Write,
    /// Write, and give the book's charge back in the same atomic step.
    WriteWithRefund,
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

/// Applies `change` to the current book until it sticks. Answers the book as it now stands and
/// whether this call wrote it, or `None` when the book is gone (deleted).
pub async fn update_book(
    store: &dyn Store,
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
        book.updated_at = chrono::Utc::now();
        let written = match change {
            Change::WriteWithRefund => {
                store
                    .replace_with_refund(&book, stored.version, book.updated_at)
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

/// Marks the book failed with a seed `ErrorCode` and gives its charge back, exactly once however
/// often it is called: a finished book (failed or done) is left as it is.
pub async fn fail_book(
    store: &dyn Store,
    id: &BookId,
    code: &str,
    refusal: Option<&str>,
) -> Result<(), StoreError> {
    update_book(store, id, |book| {
        if book.is_finished() {
            return Change::Unchanged;
        }
        book.state = JobState::Failed;
        book.failure = Some(code.to_owned());
        book.refusal = refusal.map(str::to_owned);
        if book.charged > 0 && !book.refunded {
            book.refunded = true;
            Change::WriteWithRefund
        } else {
            Change::Write
        }
    })
    .await?;
    Ok(())
}
