//! What a parent asks for: the request's validated parts, its idempotency record, and the
//! character sheets it carries.

use super::*;

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
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "sketches")]
    pub characters: Vec<Sheet>,
    /// The parent's character the hero is, whose reference picture the book reuses (or makes for
    /// it). Not part of the fingerprint: the sheets above are.
    #[serde(skip)]
    pub hero_character: Option<crate::domain::character::CharacterId>,
    /// Whether a named character was made from a child's photo or drawing: every picture drawn
    /// for the book then loses its metadata. Not part of the fingerprint.
    #[serde(skip)]
    pub from_picture: bool,
    /// The series the book continues, and what the earlier books told (left out of the JSON
    /// when none, like `characters`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<SeriesPlace>,
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
        words.extend(self.characters.iter().map(Sheet::prompt_line));
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

/// The parent's characters as a request's fingerprint has always had them: a name, a master
/// description and the features drawn.
fn sketches<S: serde::Serializer>(sheets: &[Sheet], serializer: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Sketch<'a> {
        name: &'a str,
        description: &'a str,
        features: Vec<String>,
    }
    serializer.collect_seq(sheets.iter().map(|sheet| Sketch {
        name: &sheet.name,
        description: &sheet.master_description,
        features: sheet.features(),
    }))
}
