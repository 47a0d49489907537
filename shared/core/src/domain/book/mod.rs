//! Books: what a parent asks for (validated from the app contract's `BookSpec`), the job that makes it,
//! its pages and the generation steps.

use super::Invalid;
use super::character::Sheet;
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

            /// The values a request may send, as a refusal lists them: `'a', 'b' or 'c'`.
            pub fn choices() -> String {
                let quoted: Vec<String> =
                    Self::ALL.iter().map(|v| format!("'{}'", v.as_str())).collect();
                match quoted.split_last() {
                    Some((last, [])) => last.clone(),
                    Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                    None => String::new(),
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

mod page;
mod request;
mod series;
mod story;

pub use page::*;
pub use request::*;
pub use series::*;
pub use story::*;

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
    pub characters: Vec<Sheet>,
    pub cover_scene: String,
    /// Where the hero's reference picture is, once made; kept for page regeneration and series.
    pub reference_key: Option<String>,
    /// Whether the reference step is over (made, or given up: pages are then drawn from the
    /// sheet and the seed alone).
    pub reference_done: bool,
    pub warnings: Vec<GenerationWarning>,
    /// One of the app contract's `ErrorCode`s when failed.
    pub failure: Option<super::failure::FailureCode>,
    /// What moderation refused, shown to the parent (only for `SAFETY_INPUT`).
    pub refusal: Option<String>,
    /// Credits taken for the book, and whether they were given back.
    pub charged: i64,
    pub refunded: bool,
    /// When the stuck-book sweep failed the book. Its steps may still finish it; it then stays
    /// failed, is readable in the library, and its refund is taken back once.
    pub swept_at: Option<DateTime<Utc>>,
    /// The child profile it was made for (`X-Profile-Id`); `None` for the whole account. Kept
    /// when the profile is deleted: the book then shows only account-wide.
    pub profile: Option<String>,
    /// The parent's local day whose daily story this book is, when it is one.
    pub daily_story_of: Option<chrono::NaiveDate>,
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
            profile: None,
            daily_story_of: None,
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
