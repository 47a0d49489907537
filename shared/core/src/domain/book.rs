//! Books: what a parent asks for (validated from the seed's `BookSpec`), the job that makes it,
//! its pages and the generation steps.

use super::Invalid;
use super::markup::contains_markup;
use super::user::UserId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }

            pub fn parse(raw: &str) -> Result<Self, Invalid> {
                match raw {
                    $($wire => Ok($name::$variant),)+
                    other => Err(Invalid::new(format!(
                        concat!("unknown ", stringify!($name), " {:?}"), other
                    ))),
                }
            }
        }
    };
}

wire_enum!(
    /// Who the book is written for; sets sentence length and vocabulary.
    TargetAge { ThreeToFive = "3-5", FiveToSeven = "5-7", SevenToNine = "7-9", Adult = "adult" }
);
wire_enum!(
    /// The illustration style.
    Style {
        Watercolor = "watercolor",
        Cartoon = "cartoon",
        ThreeD = "3d",
        Pixel = "pixel",
        OilPainting = "oil_painting",
        Claymation = "claymation",
        Realistic = "realistic",
    }
);
wire_enum!(
    /// The book's language.
    Language { Korean = "ko", English = "en", Japanese = "ja", Chinese = "zh", Spanish = "es" }
);
wire_enum!(
    /// Where a job is: the app polls for these four.
    JobState { Queued = "queued", Running = "running", Failed = "failed", Done = "done" }
);

/// A book's subject, 1–200 characters, no markup or script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Topic(String);

impl Topic {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let trimmed = raw.trim();
        let length = trimmed.chars().count();
        if length == 0 || length > 200 {
            return Err(Invalid::new("String should have 1 to 200 characters"));
        }
        if contains_markup(trimmed) {
            return Err(Invalid::new("The topic may not contain markup or script"));
        }
        if trimmed.chars().any(|c| c.is_control()) {
            return Err(Invalid::new("The topic may not contain control characters"));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Story pages in a book: 4 to 12.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageCount(u8);

impl PageCount {
    pub const DEFAULT: PageCount = PageCount(8);
    pub const MIN: u8 = 4;
    pub const MAX: u8 = 12;

    pub fn parse(raw: i64) -> Result<Self, Invalid> {
        if !(i64::from(Self::MIN)..=i64::from(Self::MAX)).contains(&raw) {
            return Err(Invalid::new("Input should be between 4 and 12"));
        }
        Ok(Self(raw as u8))
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

/// A short name (protagonist, character): 1–40 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Name(String);

impl Name {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let trimmed = raw.trim();
        let length = trimmed.chars().count();
        if length == 0
            || length > 40
            || trimmed
                .chars()
                .any(|c| c.is_control() || c == '<' || c == '>')
        {
            return Err(Invalid::new(
                "String should have 1 to 40 characters, without markup",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A parent's validated request for a book. Its JSON is what an idempotency key's fingerprint
/// hashes: a retry within the key's day must serialise the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BookRequest {
    pub topic: Topic,
    pub target_age: TargetAge,
    pub style: Style,
    pub language: Language,
    pub page_count: PageCount,
    pub protagonist: Option<Name>,
    /// The recurring character's look, as the parent described it.
    pub character_appearance: Option<String>,
    /// Things the story and pictures must leave out.
    pub forbidden_elements: Vec<String>,
    pub theme: Option<String>,
    pub narration: bool,
    /// The parent's own characters the book names, the hero's first: every picture is drawn
    /// from their sheets, not from sheets the story model makes up. (Left out of the JSON when
    /// empty, so that the fingerprints of requests without any stay as they were.)
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub characters: Vec<CharacterSheet>,
    /// The parent's character the hero is, whose reference picture the book reuses (or makes for
    /// it). Not part of the fingerprint: the sheets above are.
    #[serde(skip)]
    pub hero_character: Option<super::character::CharacterId>,
    /// Whether a named character was made from a child's photo or drawing: every picture drawn
    /// for the book then loses its metadata. Not part of the fingerprint.
    #[serde(skip)]
    pub from_picture: bool,
    /// The series the book continues, and what the earlier books told (left out of the JSON
    /// when none, like `characters`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<SeriesPlace>,
}

/// A book's place in a series: the series, its number in it, and short summaries of the books
/// before it (the nearest last), so that the story continues theirs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeriesPlace {
    pub id: String,
    pub title: Option<String>,
    /// 1 for the first book.
    pub number: u32,
    pub earlier: Vec<EarlierBook>,
    /// The parent's hint for this book's new topic.
    pub hint: Option<String>,
}

/// What an earlier book of a series told, in short.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EarlierBook {
    pub title: String,
    pub summary: String,
}

/// How many earlier books a series book is told about.
pub const EARLIER_BOOKS_TOLD: usize = 3;

impl SeriesPlace {
    /// The place after `previous` (a finished book) in its series, or in a new one: the series
    /// and title named, else the previous book's, else a new series whose id is `new_id` (the
    /// same for a retry of the same request: see [`SeriesPlace::new_id`]).
    pub fn after(
        previous: Option<&Book>,
        id: Option<String>,
        title: Option<String>,
        hint: Option<String>,
        new_id: String,
    ) -> Self {
        let before = previous.and_then(|book| book.request.series.as_ref());
        let mut earlier: Vec<EarlierBook> = before.map(|s| s.earlier.clone()).unwrap_or_default();
        if let Some(book) = previous {
            earlier.push(EarlierBook::of(book));
        }
        let skip = earlier.len().saturating_sub(EARLIER_BOOKS_TOLD);
        SeriesPlace {
            id: id
                .or_else(|| before.map(|s| s.id.clone()))
                .unwrap_or(new_id),
            title: title.or_else(|| before.and_then(|s| s.title.clone())),
            number: before.map_or(1, |s| s.number) + u32::from(previous.is_some()),
            earlier: earlier.into_iter().skip(skip).collect(),
            hint,
        }
    }
}

impl SeriesPlace {
    /// The id of a series a request starts: derived from the user and the request's
    /// `X-Idempotency-Key` when it has one, so that a retry asks for the very same book (the
    /// id is part of what the key's fingerprint hashes); random otherwise.
    pub fn new_id(user: &super::user::UserId, key: Option<&IdempotencyKey>) -> String {
        use sha2::Digest;
        match key {
            Some(key) => {
                let mut digest = sha2::Sha256::new();
                for part in ["series", user.as_str(), key.as_str()] {
                    digest.update((part.len() as u64).to_be_bytes());
                    digest.update(part.as_bytes());
                }
                format!("sr_{}", &hex::encode(digest.finalize())[..32])
            }
            None => format!("sr_{}", uuid::Uuid::new_v4().simple()),
        }
    }
}

impl EarlierBook {
    /// A finished book in short: its title and the start of its story.
    pub fn of(book: &Book) -> Self {
        let told: String = book
            .story_pages()
            .map(|page| page.text.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        let mut summary: String = told.chars().take(240).collect();
        if told.chars().count() > 240 {
            summary.push('…');
        }
        EarlierBook {
            title: book.title.clone().unwrap_or_default(),
            summary,
        }
    }
}

impl BookRequest {
    /// Every word of the request a parent wrote that reaches a prompt, one a line: what
    /// moderation reads before a book is made (the topic and names, the look, theme and what to
    /// leave out, the parent's characters' sheets, the series' title and hint).
    pub fn parent_words(&self) -> String {
        let mut words = vec![self.topic.as_str().to_owned(), self.hero().to_owned()];
        words.extend(self.character_appearance.clone());
        words.extend(self.theme.clone());
        words.extend(self.forbidden_elements.iter().cloned());
        words.extend(self.characters.iter().map(CharacterSheet::prompt_line));
        if let Some(series) = &self.series {
            words.extend(series.title.clone());
            words.extend(series.hint.clone());
        }
        words.join("\n")
    }

    /// The name the story is about: the protagonist, else a friendly default per language.
    pub fn hero(&self) -> &str {
        match &self.protagonist {
            Some(name) => name.as_str(),
            None => match self.language {
                Language::Korean => "토리",
                _ => "Tori",
            },
        }
    }
}

/// Book ids double as job ids: the app polls `/v1/books/{job_id}` and reads
/// `/v1/books/{book_id}/detail` with the same value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BookId(String);

impl BookId {
    pub fn generate() -> Self {
        Self(format!("bk_{}", uuid::Uuid::new_v4().simple()))
    }

    /// Any id a client sends: unknown ids are simply not found, but malformed ones never reach
    /// the store (keys are built from them).
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let valid = (1..=60).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(Invalid::new("not a book id"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The work that makes a book, one queue message each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    Story,
    /// The hero's reference picture, which every page and the cover then pass to the
    /// illustrator.
    Reference,
    /// Page 0 is the cover.
    Illustrate {
        page: u8,
    },
    Narrate {
        page: u8,
    },
    Assemble,
    /// A finished book's page made again (its text, its picture or both), then the PDF.
    Regenerate {
        page: u8,
    },
}

impl Step {
    /// Unique per book: what makes a redelivered step a no-op.
    pub fn key(self) -> String {
        match self {
            Step::Story => "story".into(),
            Step::Reference => "reference".into(),
            Step::Illustrate { page } => format!("illustrate-{page:02}"),
            Step::Narrate { page } => format!("narrate-{page:02}"),
            Step::Assemble => "assemble".into(),
            Step::Regenerate { page } => format!("regenerate-{page:02}"),
        }
    }
}

/// A queue message: one step of one book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepMessage {
    pub book_id: BookId,
    #[serde(flatten)]
    pub step: Step,
    /// Since when the step has been sent again to wait for an open circuit (each time a new
    /// message, whose deliveries start again): bounded, so that a provider that stays down ends
    /// the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred_since: Option<DateTime<Utc>>,
}

impl StepMessage {
    pub fn new(book_id: BookId, step: Step) -> Self {
        Self {
            book_id,
            step,
            deferred_since: None,
        }
    }
}

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

/// A book and its job, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Book {
    pub id: BookId,
    pub user: UserId,
    pub request: BookRequest,
    pub state: JobState,
    pub title: Option<String>,
    /// Pages 1..=page_count once the story is written, plus the cover as page 0.
    pub pages: Vec<Page>,
    /// Asset steps still to finish before assembly.
    pub pending_assets: u32,
    /// Asset steps in all (pictures, cover, narration).
    pub total_assets: u32,
    pub pdf_key: Option<String>,
    /// The character sheets the story gave, the hero's first: every picture is drawn from them.
    pub characters: Vec<CharacterSheet>,
    pub cover_scene: String,
    /// Where the hero's reference picture is, once made; kept for page regeneration and series.
    pub reference_key: Option<String>,
    /// Whether the reference step is over (made, or given up: pages are then drawn from the
    /// sheet and the seed alone).
    pub reference_done: bool,
    pub warnings: Vec<GenerationWarning>,
    /// One of the seed's `ErrorCode`s when failed.
    pub failure: Option<super::failure::FailureCode>,
    /// What moderation refused, shown to the parent (only for `SAFETY_INPUT`).
    pub refusal: Option<String>,
    /// Credits taken for the book, and whether they were given back.
    pub charged: i64,
    pub refunded: bool,
    /// When the stuck-book sweep failed the book. Its steps may still finish it; it then stays
    /// failed, is readable in the library, and its refund is taken back once.
    pub swept_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Book {
    /// A new book for `user`, queued, charged `charged` credits.
    pub fn new(user: UserId, request: BookRequest, charged: i64, now: DateTime<Utc>) -> Self {
        Book {
            id: BookId::generate(),
            user,
            request,
            state: JobState::Queued,
            title: None,
            pages: Vec::new(),
            pending_assets: 0,
            total_assets: 0,
            pdf_key: None,
            characters: Vec::new(),
            cover_scene: String::new(),
            reference_key: None,
            reference_done: false,
            warnings: Vec::new(),
            failure: None,
            refusal: None,
            charged,
            refunded: false,
            swept_at: None,
            created_at: now,
            updated_at: now,
        }
    }

    /// The book with the page assets recorded apart from it laid over its pages: their keys,
    /// states and warnings; what is still pending counted again; the last progress its time.
    pub fn with_assets(mut self, recorded: impl IntoIterator<Item = RecordedAsset>) -> Self {
        let mut any = false;
        for RecordedAsset { page, asset, at } in recorded {
            let Some(target) = self
                .pages
                .iter_mut()
                .find(|p| p.number == page && !p.revised)
            else {
                continue;
            };
            any = true;
            let warning = match asset {
                PageAsset::Image {
                    key,
                    state,
                    warning,
                } => {
                    target.image_key = Some(key);
                    target.image_state = state;
                    warning
                }
                PageAsset::Audio {
                    key,
                    state,
                    warning,
                } => {
                    target.audio_key = key;
                    target.audio_state = state;
                    warning
                }
            };
            if let Some(warning) = warning
                && !self.warnings.contains(&warning)
            {
                self.warnings.push(warning);
            }
            self.updated_at = self.updated_at.max(at);
        }
        if any {
            self.warnings
                .sort_by_key(|w| (w.page_number, w.code.asset()));
            self.pending_assets = self.count_pending();
        }
        self
    }

    /// Asset steps not yet over: pictures and narrations still pending, and the reference where
    /// the book has one to wait for.
    fn count_pending(&self) -> u32 {
        let pictures = self.pages.len() as u32;
        let narrations = self
            .pages
            .iter()
            .filter(|p| p.audio_state != AudioState::NotRequested)
            .count() as u32;
        // A book whose story was written before reference pictures existed counts none.
        let has_reference = self.total_assets > pictures + narrations;
        let pending = self
            .pages
            .iter()
            .map(|p| {
                u32::from(p.image_state == ImageState::Pending)
                    + u32::from(p.audio_state == AudioState::Pending)
            })
            .sum::<u32>();
        pending + u32::from(has_reference && !self.reference_done)
    }

    /// Progress 0–100, derived from where the job is.
    pub fn progress(&self) -> u8 {
        match self.state {
            JobState::Queued => 0,
            JobState::Done => 100,
            JobState::Failed | JobState::Running => {
                if self.title.is_none() {
                    5
                } else if self.total_assets == 0 {
                    90
                } else {
                    let done = self.total_assets - self.pending_assets.min(self.total_assets);
                    (15 + 75 * done / self.total_assets) as u8
                }
            }
        }
    }

    /// What the app shows under the progress bar.
    pub fn current_step(&self) -> &'static str {
        match self.state {
            JobState::Queued => "queued",
            JobState::Done => "done",
            JobState::Failed => "failed",
            JobState::Running if self.title.is_none() => "writing_story",
            JobState::Running if self.pending_assets > 0 && self.request.narration => {
                "illustrating_and_narrating"
            }
            JobState::Running if self.pending_assets > 0 => "illustrating",
            JobState::Running => "assembling_pdf",
        }
    }

    pub fn is_finished(&self) -> bool {
        matches!(self.state, JobState::Done | JobState::Failed)
    }

    /// Whether generation steps still work on the book: while it is queued or running, and after
    /// the sweep failed it for being stuck, until its PDF exists.
    pub fn in_production(&self) -> bool {
        match self.state {
            JobState::Queued | JobState::Running => true,
            JobState::Failed => self.swept_at.is_some() && self.pdf_key.is_none(),
            JobState::Done => false,
        }
    }

    /// Whether the sweep failed and refunded the book and its steps finished it anyway: its refund
    /// is then taken back (once: the finishing write is the only one that sets the PDF).
    pub fn clawed_back(&self) -> bool {
        self.swept_at.is_some() && self.refunded && self.pdf_key.is_some()
    }

    /// Whether the parent can read it: done, or finished after the sweep failed it.
    pub fn is_readable(&self) -> bool {
        self.pdf_key.is_some()
    }

    pub fn story_pages(&self) -> impl Iterator<Item = &Page> {
        self.pages.iter().filter(|p| p.number > 0)
    }

    pub fn cover(&self) -> Option<&Page> {
        self.pages.iter().find(|p| p.number == 0)
    }
}

/// How long a request's idempotency record answers retries.
pub const IDEMPOTENCY_TTL: chrono::Duration = chrono::Duration::hours(24);

/// A create's idempotency record: the client's key, a fingerprint of what was asked (a retry must
/// ask the same), and when the record stops answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    pub key: IdempotencyKey,
    pub fingerprint: String,
    pub expires_at: DateTime<Utc>,
}

impl Idempotency {
    /// The record for `key` and the validated request, expiring [`IDEMPOTENCY_TTL`] from `now`.
    pub fn new(key: IdempotencyKey, request: &impl Serialize, now: DateTime<Utc>) -> Self {
        use sha2::Digest;
        let canonical = serde_json::to_vec(request).expect("requests serialise");
        let fingerprint = hex::encode(sha2::Sha256::digest(&canonical));
        Self {
            key,
            fingerprint,
            expires_at: now + IDEMPOTENCY_TTL,
        }
    }
}

/// A client's `X-Idempotency-Key`: up to 80 printable ASCII characters, scoped per user.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.is_empty() || raw.len() > 80 || !raw.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Invalid::new(
                "X-Idempotency-Key must be 1 to 80 visible ASCII characters",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A named character as the illustrator must draw it, on every page. Its JSON is how the story
/// model writes it (stored books keep their own copy, `documents`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CharacterSheet {
    pub name: String,
    /// An English master description, at most 60 words.
    pub description: String,
    /// 2 to 4 distinctive features (a red scarf, one floppy ear).
    pub features: Vec<String>,
}

impl CharacterSheet {
    /// The sheet as one line of a prompt.
    pub fn prompt_line(&self) -> String {
        format!(
            "{}: {} Distinctive: {}.",
            self.name,
            self.description,
            self.features.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topics() {
        assert!(Topic::parse("어둠을 무서워하는 공룡").is_ok());
        assert!(Topic::parse(&"가".repeat(200)).is_ok());
        assert!(Topic::parse(&"가".repeat(201)).is_err());
        assert!(Topic::parse("   ").is_err());
        for bad in [
            "<script>alert(1)</script>",
            "a JavaScript:void",
            "x onerror=1",
            "<IFRAME src=x>",
            "tab\u{0}",
            // What a list of five substrings let through.
            "a cat onerror =alert(1)",
            "<svg onload =alert(1)>",
            "onmouseover=alert(1)",
            "<img src=x>",
            "<a href=x>home</a>",
            "<object data=x>",
            "<embed src=x>",
            "<style>body{}</style>",
            "vbscript:msgbox(1)",
            "DATA: text/html,<b>",
            "java script:void(0)",
            "</p>",
            "<!-- x -->",
        ] {
            assert!(Topic::parse(bad).is_err(), "{bad}");
        }
        for good in [
            "3 < 5 사과",
            "once upon a time",
            "the online dragon",
            "a moon on = the sea",
            "공룡 <3",
            "data: the friendly robot",
        ] {
            assert!(Topic::parse(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn page_counts_and_enums() {
        assert!(PageCount::parse(3).is_err() && PageCount::parse(13).is_err());
        assert_eq!(PageCount::parse(12).unwrap().get(), 12);
        assert_eq!(Style::parse("oil_painting").unwrap(), Style::OilPainting);
        assert!(Style::parse("crayon").is_err());
        assert_eq!(TargetAge::parse("5-7").unwrap().as_str(), "5-7");
        assert!(Language::parse("fr").is_err());
    }

    #[test]
    fn step_messages_round_trip() {
        let message = StepMessage::new(BookId::generate(), Step::Illustrate { page: 3 });
        let json = serde_json::to_string(&message).unwrap();
        assert!(
            json.contains(r#""step":"illustrate""#) && json.contains(r#""page":3"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<StepMessage>(&json).unwrap(), message);
        assert_eq!(Step::Narrate { page: 12 }.key(), "narrate-12");
    }

    #[test]
    fn pending_assets_are_counted_from_the_pages_and_the_reference() {
        let page = |number, image, audio| Page {
            image_state: image,
            audio_state: audio,
            ..Page::new(number, String::new(), String::new(), vec![])
        };
        let at = Utc::now();
        let doc = serde_json::json!({
            "id": "bk_1", "user": "u", "state": "running", "title": "T",
            "request": {"topic": "t", "target_age": "5-7", "style": "cartoon", "language": "en",
                "page_count": 4, "protagonist": null, "character_appearance": null,
                "forbidden_elements": [], "theme": null, "narration": true},
            "pages": [], "pending_assets": 0, "total_assets": 0, "pdf_key": null, "warnings": [],
            "failure": null, "charged": 1, "refunded": false, "created_at": at, "updated_at": at,
        });
        let mut book = <Book as crate::documents::Document>::read(&doc.to_string()).unwrap();
        book.pages = vec![
            page(0, ImageState::Generated, AudioState::NotRequested),
            page(1, ImageState::Pending, AudioState::Available),
        ];
        // Two pictures, one narration, and the reference.
        book.total_assets = 4;
        assert_eq!(book.count_pending(), 2);
        book.reference_done = true;
        assert_eq!(book.count_pending(), 1);
        // Written before references existed: nothing to wait for but the picture.
        book.reference_done = false;
        book.total_assets = 3;
        assert_eq!(book.count_pending(), 1);
    }

    #[test]
    fn ids() {
        assert!(BookId::parse("bk_0123").is_ok());
        for bad in ["", "a/b", "../x", "a b", &"x".repeat(61)] {
            assert!(BookId::parse(bad).is_err(), "{bad}");
        }
        assert!(IdempotencyKey::parse(&"k".repeat(81)).is_err());
    }
}
