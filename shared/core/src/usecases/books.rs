//! Making a book and reading it back: the request's caps and charge, the first step, the
//! caller's own books, and the signed links of a book's files.

use super::{Refusal, Request};
use crate::app::App;
use crate::book_files::enqueue_step;
use crate::book_records::fail_book;
use crate::domain::book::{
    Book, BookId, BookRequest, Idempotency, IdempotencyKey, JobState, NextInSeries, SeriesPlace,
    Step,
};
use crate::domain::failure::FailureCode;
use crate::domain::user::User;
use crate::metrics;
use crate::ports::CreateOutcome;
use crate::usecases::users::settings_of;

/// How long a book may wait for its first step before a retry of its request starts it again;
/// far beyond the queue's normal delay, so a busy queue is not given duplicates.
const UNSTARTED_AFTER: chrono::Duration = chrono::Duration::minutes(2);

/// What a book request came to.
#[derive(Debug)]
pub enum Created {
    /// A new book, charged and started.
    New(Book),
    /// The book an earlier request with the same idempotency key made.
    Replayed(Book),
    /// A dry run that would have made a book: nothing charged, stored or enqueued.
    WouldMake,
}

/// The parent's characters a book request names: by id (`character_id` first, then
/// `character_ids`), and the name of an inline `character`.
#[derive(Debug, Clone, Default)]
pub struct Named {
    pub ids: Vec<String>,
    pub inline: Option<String>,
}

/// Makes a book: its named characters looked up first, refused while generation is stopped,
/// counted against the user's day before it is made (and given back when none is), charged and
/// stored in one atomic step with the unfinished-books cap, then started. A retry with the same
/// key answers the same book.
#[tracing::instrument(skip_all)]
pub async fn create_book(
    app: &App,
    request: &Request<User>,
    book: BookRequest,
    named: &Named,
    idempotency_key: Option<IdempotencyKey>,
    dry_run: bool,
) -> Result<Created, Refusal> {
    let making = Making {
        idempotency_key,
        dry_run,
        daily_story_of: None,
    };
    make_book(app, request, book, named, making).await
}

/// How a book is asked for, beyond what it is: a retry's key, a dry run, a daily story's day.
pub struct Making {
    pub idempotency_key: Option<IdempotencyKey>,
    pub dry_run: bool,
    pub daily_story_of: Option<chrono::NaiveDate>,
}

/// [`create_book`], for any way of asking for one.
pub async fn make_book(
    app: &App,
    request: &Request<User>,
    mut book: BookRequest,
    named: &Named,
    making: Making,
) -> Result<Created, Refusal> {
    let Making {
        idempotency_key,
        dry_run,
        daily_story_of,
    } = making;
    let (user, now) = (&request.caller, request.now);
    super::profiles::require_own_profile(app, request).await?;
    book.narration = app.config.narration;
    // The parent's own characters the book names (another's or a missing one is not found),
    // the hero's first: their sheets replace the ones the story model would make up.
    let mut characters = Vec::new();
    for raw_id in &named.ids {
        characters.push(crate::usecases::characters::character(app, request, raw_id).await?);
    }
    // An inline character named as one of the parent's own is that character (the newest of the
    // name): its sheet and its reference picture, not a new one. Any other is the story's own.
    if characters.is_empty()
        && let Some(name) = &named.inline
        && let Some(own) = app
            .store
            .characters_of(&user.id)
            .await?
            .into_iter()
            .find(|c| &c.name == name)
    {
        characters.push(own);
    }
    for character in characters {
        book.characters.push(character.sheet());
        book.from_picture |= character.origin.is_from_picture();
        book.hero_character.get_or_insert(character.id);
    }
    if book.protagonist.is_none()
        && let Some(hero) = book.characters.first()
    {
        book.protagonist = crate::domain::book::Name::parse(&hero.name).ok();
    }
    // A retry must ask for the same book: the record keeps a fingerprint of the request.
    let idempotency = idempotency_key.map(|key| Idempotency::new(key, &book, now));
    let price = app.config.book_price(book.page_count.get());
    let limits = &app.config.limits;
    // Nothing is charged while generation is stopped (the kill switch, today's hard limit).
    super::refuse_while_stopped(app).await?;
    let today = settings_of(app, user).await?.timezone.today(now);
    let books_today = format!("books-day:{}", user.id.as_str());
    // Counted before the book is made, atomically (so concurrent requests cannot all pass a
    // check made before any of them counted), and given back when no book is made.
    let taken = app
        .store
        .take(&books_today, limits.books_per_day, today)
        .await?;
    if !taken.allowed {
        app.store.give_back(&books_today, today).await?;
        return Err(Refusal::DailyLimit {
            limit: limits.books_per_day,
            retry_after: today.reset_after(),
        });
    }
    let outcome = create_counted(
        app,
        request,
        book,
        price,
        idempotency,
        dry_run,
        daily_story_of,
    )
    .await;
    if !matches!(outcome, Ok(Created::New(_))) {
        app.store.give_back(&books_today, today).await?;
    }
    outcome
}

/// The rest of a book request, once it has its place in the day's count.
async fn create_counted(
    app: &App,
    request: &Request<User>,
    book: BookRequest,
    price: i64,
    idempotency: Option<Idempotency>,
    dry_run: bool,
    daily_story_of: Option<chrono::NaiveDate>,
) -> Result<Created, Refusal> {
    let (user, now) = (&request.caller, request.now);
    if dry_run {
        if user.credits < price {
            return Err(Refusal::PaymentRequired {
                reason: "insufficient_credits",
                required: price,
                balance: user.credits,
            });
        }
        return Ok(Created::WouldMake);
    }
    let mut book = Book::new(user.id.clone(), book, price, now);
    book.profile = request.profile.clone();
    book.daily_story_of = daily_story_of;
    let unfinished_cap = app.config.limits.unfinished_books;
    match app
        .store
        .create_book(&book, idempotency.as_ref(), unfinished_cap)
        .await?
    {
        CreateOutcome::Created(stored) => {
            if let Err(error) = enqueue_step(&*app.queue, &stored.book.id, Step::Story).await {
                // Nothing will make this book: give the credit back now rather than leave it stuck,
                // and free the key so that the app's retry with it tries again.
                fail_book(
                    &*app.store,
                    now,
                    &stored.book.id,
                    FailureCode::QueueFailed,
                    None,
                )
                .await?;
                if let Some(record) = &idempotency {
                    app.store.forget_idempotency(&user.id, &record.key).await?;
                }
                return Err(Refusal::unavailable(error));
            }
            tracing::info!(
                book = stored.book.id.as_str(),
                user = user.id.truncated(),
                "book created"
            );
            metrics::count(metrics::BOOKS_CREATED);
            metrics::emit(
                &[(
                    metrics::CREDITS_CHARGED,
                    stored.book.charged as f64,
                    metrics::Unit::Count,
                )],
                &[],
            );
            Ok(Created::New(stored.book))
        }
        CreateOutcome::Replayed(stored) => {
            // The key's book answers only within its own scope.
            in_scope(request, &stored.book)?;
            // A retry usually means the first answer was lost. If that was a crash between the
            // charge and the enqueue, the book waits for a first step that never comes: start it
            // again (a second story message records nothing twice).
            if stored.book.state == JobState::Queued
                && now - stored.book.created_at > UNSTARTED_AFTER
            {
                enqueue_step(&*app.queue, &stored.book.id, Step::Story).await?;
                tracing::warn!(
                    book = stored.book.id.as_str(),
                    "unstarted book started again on a retry"
                );
            }
            Ok(Created::Replayed(stored.book))
        }
        CreateOutcome::KeyReused => Err(Refusal::IdempotencyKeyReused),
        CreateOutcome::TooManyUnfinished => Err(Refusal::TooManyPending {
            limit: unfinished_cap,
        }),
        CreateOutcome::InsufficientCredits { balance } => Err(Refusal::PaymentRequired {
            reason: "insufficient_credits",
            required: book.charged,
            balance,
        }),
    }
}

/// The caller's book, or 404 whether it is missing or someone else's (`resource` names it as
/// the route does: a job or a book).
#[tracing::instrument(skip_all)]
pub async fn owned_book(
    app: &App,
    user: &User,
    raw_id: &str,
    resource: &'static str,
) -> Result<Book, Refusal> {
    let not_found = || Refusal::not_found(resource, raw_id);
    let id = BookId::parse(raw_id).map_err(|_| not_found())?;
    match app.store.find_book(&id).await? {
        Some(stored) if stored.book.user == user.id => Ok(stored.book),
        _ => Err(not_found()),
    }
}

/// The caller's book within the request's profile scope: with a profile named, a book of
/// another profile (or of the whole account) is refused 403; without one, any of the account's.
#[tracing::instrument(skip_all)]
pub async fn scoped_book(
    app: &App,
    request: &Request<User>,
    raw_id: &str,
    resource: &'static str,
) -> Result<Book, Refusal> {
    let book = owned_book(app, &request.caller, raw_id, resource).await?;
    in_scope(request, &book)?;
    Ok(book)
}

/// Whether the caller's `book` is within the request's profile scope (403 when not).
pub fn in_scope(request: &Request<User>, book: &Book) -> Result<(), Refusal> {
    match &request.profile {
        Some(profile) if book.profile.as_ref() != Some(profile) => Err(Refusal::Forbidden(
            "This book belongs to another child profile".into(),
        )),
        _ => Ok(()),
    }
}

/// The caller's readable book within the request's scope; refused while it is still being made
/// (or failed).
#[tracing::instrument(skip_all)]
pub async fn finished_book(
    app: &App,
    request: &Request<User>,
    raw_id: &str,
) -> Result<Book, Refusal> {
    let book = scoped_book(app, request, raw_id, "book").await?;
    if !book.is_readable() {
        return Err(Refusal::Conflict(format!(
            "The book is {}, not done",
            book.state.as_str()
        )));
    }
    Ok(book)
}

/// Makes the next book of a series with the parent's character (charged as a book): after
/// `previous_book_id`, the caller's finished book, the story is told the earlier books in short
/// and takes their age, style and language unless the request names its own.
#[tracing::instrument(skip_all)]
pub async fn create_next_in_series(
    app: &App,
    request: &Request<User>,
    next: NextInSeries,
    idempotency_key: Option<IdempotencyKey>,
) -> Result<Created, Refusal> {
    let previous = match &next.previous_book_id {
        Some(id) => Some(finished_book(app, request, id).await?),
        None => None,
    };
    let named = Named {
        ids: vec![next.character_id.clone()],
        inline: None,
    };
    let new_series_id = SeriesPlace::new_id(&request.caller.id, idempotency_key.as_ref());
    let book = next.book_after(previous.as_ref(), new_series_id);
    create_book(app, request, book, &named, idempotency_key, false).await
}

/// A job as the app polls it: the book, and its links once it is done.
pub struct Job {
    pub book: Book,
    pub links: Option<BookLinks>,
}

#[tracing::instrument(skip_all)]
pub async fn job(app: &App, request: &Request<User>, raw_id: &str) -> Result<Job, Refusal> {
    let book = scoped_book(app, request, raw_id, "job").await?;
    let links = match book.state {
        JobState::Done => Some(book_links(app, &book).await?),
        _ => None,
    };
    Ok(Job { book, links })
}

/// A finished book with fresh links to its files.
#[tracing::instrument(skip_all)]
pub async fn read_book(
    app: &App,
    request: &Request<User>,
    raw_id: &str,
) -> Result<(Book, BookLinks), Refusal> {
    let book = finished_book(app, request, raw_id).await?;
    let links = book_links(app, &book).await?;
    Ok((book, links))
}

/// A signed link to a finished book's PDF, valid for the configured time.
#[tracing::instrument(skip_all)]
pub async fn pdf_link(
    app: &App,
    request: &Request<User>,
    raw_id: &str,
) -> Result<(Book, String), Refusal> {
    let book = finished_book(app, request, raw_id).await?;
    let link = signed(app, book.pdf_key.as_deref())
        .await?
        .ok_or_else(|| Refusal::internal("a done book without a PDF"))?;
    Ok((book, link))
}

/// Signed links to a book's files; empty where a file is missing.
#[derive(Debug, Default)]
pub struct BookLinks {
    pub cover: String,
    pub pdf: Option<String>,
    /// Per story page, in order: its picture (empty when missing) and its narration.
    pub pages: Vec<(String, Option<String>)>,
}

#[tracing::instrument(skip_all)]
pub async fn book_links(app: &App, book: &Book) -> Result<BookLinks, Refusal> {
    let mut pages = Vec::new();
    for page in book.story_pages() {
        let image = signed(app, page.image_key.as_deref()).await?;
        let audio = signed(app, page.audio_key.as_deref()).await?;
        pages.push((image.unwrap_or_default(), audio));
    }
    Ok(BookLinks {
        cover: cover_link(app, book).await?,
        pdf: signed(app, book.pdf_key.as_deref()).await?,
        pages,
    })
}

/// The signed link of a book's cover picture, empty while it has none.
#[tracing::instrument(skip_all)]
pub async fn cover_link(app: &App, book: &Book) -> Result<String, Refusal> {
    let cover = book.cover().and_then(|c| c.image_key.as_deref());
    Ok(signed(app, cover).await?.unwrap_or_default())
}

async fn signed(app: &App, key: Option<&str>) -> Result<Option<String>, Refusal> {
    let Some(key) = key else { return Ok(None) };
    let key = super::stored_key(key)?;
    Ok(Some(
        app.blobs
            .signed_url(&key, app.config.signed_url_ttl)
            .await?,
    ))
}
