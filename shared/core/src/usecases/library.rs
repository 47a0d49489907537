//! The parent's library of finished books: list, rename, delete.

use super::books::{cover_link, scoped_book};
use super::{Refusal, Request};
use crate::app::App;
use crate::book_files::delete_book_files;
use crate::book_records::{Change, update_book};
use crate::domain::book::{Book, Style, TargetAge};
use crate::domain::user::User;

/// The order of a library page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Newest,
    Oldest,
    Title,
}

/// Which finished books, in which order, from where.
pub struct Shelf {
    pub style: Option<Style>,
    pub target_age: Option<TargetAge>,
    pub order: Order,
    /// The id of the last book of the previous page; ahead of `offset` when given.
    pub cursor: Option<String>,
    pub offset: usize,
    pub limit: usize,
}

/// A library page: each book with its cover's link.
pub struct LibraryPage {
    pub books: Vec<(Book, String)>,
    pub total: usize,
    pub has_more: bool,
}

#[tracing::instrument(skip_all)]
pub async fn library(
    app: &App,
    request: &Request<User>,
    shelf: Shelf,
) -> Result<LibraryPage, Refusal> {
    super::profiles::require_own_profile(app, request).await?;
    let mut books: Vec<Book> = app
        .store
        .books_of(&request.caller.id)
        .await?
        .into_iter()
        .filter(Book::is_readable)
        .filter(|b| super::books::in_scope(request, b).is_ok())
        .filter(|b| shelf.style.is_none_or(|s| b.request.style == s))
        .filter(|b| shelf.target_age.is_none_or(|a| b.request.target_age == a))
        .collect();
    match shelf.order {
        Order::Newest => books.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.id.cmp(&a.id))
        }),
        Order::Oldest => books.sort_by(|a, b| {
            a.created_at
                .cmp(&b.created_at)
                .then_with(|| a.id.cmp(&b.id))
        }),
        Order::Title => books.sort_by(|a, b| a.title.cmp(&b.title).then_with(|| a.id.cmp(&b.id))),
    }
    let total = books.len();
    let start = match &shelf.cursor {
        Some(cursor) => books
            .iter()
            .position(|b| b.id.as_str() == cursor)
            .map(|i| i + 1)
            .unwrap_or(total),
        None => shelf.offset,
    };
    let mut page = Vec::new();
    for book in books.into_iter().skip(start).take(shelf.limit) {
        let cover = cover_link(app, &book).await?;
        page.push((book, cover));
    }
    Ok(LibraryPage {
        has_more: start + page.len() < total,
        books: page,
        total,
    })
}

/// Renames a finished book (the title checked by the caller); answers it with its cover's link.
#[tracing::instrument(skip_all)]
pub async fn rename_book(
    app: &App,
    request: &Request<User>,
    raw_id: &str,
    title: String,
) -> Result<(Book, String), Refusal> {
    let book = scoped_book(app, request, raw_id, "book").await?;
    let updated = update_book(&*app.store, request.now, &book.id, |book| {
        if !book.is_readable() {
            return Change::Unchanged;
        }
        book.title = Some(title.clone());
        Change::Write
    })
    .await?;
    match updated {
        Some((book, _)) if book.is_readable() => {
            let cover = cover_link(app, &book).await?;
            Ok((book, cover))
        }
        Some(_) => Err(Refusal::Conflict("The book is still being made".into())),
        None => Err(Refusal::not_found("book", raw_id)),
    }
}

/// Deletes a finished (or failed) book: its pictures, audio and PDF, then the book.
#[tracing::instrument(skip_all)]
pub async fn delete_book(
    app: &App,
    request: &Request<User>,
    raw_id: &str,
) -> Result<Book, Refusal> {
    let book = scoped_book(app, request, raw_id, "book").await?;
    // A swept book still in production is failed, so deletable; its steps then find it gone.
    if !book.is_finished() {
        return Err(Refusal::Conflict("The book is still being made".into()));
    }
    delete_book_files(&*app.blobs, &book).await?;
    let stored = app
        .store
        .find_book(&book.id)
        .await?
        .ok_or_else(|| Refusal::not_found("book", raw_id))?;
    if !app.store.delete_book(&stored.book, stored.version).await? {
        return Err(Refusal::Conflict(
            "The book changed meanwhile; try again".into(),
        ));
    }
    // Again, now that no step can record to it: a page made again meanwhile stored its files
    // after the first pass (and a step that finds the book gone removes what it stores later).
    delete_book_files(&*app.blobs, &stored.book).await?;
    Ok(book)
}
