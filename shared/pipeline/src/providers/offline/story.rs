use crate::providers::story::max_page_chars;
use crate::providers::{
    Metered, Moderator, PageBrief, ProviderError, StoryBrief, StoryPage, StoryWriter, Usage,
    Verdict, WrittenStory, seed_of,
};
use async_trait::async_trait;
use storybook_core::domain::book::{BookRequest, Language, TargetAge};
use storybook_core::domain::character::Sheet;

/// Writes a gentle story from templates: the topic and the hero appear, the page count is
/// honoured, sentences lengthen with the reader's age. Korean and English; other languages get
/// the English text.
pub struct OfflineWriter;

/// The word with the particle its last syllable takes: the first form after a final consonant
/// (받침), the second otherwise (and after anything that is not Hangul).
fn josa(word: &str, after_consonant: &str, after_vowel: &str) -> String {
    let ends_in_consonant = word
        .chars()
        .last()
        .filter(|c| ('가'..='힣').contains(c))
        .is_some_and(|c| (u32::from(c) - 0xAC00) % 28 != 0);
    format!(
        "{word}{}",
        if ends_in_consonant {
            after_consonant
        } else {
            after_vowel
        }
    )
}

struct Beats {
    title: fn(&str, &str) -> String,
    opening: fn(&str, &str) -> String,
    middle: &'static [fn(&str, &str) -> String],
    closing: fn(&str, &str) -> String,
    detail: &'static [&'static str],
}

const KOREAN: Beats = Beats {
    title: |hero, topic| format!("{hero}의 이야기: {topic}"),
    opening: |hero, topic| {
        let who = josa(hero, "이", "가");
        format!(
            "옛날 옛적에 {who} 살았어요. 오늘 {hero}의 마음속에는 {topic}에 대한 생각이 가득했어요."
        )
    },
    middle: &[
        |hero, _| format!("{} 용기를 내어 밖으로 나갔어요.", josa(hero, "은", "는")),
        |hero, topic| {
            let who = josa(hero, "은", "는");
            format!("길에서 만난 친구가 {topic}에 대해 물었어요. {who} 천천히 생각했어요.")
        },
        |hero, _| {
            format!(
                "바람이 살랑살랑 불었어요. {} 깊게 숨을 쉬었어요.",
                josa(hero, "은", "는")
            )
        },
        |hero, _| {
            format!(
                "{} 작은 발걸음으로 한 걸음씩 앞으로 나아갔어요.",
                josa(hero, "은", "는")
            )
        },
        |hero, topic| {
            let (what, who) = (josa(topic, "을", "를"), josa(hero, "은", "는"));
            format!("친구들과 함께 {what} 이야기하니 마음이 따뜻해졌어요. {who} 웃었어요.")
        },
        |hero, _| {
            format!(
                "하늘의 별들이 반짝반짝 {} 응원했어요.",
                josa(hero, "을", "를")
            )
        },
    ],
    closing: |hero, topic| {
        let (who, what) = (josa(hero, "은", "는"), josa(topic, "이", "가"));
        format!("이제 {who} {what} 더 이상 두렵지 않아요. 모두 함께 행복하게 웃었답니다.")
    },
    detail: &[
        "햇살이 포근하게 내려왔어요.",
        "작은 새가 노래를 불렀어요.",
        "나뭇잎이 춤을 추었어요.",
        "엄마가 다정하게 안아 주었어요.",
    ],
};

const ENGLISH: Beats = Beats {
    title: |hero, topic| format!("{hero} and {topic}"),
    opening: |hero, topic| {
        format!("Once upon a time there lived {hero}. Today {hero} kept thinking about {topic}.")
    },
    middle: &[
        |hero, _| format!("{hero} took a brave breath and stepped outside."),
        |hero, topic| {
            format!("A friend on the path asked about {topic}, and {hero} thought slowly.")
        },
        |hero, _| format!("A soft wind blew, and {hero} listened to the trees."),
        |hero, _| format!("One little step at a time, {hero} kept going."),
        |hero, topic| format!("Talking about {topic} with friends made {hero} feel warm inside."),
        |hero, _| format!("The stars twinkled as if cheering for {hero}."),
    ],
    closing: |hero, topic| {
        format!("Now {hero} was not afraid of {topic} anymore, and everyone smiled together.")
    },
    detail: &[
        "The sunshine was warm and kind.",
        "A little bird sang a song.",
        "The leaves danced in the breeze.",
        "Mom gave a gentle hug.",
    ],
};

fn sentences_for(age: TargetAge) -> usize {
    match age {
        TargetAge::ThreeToFive => 1,
        TargetAge::FiveToSeven => 2,
        TargetAge::SevenToNine => 3,
        TargetAge::Adult => 4,
    }
}

#[async_trait]
impl StoryWriter for OfflineWriter {
    /// Another beat of the same story in place of the page's, chosen by the version, and the
    /// parent's feedback in the scene.
    async fn rewrite_page(&self, brief: &PageBrief) -> Result<Metered<StoryPage>, ProviderError> {
        let request = &brief.request;
        let beats = match request.language {
            Language::Korean => &KOREAN,
            _ => &ENGLISH,
        };
        let (hero, topic) = (request.hero(), request.topic.as_str());
        let turn = (usize::from(brief.page) + brief.version as usize) % beats.middle.len();
        let detail = beats.detail[turn % beats.detail.len()];
        let text = format!("{} {detail}", (beats.middle[turn])(hero, topic));
        let mut scene = format!("{hero} in a gentle scene about {topic}");
        if let Some(feedback) = &brief.feedback {
            scene.push_str(&format!(", {feedback}"));
        }
        Ok(Metered {
            value: StoryPage {
                text: text
                    .chars()
                    .take(max_page_chars(request.target_age))
                    .collect(),
                scene,
                characters: vec![hero.to_owned()],
            },
            usage: Usage::new("offline", "offline"),
        })
    }

    async fn write(&self, brief: &StoryBrief) -> Result<Metered<WrittenStory>, ProviderError> {
        let request = &brief.request;
        let beats = match request.language {
            Language::Korean => &KOREAN,
            _ => &ENGLISH,
        };
        let hero = request.hero();
        let topic = request.topic.as_str();
        let count = usize::from(request.page_count.get());
        let extra = sentences_for(request.target_age) - 1;
        let seed = seed_of(topic) as usize;
        let texts: Vec<String> = (0..count)
            .map(|i| {
                let core = if i == 0 {
                    (beats.opening)(hero, topic)
                } else if i == count - 1 {
                    (beats.closing)(hero, topic)
                } else {
                    (beats.middle[(i - 1 + seed) % beats.middle.len()])(hero, topic)
                };
                let details = (0..extra).map(|j| beats.detail[(i + j + seed) % beats.detail.len()]);
                std::iter::once(core.as_str())
                    .chain(details)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect();
        let title: String = (beats.title)(hero, topic).chars().take(80).collect();
        let sheet = hero_sheet(request);
        let pages = texts
            .into_iter()
            .enumerate()
            .map(|(i, text)| StoryPage {
                text,
                scene: format!("{hero} in scene {} of a story about {topic}", i + 1),
                characters: vec![hero.to_owned()],
            })
            .collect();
        let story = WrittenStory {
            title,
            pages,
            cover_scene: format!("{hero} smiling on the cover of a book about {topic}"),
            characters: vec![sheet],
        };
        let mut usage = Usage::new("offline", "offline");
        usage.output_tokens = story.pages.iter().map(|p| p.text.len() as u64).sum();
        Ok(Metered {
            value: story,
            usage,
        })
    }
}

/// The hero's sheet: the parent's description where given, else one chosen by the name.
fn hero_sheet(request: &BookRequest) -> Sheet {
    const LOOKS: &[(&str, [&str; 2])] = &[
        (
            "a small round green dinosaur",
            ["a red scarf", "big round eyes"],
        ),
        (
            "a fluffy white bunny",
            ["one floppy ear", "a blue backpack"],
        ),
        (
            "a little orange fox",
            ["a white-tipped tail", "yellow rain boots"],
        ),
        (
            "a cheerful brown bear cub",
            ["a striped sweater", "a honey-coloured nose"],
        ),
    ];
    let hero = request.hero();
    let (look, features) = LOOKS[seed_of(hero) as usize % LOOKS.len()];
    let description = match &request.character_appearance {
        Some(described) => described
            .split_whitespace()
            .take(crate::providers::story::MAX_DESCRIPTION_WORDS)
            .collect::<Vec<_>>()
            .join(" "),
        None => format!("{hero}, {look}, drawn with soft outlines"),
    };
    Sheet::sketched(
        hero.to_owned(),
        description,
        features.iter().map(|f| (*f).to_owned()).collect(),
    )
}

/// Refuses a short list of words no children's book should carry, in text in and out.
pub struct OfflineModerator;

const REFUSED: &[&str] = &[
    "kill",
    "murder",
    "gore",
    "suicide",
    "blood",
    "살인",
    "자살",
    "피투성이",
];

#[async_trait]
impl Moderator for OfflineModerator {
    async fn check(&self, text: &str) -> Result<Metered<Verdict>, ProviderError> {
        let lower = text.to_lowercase();
        let verdict = match REFUSED.iter().find(|word| lower.contains(*word)) {
            Some(word) => Verdict::Refused(format!(
                "The request mentions \"{word}\", which is not suitable for a children's book."
            )),
            None => Verdict::Allowed,
        };
        Ok(Metered {
            value: verdict,
            usage: Usage::new("offline", "forbidden-words"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use storybook_core::domain::book::{Name, PageCount, Style, Topic};

    #[test]
    fn particles_follow_the_last_syllable() {
        assert_eq!(josa("토리", "은", "는"), "토리는");
        assert_eq!(josa("민준", "은", "는"), "민준은");
        assert_eq!(josa("공룡", "을", "를"), "공룡을");
        assert_eq!(josa("Max", "이", "가"), "Max가");
    }

    #[tokio::test]
    async fn the_story_follows_the_request() {
        let request = BookRequest {
            topic: Topic::parse("어둠을 무서워하는 공룡").unwrap(),
            target_age: TargetAge::ThreeToFive,
            style: Style::Cartoon,
            language: Language::Korean,
            page_count: PageCount::parse(6).unwrap(),
            protagonist: Some(Name::parse("민준").unwrap()),
            character_appearance: None,
            forbidden_elements: vec![],
            theme: None,
            narration: true,
            characters: vec![],
            hero_character: None,
            series: None,
            from_picture: false,
        };
        let write = |request: BookRequest| async move {
            let brief = StoryBrief {
                request,
                stricter: false,
            };
            let story = OfflineWriter.write(&brief).await.unwrap().value;
            assert!(story.characters[0].features().len() >= 2);
            story.pages.into_iter().map(|p| p.text).collect::<Vec<_>>()
        };
        let story = write(request.clone()).await;
        assert_eq!(story.len(), 6);
        assert!(
            story[0].contains("민준이 살았어요") && story[0].contains("어둠을 무서워하는 공룡")
        );
        let older = BookRequest {
            target_age: TargetAge::SevenToNine,
            ..request.clone()
        };
        let longer = write(older).await;
        assert!(
            longer[2].len() > story[2].len(),
            "older readers get longer pages"
        );
        let english = write(BookRequest {
            language: Language::English,
            ..request
        })
        .await;
        assert!(english[0].starts_with("Once upon a time there lived 민준"));
    }
}
