//! A parent's characters: made from a sheet, listed, read and deleted (its pictures with it).

use super::{Refusal, Request, audit};
use crate::app::App;
use crate::book_files::character_reference_key;
use crate::book_records::{Change, update_book};
use crate::domain::audit::AuditEvent;
use crate::domain::book::Book;
use crate::domain::character::{Character, CharacterId, Origin, UploadRefusal, preset};
use crate::domain::consent::photos_allowed;
use crate::domain::user::User;
use crate::ports::blobs::stream_of;
use crate::ports::studio::{CharacterWords, Upload};

pub use crate::domain::character::Sheet;

/// The refusal of a character beyond the user's cap.
fn too_many(cap: usize) -> Refusal {
    Refusal::Conflict(format!(
        "An account keeps at most {cap} characters; delete one to make another"
    ))
}

/// Refuses a new character when the user already has as many as one account keeps.
async fn room_for_one(app: &App, request: &Request<User>) -> Result<(), Refusal> {
    let cap = app.config.characters_per_user;
    if app.store.characters_of(&request.caller.id).await?.len() >= cap {
        return Err(too_many(cap));
    }
    Ok(())
}

/// Stores a new character within the user's cap. Requests racing past [`room_for_one`] each
/// count again once stored, and one that finds the user over the cap takes its character back:
/// the last one stored always sees every other, so the cap holds whatever the concurrency (a
/// race may refuse one that would have fitted, never keep one too many). Answers whether the
/// record was new (false: the same id was stored already).
async fn store_within_cap(
    app: &App,
    request: &Request<User>,
    character: &Character,
) -> Result<bool, Refusal> {
    let user = &request.caller.id;
    if !app.store.put_character(character).await? {
        return Ok(false);
    }
    let cap = app.config.characters_per_user;
    if app.store.characters_of(user).await?.len() > cap {
        // The record goes; a reference picture already stored goes with the caller's refusal.
        app.store.delete_character(user, &character.id).await?;
        return Err(too_many(cap));
    }
    Ok(true)
}

/// Makes a character from the parent's sheet, once moderation lets every word of it through.
#[tracing::instrument(skip_all)]
pub async fn create_character(
    app: &App,
    request: &Request<User>,
    sheet: Sheet,
) -> Result<Character, Refusal> {
    room_for_one(app, request).await?;
    let id = CharacterId::generate();
    app.studio.moderate(&sheet.words(), id.as_str()).await?;
    let character = Character::new(
        id,
        request.caller.id.clone(),
        sheet,
        Origin::Sheet,
        request.now,
    );
    store_within_cap(app, request, &character).await?;
    Ok(character)
}

/// Makes a character from the parent's few words (name, age, traits); the story model fills in
/// the rest of the sheet.
#[tracing::instrument(skip_all)]
pub async fn create_from_words(
    app: &App,
    request: &Request<User>,
    words: CharacterWords,
) -> Result<Character, Refusal> {
    room_for_one(app, request).await?;
    let id = CharacterId::generate();
    let sheet = app.studio.sheet_from_words(&words, id.as_str()).await?;
    let character = Character::new(
        id,
        request.caller.id.clone(),
        sheet,
        Origin::Text,
        request.now,
    );
    store_within_cap(app, request, &character).await?;
    Ok(character)
}

/// The photo gate: a standing consent that includes photos.
async fn photo_gate(app: &App, request: &Request<User>) -> Result<(), Refusal> {
    let consent = app.store.latest_consent(&request.caller.id).await?;
    if photos_allowed(consent.as_ref()) {
        Ok(())
    } else {
        Err(Refusal::ConsentRequired)
    }
}

/// What tells a retry from another upload under the same idempotency key.
fn fingerprint(upload: &Upload) -> String {
    crate::domain::digest_of(&[
        upload.kind.as_str().as_bytes(),
        upload.name.as_deref().unwrap_or_default().as_bytes(),
        upload.style.as_bytes(),
        &upload.bytes,
    ])
}

/// `existing`, made under the same idempotency key, if it was made from the same upload.
fn same_upload(existing: Character, fingerprint: &str) -> Result<Character, Refusal> {
    if existing.upload_fingerprint.as_deref() == Some(fingerprint) {
        Ok(existing)
    } else {
        Err(Refusal::IdempotencyKeyReused)
    }
}

/// Makes a character from a child's photo or drawing, behind the photo gate: the studio checks
/// the picture, describes it and draws the reference picture, which is kept; the upload itself
/// never is. Under an `X-Idempotency-Key` a retry answers the same character, without a second
/// analysis. Answers the character and whether it was made now.
#[tracing::instrument(skip_all)]
pub async fn create_from_upload(
    app: &App,
    request: &Request<User>,
    upload: Upload,
    idempotency_key: Option<&str>,
) -> Result<(Character, bool), Refusal> {
    photo_gate(app, request).await?;
    if upload.bytes.is_empty() {
        return Err(Refusal::Upload(UploadRefusal::Empty));
    }
    let limit_bytes = app.config.upload_max_bytes;
    if upload.bytes.len() > limit_bytes {
        return Err(Refusal::Upload(UploadRefusal::TooLarge { limit_bytes }));
    }
    let user = &request.caller.id;
    let fingerprint = fingerprint(&upload);
    let id = match idempotency_key {
        Some(key) => {
            let id = CharacterId::for_retry(user, upload.kind, key);
            if let Some(existing) = app.store.find_character(user, &id).await? {
                return Ok((same_upload(existing, &fingerprint)?, false));
            }
            id
        }
        None => CharacterId::generate(),
    };
    room_for_one(app, request).await?;
    let made = app
        .studio
        .character_from_upload(&upload, id.as_str())
        .await?;
    let mut character = Character::new(
        id,
        user.clone(),
        made.sheet,
        upload.kind.origin(),
        request.now,
    );
    character.upload_fingerprint = idempotency_key.map(|_| fingerprint.clone());
    let reference = character_reference_key(&character.id, "png");
    app.blobs.put(&reference, stream_of(made.reference)).await?;
    character.reference_key = Some(reference.as_str().to_owned());
    let stored = match store_within_cap(app, request, &character).await {
        Ok(stored) => stored,
        Err(error) => {
            // Nothing names the picture just drawn: it goes (best effort; the refusal stands).
            if let Err(left) = app.blobs.delete(&reference).await {
                tracing::warn!(error = %left, "a character's unrecorded reference picture is left");
            }
            return Err(error);
        }
    };
    if !stored {
        // A concurrent retry under the same key stored it first (the same picture's
        // reference, at the same place).
        let existing = app
            .store
            .find_character(user, &character.id)
            .await?
            .ok_or_else(|| Refusal::internal("a character stored meanwhile is gone"))?;
        return Ok((same_upload(existing, &fingerprint)?, false));
    }
    // Consent withdrawn while the picture was being analysed: what was made goes too.
    if photo_gate(app, request).await.is_err() {
        delete_reference(app, &character).await?;
        app.store.delete_character(user, &character.id).await?;
        return Err(Refusal::ConsentRequired);
    }
    Ok((character, true))
}

/// Makes a character from the built-in preset `preset_id`: its display text in `language`
/// (Korean by default), its English master description, and `name` when the parent gave one.
#[tracing::instrument(skip_all)]
pub async fn create_from_preset(
    app: &App,
    request: &Request<User>,
    preset_id: &str,
    name: Option<String>,
    language: Option<&str>,
) -> Result<Character, Refusal> {
    let preset = preset(preset_id).ok_or_else(|| Refusal::not_found("preset", preset_id))?;
    room_for_one(app, request).await?;
    let character = preset.character(
        request.caller.id.clone(),
        name.clone(),
        language,
        request.now,
    );
    // The parent's name for it is theirs to write: moderated like any of their words.
    if let Some(name) = &name {
        app.studio.moderate(name, character.id.as_str()).await?;
    }
    store_within_cap(app, request, &character).await?;
    Ok(character)
}

/// One page of the user's characters, newest first, and how many there are.
#[tracing::instrument(skip_all)]
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
#[tracing::instrument(skip_all)]
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
#[tracing::instrument(skip_all)]
pub async fn drop_photo_characters(app: &App, request: &Request<User>) -> Result<usize, Refusal> {
    let user = &request.caller.id;
    let from_pictures: Vec<Character> = app
        .store
        .characters_of(user)
        .await?
        .into_iter()
        .filter(|character| character.origin.is_from_picture())
        .collect();
    let detached = detach_from_books(app, request, &from_pictures).await?;
    let mut dropped = Vec::new();
    for character in from_pictures {
        delete_reference(app, &character).await?;
        app.store.delete_character(user, &character.id).await?;
        // What making it cost stays in the day's spend, under no id.
        if let Ok(spent_on) = crate::domain::book::BookId::parse(character.id.as_str()) {
            app.store.anonymise_book_spend(&spent_on).await?;
        }
        dropped.push(character.id);
    }
    if !dropped.is_empty() || detached > 0 {
        let ids: Vec<&str> = dropped.iter().map(CharacterId::as_str).collect();
        let detail = format!(
            "{} made from photos or drawings: {}; detached from {detached} books",
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

/// Detaches `characters` from the user's books: a book keeps its pages, and loses the link to
/// the character, its copies of the character's sheet (the description of a child: in its
/// request and among its story's characters) and its copy of the character's reference picture. Answers how many books changed.
async fn detach_from_books(
    app: &App,
    request: &Request<User>,
    characters: &[Character],
) -> Result<usize, Refusal> {
    if characters.is_empty() {
        return Ok(0);
    }
    let sheets: Vec<Sheet> = characters.iter().map(Character::sheet).collect();
    let ids: Vec<&CharacterId> = characters.iter().map(|c| &c.id).collect();
    // A book keeps its sheets as they are drawn (name, description, features): compared so.
    let drawn_from_one = |sheet: &Sheet| sheets.iter().any(|own| own.drawn_as(sheet));
    let names = |book: &Book| {
        book.request
            .hero_character
            .as_ref()
            .is_some_and(|hero| ids.contains(&hero))
            || book
                .request
                .characters
                .iter()
                .chain(&book.characters)
                .any(drawn_from_one)
    };
    let mut detached = 0;
    for book in app.store.books_of(&request.caller.id).await? {
        if !names(&book) {
            continue;
        }
        let hero_was_one = book
            .request
            .hero_character
            .as_ref()
            .is_some_and(|hero| ids.contains(&hero));
        let updated = update_book(&*app.store, request.now, &book.id, |book| {
            if !names(book) {
                return Change::Unchanged;
            }
            if hero_was_one {
                book.request.hero_character = None;
                book.reference_key = None;
            }
            book.request.characters.retain(|s| !drawn_from_one(s));
            book.characters.retain(|s| !drawn_from_one(s));
            Change::Write
        })
        .await?;
        // The book's copy of the reference, drawn from the child's picture.
        if hero_was_one && let Some(key) = &book.reference_key {
            app.blobs.delete(&super::stored_key(key)?).await?;
        }
        if updated.is_some() {
            detached += 1;
        }
    }
    Ok(detached)
}

/// Deletes the character's reference picture, if it has one.
pub(super) async fn delete_reference(app: &App, character: &Character) -> Result<(), Refusal> {
    if let Some(key) = &character.reference_key {
        app.blobs.delete(&super::stored_key(key)?).await?;
    }
    Ok(())
}

/// Deletes the caller's character and its reference picture.
#[tracing::instrument(skip_all)]
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
