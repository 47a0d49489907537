//! Making a book and following it: `POST /v1/books`, `GET /v1/books/{job_id}`, the detail and
//! the PDF.

use crate::auth::UserRequest;
use crate::catalogue::Family;
use crate::domain::book::{
    AudioState, Book, BookRequest, GenerationWarning, ImageState, JobState, Language, Name,
    PageCount, SeriesPlace, Style, TargetAge, Topic,
};
use crate::domain::failure::FailureCode;
use crate::endpoints::{Endpoint, Feature};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, PathParam, check_profile_header};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use storybook_core::usecases::books::{self, BookLinks, Created, Named};

/// A new book: the release smoke test asks for a dry run too.
pub(crate) const BOOKS: &str = "/v1/books";

/// The routes this file serves.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::post(Family::Books, BOOKS, create)
            .generation()
            .gives(Feature::BookGeneration),
        Endpoint::post(Family::Books, "/v1/books/series", create_series)
            .generation()
            .gives(Feature::Series),
        Endpoint::get(Family::Books, "/v1/books/{job_id}", status),
        Endpoint::get(Family::Books, "/v1/books/{book_id}/detail", detail),
        Endpoint::get(Family::Books, "/v1/books/{book_id}/pdf", pdf).gives(Feature::PdfExport),
    ]
}

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
    /// The request, and the ids of the parent's characters it names (`character_id` first).
    pub fn validate(self, narration: bool) -> Result<(BookRequest, Named), ApiError> {
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
        let mut named: Vec<String> = self.character_id.into_iter().collect();
        for id in self.character_ids.unwrap_or_default() {
            if !named.contains(&id) {
                named.push(id);
            }
        }
        let (Some(topic), Some(target_age), Some(style), Some(language), Some(page_count)) =
            (topic, target_age, style, language, page_count)
        else {
            unreachable!("every missing value added a problem")
        };
        let request = BookRequest {
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
            characters: Vec::new(),
            hero_character: None,
            series: None,
            from_picture: false,
        };
        let inline = self.character.map(|character| character.name);
        Ok((request, Named { ids: named, inline }))
    }
}

fn estimate_seconds(book: &Book) -> u32 {
    20 + 5 * u32::from(book.request.page_count.get())
}

/// The seed's `JobCreateResponse`.
#[derive(Serialize)]
struct JobCreated<'a> {
    job_id: &'a str,
    status: &'static str,
    estimated_time_seconds: u32,
}

fn created(book: &Book) -> Json<JobCreated<'_>> {
    Json(JobCreated {
        job_id: book.id.as_str(),
        status: "queued",
        estimated_time_seconds: estimate_seconds(book),
    })
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

/// The seed's `SeriesNextRequest`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesNext {
    character_id: String,
    topic: String,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    page_count: Option<i64>,
    #[serde(default)]
    target_age: Option<String>,
    #[serde(default)]
    style: Option<String>,
    #[serde(default)]
    theme: Option<String>,
    #[serde(default)]
    forbidden_elements: Option<Vec<String>>,
    #[serde(default)]
    new_topic_hint: Option<String>,
    #[serde(default)]
    previous_book_id: Option<String>,
    #[serde(default)]
    series_id: Option<String>,
    #[serde(default)]
    series_title: Option<String>,
}

/// The next book of a series with the parent's character, charged as a book: after
/// `previous_book_id` (the caller's finished book), the story is told the earlier books in
/// short and takes their age, style and language unless the request names its own.
pub async fn create_series(
    State(state): State<AppState>,
    headers: HeaderMap,
    UserRequest(request): UserRequest,
    JsonBody(next): JsonBody<SeriesNext>,
) -> Result<Response, ApiError> {
    check_profile_header(&headers)?;
    let idempotency_key = crate::extract::idempotency_key(&headers)?;
    let mut p = crate::error::Problems::default();
    p.text(&["character_id"], &next.character_id, 1, 60);
    for (field, value, max) in [
        ("new_topic_hint", &next.new_topic_hint, 200),
        ("previous_book_id", &next.previous_book_id, 60),
        ("series_title", &next.series_title, 100),
    ] {
        if let Some(value) = value {
            p.text(&[field], value, 0, max);
        }
    }
    if let Some(id) = &next.series_id
        && (!(1..=60).contains(&id.len())
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
    {
        let msg = "series_id is 1 to 60 letters, digits, '_' or '-'";
        p.0.push(Problem::new(&["body", "series_id"], msg, "value_error"));
    }
    p.into_result()?;
    let previous = match &next.previous_book_id {
        Some(id) => Some(books::finished_book(&state, &request.caller, id).await?),
        None => None,
    };
    let earlier = previous.as_ref().map(|book| &book.request);
    let spec = BookSpec {
        topic: next.topic,
        target_age: next
            .target_age
            .or_else(|| earlier.map(|r| r.target_age.as_str().to_owned()))
            .unwrap_or_else(|| "5-7".to_owned()),
        style: next
            .style
            .or_else(|| earlier.map(|r| r.style.as_str().to_owned()))
            .unwrap_or_else(|| "cartoon".to_owned()),
        language: next
            .language
            .or_else(|| earlier.map(|r| r.language.as_str().to_owned())),
        page_count: next.page_count.or(Some(8)),
        protagonist_name: None,
        character: None,
        character_id: Some(next.character_id),
        character_ids: None,
        character_relationship: None,
        forbidden_elements: next.forbidden_elements,
        reference_image_base64: None,
        series_context: None,
        theme: next.theme,
    };
    let (mut book, characters) = spec.validate(state.settings.narration)?;
    book.series = Some(SeriesPlace::after(
        previous.as_ref(),
        next.series_id,
        next.series_title,
        next.new_topic_hint,
        SeriesPlace::new_id(&request.caller.id, idempotency_key.as_ref()),
    ));
    match books::create_book(&state, &request, book, &characters, idempotency_key, false).await? {
        Created::New(book) | Created::Replayed(book) => Ok(created(&book).into_response()),
        Created::WouldMake => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// Makes a book (charged and started) or answers the one a retry's key made.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    UserRequest(request): UserRequest,
    JsonBody(spec): JsonBody<BookSpec>,
) -> Result<Response, ApiError> {
    check_profile_header(&headers)?;
    let idempotency_key = crate::extract::idempotency_key(&headers)?;
    let (book, characters) = spec.validate(state.settings.narration)?;
    let dry_run = dry_run(&headers)?;
    Ok(
        match books::create_book(
            &state,
            &request,
            book,
            &characters,
            idempotency_key,
            dry_run,
        )
        .await?
        {
            Created::New(book) | Created::Replayed(book) => created(&book).into_response(),
            Created::WouldMake => StatusCode::NO_CONTENT.into_response(),
        },
    )
}

/// The seed's `BookResult` of a finished book, with fresh signed URLs.
#[derive(Serialize)]
pub struct BookResult<'a> {
    book_id: &'a str,
    title: &'a str,
    language: &'static str,
    target_age: &'static str,
    style: &'static str,
    cover_image_url: String,
    pages: Vec<PageResult<'a>>,
    created_at: String,
    pdf_url: Option<String>,
    generation_warnings: Vec<Warning>,
    #[serde(skip_serializing_if = "Option::is_none")]
    series_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    series_index: Option<u32>,
}

/// The seed's `GenerationWarning`: something the book was delivered without.
#[derive(Serialize)]
struct Warning {
    code: &'static str,
    message: &'static str,
    asset: &'static str,
    page_number: u8,
}

impl From<&GenerationWarning> for Warning {
    fn from(warning: &GenerationWarning) -> Self {
        Warning {
            code: warning.code.as_str(),
            message: warning.code.message(),
            asset: warning.code.asset(),
            page_number: warning.page_number,
        }
    }
}

/// One page of a `BookResult`.
#[derive(Serialize)]
struct PageResult<'a> {
    page_number: u8,
    text: &'a str,
    image_url: String,
    asset_status: AssetStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    audio_url: Option<String>,
}

/// A page's picture and narration, each with its state (and why it is missing).
#[derive(Serialize)]
struct AssetStatus {
    image: Asset,
    #[serde(skip_serializing_if = "Option::is_none")]
    audio: Option<Asset>,
}

#[derive(Serialize)]
struct Asset {
    state: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

/// RFC 3339 in UTC with milliseconds, as the seed writes its timestamps.
pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl<'a> BookResult<'a> {
    pub fn of(book: &'a Book, links: BookLinks) -> Self {
        let pages = book
            .story_pages()
            .zip(links.pages)
            .map(|(page, (image_url, audio_url))| {
                let image = match page.image_state {
                    ImageState::Generated => ("generated", None),
                    ImageState::Degraded => ("degraded", None),
                    ImageState::Missing | ImageState::Pending => (
                        "missing",
                        Some("The picture could not be drawn; a placeholder is shown."),
                    ),
                };
                let audio = match page.audio_state {
                    AudioState::Available => Some(Asset {
                        state: "available",
                        url: audio_url.clone(),
                        reason: None,
                    }),
                    AudioState::Missing | AudioState::Pending => Some(Asset {
                        state: "missing",
                        url: None,
                        reason: Some("The narration could not be made."),
                    }),
                    AudioState::NotRequested => None,
                };
                PageResult {
                    page_number: page.number,
                    text: &page.text,
                    asset_status: AssetStatus {
                        image: Asset {
                            state: image.0,
                            url: Some(image_url.clone()),
                            reason: image.1,
                        },
                        audio,
                    },
                    image_url,
                    audio_url,
                }
            })
            .collect();
        BookResult {
            book_id: book.id.as_str(),
            title: book.title.as_deref().unwrap_or_default(),
            language: book.request.language.as_str(),
            target_age: book.request.target_age.as_str(),
            style: book.request.style.as_str(),
            cover_image_url: links.cover,
            pages,
            created_at: timestamp(book.created_at),
            pdf_url: links.pdf,
            generation_warnings: book.warnings.iter().map(Warning::from).collect(),
            series_id: book.request.series.as_ref().map(|s| s.id.as_str()),
            series_index: book.request.series.as_ref().map(|s| s.number),
        }
    }
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
#[derive(Serialize)]
pub struct JobStatus<'a> {
    job_id: &'a str,
    status: &'static str,
    progress: u8,
    current_step: &'static str,
    error: Option<JobError>,
    result: Option<BookResult<'a>>,
}

#[derive(Serialize)]
struct JobError {
    code: &'static str,
    message: String,
}

pub async fn status(
    State(state): State<AppState>,
    headers: HeaderMap,
    UserRequest(request): UserRequest,
    PathParam(job_id): PathParam,
) -> Result<Response, ApiError> {
    check_profile_header(&headers)?;
    let books::Job { book, links } = books::job(&state, &request, &job_id).await?;
    let error = (book.state == JobState::Failed).then(|| JobError {
        code: book.failure.map_or("UNKNOWN", FailureCode::for_app),
        message: failure_message(&book),
    });
    Ok(Json(JobStatus {
        job_id: book.id.as_str(),
        status: book.state.as_str(),
        progress: book.progress(),
        current_step: book.current_step(),
        error,
        result: links.map(|links| BookResult::of(&book, links)),
    })
    .into_response())
}

/// The whole finished book.
pub async fn detail(
    State(state): State<AppState>,
    headers: HeaderMap,
    UserRequest(request): UserRequest,
    PathParam(book_id): PathParam,
) -> Result<Response, ApiError> {
    check_profile_header(&headers)?;
    let (book, links) = books::read_book(&state, &request, &book_id).await?;
    Ok(Json(BookResult::of(&book, links)).into_response())
}

/// A signed URL of the book's PDF.
#[derive(Serialize)]
pub struct PdfLink {
    book_id: String,
    pdf_url: String,
    expires_in_seconds: u64,
}

pub async fn pdf(
    State(state): State<AppState>,
    headers: HeaderMap,
    UserRequest(request): UserRequest,
    PathParam(book_id): PathParam,
) -> Result<Json<PdfLink>, ApiError> {
    check_profile_header(&headers)?;
    let (book, pdf_url) = books::pdf_link(&state, &request, &book_id).await?;
    Ok(Json(PdfLink {
        book_id: book.id.as_str().to_owned(),
        pdf_url,
        expires_in_seconds: state.settings.signed_url_ttl.as_secs(),
    }))
}
