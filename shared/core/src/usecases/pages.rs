//! A finished book's pages changed afterwards: one page made again (its text, its picture or
//! both), and narration added to a book made without it.

use super::books::scoped_book;
use super::{Refusal, Request, refuse_while_stopped};
use crate::app::App;
use crate::book_files::{audio_key, enqueue_step};
use crate::book_records::{Change, update_book};
use crate::domain::book::{
    AudioState, Book, BookId, JobState, PageRegeneration, READ_ALOUD_CLAIM, RegenerationMode, Step,
};
use crate::domain::credits::{EntryKind, Grant, GrantOutcome, TransactionId};
use crate::domain::user::User;
use crate::ports::blobs::stream_of;

/// What a parent asks of one page.
pub struct PageRequest {
    pub mode: RegenerationMode,
    /// Checked for length and markup by the caller; moderated by the step.
    pub feedback: Option<String>,
}

/// The caller's finished book (`resource` names it in a refusal): another's or a missing one
/// is not found, one still being made (or failed) a conflict.
async fn done_book(
    app: &App,
    request: &Request<User>,
    raw_id: &str,
    resource: &'static str,
) -> Result<Book, Refusal> {
    let book = scoped_book(app, request, raw_id, resource).await?;
    if book.state != JobState::Done {
        return Err(Refusal::Conflict(format!(
            "The book is {}, not done",
            book.state.as_str()
        )));
    }
    Ok(book)
}

/// Moves `delta` credits with a ledger entry, once per `transaction`.
async fn settle(
    app: &App,
    request: &Request<User>,
    delta: i64,
    kind: EntryKind,
    transaction: &str,
    reason: String,
) -> Result<GrantOutcome, Refusal> {
    let transaction_id = TransactionId::parse(transaction)
        .map_err(|e| Refusal::internal(format!("transaction id {transaction:?}: {e}")))?;
    Ok(app
        .store
        .grant(&Grant {
            user: request.caller.id.clone(),
            delta,
            transaction_id,
            kind,
            reason: Some(reason),
            at: request.now,
        })
        .await?)
}

/// Asks for a new version of page `number` of the caller's finished book `raw_job`: charged the
/// configured price (nothing by default), one regeneration at a time per page (another while one
/// is pending is a conflict, and is not charged). The page keeps its current version until the
/// new one lands; a regeneration that fails is refunded. Answers the book as it now stands.
#[tracing::instrument(skip_all)]
pub async fn regenerate_page(
    app: &App,
    request: &Request<User>,
    raw_job: &str,
    number: i64,
    asked: PageRequest,
) -> Result<Book, Refusal> {
    let book = done_book(app, request, raw_job, "job").await?;
    let page_missing = || Refusal::not_found("page", number.to_string());
    let number = u8::try_from(number).map_err(|_| page_missing())?;
    if number == 0 || !book.pages.iter().any(|p| p.number == number) {
        return Err(page_missing());
    }
    // Nothing is charged or started while generation is stopped, as for a new book.
    refuse_while_stopped(app).await?;
    let price = app.config.page_regeneration_price;
    let regeneration = PageRegeneration {
        mode: asked.mode,
        feedback: asked.feedback,
        charged: price,
        requested_at: request.now,
    };
    let marked = update_book(&*app.store, request.now, &book.id, |book| {
        match book.pages.iter_mut().find(|p| p.number == number) {
            Some(page) if page.regeneration.is_none() && book.state == JobState::Done => {
                page.regeneration = Some(regeneration.clone());
                Change::Write
            }
            _ => Change::Unchanged,
        }
    })
    .await?;
    let Some((book, true)) = marked else {
        return Err(Refusal::Conflict(
            "This page is already being made again; wait for it".into(),
        ));
    };
    let page = book
        .pages
        .iter()
        .find(|p| p.number == number)
        .expect("the page was just marked");
    let transaction = regeneration.transaction(&book.id, page);
    if price > 0 {
        let reason = format!("page {number} of {} made again", book.id.as_str());
        match settle(app, request, -price, EntryKind::Usage, &transaction, reason).await {
            Ok(GrantOutcome::InsufficientCredits { balance }) => {
                unmark(app, request, &book.id, number).await?;
                return Err(Refusal::PaymentRequired {
                    reason: "insufficient_credits",
                    required: price,
                    balance,
                });
            }
            Err(error) => {
                unmark(app, request, &book.id, number).await?;
                return Err(error);
            }
            Ok(_) => {}
        }
    }
    if let Err(error) = enqueue_step(&*app.queue, &book.id, Step::Regenerate { page: number }).await
    {
        if price > 0 {
            let reason = format!("page {number} of {} not made again", book.id.as_str());
            let refund = format!("refund:{transaction}");
            settle(app, request, price, EntryKind::Refund, &refund, reason).await?;
        }
        unmark(app, request, &book.id, number).await?;
        return Err(error.into());
    }
    Ok(book)
}

/// Takes back a regeneration mark that was never started.
async fn unmark(
    app: &App,
    request: &Request<User>,
    book: &BookId,
    number: u8,
) -> Result<(), Refusal> {
    update_book(&*app.store, request.now, book, |book| {
        match book.pages.iter_mut().find(|p| p.number == number) {
            Some(page) if page.regeneration.is_some() => {
                page.regeneration = None;
                Change::Write
            }
            _ => Change::Unchanged,
        }
    })
    .await?;
    Ok(())
}

/// What asking for a book's narration did.
pub enum BookAudio {
    /// Every page is narrated already.
    Available,
    /// This many pages are being narrated.
    Queued(usize),
}

/// Narrates the caller's finished book where it has no narration: each page without audio is
/// read aloud by the step worker (charged the configured price once per book, nothing by
/// default). A book still being made is a conflict.
#[tracing::instrument(skip_all)]
pub async fn book_audio(
    app: &App,
    request: &Request<User>,
    raw_id: &str,
) -> Result<BookAudio, Refusal> {
    let book = done_book(app, request, raw_id, "book").await?;
    let silent = |book: &Book| -> Vec<u8> {
        book.story_pages()
            .filter(|p| p.audio_state != AudioState::Available)
            .map(|p| p.number)
            .collect()
    };
    if silent(&book).is_empty() {
        return Ok(BookAudio::Available);
    }
    refuse_while_stopped(app).await?;
    let price = app.config.book_audio_price;
    if price > 0 {
        let reason = format!("narration of {}", book.id.as_str());
        let transaction = format!("audio:{}", book.id.as_str());
        if let GrantOutcome::InsufficientCredits { balance } =
            settle(app, request, -price, EntryKind::Usage, &transaction, reason).await?
        {
            return Err(Refusal::PaymentRequired {
                reason: "insufficient_credits",
                required: price,
                balance,
            });
        }
    }
    // The pages to narrate are marked pending in the book's own document (the page assets of
    // its making are past for them), then each is narrated by its step. Only the request that
    // marked a page enqueues it: concurrent or repeated requests find it pending already and
    // start nothing, so each page is narrated once whatever the concurrency.
    let marked_now = std::sync::Mutex::new(Vec::new());
    let marked = update_book(&*app.store, request.now, &book.id, |book| {
        let pages = silent(book);
        let mut changed = Vec::new();
        for page in book.pages.iter_mut().filter(|p| pages.contains(&p.number)) {
            if page.audio_state != AudioState::Pending {
                page.revised = true;
                page.audio_state = AudioState::Pending;
                changed.push(page.number);
            }
        }
        let write = !changed.is_empty();
        *marked_now.lock().unwrap_or_else(|p| p.into_inner()) = changed;
        if write {
            Change::Write
        } else {
            Change::Unchanged
        }
    })
    .await?;
    let Some((book, _)) = marked else {
        return Err(Refusal::not_found("book", raw_id));
    };
    let marked_now = marked_now.into_inner().unwrap_or_else(|p| p.into_inner());
    for (i, page) in marked_now.iter().enumerate() {
        if let Err(error) = enqueue_step(&*app.queue, &book.id, Step::Narrate { page: *page }).await
        {
            // Pages marked and never enqueued would wait for a step that never comes.
            let never_started = &marked_now[i..];
            update_book(&*app.store, request.now, &book.id, |book| {
                let mut changed = false;
                for page in book.pages.iter_mut() {
                    if never_started.contains(&page.number)
                        && page.audio_state == AudioState::Pending
                    {
                        page.audio_state = AudioState::Missing;
                        changed = true;
                    }
                }
                if changed {
                    Change::Write
                } else {
                    Change::Unchanged
                }
            })
            .await?;
            return Err(error.into());
        }
    }
    let pending = book
        .story_pages()
        .filter(|p| p.audio_state == AudioState::Pending)
        .count();
    Ok(BookAudio::Queued(pending))
}

/// How long a request waits for a page another request (or the step worker) is reading aloud,
/// within API Gateway's 30 s.
const READ_ALOUD_WAIT: std::time::Duration = std::time::Duration::from_secs(25);

/// The signed URL of page `number`'s narration of the caller's finished book, read aloud now
/// when it has none (the studio's narrator), and kept for the next time. One reading per page
/// whatever the concurrency: the request that claims the page reads it, the others wait for its
/// file (a claim left by a request that died is taken over once stale).
#[tracing::instrument(skip_all)]
pub async fn page_audio(
    app: &App,
    request: &Request<User>,
    raw_id: &str,
    number: i64,
) -> Result<String, Refusal> {
    let page_missing = || Refusal::not_found("page", number.to_string());
    let number = u8::try_from(number).map_err(|_| page_missing())?;
    let ttl = app.config.signed_url_ttl;
    let started = std::time::Instant::now();
    let (book, before) = loop {
        let book = done_book(app, request, raw_id, "book").await?;
        let page = book
            .story_pages()
            .find(|p| p.number == number)
            .ok_or_else(page_missing)?;
        if page.audio_state == AudioState::Available
            && let Some(key) = &page.audio_key
        {
            return Ok(app.blobs.signed_url(&super::stored_key(key)?, ttl).await?);
        }
        let now = app.clock.now();
        let before = std::sync::Mutex::new(AudioState::NotRequested);
        let claimed = update_book(&*app.store, request.now, &book.id, |book| {
            match book.pages.iter_mut().find(|p| p.number == number) {
                Some(page) if page.audio_state != AudioState::Available => {
                    let stale = page
                        .read_aloud_since
                        .is_some_and(|since| now - since > READ_ALOUD_CLAIM);
                    if page.audio_state == AudioState::Pending && !stale {
                        return Change::Unchanged;
                    }
                    *before.lock().unwrap_or_else(|p| p.into_inner()) = page.audio_state;
                    page.revised = true;
                    page.audio_state = AudioState::Pending;
                    page.read_aloud_since = Some(now);
                    Change::Write
                }
                _ => Change::Unchanged,
            }
        })
        .await?;
        match claimed {
            Some((book, true)) => {
                break (book, before.into_inner().unwrap_or_else(|p| p.into_inner()));
            }
            None => return Err(Refusal::not_found("book", raw_id)),
            Some(_) if started.elapsed() >= READ_ALOUD_WAIT => {
                return Err(Refusal::Conflict(
                    "This page is being read aloud; try again in a moment".into(),
                ));
            }
            Some(_) => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    };
    let page = book
        .story_pages()
        .find(|p| p.number == number)
        .ok_or_else(page_missing)?;
    let claim = page.read_aloud_since;
    let speech = match app
        .studio
        .read_aloud(
            &page.text,
            book.request.language,
            book.request.target_age,
            book.id.as_str(),
        )
        .await
    {
        Ok(speech) => speech,
        Err(error) => {
            // The claim goes; the page is as it was (a stale claim taken over: missing), for
            // the next request to try.
            let restored = match before {
                AudioState::Pending => AudioState::Missing,
                other => other,
            };
            update_book(&*app.store, request.now, &book.id, |book| {
                match book.pages.iter_mut().find(|p| p.number == number) {
                    Some(page) if page.read_aloud_since == claim => {
                        page.read_aloud_since = None;
                        if page.audio_state == AudioState::Pending {
                            page.audio_state = restored;
                        }
                        Change::Write
                    }
                    _ => Change::Unchanged,
                }
            })
            .await?;
            return Err(error.into());
        }
    };
    let key = audio_key(&book.id, number, speech.format);
    app.blobs.put(&key, stream_of(speech.audio)).await?;
    let landed = update_book(&*app.store, request.now, &book.id, |book| {
        match book.pages.iter_mut().find(|p| p.number == number) {
            Some(page) if page.audio_state != AudioState::Available => {
                page.revised = true;
                page.audio_key = Some(key.as_str().to_owned());
                page.audio_state = AudioState::Available;
                page.read_aloud_since = None;
                Change::Write
            }
            _ => Change::Unchanged,
        }
    })
    .await?;
    // Read aloud by another first (a stale claim taken over, the step worker): theirs is kept.
    let kept = match landed {
        Some((book, _)) => book
            .pages
            .into_iter()
            .find(|p| p.number == number)
            .and_then(|p| p.audio_key),
        None => {
            // The book went while its page was read: its file goes too.
            app.blobs.delete(&key).await?;
            return Err(Refusal::not_found("book", raw_id));
        }
    };
    let kept = match kept {
        Some(kept) if kept != key.as_str() => {
            app.blobs.delete(&key).await?;
            super::stored_key(&kept)?
        }
        _ => key,
    };
    Ok(app.blobs.signed_url(&kept, ttl).await?)
}
