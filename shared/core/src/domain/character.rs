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
}

/// How the character looks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appearance {
    pub age_visual: String,
    pub face: String,
    pub hair: String,
    pub skin: String,
    pub body: String,
}

/// What the character wears.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    Photo,
    Drawing,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Sheet => "sheet",
            Origin::Photo => "photo",
            Origin::Drawing => "drawing",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "sheet" => Ok(Origin::Sheet),
            "photo" => Ok(Origin::Photo),
            "drawing" => Ok(Origin::Drawing),
            other => Err(Invalid::new(format!("unknown character origin {other:?}"))),
        }
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
    pub created_at: DateTime<Utc>,
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
        for origin in [Origin::Sheet, Origin::Photo, Origin::Drawing] {
            assert_eq!(Origin::parse(origin.as_str()), Ok(origin));
        }
    }
}
