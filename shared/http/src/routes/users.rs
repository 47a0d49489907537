//! `DELETE /v1/users/me`: a parent erases everything we hold about them.

use crate::auth::UserRequest;
use crate::endpoints::{Endpoint, Feature};
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use storybook_core::catalogue::Family;
use storybook_core::usecases::users;

/// The routes this file serves.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![Endpoint::delete(Family::Users, "/v1/users/me", erase_me).gives(Feature::AccountDeletion)]
}

/// What was deleted, and what is kept without the user.
#[derive(Serialize)]
pub struct Erasure {
    status: &'static str,
    deleted: Deleted,
    kept_anonymised: Kept,
}

#[derive(Serialize)]
struct Deleted {
    books: usize,
}

#[derive(Serialize)]
struct Kept {
    ledger_entries: u64,
}

/// Deletes the user's books with their files, then the user; the ledger is kept without them.
pub async fn erase_me(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
) -> Result<Json<Erasure>, ApiError> {
    let erased = users::erase_user(&state, &request).await?;
    Ok(Json(Erasure {
        status: "deleted",
        deleted: Deleted {
            books: erased.books,
        },
        kept_anonymised: Kept {
            ledger_entries: erased.ledger_entries_kept,
        },
    }))
}
