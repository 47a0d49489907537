//! The routes served while a provider works: `POST /v1/characters/from-text` (form-encoded),
//! `POST /v1/characters/from-photo` and `/from-drawing` (the app's multipart upload).

use crate::auth::UserRequest;
use crate::endpoints::{Endpoint, Feature};
use crate::error::Problems;
use crate::error::{ApiError, Problem};
use crate::extract::IdempotencyKeyHeader;
use crate::routes::characters::CharacterResponse;
use crate::state::AppState;
use axum::Json;
use axum::extract::{FromRequest, Multipart, State};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use storybook_core::catalogue::Family;
use storybook_core::domain::book::IdempotencyKey;
use storybook_core::domain::character::{UploadKind, UploadRefusal};
use storybook_core::ports::studio::{CharacterWords, Upload};
use storybook_core::usecases::Refusal;
use storybook_core::usecases::characters;

/// The routes this file serves.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::post(Family::Studio, "/v1/characters/from-text", from_text).generation(),
        Endpoint::post(Family::Studio, "/v1/characters/from-photo", from_photo)
            .generation()
            .upload()
            .gives(Feature::CharacterFromPhoto),
        Endpoint::post(Family::Studio, "/v1/characters/from-drawing", from_drawing)
            .generation()
            .upload(),
    ]
}

/// The app contract's `Body_create_character_from_text`: `name`, `age`, `traits` (comma-separated),
/// optional `style`. Any other field is refused, as in a JSON body.
fn words_of(body: &[u8]) -> Result<CharacterWords, ApiError> {
    let fields = form_fields(body)?;
    let mut p = Problems::default();
    let (mut name, mut age, mut traits, mut style) = (None, None, None, None);
    for (field, value) in fields {
        let slot = match field.as_str() {
            "name" => &mut name,
            "age" => &mut age,
            "traits" => &mut traits,
            "style" => &mut style,
            _ => {
                let msg = "Extra inputs are not permitted";
                p.0.push(Problem::new(&["body", &field], msg, "extra_forbidden"));
                continue;
            }
        };
        *slot = Some(value);
    }
    for (field, value) in [("name", &name), ("age", &age), ("traits", &traits)] {
        if value.is_none() {
            p.0.push(Problem::new(&["body", field], "Field required", "missing"));
        }
    }
    let style = style.unwrap_or_else(|| "cartoon".to_owned());
    p.text(&["name"], name.as_deref().unwrap_or("-"), 1, 40);
    p.text(&["age"], age.as_deref().unwrap_or("-"), 1, 20);
    p.text(&["traits"], traits.as_deref().unwrap_or("-"), 1, 200);
    p.text(&["style"], &style, 1, 40);
    p.into_result()?;
    let traits: Vec<String> = traits
        .unwrap_or_default()
        .split([',', '、', '，'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .take(10)
        .collect();
    if traits.is_empty() {
        return Err(ApiError::schema(Problem::new(
            &["body", "traits"],
            "Name at least one trait",
            "value_error",
        )));
    }
    Ok(CharacterWords {
        name: name.unwrap_or_default(),
        age: age.unwrap_or_default(),
        traits,
        style,
    })
}

/// A form's fields, each name and value decoded (`+` a space, `%XX` a byte) and refused unless
/// its bytes are UTF-8, as a JSON body's strings are: never replaced with "\u{FFFD}".
fn form_fields(body: &[u8]) -> Result<Vec<(String, String)>, ApiError> {
    let decode = |raw: &[u8]| -> Option<String> {
        let spaced: Vec<u8> = raw
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
        String::from_utf8(bytes).ok()
    };
    let mut fields = Vec::new();
    for pair in body.split(|&b| b == b'&').filter(|pair| !pair.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &b""[..]),
        };
        let name = decode(name);
        let field = name.clone().unwrap_or_else(|| "body".to_owned());
        match (name, decode(value)) {
            (Some(name), Some(value)) => fields.push((name, value)),
            _ => {
                return Err(ApiError::schema(Problem::new(
                    &["body", &field],
                    "Input should be a valid UTF-8 string",
                    "string_unicode",
                )));
            }
        }
    }
    Ok(fields)
}

/// The parent's words about a character, from the app's form (see [`words_of`]).
pub struct CharacterForm(CharacterWords);

impl<S: Send + Sync> FromRequest<S> for CharacterForm {
    type Rejection = Response;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Response> {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        words_of(&body)
            .map(CharacterForm)
            .map_err(IntoResponse::into_response)
    }
}

/// A child's photo and its fields, from the app's multipart upload (see [`upload_of`]).
pub struct PhotoUpload(Upload);

/// A child's drawing and its fields, from the app's multipart upload.
pub struct DrawingUpload(Upload);

impl FromRequest<AppState> for PhotoUpload {
    type Rejection = ApiError;

    async fn from_request(
        request: axum::extract::Request,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        upload_of(request, state, UploadKind::Photo)
            .await
            .map(PhotoUpload)
    }
}

impl FromRequest<AppState> for DrawingUpload {
    type Rejection = ApiError;

    async fn from_request(
        request: axum::extract::Request,
        state: &AppState,
    ) -> Result<Self, ApiError> {
        upload_of(request, state, UploadKind::Drawing)
            .await
            .map(DrawingUpload)
    }
}

/// A character from the parent's words; the story model fills in the rest of the sheet.
pub async fn from_text(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
    CharacterForm(words): CharacterForm,
) -> Result<Json<CharacterResponse>, ApiError> {
    let made = characters::create_from_words(&state, &request, words).await?;
    Ok(Json(made.into()))
}

/// The multipart fields of an upload: the picture under `file_field`, `name`, `style`, and the
/// drawing's `generate_sheet`. The picture is read up to the limit and no further.
async fn upload_of(
    request: axum::extract::Request,
    state: &AppState,
    kind: UploadKind,
) -> Result<Upload, ApiError> {
    let (file_field, default_style) = match kind {
        UploadKind::Photo => ("photo", "cartoon"),
        UploadKind::Drawing => ("drawing", "storybook_crayon"),
    };
    let mut form = Multipart::from_request(request, state).await.map_err(|_| {
        ApiError::schema(Problem::new(
            &["body"],
            "The body must be multipart/form-data",
            "value_error",
        ))
    })?;
    let limit_bytes = state.config.upload_max_bytes;
    let too_large = || ApiError::from(Refusal::Upload(UploadRefusal::TooLarge { limit_bytes }));
    let unreadable = |field: &str| {
        ApiError::schema(Problem::new(
            &["body", field],
            "The field could not be read",
            "value_error",
        ))
    };
    let (mut picture, mut name, mut style) = (None, None, None);
    let mut p = Problems::default();
    loop {
        let next = form.next_field().await;
        let mut field = match next {
            Ok(Some(field)) => field,
            Ok(None) => break,
            // Past the route's body limit: the picture is too large.
            Err(error) if error.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(too_large());
            }
            Err(_) => return Err(unreadable(file_field)),
        };
        let field_name = field.name().unwrap_or_default().to_owned();
        if field_name == file_field {
            let mut bytes = BytesMut::new();
            loop {
                match field.chunk().await {
                    Ok(Some(chunk)) => {
                        if bytes.len() + chunk.len() > limit_bytes {
                            return Err(too_large());
                        }
                        bytes.extend_from_slice(&chunk);
                    }
                    Ok(None) => break,
                    Err(error) if error.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                        return Err(too_large());
                    }
                    Err(_) => return Err(unreadable(file_field)),
                }
            }
            picture = Some(bytes.freeze());
            continue;
        }
        // Strict UTF-8, as a JSON string: a lossy decoding would store "\u{FFFD}".
        let raw = field.bytes().await.map_err(|_| unreadable(&field_name))?;
        let Ok(text) = String::from_utf8(raw.to_vec()) else {
            let msg = "Input should be a valid UTF-8 string";
            p.0.push(Problem::new(&["body", &field_name], msg, "string_unicode"));
            continue;
        };
        match field_name.as_str() {
            "name" if !text.is_empty() => name = Some(text),
            "name" => {}
            "style" => style = Some(text),
            "generate_sheet" if kind == UploadKind::Drawing => {
                if !matches!(text.as_str(), "true" | "false" | "1" | "0") {
                    let msg = "Input should be a valid boolean";
                    p.0.push(Problem::new(&["body", &field_name], msg, "bool_parsing"));
                }
            }
            _ => {
                let msg = "Extra inputs are not permitted";
                p.0.push(Problem::new(&["body", &field_name], msg, "extra_forbidden"));
            }
        }
    }
    if let Some(name) = &name {
        p.text(&["name"], name, 1, 40);
    }
    let style = style.unwrap_or_else(|| default_style.to_owned());
    p.text(&["style"], &style, 1, 40);
    if picture.is_none() {
        p.0.push(Problem::new(
            &["body", file_field],
            "Field required",
            "missing",
        ));
    }
    p.into_result()?;
    Ok(Upload {
        kind,
        bytes: picture.unwrap_or_default(),
        name,
        style,
    })
}

/// A character from a child's photo (behind the photo gate).
pub async fn from_photo(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    PhotoUpload(upload): PhotoUpload,
) -> Result<Json<CharacterResponse>, ApiError> {
    from_upload(&state, &request, key, upload).await
}

/// A character from a child's drawing (behind the photo gate). The reference picture is always
/// made (every book draws from it), so `generate_sheet` changes nothing.
pub async fn from_drawing(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    DrawingUpload(upload): DrawingUpload,
) -> Result<Json<CharacterResponse>, ApiError> {
    from_upload(&state, &request, key, upload).await
}

async fn from_upload(
    state: &AppState,
    request: &storybook_core::usecases::Request<storybook_core::domain::user::User>,
    key: Option<IdempotencyKey>,
    upload: Upload,
) -> Result<Json<CharacterResponse>, ApiError> {
    let key = key.as_ref().map(|k| k.as_str());
    let (made, _) = characters::create_from_upload(state, request, upload, key).await?;
    Ok(Json(made.into()))
}
