//! `GET`/`PATCH /v1/settings`: the parent's app settings, above all the time zone their days are
//! counted in.

use crate::auth::UserRequest;
use crate::endpoints::{Endpoint, Feature};
use crate::error::{ApiError, Problem};
use crate::extract::JsonBody;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use storybook_core::catalogue::Family;
use storybook_core::domain::settings::{UserSettings, UserSettingsPatch};
use storybook_core::usecases::users::{self, SettingsRefused};

/// The path of more than one route here.
const SETTINGS: &str = "/v1/settings";

/// The routes this file serves.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(Family::Users, SETTINGS, get).gives(Feature::Settings),
        Endpoint::patch(Family::Users, SETTINGS, patch),
    ]
}

pub async fn get(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
) -> Result<Json<UserSettings>, ApiError> {
    Ok(Json(users::settings_of(&state, &request.caller).await?))
}

/// Changes the fields the body names (a `null` keeps its value) and answers the whole settings.
pub async fn patch(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
    JsonBody(patch): JsonBody<UserSettingsPatch>,
) -> Result<Json<UserSettings>, ApiError> {
    match users::update_settings(&state, &request, patch).await {
        Ok(settings) => Ok(Json(settings)),
        Err(SettingsRefused::Fields(refused)) => Err(ApiError::Schema(
            refused
                .into_iter()
                .map(|r| Problem::new(&["body", r.field], r.reason, "value_error"))
                .collect(),
        )),
        Err(SettingsRefused::Refused(refusal)) => Err(refusal.into()),
    }
}
