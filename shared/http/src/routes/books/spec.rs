//! What the app sends to make a book (the app contract's `BookSpec` and `SeriesNextRequest`) and how it
//! becomes the domain's request: every problem found at once, in the app contract's 422 shape, with the
//! domain's own lists of ages, styles and languages.

use crate::error::{ApiError, Problem, Problems};
use serde::Deserialize;
use storybook_core::domain::book::{
    BookRequest, Language, Name, NextInSeries, PageCount, Style, TargetAge, Topic,
};
use storybook_core::usecases::books::Named;
use storybook_core::usecases::daily::DailyAsk;

/// The app contract's `BookSpec`, as sent; `TryFrom` turns it into the domain's [`BookRequest`] and the
/// parent's characters it names, or every problem at once.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BookSpec {
    topic: String,
    target_age: String,
    style: String,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    page_count: Option<i64>,
    #[serde(default)]
    protagonist_name: Option<String>,
    #[serde(default)]
    character: Option<CharacterSpec>,
    #[serde(default)]
    character_id: Option<String>,
    #[serde(default)]
    character_ids: Option<Vec<String>>,
    #[serde(default)]
    character_relationship: Option<String>,
    #[serde(default)]
    forbidden_elements: Option<Vec<String>>,
    #[serde(default)]
    reference_image_base64: Option<String>,
    #[serde(default)]
    series_context: Option<String>,
    #[serde(default)]
    theme: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CharacterSpec {
    name: String,
    #[serde(default)]
    appearance: Option<String>,
    #[serde(default)]
    gender: Option<String>,
    #[serde(default)]
    personality: Option<Vec<String>>,
}

/// The app's themes (a book's `theme` is one of them, or none).
const THEMES: &[&str] = &[
    "생활습관",
    "설날",
    "추석",
    "어린이날",
    "크리스마스",
    "감정코칭",
    "사회성",
    "우정",
    "가족",
    "모험",
    "자연",
    "용기",
    "친절",
    "성장",
    "상상",
    "과학",
    "시간여행",
    "동물",
    "공룡",
    "직업",
    "작품속으로",
];

fn too_long(value: &Option<String>, limit: usize) -> bool {
    value.as_ref().is_some_and(|v| v.chars().count() > limit)
}

fn known_theme(theme: &Option<String>) -> bool {
    theme.as_deref().is_none_or(|t| THEMES.contains(&t))
}

/// How many things a parent may ask a book to leave out, and how long each is kept.
const FORBIDDEN_ELEMENTS: usize = 20;
const FORBIDDEN_ELEMENT_CHARS: usize = 60;

fn shortened(forbidden: Vec<String>) -> Vec<String> {
    forbidden
        .into_iter()
        .map(|f| f.chars().take(FORBIDDEN_ELEMENT_CHARS).collect())
        .collect()
}

/// The refusal of a value outside `choices` (the domain's own list).
fn one_of(choices: String) -> String {
    format!("Input should be {choices}")
}

/// Every problem at once, each with its location, as the app contract's 422 lists them: the request,
/// and the ids of the parent's characters it names (`character_id` first).
impl TryFrom<BookSpec> for (BookRequest, Named) {
    type Error = ApiError;

    fn try_from(spec: BookSpec) -> Result<Self, ApiError> {
        let mut problems = Vec::new();
        let mut problem = |field: &[&str], msg: &str, kind: &'static str| {
            let mut loc = vec!["body"];
            loc.extend_from_slice(field);
            problems.push(Problem::new(&loc, msg, kind));
        };
        let this = spec;
        let topic = Topic::parse(&this.topic)
            .map_err(|e| problem(&["topic"], &e.0, "value_error"))
            .ok();
        let target_age = TargetAge::parse(&this.target_age)
            .map_err(|_| problem(&["target_age"], &one_of(TargetAge::choices()), "enum"))
            .ok();
        let style = Style::parse(&this.style)
            .map_err(|_| problem(&["style"], &one_of(Style::choices()), "enum"))
            .ok();
        let language = match this.language.as_deref() {
            None => Some(Language::Korean),
            Some(raw) => Language::parse(raw)
                .map_err(|_| problem(&["language"], &one_of(Language::choices()), "enum"))
                .ok(),
        };
        let page_count = match this.page_count {
            None => Some(PageCount::DEFAULT),
            Some(raw) => PageCount::parse(raw)
                .map_err(|e| problem(&["page_count"], &e.0, "value_error"))
                .ok(),
        };
        let protagonist = match this.protagonist_name.as_deref() {
            None => None,
            Some(raw) => Name::parse(raw)
                .map_err(|e| problem(&["protagonist_name"], &e.0, "value_error"))
                .ok(),
        };
        let mut appearance = None;
        let mut character_name = None;
        if let Some(character) = &this.character {
            character_name = Name::parse(&character.name)
                .map_err(|e| problem(&["character", "name"], &e.0, "value_error"))
                .ok();
            if too_long(&character.appearance, 200) {
                problem(
                    &["character", "appearance"],
                    "String should have at most 200 characters",
                    "string_too_long",
                );
            }
            if character
                .gender
                .as_deref()
                .is_some_and(|g| !["male", "female", "neutral"].contains(&g))
            {
                problem(
                    &["character", "gender"],
                    "Input should be 'male', 'female' or 'neutral'",
                    "enum",
                );
            }
            if character.personality.as_ref().is_some_and(|p| p.len() > 8) {
                problem(
                    &["character", "personality"],
                    "List should have at most 8 items",
                    "too_long",
                );
            }
            appearance = character.appearance.clone();
        }
        if too_long(&this.character_id, 60) {
            problem(
                &["character_id"],
                "String should have at most 60 characters",
                "string_too_long",
            );
        }
        if this
            .character_ids
            .as_ref()
            .is_some_and(|ids| ids.len() > 10)
        {
            problem(
                &["character_ids"],
                "List should have at most 10 items",
                "too_long",
            );
        }
        if too_long(&this.character_relationship, 40) {
            problem(
                &["character_relationship"],
                "String should have at most 40 characters",
                "string_too_long",
            );
        }
        let forbidden = this.forbidden_elements.unwrap_or_default();
        if forbidden.len() > FORBIDDEN_ELEMENTS {
            problem(
                &["forbidden_elements"],
                "List should have at most 20 items",
                "too_long",
            );
        }
        if too_long(&this.reference_image_base64, 5_000_000) {
            problem(
                &["reference_image_base64"],
                "String should have at most 5000000 characters",
                "string_too_long",
            );
        }
        if too_long(&this.series_context, 500) {
            problem(
                &["series_context"],
                "String should have at most 500 characters",
                "string_too_long",
            );
        }
        if !known_theme(&this.theme) {
            problem(&["theme"], "Input should be one of the themes", "enum");
        }
        if !problems.is_empty() {
            return Err(ApiError::Schema(problems));
        }
        let mut named: Vec<String> = this.character_id.into_iter().collect();
        for id in this.character_ids.unwrap_or_default() {
            if !named.contains(&id) {
                named.push(id);
            }
        }
        let (Some(topic), Some(target_age), Some(style), Some(language), Some(page_count)) =
            (topic, target_age, style, language, page_count)
        else {
            unreachable!("every missing value added a problem")
        };
        let request = BookRequest {
            topic,
            target_age,
            style,
            language,
            page_count,
            protagonist: protagonist.or(character_name),
            character_appearance: appearance,
            forbidden_elements: shortened(forbidden),
            theme: this.theme,
            // The deployment's setting, applied where the book is made.
            narration: false,
            characters: Vec::new(),
            hero_character: None,
            series: None,
            from_picture: false,
        };
        let inline = this.character.map(|character| character.name);
        Ok((request, Named { ids: named, inline }))
    }
}

/// The app contract's `SeriesNextRequest`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesNext {
    character_id: String,
    topic: String,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    page_count: Option<i64>,
    #[serde(default)]
    target_age: Option<String>,
    #[serde(default)]
    style: Option<String>,
    #[serde(default)]
    theme: Option<String>,
    #[serde(default)]
    forbidden_elements: Option<Vec<String>>,
    #[serde(default)]
    new_topic_hint: Option<String>,
    #[serde(default)]
    previous_book_id: Option<String>,
    #[serde(default)]
    series_id: Option<String>,
    #[serde(default)]
    series_title: Option<String>,
}

/// The series request as the domain asks it: every problem at once, as for a book.
impl TryFrom<SeriesNext> for NextInSeries {
    type Error = ApiError;

    fn try_from(next: SeriesNext) -> Result<Self, ApiError> {
        let mut p = Problems::default();
        p.text(&["character_id"], &next.character_id, 1, 60);
        for (field, value, max) in [
            ("new_topic_hint", &next.new_topic_hint, 200),
            ("previous_book_id", &next.previous_book_id, 60),
            ("series_title", &next.series_title, 100),
        ] {
            if let Some(value) = value {
                p.text(&[field], value, 0, max);
            }
        }
        if let Some(id) = &next.series_id
            && (!(1..=60).contains(&id.len())
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'))
        {
            let msg = "series_id is 1 to 60 letters, digits, '_' or '-'";
            p.0.push(Problem::new(&["body", "series_id"], msg, "value_error"));
        }
        let mut problem = |field: &str, msg: &str, kind: &'static str| {
            p.0.push(Problem::new(&["body", field], msg, kind));
        };
        let topic = Topic::parse(&next.topic)
            .map_err(|e| problem("topic", &e.0, "value_error"))
            .ok();
        let target_age = next.target_age.as_deref().and_then(|raw| {
            TargetAge::parse(raw)
                .map_err(|_| problem("target_age", &one_of(TargetAge::choices()), "enum"))
                .ok()
        });
        let style = next.style.as_deref().and_then(|raw| {
            Style::parse(raw)
                .map_err(|_| problem("style", &one_of(Style::choices()), "enum"))
                .ok()
        });
        let language = next.language.as_deref().and_then(|raw| {
            Language::parse(raw)
                .map_err(|_| problem("language", &one_of(Language::choices()), "enum"))
                .ok()
        });
        let page_count = next.page_count.and_then(|raw| {
            PageCount::parse(raw)
                .map_err(|e| problem("page_count", &e.0, "value_error"))
                .ok()
        });
        let forbidden = next.forbidden_elements.unwrap_or_default();
        if forbidden.len() > FORBIDDEN_ELEMENTS {
            problem(
                "forbidden_elements",
                "List should have at most 20 items",
                "too_long",
            );
        }
        if !known_theme(&next.theme) {
            problem("theme", "Input should be one of the themes", "enum");
        }
        p.into_result()?;
        Ok(NextInSeries {
            character_id: next.character_id,
            topic: topic.expect("a topic that did not parse added a problem"),
            target_age,
            style,
            language,
            page_count,
            theme: next.theme,
            forbidden_elements: shortened(forbidden),
            hint: next.new_topic_hint,
            previous_book_id: next.previous_book_id,
            series_id: next.series_id,
            series_title: next.series_title,
        })
    }
}

/// The app contract's `TodayGenerateRequest`: today's story made the parent's own book.
#[derive(Deserialize)]
pub struct TodayGenerate {
    target_age: String,
    style: String,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    protagonist_name: Option<String>,
    #[serde(default)]
    character_id: Option<String>,
}

impl TryFrom<TodayGenerate> for DailyAsk {
    type Error = ApiError;

    fn try_from(ask: TodayGenerate) -> Result<Self, ApiError> {
        let mut p = Problems::default();
        if let Some(id) = &ask.character_id {
            p.text(&["character_id"], id, 0, 60);
        }
        let mut problem = |field: &str, msg: &str, kind: &'static str| {
            p.0.push(Problem::new(&["body", field], msg, kind));
        };
        let target_age = TargetAge::parse(&ask.target_age)
            .map_err(|_| problem("target_age", &one_of(TargetAge::choices()), "enum"))
            .ok();
        let style = Style::parse(&ask.style)
            .map_err(|_| problem("style", &one_of(Style::choices()), "enum"))
            .ok();
        let language = Language::parse(ask.language.as_deref().unwrap_or("ko"))
            .map_err(|_| problem("language", &one_of(Language::choices()), "enum"))
            .ok();
        let protagonist = match ask.protagonist_name.as_deref() {
            None => None,
            Some(raw) => Name::parse(raw)
                .map_err(|e| problem("protagonist_name", &e.0, "value_error"))
                .ok(),
        };
        p.into_result()?;
        let (Some(target_age), Some(style), Some(language)) = (target_age, style, language) else {
            unreachable!("every value that did not parse added a problem")
        };
        Ok(DailyAsk {
            target_age,
            style,
            language,
            protagonist,
            character_id: ask.character_id,
        })
    }
}
