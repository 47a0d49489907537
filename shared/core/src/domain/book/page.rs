//! A book's pages: their assets and states, a regeneration asked for, and the warnings a book
//! is delivered with.

use super::*;

/// How a page's picture turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageState {
    Pending,
    Generated,
    Degraded,
    Missing,
}

/// How a page's narration turned out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioState {
    NotRequested,
    Pending,
    Available,
    Missing,
}

/// One page as stored; page 0 is the cover (no text).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub number: u8,
    pub text: String,
    /// What the illustrator draws (English), from the story.
    pub scene: String,
    /// The named characters in the scene.
    pub characters: Vec<String>,
    pub image_key: Option<String>,
    pub image_state: ImageState,
    pub audio_key: Option<String>,
    pub audio_state: AudioState,
    /// 1 as first made; each regeneration that lands adds one.
    pub version: u32,
    /// The page changed after the book was made (regenerated, narrated later): the document
    /// holds its assets, and those recorded while the book was made are past.
    pub revised: bool,
    /// A regeneration asked for and not yet landed: one at a time per page.
    pub regeneration: Option<PageRegeneration>,
    /// When a request started reading this page aloud on demand (its claim: one reading at a
    /// time; past [`READ_ALOUD_CLAIM`] the claim is stale and another request may take it).
    pub read_aloud_since: Option<DateTime<Utc>>,
}

/// How long a claim to read a page aloud holds: beyond the studio function's 29 s timeout.
pub const READ_ALOUD_CLAIM: chrono::Duration = chrono::Duration::seconds(60);

impl Page {
    /// A page as the story step first makes it.
    pub fn new(number: u8, text: String, scene: String, characters: Vec<String>) -> Self {
        Page {
            number,
            text,
            scene,
            characters,
            image_key: None,
            image_state: ImageState::Pending,
            audio_key: None,
            audio_state: AudioState::NotRequested,
            version: 1,
            revised: false,
            regeneration: None,
            read_aloud_since: None,
        }
    }
}

wire_enum!(
    /// What a page regeneration makes again.
    RegenerationMode { Text = "text", Image = "image", Both = "both" }
);

impl RegenerationMode {
    pub fn text(self) -> bool {
        matches!(self, RegenerationMode::Text | RegenerationMode::Both)
    }

    pub fn image(self) -> bool {
        matches!(self, RegenerationMode::Image | RegenerationMode::Both)
    }
}

/// A page regeneration a parent asked for: what to make again, their feedback, and what it was
/// charged (given back if it fails).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRegeneration {
    pub mode: RegenerationMode,
    pub feedback: Option<String>,
    pub charged: i64,
    pub requested_at: DateTime<Utc>,
}

impl PageRegeneration {
    /// The ledger's transaction id of its charge (`refund:` before it for its refund): one per
    /// request (the page, its next version, when it was asked), so a charge or a refund is made
    /// once whoever retries, and asking again after a refunded attempt is charged again.
    pub fn transaction(&self, book: &BookId, page: &Page) -> String {
        format!(
            "regen:{}:{}:v{}:{}",
            book.as_str(),
            page.number,
            page.version + 1,
            self.requested_at.timestamp_micros()
        )
    }
}

/// One page's picture or narration as a step recorded it: kept apart from the book document
/// while the book is made, so that parallel steps never contend on one item, and recorded once
/// per page and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageAsset {
    Image {
        key: String,
        state: ImageState,
        warning: Option<GenerationWarning>,
    },
    Audio {
        key: Option<String>,
        state: AudioState,
        warning: Option<GenerationWarning>,
    },
}

impl PageAsset {
    /// `image` or `audio`: one of each per page.
    pub fn kind(&self) -> &'static str {
        match self {
            PageAsset::Image { .. } => "image",
            PageAsset::Audio { .. } => "audio",
        }
    }
}

/// A page asset as stored, with its page and when it was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedAsset {
    pub page: u8,
    pub asset: PageAsset,
    pub at: DateTime<Utc>,
}

wire_enum!(
    /// Why a page was delivered without its picture or narration.
    WarningCode {
        ImageMissing = "IMAGE_MISSING",
        AudioMissing = "AUDIO_MISSING",
        ImageRefused = "IMAGE_REFUSED",
    }
);

impl WarningCode {
    /// The asset the warning is about: `image` or `audio`.
    pub fn asset(self) -> &'static str {
        match self {
            WarningCode::ImageMissing | WarningCode::ImageRefused => "image",
            WarningCode::AudioMissing => "audio",
        }
    }

    /// What the parent is told.
    pub fn message(self) -> &'static str {
        match self {
            WarningCode::ImageMissing => "This picture could not be drawn; a placeholder is shown.",
            WarningCode::AudioMissing => "The narration of this page could not be made.",
            WarningCode::ImageRefused => {
                "This picture was refused by the illustrator's safety check; a placeholder is shown."
            }
        }
    }
}

/// A warning of a book delivered with something missing on one page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenerationWarning {
    pub code: WarningCode,
    pub page_number: u8,
}
