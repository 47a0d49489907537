//! A finished book's pages afterwards: `POST /v1/books/{job_id}/pages/{page_number}/regenerate`,
//! `POST /v1/books/{book_id}/audio` and `GET /v1/books/{book_id}/pages/{page_number}/audio`.

use crate::auth::ScopedRequest;
use crate::endpoints::{Endpoint, Feature};
use crate::error::Problems;
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, PathParam, QueryParams};
use crate::state::AppState;
use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use storybook_core::catalogue::Family;
use storybook_core::domain::book::RegenerationMode;
use storybook_core::usecases::pages::{self, BookAudio, PageRequest};

/// The routes this file serves.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::post(
            Family::Books,
            "/v1/books/{job_id}/pages/{page_number}/regenerate",
            regenerate,
        )
        .generation()
        .gives(Feature::PageRegeneration),
        Endpoint::post(Family::Books, "/v1/books/{book_id}/audio", book_audio)
            .generation()
            .gives(Feature::Narration),
        Endpoint::get(
            Family::Studio,
            "/v1/books/{book_id}/pages/{page_number}/audio",
            page_audio,
        )
        .generation(),
    ]
}

/// A book's id and a page number from the path; a number that is not an integer is a 422
/// naming it, as the app contract's schema would.
pub struct BookPage(pub String, pub i64);

impl<S: Send + Sync> FromRequestParts<S> for BookPage {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path((book, page)) =
            axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::BadRequest("The path is not valid UTF-8 text".into()))?;
        let page = page.parse::<i64>().map_err(|_| {
            ApiError::schema(Problem::new(
                &["path", "page_number"],
                "Input should be a valid integer, unable to parse string as an integer",
                "int_parsing",
            ))
        })?;
        Ok(BookPage(book, page))
    }
}

/// The app contract's `RegeneratePageRequest`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegeneratePage {
    mode: RegenerationMode,
    #[serde(default)]
    feedback: Option<String>,
}

/// The app contract's `RegeneratePageResponse`: the book's job, queued again for this page.
#[derive(Serialize)]
pub struct Regenerating {
    job_id: String,
    status: &'static str,
}

/// Makes one page of a finished book again (its text, picture or both); charged the configured
/// price, refunded if it fails. The page reads as it was until the new version lands.
pub async fn regenerate(
    State(state): State<AppState>,
    ScopedRequest(request): ScopedRequest,
    BookPage(job, page): BookPage,
    JsonBody(body): JsonBody<RegeneratePage>,
) -> Result<Json<Regenerating>, ApiError> {
    if let Some(feedback) = &body.feedback {
        let mut p = Problems::default();
        p.text(&["feedback"], feedback, 0, 200);
        p.into_result()?;
    }
    let asked = PageRequest {
        mode: body.mode,
        feedback: body.feedback.filter(|f| !f.trim().is_empty()),
    };
    let book = pages::regenerate_page(&state, &request, &job, page, asked).await?;
    Ok(Json(Regenerating {
        job_id: book.id.as_str().to_owned(),
        status: "queued",
    }))
}

/// The answer to asking for a book's narration.
#[derive(Serialize)]
pub struct Narration {
    book_id: String,
    /// `queued` while pages are read aloud, `available` when every page has its audio.
    status: &'static str,
    pages_queued: usize,
}

/// Narrates a finished book made without narration (409 while it is being made).
pub async fn book_audio(
    State(state): State<AppState>,
    ScopedRequest(request): ScopedRequest,
    PathParam(book_id): PathParam,
) -> Result<Json<Narration>, ApiError> {
    let (status, pages_queued) = match pages::book_audio(&state, &request, &book_id).await? {
        BookAudio::Available => ("available", 0),
        BookAudio::Queued(pages) => ("queued", pages),
    };
    Ok(Json(Narration {
        book_id,
        status,
        pages_queued,
    }))
}

#[derive(Deserialize)]
pub struct AudioQuery {
    /// The app's language for the player; the page is read in its book's language.
    #[serde(default)]
    language: Option<String>,
}

/// A page's narration.
#[derive(Serialize)]
pub struct PageAudio {
    book_id: String,
    page_number: i64,
    audio_url: String,
}

/// A page's audio URL, read aloud now when it has none.
pub async fn page_audio(
    State(state): State<AppState>,
    ScopedRequest(request): ScopedRequest,
    BookPage(book_id, page_number): BookPage,
    QueryParams(query): QueryParams<AudioQuery>,
) -> Result<Json<PageAudio>, ApiError> {
    if let Some(language) = &query.language
        && !["ko", "en", "ja", "zh", "es"].contains(&language.as_str())
    {
        return Err(ApiError::schema(Problem::new(
            &["query", "language"],
            "String should match pattern '^(ko|en|ja|zh|es)$'",
            "string_pattern_mismatch",
        )));
    }
    let audio_url = pages::page_audio(&state, &request, &book_id, page_number).await?;
    Ok(Json(PageAudio {
        book_id,
        page_number,
        audio_url,
    }))
}
