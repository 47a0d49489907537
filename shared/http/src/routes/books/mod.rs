//! Making a book and following it: `POST /v1/books`, `GET /v1/books/{job_id}`, the detail and
//! the PDF.

mod answers;
mod spec;

use crate::auth::ScopedRequest;
use crate::endpoints::{Endpoint, Feature};
use crate::error::ApiError;
use crate::extract::{DryRun, IdempotencyKeyHeader, JsonBody, PathParam};
use crate::state::AppState;
use answers::{BookResult, JobStatus, PdfLink, created};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use spec::{BookSpec, SeriesNext, TodayGenerate};
use storybook_core::catalogue::Family;
use storybook_core::domain::book::NextInSeries;
use storybook_core::usecases::books::{self, Created};
use storybook_core::usecases::daily;

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
        Endpoint::post(Family::Books, "/v1/streak/today/generate", create_todays).generation(),
    ]
}

/// The next book of a series with the parent's character, charged as a book.
pub async fn create_series(
    State(state): State<AppState>,
    IdempotencyKeyHeader(idempotency_key): IdempotencyKeyHeader,
    ScopedRequest(request): ScopedRequest,
    JsonBody(next): JsonBody<SeriesNext>,
) -> Result<Response, ApiError> {
    let next = NextInSeries::try_from(next)?;
    let made = books::create_next_in_series(&state, &request, next, idempotency_key).await?;
    Ok(answer(made))
}

/// Makes a book (charged and started) or answers the one a retry's key made.
pub async fn create(
    State(state): State<AppState>,
    IdempotencyKeyHeader(idempotency_key): IdempotencyKeyHeader,
    DryRun(dry_run): DryRun,
    ScopedRequest(request): ScopedRequest,
    JsonBody(spec): JsonBody<BookSpec>,
) -> Result<Response, ApiError> {
    let (book, characters) = spec.try_into()?;
    let made = books::create_book(
        &state,
        &request,
        book,
        &characters,
        idempotency_key,
        dry_run,
    )
    .await?;
    Ok(answer(made))
}

/// Today's story made the parent's own book, charged and polled like any other.
pub async fn create_todays(
    State(state): State<AppState>,
    IdempotencyKeyHeader(idempotency_key): IdempotencyKeyHeader,
    ScopedRequest(request): ScopedRequest,
    JsonBody(ask): JsonBody<TodayGenerate>,
) -> Result<Response, ApiError> {
    let ask = ask.try_into()?;
    let made = daily::make_todays_book(&state, &request, ask, idempotency_key).await?;
    Ok(answer(made))
}

fn answer(made: Created) -> Response {
    match made {
        Created::New(book) | Created::Replayed(book) => created(&book).into_response(),
        Created::WouldMake => StatusCode::NO_CONTENT.into_response(),
    }
}

pub async fn status(
    State(state): State<AppState>,
    ScopedRequest(request): ScopedRequest,
    PathParam(job_id): PathParam,
) -> Result<Response, ApiError> {
    let books::Job { book, links } = books::job(&state, &request, &job_id).await?;
    Ok(Json(JobStatus::of(&book, links)).into_response())
}

/// The whole finished book.
pub async fn detail(
    State(state): State<AppState>,
    ScopedRequest(request): ScopedRequest,
    PathParam(book_id): PathParam,
) -> Result<Response, ApiError> {
    let (book, links) = books::read_book(&state, &request, &book_id).await?;
    Ok(Json(BookResult::of(&book, links)).into_response())
}

/// A signed URL of the book's PDF.
pub async fn pdf(
    State(state): State<AppState>,
    ScopedRequest(request): ScopedRequest,
    PathParam(book_id): PathParam,
) -> Result<Json<PdfLink>, ApiError> {
    let (book, pdf_url) = books::pdf_link(&state, &request, &book_id).await?;
    Ok(Json(PdfLink {
        book_id: book.id.as_str().to_owned(),
        pdf_url,
        expires_in_seconds: state.config.signed_url_ttl.as_secs(),
    }))
}
