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

/// The next book of a series as a parent asks for it, with the parent's character as its hero.
/// What it leaves out comes from the book before it (see [`NextInSeries::book_after`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextInSeries {
    pub character_id: String,
    pub topic: Topic,
    pub target_age: Option<TargetAge>,
    pub style: Option<Style>,
    pub language: Option<Language>,
    pub page_count: Option<PageCount>,
    pub theme: Option<String>,
    pub forbidden_elements: Vec<String>,
    /// The parent's hint for the new topic.
    pub hint: Option<String>,
    pub previous_book_id: Option<String>,
    pub series_id: Option<String>,
    pub series_title: Option<String>,
}

impl NextInSeries {
    /// A series book's age and style when neither the request nor an earlier book names them.
    pub const FIRST_AGE: TargetAge = TargetAge::FiveToSeven;
    pub const FIRST_STYLE: Style = Style::Cartoon;

    /// The book asked for after `previous` (the caller's finished book, if the request names
    /// one): the age, style and language the request leaves out are the previous book's, so the
    /// series looks and reads alike; its place follows the previous book's, or starts a series
    /// whose id is `new_series_id`.
    pub fn book_after(self, previous: Option<&Book>, new_series_id: String) -> BookRequest {
        let earlier = previous.map(|book| &book.request);
        BookRequest {
            topic: self.topic,
            target_age: self
                .target_age
                .or(earlier.map(|r| r.target_age))
                .unwrap_or(Self::FIRST_AGE),
            style: self
                .style
                .or(earlier.map(|r| r.style))
                .unwrap_or(Self::FIRST_STYLE),
            language: self
                .language
                .or(earlier.map(|r| r.language))
                .unwrap_or(Language::Korean),
            page_count: self.page_count.unwrap_or(PageCount::DEFAULT),
            protagonist: None,
            character_appearance: None,
            forbidden_elements: self.forbidden_elements,
            theme: self.theme,
            narration: false,
            characters: Vec::new(),
            hero_character: None,
            series: Some(SeriesPlace::after(
                previous,
                self.series_id,
                self.series_title,
                self.hint,
                new_series_id,
            )),
            from_picture: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asked(style: Option<Style>) -> NextInSeries {
        NextInSeries {
            character_id: "ch_1".into(),
            topic: Topic::parse("a lighthouse").unwrap(),
            target_age: None,
            style,
            language: None,
            page_count: None,
            theme: None,
            forbidden_elements: Vec::new(),
            hint: None,
            previous_book_id: None,
            series_id: None,
            series_title: None,
        }
    }

    #[test]
    fn a_first_series_book_takes_the_series_defaults() {
        let book = asked(None).book_after(None, "sr_new".into());
        assert_eq!(
            (book.target_age, book.style, book.language, book.page_count),
            (
                TargetAge::FiveToSeven,
                Style::Cartoon,
                Language::Korean,
                PageCount::DEFAULT
            )
        );
        let place = book.series.unwrap();
        assert_eq!((place.id.as_str(), place.number), ("sr_new", 1));
    }
}
