//! A parent's characters: made from a sheet, listed, read and deleted (its pictures with it).

use super::{Refusal, Request, audit};
use crate::app::App;
use crate::domain::audit::AuditEvent;
use crate::domain::book::CharacterSheet;
use crate::domain::character::{Appearance, Character, CharacterId, Clothing, Origin, preset};
use crate::domain::user::User;

/// A character's sheet, as the parent wrote it (checked by the caller).
pub struct Sheet {
    pub name: String,
    pub master_description: String,
    pub appearance: Appearance,
    pub clothing: Clothing,
    pub personality_traits: Vec<String>,
    pub distinctive_features: Option<Vec<String>>,
    pub visual_style_notes: String,
}

/// The sheet the illustrator draws `character` from: its name, its English master description,
/// and up to four distinctive features (its own, else what it wears).
pub fn sheet_of(character: &Character) -> CharacterSheet {
    let worn = [
        &character.clothing.top,
        &character.clothing.accessories,
        &character.clothing.shoes,
    ];
    let features: Vec<String> = match &character.distinctive_features {
        Some(features) if !features.is_empty() => features.clone(),
        _ => worn
            .iter()
            .filter(|item| !matches!(item.as_str(), "none" | "없음"))
            .map(|item| item.to_string())
            .collect(),
    };
    CharacterSheet {
        name: character.name.clone(),
        description: character.master_description.clone(),
        features: features.into_iter().take(4).collect(),
    }
}

/// Makes a character from the parent's sheet.
pub async fn create_character(
    app: &App,
    request: &Request<User>,
    sheet: Sheet,
) -> Result<Character, Refusal> {
    let character = Character {
        id: CharacterId::generate(),
        user: request.caller.id.clone(),
        name: sheet.name,
        master_description: sheet.master_description,
        appearance: sheet.appearance,
        clothing: sheet.clothing,
        personality_traits: sheet.personality_traits,
        distinctive_features: sheet.distinctive_features,
        visual_style_notes: sheet.visual_style_notes,
        origin: Origin::Sheet,
        reference_key: None,
        created_at: request.now,
    };
    app.store.put_character(&character).await?;
    Ok(character)
}

/// Makes a character from the built-in preset `preset_id`: its display text in `language`
/// (Korean by default), its English master description, and `name` when the parent gave one.
pub async fn create_from_preset(
    app: &App,
    request: &Request<User>,
    preset_id: &str,
    name: Option<String>,
    language: Option<&str>,
) -> Result<Character, Refusal> {
    let preset = preset(preset_id).ok_or_else(|| Refusal::not_found("preset", preset_id))?;
    let character = preset.character(request.caller.id.clone(), name, language, request.now);
    app.store.put_character(&character).await?;
    Ok(character)
}

/// One page of the user's characters, newest first, and how many there are.
pub async fn characters(
    app: &App,
    request: &Request<User>,
    offset: usize,
    limit: usize,
) -> Result<(Vec<Character>, usize), Refusal> {
    let all = app.store.characters_of(&request.caller.id).await?;
    let total = all.len();
    Ok((all.into_iter().skip(offset).take(limit).collect(), total))
}

/// The caller's character, or not found whether it is missing or someone else's.
pub async fn character(
    app: &App,
    request: &Request<User>,
    raw_id: &str,
) -> Result<Character, Refusal> {
    let not_found = || Refusal::not_found("character", raw_id);
    let id = CharacterId::parse(raw_id).map_err(|_| not_found())?;
    app.store
        .find_character(&request.caller.id, &id)
        .await?
        .ok_or_else(not_found)
}

/// Deletes every character of the caller made from a photo or a drawing, with its pictures: what
/// consent no longer covers (revoked, or granted again without photos). Audited with what went;
/// answers how many. Running it again finds nothing left.
pub async fn drop_photo_characters(app: &App, request: &Request<User>) -> Result<usize, Refusal> {
    let user = &request.caller.id;
    let mut dropped = Vec::new();
    for character in app.store.characters_of(user).await? {
        if !matches!(character.origin, Origin::Photo | Origin::Drawing) {
            continue;
        }
        delete_reference(app, &character).await?;
        app.store.delete_character(user, &character.id).await?;
        dropped.push(character.id);
    }
    if !dropped.is_empty() {
        let ids: Vec<&str> = dropped.iter().map(CharacterId::as_str).collect();
        let detail = format!(
            "{} made from photos or drawings: {}",
            ids.len(),
            ids.join(",")
        );
        let credential = Some(user.truncated().to_owned());
        audit(
            app,
            request,
            AuditEvent::PhotoCharactersDeleted,
            credential,
            Some(detail),
        )
        .await;
    }
    Ok(dropped.len())
}

async fn delete_reference(app: &App, character: &Character) -> Result<(), Refusal> {
    if let Some(key) = &character.reference_key {
        app.blobs.delete(&super::stored_key(key)?).await?;
    }
    Ok(())
}

/// Deletes the caller's character and its reference picture.
pub async fn delete_character(
    app: &App,
    request: &Request<User>,
    raw_id: &str,
) -> Result<CharacterId, Refusal> {
    let character = character(app, request, raw_id).await?;
    delete_reference(app, &character).await?;
    if !app
        .store
        .delete_character(&request.caller.id, &character.id)
        .await?
    {
        return Err(Refusal::not_found("character", raw_id));
    }
    Ok(character.id)
}
