//! A story as written, and how a book records it.

use super::*;

/// One page of a story: what the child reads, and what the illustrator draws.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoryPage {
    pub text: String,
    /// The scene for the illustrator, in English.
    pub scene: String,
    /// The named characters in the scene.
    pub characters: Vec<String>,
}

/// A story as written: a title, the pages, the cover's scene and a sheet per named character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenStory {
    pub title: String,
    pub pages: Vec<StoryPage>,
    pub cover_scene: String,
    pub characters: Vec<Sheet>,
}

impl WrittenStory {
    /// The sheet of the book's hero: by name, else the first one.
    pub fn hero_sheet(&self, hero: &str) -> Option<&Sheet> {
        self.characters
            .iter()
            .find(|c| c.name == hero)
            .or_else(|| self.characters.first())
    }
}

/// The limits a written story is recorded within (the story's checks refuse far longer first).
pub const TITLE_CHARS: usize = 80;
pub const PAGE_TEXT_CHARS: usize = 800;
pub const SCENE_CHARS: usize = 600;

impl Book {
    /// Records the written story on the book being made: the cover and the pages (narration
    /// pending when the book is narrated), the title, the character sheets (the parent's own in
    /// place of the story's of the same name, then the hero's first: the reference picture is
    /// drawn from it) and how many assets are to be made. False when there is nothing to record:
    /// the story is there already, or the book is no longer being made.
    pub fn record_story(&mut self, story: &WrittenStory) -> bool {
        if self.title.is_some() || !self.in_production() {
            return false;
        }
        let narration = self.request.narration;
        let hero = self.request.hero().to_owned();
        let cover = Page::new(
            0,
            String::new(),
            story.cover_scene.clone(),
            vec![hero.clone()],
        );
        let pages = story.pages.iter().enumerate().map(|(i, page)| Page {
            audio_state: if narration {
                AudioState::Pending
            } else {
                AudioState::NotRequested
            },
            ..Page::new(
                i as u8 + 1,
                page.text.chars().take(PAGE_TEXT_CHARS).collect(),
                page.scene.chars().take(SCENE_CHARS).collect(),
                page.characters.clone(),
            )
        });
        self.pages = std::iter::once(cover).chain(pages).collect();
        self.title = Some(story.title.chars().take(TITLE_CHARS).collect());
        let given = &self.request.characters;
        let mut sheets = given.clone();
        sheets.extend(
            story
                .characters
                .iter()
                .filter(|sheet| !given.iter().any(|g| g.name == sheet.name))
                .cloned(),
        );
        if let Some(at) = sheets.iter().position(|c| c.name == hero) {
            sheets.swap(0, at);
        }
        self.characters = sheets;
        self.cover_scene = story.cover_scene.clone();
        self.total_assets = Self::assets_of(story.pages.len() as u32, narration);
        self.pending_assets = self.total_assets;
        // A swept book stays failed while its steps go on.
        if self.state == JobState::Queued {
            self.state = JobState::Running;
        }
        true
    }

    /// What a book of `pages` pages makes: a picture per page and the cover, the hero's
    /// reference, and a narration per page when narrated.
    pub fn assets_of(pages: u32, narration: bool) -> u32 {
        pages + 2 + if narration { pages } else { 0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn story() -> WrittenStory {
        let sheet = |name: &str| {
            Sheet::sketched(
                name.into(),
                format!("{name}, drawn the same on every page"),
                vec!["a red scarf".into(), "one floppy ear".into()],
            )
        };
        WrittenStory {
            title: "T".repeat(100),
            pages: (1..=4)
                .map(|n| StoryPage {
                    text: format!("Page {n}."),
                    scene: format!("Scene {n}"),
                    characters: vec!["Dino".into()],
                })
                .collect(),
            cover_scene: "Dino under the stars".into(),
            characters: vec![sheet("Moon"), sheet("Dino")],
        }
    }

    fn book(narration: bool) -> Book {
        let request = BookRequest {
            topic: Topic::parse("a dinosaur afraid of the dark").unwrap(),
            target_age: TargetAge::FiveToSeven,
            style: Style::Watercolor,
            language: Language::English,
            page_count: PageCount::parse(4).unwrap(),
            protagonist: Name::parse("Dino").ok(),
            character_appearance: None,
            forbidden_elements: vec![],
            theme: None,
            narration,
            characters: vec![],
            hero_character: None,
            series: None,
            from_picture: false,
        };
        Book::new(UserId::from_stored("u_1".into()), request, 1, Utc::now())
    }

    #[test]
    fn a_story_is_recorded_once_with_its_limits_and_assets() {
        let mut narrated = book(true);
        assert!(narrated.record_story(&story()));
        assert_eq!(narrated.pages.len(), 5, "the cover and four pages");
        assert_eq!(
            narrated.title.as_ref().unwrap().chars().count(),
            TITLE_CHARS
        );
        assert_eq!(
            narrated.characters[0].name, "Dino",
            "the hero's sheet first"
        );
        // Four pictures, the cover, the reference and four narrations.
        assert_eq!((narrated.total_assets, narrated.pending_assets), (10, 10));
        assert_eq!(narrated.state, JobState::Running);
        assert!(!narrated.record_story(&story()), "recorded already");
        let mut silent = book(false);
        assert!(silent.record_story(&story()));
        assert_eq!(silent.total_assets, 6);
        assert!(
            silent
                .pages
                .iter()
                .all(|p| p.audio_state == AudioState::NotRequested)
        );
    }
}
