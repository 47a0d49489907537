//! `DELETE /v1/users/me`: a parent erases everything we hold about them.

use crate::auth::AppUser;
use crate::book_files::blob_keys;
use crate::context::{AuditContext, audit};
use crate::domain::audit::AuditEvent;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

/// Deletes the user's books with their pictures, audio and PDFs, then the user; the ledger is
/// kept without the user, as the accounts must be. The same key afterwards starts afresh.
pub async fn erase_me(
    State(state): State<AppState>,
    context: AuditContext,
    AppUser(user): AppUser,
) -> Result<Json<Value>, ApiError> {
    let books = state.store.books_of(&user.id).await?;
    let delete_files = || async {
        for book in &books {
            for key in blob_keys(book) {
                state.blobs.delete(&key).await?;
            }
        }
        Ok::<_, ApiError>(())
    };
    delete_files().await?;
    // What the books cost stays in the day's spend, under no book's name.
    for book in &books {
        state.store.anonymise_book_spend(&book.id).await?;
    }
    let kept = state.store.erase_user(&user.id).await?;
    // Again, now that no step can record to these books: a step that was running stored its
    // file after the first pass (and removes one stored under another name itself).
    delete_files().await?;
    audit(
        &state,
        AuditEvent::UserErased,
        Some(user.id.truncated().to_owned()),
        &context.ip,
        &context.route,
        None,
    )
    .await;
    Ok(Json(json!({
        "status": "deleted",
        "deleted": {"books": books.len()},
        "kept_anonymised": {"ledger_entries": kept},
    })))
}
