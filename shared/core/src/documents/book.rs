//! A book and its page assets as stored.

use crate::domain::book::{
    AudioState, Book, BookId, BookRequest, EarlierBook, GenerationWarning, ImageState, JobState,
    Language, Name, Page, PageAsset, PageCount, PageRegeneration, RegenerationMode, SeriesPlace,
    Style, TargetAge, Topic, WarningCode,
};
use crate::domain::character::CharacterId;
use crate::domain::character::Sheet;
use crate::domain::failure::FailureCode;
use crate::domain::user::UserId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version 1 of a book. Fields added since its first release default when absent.
#[derive(Serialize, Deserialize)]
struct BookV1 {
    id: BookId,
    user: UserId,
    request: RequestV1,
    state: JobState,
    title: Option<String>,
    pages: Vec<PageV1>,
    pending_assets: u32,
    total_assets: u32,
    pdf_key: Option<String>,
    #[serde(default)]
    characters: Vec<CharacterV1>,
    #[serde(default)]
    cover_scene: String,
    #[serde(default)]
    reference_key: Option<String>,
    #[serde(default)]
    reference_done: bool,
    warnings: Vec<WarningV1>,
    failure: Option<FailureCode>,
    #[serde(default)]
    refusal: Option<String>,
    charged: i64,
    refunded: bool,
    #[serde(default)]
    swept_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    profile_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    daily_story_of: Option<chrono::NaiveDate>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct RequestV1 {
    topic: Topic,
    target_age: TargetAge,
    style: Style,
    language: Language,
    page_count: PageCount,
    protagonist: Option<Name>,
    character_appearance: Option<String>,
    forbidden_elements: Vec<String>,
    theme: Option<String>,
    narration: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    characters: Vec<CharacterV1>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hero_character: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    series: Option<SeriesV1>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    from_picture: bool,
}

#[derive(Serialize, Deserialize)]
struct SeriesV1 {
    id: String,
    title: Option<String>,
    number: u32,
    earlier: Vec<EarlierV1>,
    hint: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct EarlierV1 {
    title: String,
    summary: String,
}

impl From<&SeriesPlace> for SeriesV1 {
    fn from(s: &SeriesPlace) -> Self {
        SeriesV1 {
            id: s.id.clone(),
            title: s.title.clone(),
            number: s.number,
            earlier: s
                .earlier
                .iter()
                .map(|e| EarlierV1 {
                    title: e.title.clone(),
                    summary: e.summary.clone(),
                })
                .collect(),
            hint: s.hint.clone(),
        }
    }
}

impl From<SeriesV1> for SeriesPlace {
    fn from(s: SeriesV1) -> Self {
        SeriesPlace {
            id: s.id,
            title: s.title,
            number: s.number,
            earlier: s
                .earlier
                .into_iter()
                .map(|e| EarlierBook {
                    title: e.title,
                    summary: e.summary,
                })
                .collect(),
            hint: s.hint,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct PageV1 {
    number: u8,
    text: String,
    #[serde(default)]
    scene: String,
    #[serde(default)]
    characters: Vec<String>,
    image_key: Option<String>,
    image_state: ImageState,
    audio_key: Option<String>,
    audio_state: AudioState,
    /// Added with page regeneration: absent reads as a page as first made.
    #[serde(default = "first_version")]
    version: u32,
    #[serde(default)]
    revised: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    regeneration: Option<RegenerationV1>,
    /// Added with on-demand reading's claim: absent reads as unclaimed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    read_aloud_since: Option<DateTime<Utc>>,
}

fn first_version() -> u32 {
    1
}

#[derive(Serialize, Deserialize)]
struct RegenerationV1 {
    mode: RegenerationMode,
    feedback: Option<String>,
    charged: i64,
    requested_at: DateTime<Utc>,
}

impl From<&PageRegeneration> for RegenerationV1 {
    fn from(r: &PageRegeneration) -> Self {
        RegenerationV1 {
            mode: r.mode,
            feedback: r.feedback.clone(),
            charged: r.charged,
            requested_at: r.requested_at,
        }
    }
}

impl From<RegenerationV1> for PageRegeneration {
    fn from(r: RegenerationV1) -> Self {
        PageRegeneration {
            mode: r.mode,
            feedback: r.feedback,
            charged: r.charged,
            requested_at: r.requested_at,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct CharacterV1 {
    name: String,
    description: String,
    features: Vec<String>,
}

/// Version 1 of a warning; its message and asset follow from its code, and are written for
/// whoever reads the table by hand.
#[derive(Serialize, Deserialize)]
struct WarningV1 {
    code: WarningCode,
    message: String,
    asset: String,
    page_number: u8,
}

/// Version 1 of a page's picture or narration as a step recorded it.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum PageAssetV1 {
    Image {
        key: String,
        state: ImageState,
        warning: Option<WarningV1>,
    },
    Audio {
        key: Option<String>,
        state: AudioState,
        warning: Option<WarningV1>,
    },
}

/// A book keeps its characters' sheets as the illustrator draws them: the name, the master
/// description and the features.
impl From<&Sheet> for CharacterV1 {
    fn from(c: &Sheet) -> Self {
        CharacterV1 {
            name: c.name.clone(),
            description: c.master_description.clone(),
            features: c.features(),
        }
    }
}

impl From<CharacterV1> for Sheet {
    fn from(c: CharacterV1) -> Self {
        Sheet::sketched(c.name, c.description, c.features)
    }
}

impl From<&GenerationWarning> for WarningV1 {
    fn from(w: &GenerationWarning) -> Self {
        WarningV1 {
            code: w.code,
            message: w.code.message().to_owned(),
            asset: w.code.asset().to_owned(),
            page_number: w.page_number,
        }
    }
}

impl From<WarningV1> for GenerationWarning {
    fn from(w: WarningV1) -> Self {
        GenerationWarning {
            code: w.code,
            page_number: w.page_number,
        }
    }
}

impl From<&Book> for BookV1 {
    fn from(book: &Book) -> Self {
        let request = &book.request;
        BookV1 {
            id: book.id.clone(),
            user: book.user.clone(),
            request: RequestV1 {
                topic: request.topic.clone(),
                target_age: request.target_age,
                style: request.style,
                language: request.language,
                page_count: request.page_count,
                protagonist: request.protagonist.clone(),
                character_appearance: request.character_appearance.clone(),
                forbidden_elements: request.forbidden_elements.clone(),
                theme: request.theme.clone(),
                narration: request.narration,
                characters: request.characters.iter().map(CharacterV1::from).collect(),
                hero_character: request
                    .hero_character
                    .as_ref()
                    .map(|id| id.as_str().to_owned()),
                series: request.series.as_ref().map(SeriesV1::from),
                from_picture: request.from_picture,
            },
            state: book.state,
            title: book.title.clone(),
            pages: book
                .pages
                .iter()
                .map(|p| PageV1 {
                    number: p.number,
                    text: p.text.clone(),
                    scene: p.scene.clone(),
                    characters: p.characters.clone(),
                    image_key: p.image_key.clone(),
                    image_state: p.image_state,
                    audio_key: p.audio_key.clone(),
                    audio_state: p.audio_state,
                    version: p.version,
                    revised: p.revised,
                    regeneration: p.regeneration.as_ref().map(RegenerationV1::from),
                    read_aloud_since: p.read_aloud_since,
                })
                .collect(),
            pending_assets: book.pending_assets,
            total_assets: book.total_assets,
            pdf_key: book.pdf_key.clone(),
            characters: book.characters.iter().map(CharacterV1::from).collect(),
            cover_scene: book.cover_scene.clone(),
            reference_key: book.reference_key.clone(),
            reference_done: book.reference_done,
            warnings: book.warnings.iter().map(WarningV1::from).collect(),
            failure: book.failure,
            refusal: book.refusal.clone(),
            charged: book.charged,
            refunded: book.refunded,
            swept_at: book.swept_at,
            profile_id: book.profile.clone(),
            daily_story_of: book.daily_story_of,
            created_at: book.created_at,
            updated_at: book.updated_at,
        }
    }
}

impl From<BookV1> for Book {
    fn from(doc: BookV1) -> Self {
        let request = doc.request;
        Book {
            id: doc.id,
            user: doc.user,
            request: BookRequest {
                topic: request.topic,
                target_age: request.target_age,
                style: request.style,
                language: request.language,
                page_count: request.page_count,
                protagonist: request.protagonist,
                character_appearance: request.character_appearance,
                forbidden_elements: request.forbidden_elements,
                theme: request.theme,
                narration: request.narration,
                characters: request.characters.into_iter().map(Sheet::from).collect(),
                // Written by this release from a parsed id: one that does not parse is dropped
                // (the book then draws its own reference).
                hero_character: request
                    .hero_character
                    .and_then(|id| CharacterId::parse(&id).ok()),
                series: request.series.map(SeriesPlace::from),
                from_picture: request.from_picture,
            },
            state: doc.state,
            title: doc.title,
            pages: doc
                .pages
                .into_iter()
                .map(|p| Page {
                    number: p.number,
                    text: p.text,
                    scene: p.scene,
                    characters: p.characters,
                    image_key: p.image_key,
                    image_state: p.image_state,
                    audio_key: p.audio_key,
                    audio_state: p.audio_state,
                    version: p.version,
                    revised: p.revised,
                    regeneration: p.regeneration.map(PageRegeneration::from),
                    read_aloud_since: p.read_aloud_since,
                })
                .collect(),
            pending_assets: doc.pending_assets,
            total_assets: doc.total_assets,
            pdf_key: doc.pdf_key,
            characters: doc.characters.into_iter().map(Sheet::from).collect(),
            cover_scene: doc.cover_scene,
            reference_key: doc.reference_key,
            reference_done: doc.reference_done,
            warnings: doc
                .warnings
                .into_iter()
                .map(GenerationWarning::from)
                .collect(),
            failure: doc.failure,
            refusal: doc.refusal,
            charged: doc.charged,
            refunded: doc.refunded,
            swept_at: doc.swept_at,
            profile: doc.profile_id,
            daily_story_of: doc.daily_story_of,
            created_at: doc.created_at,
            updated_at: doc.updated_at,
        }
    }
}

impl From<&PageAsset> for PageAssetV1 {
    fn from(asset: &PageAsset) -> Self {
        match asset {
            PageAsset::Image {
                key,
                state,
                warning,
            } => PageAssetV1::Image {
                key: key.clone(),
                state: *state,
                warning: warning.as_ref().map(WarningV1::from),
            },
            PageAsset::Audio {
                key,
                state,
                warning,
            } => PageAssetV1::Audio {
                key: key.clone(),
                state: *state,
                warning: warning.as_ref().map(WarningV1::from),
            },
        }
    }
}

impl From<PageAssetV1> for PageAsset {
    fn from(doc: PageAssetV1) -> Self {
        match doc {
            PageAssetV1::Image {
                key,
                state,
                warning,
            } => PageAsset::Image {
                key,
                state,
                warning: warning.map(GenerationWarning::from),
            },
            PageAssetV1::Audio {
                key,
                state,
                warning,
            } => PageAsset::Audio {
                key,
                state,
                warning: warning.map(GenerationWarning::from),
            },
        }
    }
}

version_one!(Book, "book", BookV1);
version_one!(PageAsset, "page asset", PageAssetV1);
