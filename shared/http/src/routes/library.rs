//! The parent's library of finished books: list, rename, delete.

use super::books::owned_book;
use crate::auth::AppUser;
use crate::book_files::blob_keys;
use crate::book_records::{Change, update_book};
use crate::domain::book::{Book, Style, TargetAge};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, PathParam, QueryParams};
use crate::ports::BlobKey;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

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

/// The seed's `BookSummary`.
async fn summary(state: &AppState, book: &Book) -> Result<Value, ApiError> {
    let cover = match book.cover().and_then(|c| c.image_key.as_deref()) {
        Some(key) => {
            let key =
                BlobKey::parse(key).map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
            state
                .blobs
                .signed_url(&key, state.settings.signed_url_ttl)
                .await?
        }
        None => String::new(),
    };
    Ok(json!({
        "book_id": book.id.as_str(),
        "title": book.title.clone().unwrap_or_default(),
        "cover_image_url": cover,
        "target_age": book.request.target_age.as_str(),
        "style": book.request.style.as_str(),
        "created_at": book.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    }))
}

/// Finished books, newest first by default, filtered and paged (by offset or by cursor).
pub async fn list(
    State(state): State<AppState>,
    AppUser(user): AppUser,
    QueryParams(query): QueryParams<LibraryQuery>,
) -> Result<Json<Value>, ApiError> {
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
    let age = query
        .target_age
        .as_deref()
        .map(TargetAge::parse)
        .transpose()
        .map_err(|e| query_problem("target_age", &e.0))?;
    let mut books: Vec<Book> = state
        .store
        .books_of(&user.id)
        .await?
        .into_iter()
        .filter(Book::is_readable)
        .filter(|b| style.is_none_or(|s| b.request.style == s))
        .filter(|b| age.is_none_or(|a| b.request.target_age == a))
        .collect();
    match query.sort.as_deref().unwrap_or("newest") {
        "newest" => books.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.cmp(&a.id))
        }),
        "oldest" => books.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        }),
        "title" => books.sort_by(|a, b| a.title.cmp(&b.title).then_with(|| a.id.cmp(&b.id))),
        _ => {
            return Err(query_problem(
                "sort",
                "Input should be 'newest', 'oldest' or 'title'",
            ));
        }
    }
    let total = books.len();
    let start = match &query.cursor {
        Some(cursor) => books
            .iter()
            .position(|b| b.id.as_str() == cursor)
            .map(|i| i + 1)
            .unwrap_or(total),
        None => query.offset as usize,
    };
    let page: Vec<&Book> = books
        .iter()
        .skip(start)
        .take(query.limit as usize)
        .collect();
    let has_more = start + page.len() < total;
    let mut summaries = Vec::with_capacity(page.len());
    for book in &page {
        summaries.push(summary(&state, book).await?);
    }
    Ok(Json(json!({
        "books": summaries,
        "total": total,
        "has_more": has_more,
        "next_cursor": if has_more { page.last().map(|b| b.id.as_str().to_owned()) } else { None },
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateBookRequest {
    title: String,
}

/// Renames a finished book.
pub async fn rename(
    State(state): State<AppState>,
    AppUser(user): AppUser,
    PathParam(book_id): PathParam,
    JsonBody(update): JsonBody<UpdateBookRequest>,
) -> Result<Json<Value>, ApiError> {
    let title = update.title.trim().to_owned();
    let length = title.chars().count();
    if length == 0 || length > 80 || title.chars().any(char::is_control) {
        return Err(ApiError::schema(Problem::new(
            &["body", "title"],
            "String should have 1 to 80 characters",
            "value_error",
        )));
    }
    if crate::domain::book::contains_markup(&title) {
        return Err(ApiError::schema(Problem::new(
            &["body", "title"],
            "The title may not contain markup or script",
            "value_error",
        )));
    }
    let book = owned_book(&state, &user, &book_id, "book").await?;
    let updated = update_book(&*state.store, &book.id, |book| {
        if !book.is_readable() {
            return Change::Unchanged;
        }
        book.title = Some(title.clone());
        Change::Write
    })
    .await?;
    match updated {
        Some((book, _)) if book.is_readable() => Ok(Json(summary(&state, &book).await?)),
        Some(_) => Err(ApiError::Conflict("The book is still being made".into())),
        None => Err(ApiError::NotFound {
            resource: "book",
            id: book_id,
        }),
    }
}

/// Deletes a finished (or failed) book: its pictures, audio and PDF, then the book.
pub async fn delete(
    State(state): State<AppState>,
    AppUser(user): AppUser,
    PathParam(book_id): PathParam,
) -> Result<Json<Value>, ApiError> {
    let book = owned_book(&state, &user, &book_id, "book").await?;
    // A swept book still in production is failed, so deletable; its steps then find it gone.
    if !book.is_finished() {
        return Err(ApiError::Conflict("The book is still being made".into()));
    }
    for key in blob_keys(&book) {
        state.blobs.delete(&key).await?;
    }
    let stored = state
        .store
        .find_book(&book.id)
        .await?
        .ok_or_else(|| ApiError::NotFound {
            resource: "book",
            id: book_id.clone(),
        })?;
    if !state
        .store
        .delete_book(&stored.book, stored.version)
        .await?
    {
        return Err(ApiError::Conflict(
            "The book changed meanwhile; try again".into(),
        ));
    }
    Ok(Json(
        json!({"status": "deleted", "book_id": book.id.as_str()}),
    ))
}
