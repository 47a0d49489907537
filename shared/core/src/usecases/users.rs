//! A parent's account: their settings, and erasing everything we hold about them.

use super::{Refusal, Request, audit};
use crate::app::App;
use crate::book_files::{character_folder, delete_book_files};
use crate::domain::audit::AuditEvent;
use crate::domain::settings::{FieldRefusal, UserSettings, UserSettingsPatch};
use crate::domain::user::User;

/// The user's settings, or the defaults (Asia/Seoul) while they never changed one.
#[tracing::instrument(skip_all)]
pub async fn settings_of(app: &App, user: &User) -> Result<UserSettings, Refusal> {
    Ok(app.store.find_settings(&user.id).await?.unwrap_or_default())
}

/// Why a settings change was refused: its fields' problems, or the store.
pub enum SettingsRefused {
    Fields(Vec<FieldRefusal>),
    Refused(Refusal),
}

impl<E: Into<Refusal>> From<E> for SettingsRefused {
    fn from(error: E) -> Self {
        SettingsRefused::Refused(error.into())
    }
}

/// Changes the fields the patch names and answers the whole settings.
#[tracing::instrument(skip_all)]
pub async fn update_settings(
    app: &App,
    request: &Request<User>,
    patch: UserSettingsPatch,
) -> Result<UserSettings, SettingsRefused> {
    let user = &request.caller;
    let current = settings_of(app, user).await?;
    let next = patch.apply(&current).map_err(SettingsRefused::Fields)?;
    if next != current {
        app.store.put_settings(&user.id, &next).await?;
    }
    Ok(next)
}

/// What an erasure removed and kept.
pub struct Erased {
    pub books: usize,
    /// Ledger entries kept without the user, as the accounts must be.
    pub ledger_entries_kept: u64,
}

/// Deletes the user's books with their pictures, audio and PDFs, their characters' pictures,
/// then the user; the ledger is
/// kept without the user. The same key afterwards starts afresh.
#[tracing::instrument(skip_all)]
pub async fn erase_user(app: &App, request: &Request<User>) -> Result<Erased, Refusal> {
    let user = &request.caller;
    let books = app.store.books_of(&user.id).await?;
    let delete_files = || async {
        for book in &books {
            delete_book_files(&*app.blobs, book).await?;
        }
        Ok::<_, Refusal>(())
    };
    delete_files().await?;
    // The characters' pictures (some drawn from a child's photo) go with them, folder and all.
    for character in app.store.characters_of(&user.id).await? {
        super::characters::delete_reference(app, &character).await?;
        app.blobs
            .delete_folder(&character_folder(&character.id))
            .await?;
    }
    // What the books cost stays in the day's spend, under no book's name.
    for book in &books {
        app.store.anonymise_book_spend(&book.id).await?;
    }
    let kept = app.store.erase_user(&user.id).await?;
    // Again, now that no step can record to these books: a step that was running stored its
    // file after the first pass (and removes one stored under another name itself).
    delete_files().await?;
    audit(
        app,
        request,
        AuditEvent::UserErased,
        Some(user.id.truncated().to_owned()),
        None,
    )
    .await;
    Ok(Erased {
        books: books.len(),
        ledger_entries_kept: kept,
    })
}
