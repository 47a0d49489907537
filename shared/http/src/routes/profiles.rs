//! A family's child profiles: `GET/POST /v1/profiles`, `PATCH/DELETE /v1/profiles/{profile_id}`.

use crate::auth::UserRequest;
use crate::endpoints::Endpoint;
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, PathParam};
use crate::routes::timestamp;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use storybook_core::catalogue::Family;
use storybook_core::domain::profile::{AGE_BANDS, Profile, ProfileFields};
use storybook_core::usecases::profiles;

/// The routes this file serves.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(Family::Users, PROFILES, list),
        Endpoint::post(Family::Users, PROFILES, create),
        Endpoint::patch(Family::Users, ONE_PROFILE, update),
        Endpoint::delete(Family::Users, ONE_PROFILE, delete),
    ]
}

const PROFILES: &str = "/v1/profiles";
const ONE_PROFILE: &str = "/v1/profiles/{profile_id}";

/// The app contract's profile.
#[derive(Serialize)]
pub struct ProfileView {
    id: String,
    name: String,
    age_band: String,
    birth_year: Option<i32>,
    birth_month: Option<u32>,
    preferred_theme: Option<String>,
    avatar_url: Option<String>,
    is_default: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    created_at: Option<String>,
}

impl ProfileView {
    fn of(profile: Profile, with_created_at: bool) -> Self {
        ProfileView {
            created_at: with_created_at.then(|| timestamp(profile.created_at)),
            id: profile.id,
            name: profile.name,
            age_band: profile.age_band,
            birth_year: profile.birth_year,
            birth_month: profile.birth_month,
            preferred_theme: profile.preferred_theme,
            avatar_url: profile.avatar_url,
            is_default: profile.is_default,
        }
    }
}

#[derive(Serialize)]
pub struct ProfileList {
    profiles: Vec<ProfileView>,
}

pub async fn list(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
) -> Result<Json<ProfileList>, ApiError> {
    let profiles = profiles::profiles(&state, &request).await?;
    Ok(Json(ProfileList {
        profiles: profiles
            .into_iter()
            .map(|p| ProfileView::of(p, true))
            .collect(),
    }))
}

/// `POST` and `PATCH` bodies alike: `PATCH` sends what changes.
#[derive(Deserialize)]
pub struct ProfileBody {
    name: Option<String>,
    age_band: Option<String>,
    birth_year: Option<i64>,
    birth_month: Option<i64>,
    preferred_theme: Option<String>,
    avatar_url: Option<String>,
    is_default: Option<bool>,
}

fn too_long(field: &str, value: &Option<String>, most: usize) -> Result<(), ApiError> {
    match value {
        Some(value) if value.chars().count() > most => Err(ApiError::schema(Problem::new(
            &["body", field],
            format!("String should have at most {most} characters"),
            "string_too_long",
        ))),
        _ => Ok(()),
    }
}

impl TryFrom<ProfileBody> for ProfileFields {
    type Error = ApiError;

    /// The schema's checks (422): lengths, the band's pattern, the birth year and month.
    fn try_from(body: ProfileBody) -> Result<Self, ApiError> {
        if body.name.as_deref() == Some("") {
            return Err(ApiError::schema(Problem::new(
                &["body", "name"],
                "String should have at least 1 character",
                "string_too_short",
            )));
        }
        too_long("name", &body.name, 40)?;
        too_long("preferred_theme", &body.preferred_theme, 30)?;
        too_long("avatar_url", &body.avatar_url, 500)?;
        if let Some(band) = &body.age_band
            && !AGE_BANDS.contains(&band.as_str())
        {
            return Err(ApiError::schema(Problem::new(
                &["body", "age_band"],
                "String should match pattern '^(3-5|5-7|7-9|adult)$'",
                "string_pattern_mismatch",
            )));
        }
        if let Some(year) = body.birth_year {
            ApiError::unless_between(&["body", "birth_year"], year, 2005, 2100)?;
        }
        if let Some(month) = body.birth_month {
            ApiError::unless_between(&["body", "birth_month"], month, 1, 12)?;
        }
        Ok(ProfileFields {
            name: body.name,
            age_band: body.age_band,
            birth_year: body.birth_year.map(|y| y as i32),
            birth_month: body.birth_month.map(|m| m as u32),
            preferred_theme: body.preferred_theme,
            avatar_url: body.avatar_url,
            is_default: body.is_default,
        })
    }
}

pub async fn create(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
    JsonBody(body): JsonBody<ProfileBody>,
) -> Result<Json<ProfileView>, ApiError> {
    if body.name.is_none() {
        return Err(ApiError::schema(Problem::new(
            &["body", "name"],
            "Field required",
            "missing",
        )));
    }
    let profile = profiles::create_profile(&state, &request, body.try_into()?).await?;
    Ok(Json(ProfileView::of(profile, false)))
}

pub async fn update(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
    PathParam(profile_id): PathParam,
    JsonBody(body): JsonBody<ProfileBody>,
) -> Result<Json<ProfileView>, ApiError> {
    let profile = profiles::update_profile(&state, &request, &profile_id, body.try_into()?).await?;
    Ok(Json(ProfileView::of(profile, false)))
}

#[derive(Serialize)]
pub struct Deleted {
    status: &'static str,
    profile_id: String,
}

pub async fn delete(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
    PathParam(profile_id): PathParam,
) -> Result<Json<Deleted>, ApiError> {
    profiles::delete_profile(&state, &request, &profile_id).await?;
    Ok(Json(Deleted {
        status: "success",
        profile_id,
    }))
}
