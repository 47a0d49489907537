//! Making a book and following it: `POST /v1/books`, `GET /v1/books/{job_id}`, the detail and
//! the PDF.

use crate::auth::AppUser;
use crate::book_files::enqueue_step;
use crate::book_records::fail_book;
use crate::domain::book::{
    AudioState, Book, BookId, BookRequest, Idempotency, IdempotencyKey, ImageState, JobState,
    Language, Name, PageCount, Step, Style, TargetAge, Topic,
};
use crate::domain::failure::FailureCode;
use crate::domain::user::User;
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, PathParam, check_profile_header};
use crate::ports::{BlobKey, CreateOutcome};
use crate::routes::settings::settings_of;
use crate::spend::SpendGuard;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The seed's `BookSpec`, as sent; [`BookSpec::validate`] turns it into a [`BookRequest`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookSpec {
    topic: String,
    target_age: String,
    style: String,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    page_count: Option<i64>,
    #[serde(default)]
    protagonist_name: Option<String>,
    #[serde(default)]
    character: Option<CharacterSpec>,
    #[serde(default)]
    character_id: Option<String>,
    #[serde(default)]
    character_ids: Option<Vec<String>>,
    #[serde(default)]
    character_relationship: Option<String>,
    #[serde(default)]
    forbidden_elements: Option<Vec<String>>,
    #[serde(default)]
    reference_image_base64: Option<String>,
    #[serde(default)]
    series_context: Option<String>,
    #[serde(default)]
    theme: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CharacterSpec {
    name: String,
    #[serde(default)]
    appearance: Option<String>,
    #[serde(default)]
    gender: Option<String>,
    #[serde(default)]
    personality: Option<Vec<String>>,
}

const THEMES: &[&str] = &[
    "생활습관",
    "설날",
    "추석",
    "어린이날",
    "크리스마스",
    "감정코칭",
    "사회성",
    "우정",
    "가족",
    "모험",
    "자연",
    "용기",
    "친절",
    "성장",
    "상상",
    "과학",
    "시간여행",
    "동물",
    "공룡",
    "직업",
    "작품속으로",
];

fn too_long(value: &Option<String>, limit: usize) -> bool {
    value.as_ref().is_some_and(|v| v.chars().count() > limit)
}

impl BookSpec {
    /// Every problem at once, each with its location, as the seed's 422 lists them.
    pub fn validate(self, narration: bool) -> Result<BookRequest, ApiError> {
        let mut problems = Vec::new();
        let mut problem = |field: &[&str], msg: &str, kind: &'static str| {
            let mut loc = vec!["body"];
            loc.extend_from_slice(field);
            problems.push(Problem::new(&loc, msg, kind));
        };
        let topic = Topic::parse(&self.topic)
            .map_err(|e| problem(&["topic"], &e.0, "value_error"))
            .ok();
        let target_age = TargetAge::parse(&self.target_age)
            .map_err(|_| {
                problem(
                    &["target_age"],
                    "Input should be '3-5', '5-7', '7-9' or 'adult'",
                    "enum",
                )
            })
            .ok();
        let style = Style::parse(&self.style)
            .map_err(|_| {
                problem(
                    &["style"],
                    "Input should be 'watercolor', 'cartoon', '3d', 'pixel', 'oil_painting', 'claymation' or 'realistic'",
                    "enum",
                )
            })
            .ok();
        let language = match self.language.as_deref() {
            None => Some(Language::Korean),
            Some(raw) => Language::parse(raw)
                .map_err(|_| {
                    problem(
                        &["language"],
                        "Input should be 'ko', 'en', 'ja', 'zh' or 'es'",
                        "enum",
                    )
                })
                .ok(),
        };
        let page_count = match self.page_count {
            None => Some(PageCount::DEFAULT),
            Some(raw) => PageCount::parse(raw)
                .map_err(|e| problem(&["page_count"], &e.0, "value_error"))
                .ok(),
        };
        let protagonist = match self.protagonist_name.as_deref() {
            None => None,
            Some(raw) => Name::parse(raw)
                .map_err(|e| problem(&["protagonist_name"], &e.0, "value_error"))
                .ok(),
        };
        let mut appearance = None;
        let mut character_name = None;
        if let Some(character) = &self.character {
            character_name = Name::parse(&character.name)
                .map_err(|e| problem(&["character", "name"], &e.0, "value_error"))
                .ok();
            if too_long(&character.appearance, 200) {
                problem(
                    &["character", "appearance"],
                    "String should have at most 200 characters",
                    "string_too_long",
                );
            }
            if character
                .gender
                .as_deref()
                .is_some_and(|g| !["male", "female", "neutral"].contains(&g))
            {
                problem(
                    &["character", "gender"],
                    "Input should be 'male', 'female' or 'neutral'",
                    "enum",
                );
            }
            if character.personality.as_ref().is_some_and(|p| p.len() > 8) {
                problem(
                    &["character", "personality"],
                    "List should have at most 8 items",
                    "too_long",
                );
            }
            appearance = character.appearance.clone();
        }
        if too_long(&self.character_id, 60) {
            problem(
                &["character_id"],
                "String should have at most 60 characters",
                "string_too_long",
            );
        }
        if self
            .character_ids
            .as_ref()
            .is_some_and(|ids| ids.len() > 10)
        {
            problem(
                &["character_ids"],
                "List should have at most 10 items",
                "too_long",
            );
        }
        if too_long(&self.character_relationship, 40) {
            problem(
                &["character_relationship"],
                "String should have at most 40 characters",
                "string_too_long",
            );
        }
        let forbidden = self.forbidden_elements.unwrap_or_default();
        if forbidden.len() > 20 {
            problem(
                &["forbidden_elements"],
                "List should have at most 20 items",
                "too_long",
            );
        }
        if too_long(&self.reference_image_base64, 5_000_000) {
            problem(
                &["reference_image_base64"],
                "String should have at most 5000000 characters",
                "string_too_long",
            );
        }
        if too_long(&self.series_context, 500) {
            problem(
                &["series_context"],
                "String should have at most 500 characters",
                "string_too_long",
            );
        }
        if self.theme.as_deref().is_some_and(|t| !THEMES.contains(&t)) {
            problem(&["theme"], "Input should be one of the themes", "enum");
        }
        if !problems.is_empty() {
            return Err(ApiError::Schema(problems));
        }
        // Characters are made through their own routes (not served yet): an id names nothing.
        if let Some(id) = self
            .character_id
            .or_else(|| self.character_ids.and_then(|ids| ids.into_iter().next()))
        {
            return Err(ApiError::NotFound {
                resource: "character",
                id,
            });
        }
        let (Some(topic), Some(target_age), Some(style), Some(language), Some(page_count)) =
            (topic, target_age, style, language, page_count)
        else {
            unreachable!("every missing value added a problem")
        };
        Ok(BookRequest {
            topic,
            target_age,
            style,
            language,
            page_count,
            protagonist: protagonist.or(character_name),
            character_appearance: appearance,
            forbidden_elements: forbidden
                .into_iter()
                .map(|f| f.chars().take(60).collect())
                .collect(),
            theme: self.theme,
            narration,
        })
    }
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ApiError> {
    let Some(raw) = headers.get("x-idempotency-key") else {
        return Ok(None);
    };
    let parsed = raw
        .to_str()
        .ok()
        .and_then(|raw| IdempotencyKey::parse(raw).ok());
    parsed.map(Some).ok_or_else(|| {
        ApiError::schema(Problem::new(
            &["header", "x-idempotency-key"],
            "X-Idempotency-Key must be 1 to 80 visible ASCII characters",
            "value_error",
        ))
    })
}

/// How long a book may wait for its first step before a retry of its request starts it again;
/// far beyond the queue's normal delay, so a busy queue is not given duplicates.
const UNSTARTED_AFTER: chrono::Duration = chrono::Duration::minutes(2);

fn estimate_seconds(book: &Book) -> u32 {
    20 + 5 * u32::from(book.request.page_count.get())
}

fn created(book: &Book) -> Json<Value> {
    Json(
        json!({"job_id": book.id.as_str(), "status": "queued", "estimated_time_seconds": estimate_seconds(book)}),
    )
}

/// Whether the request is a dry run (`X-Dry-Run: true`, our addition): checked like a real one
/// and answered 204 when it would be made, with nothing charged, stored or enqueued. The
/// release's smoke test asks this way.
fn dry_run(headers: &HeaderMap) -> Result<bool, ApiError> {
    match headers
        .get("x-dry-run")
        .map(|v| v.to_str().unwrap_or_default())
    {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::schema(Problem::new(
            &["header", "x-dry-run"],
            "Input should be true or false",
            "bool_parsing",
        ))),
    }
}

/// Charges and creates in one atomic step, then enqueues the first step.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppUser(user): AppUser,
    JsonBody(spec): JsonBody<BookSpec>,
) -> Result<Response, ApiError> {
    check_profile_header(&headers)?;
    let idempotency_key = idempotency_key(&headers)?;
    let request = spec.validate(state.settings.narration)?;
    let dry_run = dry_run(&headers)?;
    let now = state.clock.now();
    // A retry must ask for the same book: the record keeps a fingerprint of the request.
    let idempotency = idempotency_key.map(|key| Idempotency::new(key, &request, now));
    let price = state.settings.book_price(request.page_count.get());
    let limits = &state.settings.limits;
    // Nothing is charged while generation is stopped (the kill switch, today's hard limit).
    if let Some(stopped) = SpendGuard::new(&state).stopped().await? {
        return Err(stopped.into());
    }
    let today = settings_of(&state, &user).await?.timezone.today(now);
    let books_today = format!("books-day:{}", user.id.as_str());
    // Counted before the book is made, atomically (so concurrent requests cannot all pass a
    // check made before any of them counted), and given back when no book is made.
    let taken = state
        .store
        .take(&books_today, limits.books_per_day, today)
        .await?;
    if !taken.allowed {
        state.store.give_back(&books_today, today).await?;
        return Err(ApiError::DailyLimit {
            limit: limits.books_per_day,
            retry_after: today.reset_after(),
        });
    }
    let outcome = create_counted(&state, &user, request, price, now, idempotency, dry_run).await;
    let counted = matches!(&outcome, Ok(Made::New(_)));
    if !counted {
        state.store.give_back(&books_today, today).await?;
    }
    outcome.map(Made::into_response)
}

/// What a counted book request came to.
enum Made {
    /// A new book, charged and started: it keeps its place in the day's count.
    New(Response),
    /// A replay, or a dry run: no new book.
    Nothing(Response),
}

impl Made {
    fn into_response(self) -> Response {
        match self {
            Made::New(response) | Made::Nothing(response) => response,
        }
    }
}

/// The rest of a book request, once it has its place in the day's count.
async fn create_counted(
    state: &AppState,
    user: &User,
    request: BookRequest,
    price: i64,
    now: chrono::DateTime<chrono::Utc>,
    idempotency: Option<Idempotency>,
    dry_run: bool,
) -> Result<Made, ApiError> {
    if dry_run {
        if user.credits < price {
            return Err(ApiError::PaymentRequired {
                reason: "insufficient_credits",
                required: price,
                balance: user.credits,
            });
        }
        return Ok(Made::Nothing(StatusCode::NO_CONTENT.into_response()));
    }
    let book = Book {
        id: BookId::generate(),
        user: user.id.clone(),
        request,
        state: JobState::Queued,
        title: None,
        pages: Vec::new(),
        pending_assets: 0,
        total_assets: 0,
        pdf_key: None,
        characters: Vec::new(),
        cover_scene: String::new(),
        reference_key: None,
        reference_done: false,
        warnings: Vec::new(),
        failure: None,
        refusal: None,
        charged: price,
        refunded: false,
        swept_at: None,
        created_at: now,
        updated_at: now,
    };
    let unfinished_cap = state.settings.limits.unfinished_books;
    match state
        .store
        .create_book(&book, idempotency.as_ref(), unfinished_cap)
        .await?
    {
        CreateOutcome::Created(stored) => {
            if let Err(error) = enqueue_step(&*state.queue, &stored.book.id, Step::Story).await {
                // Nothing will make this book: give the credit back now rather than leave it stuck,
                // and free the key so that the app's retry with it tries again.
                fail_book(
                    &*state.store,
                    &stored.book.id,
                    FailureCode::QueueFailed,
                    None,
                )
                .await?;
                if let Some(record) = &idempotency {
                    state
                        .store
                        .forget_idempotency(&user.id, &record.key)
                        .await?;
                }
                return Err(ApiError::Unavailable(error.into()));
            }
            tracing::info!(
                book = stored.book.id.as_str(),
                user = user.id.truncated(),
                "book created"
            );
            crate::metrics::count(crate::metrics::BOOKS_CREATED);
            crate::metrics::emit(
                &[(
                    crate::metrics::CREDITS_CHARGED,
                    stored.book.charged as f64,
                    crate::metrics::Unit::Count,
                )],
                &[],
            );
            Ok(Made::New(created(&stored.book).into_response()))
        }
        CreateOutcome::Replayed(stored) => {
            // A retry usually means the first answer was lost. If that was a crash between the
            // charge and the enqueue, the book waits for a first step that never comes: start it
            // again (a second story message records nothing twice).
            if stored.book.state == JobState::Queued
                && now - stored.book.created_at > UNSTARTED_AFTER
            {
                enqueue_step(&*state.queue, &stored.book.id, Step::Story).await?;
                tracing::warn!(
                    book = stored.book.id.as_str(),
                    "unstarted book started again on a retry"
                );
            }
            Ok(Made::Nothing(created(&stored.book).into_response()))
        }
        CreateOutcome::KeyReused => Err(ApiError::IdempotencyKeyReused),
        CreateOutcome::TooManyUnfinished => Err(ApiError::TooManyPending {
            limit: unfinished_cap,
        }),
        CreateOutcome::InsufficientCredits { balance } => Err(ApiError::PaymentRequired {
            reason: "insufficient_credits",
            required: book.charged,
            balance,
        }),
    }
}

/// The caller's book, or 404 whether it is missing or someone else's.
pub async fn owned_book(
    state: &AppState,
    user: &User,
    raw_id: &str,
    resource: &'static str,
) -> Result<Book, ApiError> {
    let not_found = || ApiError::NotFound {
        resource,
        id: raw_id.to_owned(),
    };
    let id = BookId::parse(raw_id).map_err(|_| not_found())?;
    match state.store.find_book(&id).await? {
        Some(stored) if stored.book.user == user.id => Ok(stored.book),
        _ => Err(not_found()),
    }
}

async fn signed(state: &AppState, key: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(key) = key else { return Ok(None) };
    let key = BlobKey::parse(key)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored blob key {key:?}: {e}")))?;
    Ok(Some(
        state
            .blobs
            .signed_url(&key, state.settings.signed_url_ttl)
            .await?,
    ))
}

/// The seed's `BookResult` of a finished book, with fresh signed URLs.
pub async fn book_result(state: &AppState, book: &Book) -> Result<Value, ApiError> {
    let mut pages = Vec::new();
    for page in book.story_pages() {
        let image_url = signed(state, page.image_key.as_deref())
            .await?
            .unwrap_or_default();
        let audio_url = signed(state, page.audio_key.as_deref()).await?;
        let image_state = match page.image_state {
            ImageState::Generated => "generated",
            ImageState::Degraded => "degraded",
            ImageState::Missing | ImageState::Pending => "missing",
        };
        let mut assets = Map::new();
        let mut image = json!({"state": image_state, "url": image_url});
        if image_state == "missing" {
            image["reason"] = json!("The picture could not be drawn; a placeholder is shown.");
        }
        assets.insert("image".into(), image);
        match page.audio_state {
            AudioState::Available => {
                assets.insert(
                    "audio".into(),
                    json!({"state": "available", "url": audio_url}),
                );
            }
            AudioState::Missing | AudioState::Pending => {
                assets.insert(
                    "audio".into(),
                    json!({"state": "missing", "reason": "The narration could not be made."}),
                );
            }
            AudioState::NotRequested => {}
        }
        let mut entry = json!({
            "page_number": page.number,
            "text": page.text,
            "image_url": image_url,
            "asset_status": assets,
        });
        if let Some(url) = audio_url {
            entry["audio_url"] = json!(url);
        }
        pages.push(entry);
    }
    let cover = signed(state, book.cover().and_then(|c| c.image_key.as_deref()))
        .await?
        .unwrap_or_default();
    let warnings: Vec<Value> = book
        .warnings
        .iter()
        .map(|w| json!({"code": w.code, "message": w.message, "asset": w.asset, "page_number": w.page_number}))
        .collect();
    Ok(json!({
        "book_id": book.id.as_str(),
        "title": book.title.clone().unwrap_or_default(),
        "language": book.request.language.as_str(),
        "target_age": book.request.target_age.as_str(),
        "style": book.request.style.as_str(),
        "cover_image_url": cover,
        "pages": pages,
        "created_at": book.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "pdf_url": signed(state, book.pdf_key.as_deref()).await?,
        "generation_warnings": warnings,
    }))
}

/// The friendly sentence for a failed job; only moderation of the request says what it refused.
fn failure_message(book: &Book) -> String {
    match book.failure {
        Some(FailureCode::SafetyInput) => book
            .refusal
            .clone()
            .unwrap_or_else(|| "This topic is not suitable for a children's book.".into())
            .chars()
            .take(300)
            .collect(),
        Some(FailureCode::SafetyOutput) => {
            "The story did not pass our safety check. Your credit was returned.".into()
        }
        _ => "We could not finish this book. Your credit was returned; please try again.".into(),
    }
}

/// The seed's `JobStatus`, polled by the app every 2 s.
pub async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppUser(user): AppUser,
    PathParam(job_id): PathParam,
) -> Result<Json<Value>, ApiError> {
    check_profile_header(&headers)?;
    let book = owned_book(&state, &user, &job_id, "job").await?;
    let error = (book.state == JobState::Failed).then(|| {
        let code = book.failure.map_or("UNKNOWN", FailureCode::for_app);
        json!({"code": code, "message": failure_message(&book)})
    });
    let result = match book.state {
        JobState::Done => Some(book_result(&state, &book).await?),
        _ => None,
    };
    Ok(Json(json!({
        "job_id": book.id.as_str(),
        "status": book.state.as_str(),
        "progress": book.progress(),
        "current_step": book.current_step(),
        "error": error,
        "result": result,
    })))
}

/// The caller's readable book; 409 while it is still being made (or failed).
async fn finished_book(
    state: &AppState,
    headers: &HeaderMap,
    user: &User,
    raw_id: &str,
) -> Result<Book, ApiError> {
    check_profile_header(headers)?;
    let book = owned_book(state, user, raw_id, "book").await?;
    if !book.is_readable() {
        return Err(ApiError::Conflict(format!(
            "The book is {}, not done",
            book.state.as_str()
        )));
    }
    Ok(book)
}

/// The whole finished book.
pub async fn detail(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppUser(user): AppUser,
    PathParam(book_id): PathParam,
) -> Result<Json<Value>, ApiError> {
    let book = finished_book(&state, &headers, &user, &book_id).await?;
    Ok(Json(book_result(&state, &book).await?))
}

/// A signed URL of the book's PDF.
pub async fn pdf(
    State(state): State<AppState>,
    headers: HeaderMap,
    AppUser(user): AppUser,
    PathParam(book_id): PathParam,
) -> Result<Json<Value>, ApiError> {
    let book = finished_book(&state, &headers, &user, &book_id).await?;
    let url = signed(&state, book.pdf_key.as_deref())
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a done book without a PDF")))?;
    Ok(Json(json!({
        "book_id": book.id.as_str(),
        "pdf_url": url,
        "expires_in_seconds": state.settings.signed_url_ttl.as_secs(),
    })))
}
