//! A parent's characters: `POST`/`GET /v1/characters`, `GET`/`DELETE
//! /v1/characters/{character_id}`.

use crate::auth::UserRequest;
use crate::endpoints::{Endpoint, Feature};
use crate::error::{ApiError, Problems};
use crate::extract::{JsonBody, PageQuery, PathParam, QueryParams};
use crate::routes::timestamp;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use storybook_core::catalogue::Family;
use storybook_core::domain::character::{Appearance, Character, Clothing, PRESETS};
use storybook_core::domain::sheet_rules;
use storybook_core::usecases::characters::{self, Sheet};

/// The path of more than one route here.
const CHARACTERS: &str = "/v1/characters";

/// The path of more than one route here.
const CHARACTER: &str = "/v1/characters/{character_id}";

/// The routes this file serves.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::post(Family::Studio, CHARACTERS, create).gives(Feature::Characters),
        Endpoint::get(Family::Library, CHARACTERS, list),
        Endpoint::get(Family::Library, "/v1/characters/presets", presets).public(),
        Endpoint::post(Family::Studio, "/v1/characters/from-preset", from_preset),
        Endpoint::get(Family::Library, CHARACTER, get),
        Endpoint::delete(Family::Library, CHARACTER, delete),
    ]
}

/// The app contract's `CreateCharacterRequest`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateCharacter {
    name: String,
    master_description: String,
    appearance: AppearanceBody,
    clothing: ClothingBody,
    personality_traits: Vec<String>,
    #[serde(default)]
    distinctive_features: Option<Vec<String>>,
    visual_style_notes: String,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AppearanceBody {
    age_visual: String,
    face: String,
    hair: String,
    skin: String,
    body: String,
}

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClothingBody {
    top: String,
    bottom: String,
    shoes: String,
    accessories: String,
}

impl CreateCharacter {
    /// The sheet, if it keeps the sheet rules (`domain::sheet_rules`); every problem at once.
    fn validate(self) -> Result<Sheet, ApiError> {
        let (a, c) = (self.appearance, self.clothing);
        let sheet = Sheet {
            name: self.name,
            master_description: self.master_description,
            appearance: Appearance {
                age_visual: a.age_visual,
                face: a.face,
                hair: a.hair,
                skin: a.skin,
                body: a.body,
            },
            clothing: Clothing {
                top: c.top,
                bottom: c.bottom,
                shoes: c.shoes,
                accessories: c.accessories,
            },
            personality_traits: self.personality_traits,
            distinctive_features: self.distinctive_features,
            visual_style_notes: self.visual_style_notes,
        };
        let mut p = Problems::default();
        for problem in sheet_rules::problems(&sheet) {
            p.push(&problem);
        }
        p.into_result()?;
        Ok(sheet)
    }
}

/// The app contract's `CharacterResponse`.
#[derive(Serialize)]
pub struct CharacterResponse {
    character_id: String,
    name: String,
    master_description: String,
    appearance: AppearanceBody,
    clothing: ClothingBody,
    personality_traits: Vec<String>,
    distinctive_features: Option<Vec<String>>,
    visual_style_notes: String,
    created_at: String,
}

impl From<Character> for CharacterResponse {
    fn from(c: Character) -> Self {
        let (a, w) = (c.appearance, c.clothing);
        CharacterResponse {
            character_id: c.id.as_str().to_owned(),
            name: c.name,
            master_description: c.master_description,
            appearance: AppearanceBody {
                age_visual: a.age_visual,
                face: a.face,
                hair: a.hair,
                skin: a.skin,
                body: a.body,
            },
            clothing: ClothingBody {
                top: w.top,
                bottom: w.bottom,
                shoes: w.shoes,
                accessories: w.accessories,
            },
            personality_traits: c.personality_traits,
            distinctive_features: c.distinctive_features,
            visual_style_notes: c.visual_style_notes,
            created_at: timestamp(c.created_at),
        }
    }
}

pub async fn create(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
    JsonBody(body): JsonBody<CreateCharacter>,
) -> Result<Json<CharacterResponse>, ApiError> {
    let sheet = body.validate()?;
    let made = characters::create_character(&state, &request, sheet).await?;
    Ok(Json(made.into()))
}

/// The app contract's `CharacterListResponse`.
#[derive(Serialize)]
pub struct CharacterList {
    characters: Vec<CharacterResponse>,
    total: usize,
}

/// The caller's characters, newest first.
pub async fn list(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<Json<CharacterList>, ApiError> {
    ApiError::unless_between(&["query", "limit"], query.limit, 1, 100)?;
    ApiError::unless_between(&["query", "offset"], query.offset, 0, 100_000)?;
    let (page, total) = characters::characters(
        &state,
        &request,
        query.offset as usize,
        query.limit as usize,
    )
    .await?;
    Ok(Json(CharacterList {
        characters: page.into_iter().map(CharacterResponse::from).collect(),
        total,
    }))
}

pub async fn get(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
    PathParam(character_id): PathParam,
) -> Result<Json<CharacterResponse>, ApiError> {
    let found = characters::character(&state, &request, &character_id).await?;
    Ok(Json(found.into()))
}

/// The answer to a deletion.
#[derive(Serialize)]
pub struct Deleted {
    status: &'static str,
    character_id: String,
}

/// Deletes the caller's character and its pictures.
pub async fn delete(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
    PathParam(character_id): PathParam,
) -> Result<Json<Deleted>, ApiError> {
    let id = characters::delete_character(&state, &request, &character_id).await?;
    Ok(Json(Deleted {
        status: "deleted",
        character_id: id.as_str().to_owned(),
    }))
}

#[derive(Deserialize)]
pub struct PresetsQuery {
    #[serde(default)]
    language: Option<String>,
}

/// The built-in characters, their display text in the asked language (Korean when it is not
/// one the app speaks) and their English master description.
#[derive(Serialize)]
pub struct Presets {
    language: &'static str,
    presets: Vec<PresetView>,
}

#[derive(Serialize)]
struct PresetView {
    preset_id: &'static str,
    name: &'static str,
    master_description: &'static str,
    appearance: AppearanceBody,
    clothing: ClothingBody,
    personality_traits: &'static [&'static str],
    visual_style_notes: &'static str,
}

pub async fn presets(QueryParams(query): QueryParams<PresetsQuery>) -> Json<Presets> {
    let language = query.language.as_deref();
    let mut served = "ko";
    let presets = PRESETS
        .iter()
        .map(|preset| {
            let (language, text) = preset.text(language);
            served = language;
            let [age_visual, face, hair, skin, body] = text.appearance.map(str::to_owned);
            let [top, bottom, shoes, accessories] = text.clothing.map(str::to_owned);
            PresetView {
                preset_id: preset.id,
                name: text.name,
                master_description: preset.master_description,
                appearance: AppearanceBody {
                    age_visual,
                    face,
                    hair,
                    skin,
                    body,
                },
                clothing: ClothingBody {
                    top,
                    bottom,
                    shoes,
                    accessories,
                },
                personality_traits: text.personality_traits,
                visual_style_notes: text.visual_style_notes,
            }
        })
        .collect();
    Json(Presets {
        language: served,
        presets,
    })
}

/// The app contract's `FromPresetRequest`.
#[derive(Deserialize)]
pub struct FromPreset {
    preset_id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    language: Option<String>,
}

/// Makes the caller a character from a preset, named as they ask.
pub async fn from_preset(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
    JsonBody(body): JsonBody<FromPreset>,
) -> Result<Json<CharacterResponse>, ApiError> {
    if let Some(name) = &body.name {
        let mut p = Problems::default();
        p.text(&["name"], name, 1, 40);
        if !p.0.is_empty() {
            return Err(ApiError::Schema(p.0));
        }
    }
    let made = characters::create_from_preset(
        &state,
        &request,
        &body.preset_id,
        body.name,
        body.language.as_deref(),
    )
    .await?;
    Ok(Json(made.into()))
}
