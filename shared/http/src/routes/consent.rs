//! `GET`/`POST /v1/consent` and `POST /v1/consent/revoke`: a parent's consent, which the photo
//! and drawing routes require.

use crate::auth::UserRequest;
use crate::endpoints::Endpoint;
use crate::error::{ApiError, Problem};
use crate::extract::JsonBody;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use storybook_core::catalogue::Family;
use storybook_core::domain::consent::{CURRENT_VERSION, Consent, ConsentVersion};
use storybook_core::usecases::consent::{self, ConsentGrant};

/// The path of more than one route here.
const CONSENT: &str = "/v1/consent";

/// The routes this file serves.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(Family::Users, CONSENT, get),
        Endpoint::post(Family::Users, CONSENT, grant),
        Endpoint::post(Family::Users, "/v1/consent/revoke", revoke),
    ]
}

/// The app contract's `ConsentGrantRequest`. An unknown field is refused (422): a typo must never read
/// as consent.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantRequest {
    #[serde(default)]
    privacy: bool,
    #[serde(default)]
    data_processing: bool,
    #[serde(default)]
    photos: bool,
    #[serde(default)]
    consent_version: Option<String>,
}

/// The app contract's `ConsentResponse`: the latest record (all false while there is none).
#[derive(Serialize)]
pub struct ConsentResponse {
    granted: bool,
    privacy: bool,
    photos: bool,
    data_processing: bool,
    consent_version: String,
    revoked: bool,
}

impl ConsentResponse {
    fn of(consent: Option<&Consent>) -> Self {
        match consent {
            Some(c) => ConsentResponse {
                granted: c.is_granted(),
                privacy: c.privacy,
                photos: c.photos,
                data_processing: c.data_processing,
                consent_version: c.version.as_str().to_owned(),
                revoked: c.revoked_at.is_some(),
            },
            None => ConsentResponse {
                granted: false,
                privacy: false,
                photos: false,
                data_processing: false,
                consent_version: CURRENT_VERSION.to_owned(),
                revoked: false,
            },
        }
    }
}

pub async fn get(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
) -> Result<Json<ConsentResponse>, ApiError> {
    let latest = consent::consent(&state, &request).await?;
    Ok(Json(ConsentResponse::of(latest.as_ref())))
}

/// Records a grant; it supersedes the standing one.
pub async fn grant(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
    JsonBody(body): JsonBody<GrantRequest>,
) -> Result<Json<ConsentResponse>, ApiError> {
    let version = body
        .consent_version
        .as_deref()
        .map(ConsentVersion::parse)
        .transpose()
        .map_err(|e| {
            ApiError::schema(Problem::new(
                &["body", "consent_version"],
                e.0,
                "value_error",
            ))
        })?;
    let grant = ConsentGrant {
        privacy: body.privacy,
        data_processing: body.data_processing,
        photos: body.photos,
        version,
    };
    let recorded = consent::grant_consent(&state, &request, grant).await?;
    Ok(Json(ConsentResponse::of(Some(&recorded))))
}

/// Revokes the standing consent; the photo and drawing routes are closed again.
pub async fn revoke(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
) -> Result<Json<ConsentResponse>, ApiError> {
    let latest = consent::revoke_consent(&state, &request).await?;
    Ok(Json(ConsentResponse::of(latest.as_ref())))
}
