//! `GET`/`PATCH /v1/settings`: the parent's app settings, above all the time zone their days are
//! counted in.

use crate::auth::AppUser;
use crate::domain::settings::{UserSettings, UserSettingsPatch};
use crate::domain::user::User;
use crate::error::{ApiError, Problem};
use crate::extract::JsonBody;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;

/// The user's settings, or the defaults (Asia/Seoul) while they never changed one.
pub async fn settings_of(state: &AppState, user: &User) -> Result<UserSettings, ApiError> {
    Ok(state
        .store
        .find_settings(&user.id)
        .await?
        .unwrap_or_default())
}

pub async fn get(
    State(state): State<AppState>,
    AppUser(user): AppUser,
) -> Result<Json<UserSettings>, ApiError> {
    Ok(Json(settings_of(&state, &user).await?))
}

/// Changes the fields the body names (a `null` keeps its value) and answers the whole settings.
pub async fn patch(
    State(state): State<AppState>,
    AppUser(user): AppUser,
    JsonBody(patch): JsonBody<UserSettingsPatch>,
) -> Result<Json<UserSettings>, ApiError> {
    let current = settings_of(&state, &user).await?;
    let next = patch.apply(&current).map_err(|refused| {
        ApiError::Schema(
            refused
                .into_iter()
                .map(|r| Problem::new(&["body", r.field], r.reason, "value_error"))
                .collect(),
        )
    })?;
    if next != current {
        state.store.put_settings(&user.id, &next).await?;
    }
    Ok(Json(next))
}
