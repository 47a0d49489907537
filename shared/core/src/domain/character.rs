//! A child's own character: a sheet the illustrator draws from on every page of every book that
//! names it (the app's `CreateCharacterRequest` and `CharacterResponse`).

use super::Invalid;
use super::user::UserId;
use chrono::{DateTime, Utc};

/// `ch_` and 32 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CharacterId(String);

impl CharacterId {
    pub fn generate() -> Self {
        Self(format!("ch_{}", uuid::Uuid::new_v4().simple()))
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let hex = raw
            .strip_prefix("ch_")
            .ok_or_else(|| Invalid::new("not a character id"))?;
        if hex.len() != 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Invalid::new("not a character id"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id a character made under the user's `X-Idempotency-Key` gets: a retry finds it.
    pub fn for_retry(user: &UserId, kind: UploadKind, key: &str) -> Self {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(user.as_str())
            .chain_update([0])
            .chain_update(kind.as_str())
            .chain_update([0])
            .chain_update(key)
            .finalize();
        Self(format!("ch_{}", &hex::encode(digest)[..32]))
    }
}

/// What a parent uploads to make a character from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadKind {
    Photo,
    Drawing,
}

impl UploadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            UploadKind::Photo => "photo",
            UploadKind::Drawing => "drawing",
        }
    }

    pub fn origin(self) -> Origin {
        match self {
            UploadKind::Photo => Origin::Photo,
            UploadKind::Drawing => Origin::Drawing,
        }
    }
}

/// Why an upload was refused, told to the parent (400 with the reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UploadRefusal {
    #[error("The picture is empty")]
    Empty,
    #[error("The picture is larger than {limit_bytes} bytes")]
    TooLarge { limit_bytes: usize },
    #[error("The picture must be a JPEG, PNG or WebP image")]
    WrongType,
    #[error("The picture could not be read")]
    Undecodable,
    /// Declared dimensions past the limit: refused before decoding (a decompression bomb).
    #[error("The picture's dimensions are larger than {limit_pixels} pixels")]
    TooManyPixels { limit_pixels: u64 },
}

impl UploadRefusal {
    /// The stable reason the app may branch on (`details.reason`).
    pub fn reason(self) -> &'static str {
        match self {
            UploadRefusal::Empty => "empty",
            UploadRefusal::TooLarge { .. } => "too_large",
            UploadRefusal::WrongType => "unsupported_type",
            UploadRefusal::Undecodable => "undecodable",
            UploadRefusal::TooManyPixels { .. } => "too_many_pixels",
        }
    }
}

/// How the character looks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Appearance {
    pub age_visual: String,
    pub face: String,
    pub hair: String,
    pub skin: String,
    pub body: String,
}

/// What the character wears.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Clothing {
    pub top: String,
    pub bottom: String,
    pub shoes: String,
    pub accessories: String,
}

/// Where a character came from; photo and drawing characters go when consent goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Written by the parent.
    Sheet,
    /// One of the built-in characters.
    Preset,
    /// The parent's few words, the rest filled in by the story model.
    Text,
    Photo,
    Drawing,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Sheet => "sheet",
            Origin::Preset => "preset",
            Origin::Text => "text",
            Origin::Photo => "photo",
            Origin::Drawing => "drawing",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "sheet" => Ok(Origin::Sheet),
            "preset" => Ok(Origin::Preset),
            "text" => Ok(Origin::Text),
            "photo" => Ok(Origin::Photo),
            "drawing" => Ok(Origin::Drawing),
            other => Err(Invalid::new(format!("unknown character origin {other:?}"))),
        }
    }
}

impl Origin {
    /// Whether the character comes from a child's photo or drawing: only under a consent that
    /// includes photos, and deleted when that consent goes.
    pub fn is_from_picture(self) -> bool {
        matches!(self, Origin::Photo | Origin::Drawing)
    }
}

/// A character's sheet, the one kind there is: what the parent wrote or a model filled in (a
/// parent's character), or what the story model sketched for a character of its own (a name, a
/// master description and distinctive features, the rest left blank). Every picture of a book
/// draws its characters from their sheets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sheet {
    pub name: String,
    pub master_description: String,
    pub appearance: Appearance,
    pub clothing: Clothing,
    pub personality_traits: Vec<String>,
    pub distinctive_features: Option<Vec<String>>,
    pub visual_style_notes: String,
}

impl Sheet {
    /// A character the story model made up: its name, an English master description (at most
    /// 60 words) and 2 to 4 distinctive features (a red scarf, one floppy ear).
    pub fn sketched(name: String, description: String, features: Vec<String>) -> Self {
        Sheet {
            name,
            master_description: description,
            appearance: Appearance::default(),
            clothing: Clothing::default(),
            personality_traits: Vec::new(),
            distinctive_features: Some(features),
            visual_style_notes: String::new(),
        }
    }

    /// What an illustrator must draw the same on every page, at most four: the distinctive
    /// features, else what the character wears.
    pub fn features(&self) -> Vec<String> {
        let worn = [
            &self.clothing.top,
            &self.clothing.accessories,
            &self.clothing.shoes,
        ];
        match &self.distinctive_features {
            Some(features) if !features.is_empty() => features.iter().take(4).cloned().collect(),
            _ => worn
                .iter()
                .filter(|item| !item.is_empty() && !matches!(item.as_str(), "none" | "없음"))
                .map(|item| item.to_string())
                .take(4)
                .collect(),
        }
    }

    /// Whether `other` is drawn as this sheet is: the same name, master description and
    /// features (what a book keeps of a sheet).
    pub fn drawn_as(&self, other: &Sheet) -> bool {
        self.name == other.name
            && self.master_description == other.master_description
            && self.features() == other.features()
    }

    /// The sheet as one line of a prompt.
    pub fn prompt_line(&self) -> String {
        format!(
            "{}: {} Distinctive: {}.",
            self.name,
            self.master_description,
            self.features().join(", ")
        )
    }

    /// Every word of the sheet, one field a line: what moderation reads.
    pub fn words(&self) -> String {
        let (a, c) = (&self.appearance, &self.clothing);
        let mut lines = vec![
            self.name.as_str(),
            &self.master_description,
            &a.age_visual,
            &a.face,
            &a.hair,
            &a.skin,
            &a.body,
            &c.top,
            &c.bottom,
            &c.shoes,
            &c.accessories,
            &self.visual_style_notes,
        ];
        lines.extend(self.personality_traits.iter().map(String::as_str));
        lines.extend(
            self.distinctive_features
                .iter()
                .flatten()
                .map(String::as_str),
        );
        lines.join("\n")
    }
}

/// A character as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Character {
    pub id: CharacterId,
    pub user: UserId,
    pub name: String,
    /// The English master description every picture starts from.
    pub master_description: String,
    pub appearance: Appearance,
    pub clothing: Clothing,
    pub personality_traits: Vec<String>,
    pub distinctive_features: Option<Vec<String>>,
    pub visual_style_notes: String,
    pub origin: Origin,
    /// Where its reference picture is, once made.
    pub reference_key: Option<String>,
    /// A photo or drawing character made under an `X-Idempotency-Key`: the fingerprint of the
    /// upload and its fields, so a retry is told from another upload under the same key.
    pub upload_fingerprint: Option<String>,
    pub created_at: DateTime<Utc>,
}

impl Character {
    /// The character's sheet.
    pub fn sheet(&self) -> Sheet {
        Sheet {
            name: self.name.clone(),
            master_description: self.master_description.clone(),
            appearance: self.appearance.clone(),
            clothing: self.clothing.clone(),
            personality_traits: self.personality_traits.clone(),
            distinctive_features: self.distinctive_features.clone(),
            visual_style_notes: self.visual_style_notes.clone(),
        }
    }

    /// A new character of `user` from `sheet`.
    pub fn new(
        id: CharacterId,
        user: UserId,
        sheet: Sheet,
        origin: Origin,
        now: DateTime<Utc>,
    ) -> Self {
        Character {
            id,
            user,
            name: sheet.name,
            master_description: sheet.master_description,
            appearance: sheet.appearance,
            clothing: sheet.clothing,
            personality_traits: sheet.personality_traits,
            distinctive_features: sheet.distinctive_features,
            visual_style_notes: sheet.visual_style_notes,
            origin,
            reference_key: None,
            upload_fingerprint: None,
            created_at: now,
        }
    }
}

/// A built-in character: its display text in each language the app speaks, and one English
/// master description for the illustrator.
pub struct Preset {
    pub id: &'static str,
    pub master_description: &'static str,
    pub korean: PresetText,
    pub english: PresetText,
}

/// A preset's display text in one language.
pub struct PresetText {
    pub name: &'static str,
    /// Age, face, hair, skin, body.
    pub appearance: [&'static str; 5],
    /// Top, bottom, shoes, accessories.
    pub clothing: [&'static str; 4],
    pub personality_traits: &'static [&'static str],
    pub visual_style_notes: &'static str,
}

impl Preset {
    /// The display text in `language` (`en`), Korean for any other or none.
    pub fn text(&self, language: Option<&str>) -> (&'static str, &PresetText) {
        match language {
            Some("en") => ("en", &self.english),
            _ => ("ko", &self.korean),
        }
    }

    /// The character a parent makes from this preset, named `name` or the preset's name.
    pub fn character(
        &self,
        user: UserId,
        name: Option<String>,
        language: Option<&str>,
        now: DateTime<Utc>,
    ) -> Character {
        let (_, text) = self.text(language);
        let [age_visual, face, hair, skin, body] = text.appearance.map(str::to_owned);
        let [top, bottom, shoes, accessories] = text.clothing.map(str::to_owned);
        let sheet = Sheet {
            name: name.unwrap_or_else(|| text.name.to_owned()),
            master_description: self.master_description.to_owned(),
            appearance: Appearance {
                age_visual,
                face,
                hair,
                skin,
                body,
            },
            clothing: Clothing {
                top,
                bottom,
                shoes,
                accessories,
            },
            personality_traits: text
                .personality_traits
                .iter()
                .map(|t| t.to_string())
                .collect(),
            distinctive_features: None,
            visual_style_notes: text.visual_style_notes.to_owned(),
        };
        Character::new(CharacterId::generate(), user, sheet, Origin::Preset, now)
    }
}

/// The built-in characters, in the order the app lists them.
pub const PRESETS: &[Preset] = &[
    Preset {
        id: "bunny-tori",
        master_description: "A small white bunny with long floppy ears, pink inner ears, round \
            black eyes and a tiny pink nose, wearing a red knitted scarf",
        korean: PresetText {
            name: "토리",
            appearance: [
                "아기 토끼",
                "동그란 까만 눈, 분홍 코",
                "하얀 털, 긴 귀",
                "하얀색",
                "작고 통통함",
            ],
            clothing: ["빨간 목도리", "없음", "없음", "빨간 털실 목도리"],
            personality_traits: &["호기심 많은", "다정한"],
            visual_style_notes: "부드러운 수채화, 따뜻한 색감",
        },
        english: PresetText {
            name: "Tori",
            appearance: [
                "a baby bunny",
                "round black eyes, pink nose",
                "white fur, long ears",
                "white",
                "small and round",
            ],
            clothing: ["red scarf", "none", "none", "a red knitted scarf"],
            personality_traits: &["curious", "kind"],
            visual_style_notes: "soft watercolor, warm colors",
        },
    },
    Preset {
        id: "dino-ddori",
        master_description: "A friendly little green dinosaur with a round belly, small orange \
            spikes along its back, big shiny eyes and a wide smile, wearing a yellow backpack",
        korean: PresetText {
            name: "또리",
            appearance: [
                "아기 공룡",
                "큰 반짝이는 눈, 활짝 웃는 입",
                "없음",
                "초록색",
                "배가 동그람",
            ],
            clothing: ["없음", "없음", "없음", "노란 가방"],
            personality_traits: &["씩씩한", "장난꾸러기"],
            visual_style_notes: "밝은 만화풍, 선명한 색",
        },
        english: PresetText {
            name: "Ddori",
            appearance: [
                "a baby dinosaur",
                "big shiny eyes, wide smile",
                "none",
                "green",
                "round belly",
            ],
            clothing: ["none", "none", "none", "a yellow backpack"],
            personality_traits: &["brave", "playful"],
            visual_style_notes: "bright cartoon, vivid colors",
        },
    },
    Preset {
        id: "girl-haru",
        master_description: "A six-year-old girl with a short black bob and rosy cheeks, wearing \
            a yellow raincoat, blue jeans and red rain boots",
        korean: PresetText {
            name: "하루",
            appearance: [
                "여섯 살",
                "발그레한 볼",
                "짧은 검은 단발",
                "밝은 피부",
                "작은 체구",
            ],
            clothing: ["노란 비옷", "청바지", "빨간 장화", "없음"],
            personality_traits: &["밝은", "용감한"],
            visual_style_notes: "부드러운 수채화",
        },
        english: PresetText {
            name: "Haru",
            appearance: [
                "six years old",
                "rosy cheeks",
                "short black bob",
                "light skin",
                "small",
            ],
            clothing: ["yellow raincoat", "blue jeans", "red rain boots", "none"],
            personality_traits: &["cheerful", "brave"],
            visual_style_notes: "soft watercolor",
        },
    },
    Preset {
        id: "robot-bori",
        master_description: "A small round silver robot with a blue screen face showing a smile, \
            short antenna with a glowing yellow tip and little wheels instead of feet",
        korean: PresetText {
            name: "보리",
            appearance: [
                "작은 로봇",
                "웃는 얼굴이 보이는 파란 화면",
                "노란 불빛 안테나",
                "은색",
                "동그란 몸, 바퀴",
            ],
            clothing: ["없음", "없음", "바퀴", "없음"],
            personality_traits: &["똑똑한", "친절한"],
            visual_style_notes: "깔끔한 3D 느낌",
        },
        english: PresetText {
            name: "Bori",
            appearance: [
                "a small robot",
                "a blue screen with a smile",
                "an antenna with a yellow light",
                "silver",
                "round body on wheels",
            ],
            clothing: ["none", "none", "wheels", "none"],
            personality_traits: &["clever", "friendly"],
            visual_style_notes: "clean 3D look",
        },
    },
];

/// The preset `id`, if there is one.
pub fn preset(id: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_made_and_read_back_and_nothing_else_is_one() {
        let id = CharacterId::generate();
        assert_eq!(CharacterId::parse(id.as_str()), Ok(id));
        for bad in [
            "",
            "ch_",
            "bk_0123",
            "ch_../../etc",
            &format!("ch_{}", "g".repeat(32)),
        ] {
            assert!(CharacterId::parse(bad).is_err(), "{bad}");
        }
        for preset in PRESETS {
            for language in [None, Some("en")] {
                let (_, text) = preset.text(language);
                assert!(text.name.chars().count() <= 40 && text.personality_traits.len() <= 10);
                for part in text.appearance.iter().chain(&text.clothing) {
                    assert!(!part.is_empty() && part.chars().count() <= 80, "{part}");
                }
            }
            let words = preset.master_description.split_whitespace().count();
            assert!((10..=60).contains(&words), "{}", preset.id);
            assert!(
                preset.master_description.is_ascii(),
                "English for the illustrator"
            );
        }
        assert!(preset("dino-ddori").is_some() && preset("nope").is_none());
        for origin in [
            Origin::Sheet,
            Origin::Preset,
            Origin::Photo,
            Origin::Drawing,
        ] {
            assert_eq!(Origin::parse(origin.as_str()), Ok(origin));
        }
    }
}
