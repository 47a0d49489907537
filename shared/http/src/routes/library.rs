//! The parent's library of finished books: list, rename, delete.

use crate::auth::ScopedRequest;
use crate::endpoints::{Endpoint, Feature};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, PathParam, QueryParams};
use crate::routes::timestamp;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use storybook_core::catalogue::Family;
use storybook_core::domain::book::{Book, Style, TargetAge};
use storybook_core::usecases::library::{self, Order, Shelf};

/// The path of more than one route here.
const SHELVED_BOOK: &str = "/v1/library/{book_id}";

/// The routes this file serves.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(Family::Library, "/v1/library", list).gives(Feature::Library),
        Endpoint::patch(Family::Library, SHELVED_BOOK, rename),
        Endpoint::delete(Family::Library, SHELVED_BOOK, delete),
    ]
}

#[derive(Deserialize)]
pub struct LibraryQuery {
    #[serde(default = "twenty")]
    limit: i64,
    #[serde(default)]
    offset: i64,
    #[serde(default)]
    cursor: Option<String>,
    #[serde(default)]
    style: Option<String>,
    #[serde(default)]
    target_age: Option<String>,
    #[serde(default)]
    sort: Option<String>,
}

fn twenty() -> i64 {
    20
}

fn query_problem(field: &str, msg: &str) -> ApiError {
    ApiError::schema(Problem::new(&["query", field], msg, "value_error"))
}

/// The app contract's `BookSummary`.
#[derive(Serialize)]
pub struct BookSummary {
    book_id: String,
    title: String,
    cover_image_url: String,
    target_age: &'static str,
    style: &'static str,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    series_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    series_index: Option<u32>,
}

impl BookSummary {
    fn of(book: Book, cover_image_url: String) -> Self {
        BookSummary {
            book_id: book.id.as_str().to_owned(),
            title: book.title.unwrap_or_default(),
            cover_image_url,
            target_age: book.request.target_age.as_str(),
            style: book.request.style.as_str(),
            created_at: timestamp(book.created_at),
            series_id: book.request.series.as_ref().map(|s| s.id.clone()),
            series_index: book.request.series.as_ref().map(|s| s.number),
        }
    }
}

/// The app contract's `LibraryResponse`.
#[derive(Serialize)]
pub struct LibraryPage {
    books: Vec<BookSummary>,
    total: usize,
    has_more: bool,
    next_cursor: Option<String>,
}

/// Finished books, newest first by default, filtered and paged (by offset or by cursor).
pub async fn list(
    State(state): State<AppState>,
    ScopedRequest(request): ScopedRequest,
    QueryParams(query): QueryParams<LibraryQuery>,
) -> Result<Json<LibraryPage>, ApiError> {
    ApiError::unless_between(&["query", "limit"], query.limit, 1, 100)?;
    if query.offset < 0 {
        return Err(query_problem(
            "offset",
            "Input should be greater than or equal to 0",
        ));
    }
    let style = query
        .style
        .as_deref()
        .map(Style::parse)
        .transpose()
        .map_err(|e| query_problem("style", &e.0))?;
    let target_age = query
        .target_age
        .as_deref()
        .map(TargetAge::parse)
        .transpose()
        .map_err(|e| query_problem("target_age", &e.0))?;
    let order = match query.sort.as_deref().unwrap_or("newest") {
        "newest" => Order::Newest,
        "oldest" => Order::Oldest,
        "title" => Order::Title,
        _ => {
            return Err(query_problem(
                "sort",
                "Input should be 'newest', 'oldest' or 'title'",
            ));
        }
    };
    let shelf = Shelf {
        style,
        target_age,
        order,
        cursor: query.cursor,
        offset: query.offset as usize,
        limit: query.limit as usize,
    };
    let page = library::library(&state, &request, shelf).await?;
    let next_cursor = page
        .has_more
        .then(|| page.books.last().map(|(b, _)| b.id.as_str().to_owned()))
        .flatten();
    Ok(Json(LibraryPage {
        books: page
            .books
            .into_iter()
            .map(|(book, cover)| BookSummary::of(book, cover))
            .collect(),
        total: page.total,
        has_more: page.has_more,
        next_cursor,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBookRequest {
    title: String,
}

/// Renames a finished book.
pub async fn rename(
    State(state): State<AppState>,
    ScopedRequest(request): ScopedRequest,
    PathParam(book_id): PathParam,
    JsonBody(update): JsonBody<UpdateBookRequest>,
) -> Result<Json<BookSummary>, ApiError> {
    let title = update.title.trim().to_owned();
    let length = title.chars().count();
    if length == 0 || length > 80 || title.chars().any(char::is_control) {
        return Err(ApiError::schema(Problem::new(
            &["body", "title"],
            "String should have 1 to 80 characters",
            "value_error",
        )));
    }
    if storybook_core::domain::markup::contains_markup(&title) {
        return Err(ApiError::schema(Problem::new(
            &["body", "title"],
            "The title may not contain markup or script",
            "value_error",
        )));
    }
    let (book, cover) = library::rename_book(&state, &request, &book_id, title).await?;
    Ok(Json(BookSummary::of(book, cover)))
}

/// The answer to a deletion.
#[derive(Serialize)]
pub struct Deleted {
    status: &'static str,
    book_id: String,
}

/// Deletes a finished (or failed) book: its pictures, audio and PDF, then the book.
pub async fn delete(
    State(state): State<AppState>,
    ScopedRequest(request): ScopedRequest,
    PathParam(book_id): PathParam,
) -> Result<Json<Deleted>, ApiError> {
    let book = library::delete_book(&state, &request, &book_id).await?;
    Ok(Json(Deleted {
        status: "deleted",
        book_id: book.id.as_str().to_owned(),
    }))
}
