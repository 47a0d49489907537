use crate::domain::book::{BookRequest, Language, TargetAge};
use crate::providers::{Moderator, ProviderError, StoryWriter, Verdict, WrittenStory, seed_of};
use async_trait::async_trait;

/// Writes a gentle story from templates: the topic and the hero appear, the page count is
/// honoured, sentences lengthen with the reader's age. Korean and English; other languages get
/// the English text.
pub struct OfflineWriter;

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
        format!(
            "옛날 옛적에 {hero}(이)가 살았어요. 오늘 {hero}의 마음속에는 {topic}에 대한 생각이 가득했어요."
        )
    },
    middle: &[
        |hero, _| format!("{hero}는 용기를 내어 밖으로 나갔어요."),
        |hero, topic| {
            format!("길에서 만난 친구가 {topic}에 대해 물었어요. {hero}는 천천히 생각했어요.")
        },
        |hero, _| format!("바람이 살랑살랑 불었어요. {hero}는 깊게 숨을 쉬었어요."),
        |hero, _| format!("{hero}는 작은 발걸음으로 한 걸음씩 앞으로 나아갔어요."),
        |hero, topic| {
            format!(
                "친구들과 함께 {topic}을(를) 이야기하니 마음이 따뜻해졌어요. {hero}는 웃었어요."
            )
        },
        |hero, _| format!("하늘의 별들이 반짝반짝 {hero}를 응원했어요."),
    ],
    closing: |hero, topic| {
        format!("이제 {hero}는 {topic}이(가) 더 이상 두렵지 않아요. 모두 함께 행복하게 웃었답니다.")
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
    async fn write(&self, request: &BookRequest) -> Result<WrittenStory, ProviderError> {
        let beats = match request.language {
            Language::Korean => &KOREAN,
            _ => &ENGLISH,
        };
        let hero = request.hero();
        let topic = request.topic.as_str();
        let count = usize::from(request.page_count.get());
        let extra = sentences_for(request.target_age) - 1;
        let seed = seed_of(topic) as usize;
        let pages = (0..count)
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
        Ok(WrittenStory { title, pages })
    }
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
    async fn check(&self, text: &str) -> Result<Verdict, ProviderError> {
        let lower = text.to_lowercase();
        Ok(match REFUSED.iter().find(|word| lower.contains(*word)) {
            Some(word) => Verdict::Refused(format!(
                "The request mentions \"{word}\", which is not suitable for a children's book."
            )),
            None => Verdict::Allowed,
        })
    }
}
