//! A book's place in a series, and what the earlier books told.

use super::*;

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

    /// The id of a series a request starts: derived from the user and the request's
    /// `X-Idempotency-Key` when it has one, so that a retry asks for the very same book (the
    /// id is part of what the key's fingerprint hashes); random otherwise.
    pub fn new_id(user: &UserId, key: Option<&IdempotencyKey>) -> String {
        match key {
            Some(key) => {
                let parts = [
                    b"series".as_slice(),
                    user.as_str().as_bytes(),
                    key.as_str().as_bytes(),
                ];
                format!("sr_{}", &crate::domain::digest_of(&parts)[..32])
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
