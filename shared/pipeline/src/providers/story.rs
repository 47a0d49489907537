//! What a story is, whoever writes it: its shape (and the JSON schema a chat model is held to),
//! and the checks every story passes before a book is built on it.

use serde::Deserialize;
use storybook_core::domain::book::{BookRequest, Language, StoryPage, TargetAge, WrittenStory};
use storybook_core::domain::character::Sheet;

/// A story as the story model's JSON has it ([`json_schema`]): each character a sketch.
#[derive(Deserialize)]
pub struct StoryAnswer {
    title: String,
    pages: Vec<StoryPage>,
    cover_scene: String,
    characters: Vec<SketchAnswer>,
}

#[derive(Deserialize)]
struct SketchAnswer {
    name: String,
    description: String,
    features: Vec<String>,
}

impl From<StoryAnswer> for WrittenStory {
    fn from(answer: StoryAnswer) -> Self {
        WrittenStory {
            title: answer.title,
            pages: answer.pages,
            cover_scene: answer.cover_scene,
            characters: answer
                .characters
                .into_iter()
                .map(|c| Sheet::sketched(c.name, c.description, c.features))
                .collect(),
        }
    }
}
use storybook_core::domain::markup::contains_markup;

/// The longest page text for a reader's age, in characters.
pub fn max_page_chars(age: TargetAge) -> usize {
    match age {
        TargetAge::ThreeToFive => 220,
        TargetAge::FiveToSeven => 360,
        TargetAge::SevenToNine => 520,
        TargetAge::Adult => 800,
    }
}

/// The most words a character's master description may have.
pub const MAX_DESCRIPTION_WORDS: usize = 60;

/// Which part of the story holds markup or script, by the rule a parent's text keeps
/// ([`contains_markup`]), if any: such a story is refused, never stored or served (a title or a
/// page would reach the library, the book's detail and pages a browser shows).
pub fn markup_in(story: &WrittenStory) -> Option<String> {
    let marked =
        |text: &str| contains_markup(text) || text.chars().any(|c| c.is_control() && c != '\n');
    if marked(&story.title) {
        return Some("the title".into());
    }
    if marked(&story.cover_scene) {
        return Some("the cover's scene".into());
    }
    for (i, page) in story.pages.iter().enumerate() {
        if marked(&page.text) || marked(&page.scene) || page.characters.iter().any(|c| marked(c)) {
            return Some(format!("page {}", i + 1));
        }
    }
    story
        .characters
        .iter()
        .find(|sheet| {
            marked(&sheet.name)
                || marked(&sheet.master_description)
                || sheet
                    .distinctive_features
                    .iter()
                    .flatten()
                    .any(|f| marked(f))
        })
        .map(|sheet| format!("{}'s sheet", sheet.name))
}

/// Why a story cannot be used, or `Ok` when it can.
pub fn check(story: &WrittenStory, request: &BookRequest) -> Result<(), String> {
    if let Some(place) = markup_in(story) {
        return Err(format!("{place} holds markup"));
    }
    let wanted = usize::from(request.page_count.get());
    if story.title.trim().is_empty() {
        return Err("the story has no title".into());
    }
    if story.pages.len() != wanted {
        return Err(format!(
            "the story has {} pages where {wanted} were asked",
            story.pages.len()
        ));
    }
    let longest = max_page_chars(request.target_age);
    for (i, page) in story.pages.iter().enumerate() {
        let length = page.text.trim().chars().count();
        if length == 0 {
            return Err(format!("page {} has no text", i + 1));
        }
        if length > longest {
            return Err(format!(
                "page {} has {length} characters, more than {longest} for ages {}",
                i + 1,
                request.target_age.as_str()
            ));
        }
        if !in_language(&page.text, request.language) {
            return Err(format!(
                "page {} is not written in {}",
                i + 1,
                request.language.as_str()
            ));
        }
    }
    if story.characters.is_empty() {
        return Err("the story has no character sheet".into());
    }
    for sheet in &story.characters {
        let words = sheet.master_description.split_whitespace().count();
        if words == 0 || words > MAX_DESCRIPTION_WORDS {
            return Err(format!(
                "{}'s description has {words} words (1 to {MAX_DESCRIPTION_WORDS})",
                sheet.name
            ));
        }
        let features = sheet.distinctive_features.as_ref().map_or(0, Vec::len);
        if !(2..=4).contains(&features) {
            return Err(format!(
                "{} has {} distinctive features (2 to 4)",
                sheet.name, features
            ));
        }
    }
    Ok(())
}

/// Whether most letters of `text` are in the script of `language`. Only Korean and English are
/// checked; names from another script are allowed beside them.
fn in_language(text: &str, language: Language) -> bool {
    let hangul =
        |c: char| ('\u{AC00}'..='\u{D7A3}').contains(&c) || ('\u{1100}'..='\u{11FF}').contains(&c);
    let letters: Vec<char> = text.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.is_empty() {
        return false;
    }
    let korean = letters.iter().filter(|c| hangul(**c)).count();
    let latin = letters.iter().filter(|c| c.is_ascii_alphabetic()).count();
    match language {
        Language::Korean => korean * 2 > letters.len(),
        Language::English => latin * 2 > letters.len(),
        _ => true,
    }
}

/// The JSON schema a chat model's answer is held to (`response_format: json_schema`, strict:
/// every property required, nothing else allowed).
pub fn json_schema(pages: u8) -> serde_json::Value {
    let strings = serde_json::json!({"type": "array", "items": {"type": "string"}});
    serde_json::json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["title", "pages", "cover_scene", "characters"],
        "properties": {
            "title": {"type": "string"},
            "pages": {
                "type": "array",
                "minItems": pages,
                "maxItems": pages,
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["text", "scene", "characters"],
                    "properties": {
                        "text": {"type": "string"},
                        "scene": {"type": "string"},
                        "characters": strings,
                    }
                }
            },
            "cover_scene": {"type": "string"},
            "characters": {
                "type": "array",
                "items": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": ["name", "description", "features"],
                    "properties": {
                        "name": {"type": "string"},
                        "description": {"type": "string"},
                        "features": strings,
                    }
                }
            }
        }
    })
}

/// The instructions for a story model: the reader, the language, the shape, what to leave out.
pub fn instructions(request: &BookRequest, stricter: bool) -> String {
    let language = match request.language {
        Language::Korean => "Korean",
        Language::English => "English",
        Language::Japanese => "Japanese",
        Language::Chinese => "Simplified Chinese",
        Language::Spanish => "Spanish",
    };
    let reader = match request.target_age {
        TargetAge::ThreeToFive => {
            "a child of 3 to 5: very short, simple sentences, warm repetition"
        }
        TargetAge::FiveToSeven => "a child of 5 to 7: short sentences, everyday words",
        TargetAge::SevenToNine => "a child of 7 to 9: a little longer sentences, a small adventure",
        TargetAge::Adult => "an adult reading a picture book: richer language",
    };
    let mut text = format!(
        "You write picture books for {reader}. Write the story in {language}, {pages} pages, \
         at most {longest} characters of text per page. For each page give the text, an English \
         scene description for the illustrator and the named characters in it. Give an English \
         cover scene, and for every named character a sheet: an English master description of at \
         most {MAX_DESCRIPTION_WORDS} words (species, body, colours, clothing) and 2 to 4 \
         distinctive features, so that an illustrator draws them the same on every page. The story \
         is gentle, kind and safe for children: no violence, fear without comfort, or cruelty.",
        pages = request.page_count.get(),
        longest = max_page_chars(request.target_age),
    );
    if !request.forbidden_elements.is_empty() {
        text.push_str(&format!(
            " Never include: {}.",
            request.forbidden_elements.join(", ")
        ));
    }
    if stricter {
        text.push_str(
            " An earlier version was refused by moderation: keep every scene calm and cheerful, \
             with nothing frightening, dangerous or unkind in words or pictures.",
        );
    }
    text
}

/// The parent's request as the model's user message.
pub fn user_message(request: &BookRequest) -> String {
    let mut text = format!(
        "Topic: {}\nHero: {}",
        request.topic.as_str(),
        request.hero()
    );
    if let Some(look) = &request.character_appearance {
        text.push_str(&format!("\nThe hero looks like this: {look}"));
    }
    for sheet in &request.characters {
        text.push_str(&format!(
            "\nCharacter (keep exactly as described): {}",
            sheet.prompt_line()
        ));
    }
    if let Some(theme) = &request.theme {
        text.push_str(&format!("\nTheme: {theme}"));
    }
    if let Some(series) = &request.series {
        text.push_str(&format!(
            "\nThis is book {} of a series{}: a new story with the same characters, which may \
             recall the earlier ones but never retells them.",
            series.number,
            series
                .title
                .as_deref()
                .map(|t| format!(" called \"{t}\""))
                .unwrap_or_default()
        ));
        for earlier in &series.earlier {
            text.push_str(&format!(
                "\nEarlier book \"{}\": {}",
                earlier.title, earlier.summary
            ));
        }
        if let Some(hint) = &series.hint {
            text.push_str(&format!("\nIdea for this book: {hint}"));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use storybook_core::domain::book::{PageCount, Style, Topic};

    fn request(language: Language) -> BookRequest {
        BookRequest {
            topic: Topic::parse("a brave dinosaur").unwrap(),
            target_age: TargetAge::ThreeToFive,
            style: Style::Cartoon,
            language,
            page_count: PageCount::parse(4).unwrap(),
            protagonist: None,
            character_appearance: None,
            forbidden_elements: vec![],
            theme: None,
            narration: true,
            characters: vec![],
            hero_character: None,
            series: None,
            from_picture: false,
        }
    }

    fn story(text: &str) -> WrittenStory {
        WrittenStory {
            title: "Title".into(),
            pages: (0..4)
                .map(|_| StoryPage {
                    text: text.into(),
                    scene: "a meadow".into(),
                    characters: vec!["Tori".into()],
                })
                .collect(),
            cover_scene: "Tori waves".into(),
            characters: vec![Sheet::sketched(
                "Tori".into(),
                "a small green dinosaur".into(),
                vec!["red scarf".into(), "round eyes".into()],
            )],
        }
    }

    #[test]
    fn a_story_is_checked_against_its_request() {
        assert_eq!(
            check(&story("Tori walks."), &request(Language::English)),
            Ok(())
        );
        assert!(check(&story("토리가 걸어요."), &request(Language::Korean)).is_ok());
        assert!(check(&story("Tori walks."), &request(Language::Korean)).is_err());
        assert!(check(&story("토리가 걸어요."), &request(Language::English)).is_err());
        assert!(check(&story(" "), &request(Language::English)).is_err());
        assert!(check(&story(&"word ".repeat(60)), &request(Language::English)).is_err());
        let mut short = story("Tori walks.");
        short.pages.pop();
        assert!(
            check(&short, &request(Language::English))
                .unwrap_err()
                .contains("3 pages")
        );
        let mut vague = story("Tori walks.");
        vague.characters[0].distinctive_features = Some(vec!["green".into()]);
        assert!(check(&vague, &request(Language::English)).is_err());
        let mut long = story("Tori walks.");
        long.characters[0].master_description = "word ".repeat(61);
        assert!(check(&long, &request(Language::English)).is_err());
    }
}
