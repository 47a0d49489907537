//! What a character's sheet must hold, whoever fills it in: the JSON schema a chat model is held
//! to, the instructions it is given, and the checks every answer passes (the same length and
//! markup rules as a sheet the parent writes).

use super::DesignBrief;
use crate::domain::book::contains_markup;
use crate::domain::character::{Appearance, Clothing, Sheet, UploadKind};
use serde::Deserialize;
use serde_json::{Value, json};

/// A sheet as a model writes it.
#[derive(Debug, Deserialize)]
pub struct WrittenSheet {
    pub name: String,
    pub master_description: String,
    pub appearance: WrittenAppearance,
    pub clothing: WrittenClothing,
    pub personality_traits: Vec<String>,
    pub distinctive_features: Vec<String>,
    pub visual_style_notes: String,
}

#[derive(Debug, Deserialize)]
pub struct WrittenAppearance {
    pub age_visual: String,
    pub face: String,
    pub hair: String,
    pub skin: String,
    pub body: String,
}

#[derive(Debug, Deserialize)]
pub struct WrittenClothing {
    pub top: String,
    pub bottom: String,
    pub shoes: String,
    pub accessories: String,
}

/// The schema a chat model's answer is held to (strict structured output).
pub fn json_schema() -> Value {
    let text = json!({"type": "string"});
    let texts = json!({"type": "array", "items": {"type": "string"}});
    let object = |fields: &[&str]| {
        let properties: serde_json::Map<String, Value> = fields
            .iter()
            .map(|f| ((*f).to_owned(), text.clone()))
            .collect();
        json!({"type": "object", "properties": properties, "required": fields, "additionalProperties": false})
    };
    json!({
        "type": "object",
        "properties": {
            "name": text,
            "master_description": text,
            "appearance": object(&["age_visual", "face", "hair", "skin", "body"]),
            "clothing": object(&["top", "bottom", "shoes", "accessories"]),
            "personality_traits": texts,
            "distinctive_features": texts,
            "visual_style_notes": text,
        },
        "required": ["name", "master_description", "appearance", "clothing",
                     "personality_traits", "distinctive_features", "visual_style_notes"],
        "additionalProperties": false,
    })
}

/// The system message.
pub fn instructions(brief: &DesignBrief) -> String {
    let source = match brief {
        DesignBrief::Words(_) => "a parent's short description of a character".to_owned(),
        DesignBrief::Picture {
            kind: UploadKind::Photo,
            ..
        } => "a photo of a child. Turn the child into a friendly cartoon character: describe \
              hair, clothes and colours, never the face's identifying details, the place, or \
              anything written in the picture"
            .to_owned(),
        DesignBrief::Picture {
            kind: UploadKind::Drawing,
            ..
        } => "a child's drawing. Describe the character the child drew, as a picture-book \
              illustrator would redraw it, keeping its colours and its charm"
            .to_owned(),
    };
    format!(
        "You design characters for children's picture books. From {source}, fill in a \
         character sheet. master_description is one or two English sentences an illustrator \
         can draw from on every page (at most 400 characters). Other fields are short phrases \
         (at most 80 characters); 1 to 5 personality traits, up to 5 distinctive features. \
         Everything must be gentle and suitable for young children. No markup."
    )
}

/// The user message's text.
pub fn user_message(brief: &DesignBrief) -> String {
    match brief {
        DesignBrief::Words(words) => format!(
            "Name: {}\nAge: {}\nTraits: {}\nStyle: {}",
            words.name,
            words.age,
            words.traits.join(", "),
            words.style
        ),
        DesignBrief::Picture { name, style, .. } => match name {
            Some(name) => format!("The character's name is {name}. Style: {style}."),
            None => format!("Suggest a short, friendly name. Style: {style}."),
        },
    }
}

/// The answer as a sheet, if it keeps the rules: every text 1 to its limit in characters,
/// without markup or control characters, 1 to 10 traits and at most 10 features. The parent's
/// name, when they gave one, is kept whatever the model wrote.
pub fn check(written: WrittenSheet, brief: &DesignBrief) -> Result<Sheet, String> {
    let given_name = match brief {
        DesignBrief::Words(words) => Some(words.name.clone()),
        DesignBrief::Picture { name, .. } => name.clone(),
    };
    let name = given_name.unwrap_or(written.name);
    let (a, c) = (&written.appearance, &written.clothing);
    let texts: [(&str, &str, usize, usize); 12] = [
        ("name", &name, 1, 40),
        ("master_description", &written.master_description, 10, 400),
        ("visual_style_notes", &written.visual_style_notes, 1, 200),
        ("age_visual", &a.age_visual, 1, 40),
        ("face", &a.face, 1, 120),
        ("hair", &a.hair, 1, 120),
        ("skin", &a.skin, 1, 80),
        ("body", &a.body, 1, 80),
        ("top", &c.top, 1, 80),
        ("bottom", &c.bottom, 1, 80),
        ("shoes", &c.shoes, 1, 80),
        ("accessories", &c.accessories, 1, 80),
    ];
    let lists = written
        .personality_traits
        .iter()
        .chain(&written.distinctive_features)
        .map(|item| ("a list item", item.as_str(), 1, 60));
    for (field, value, min, max) in texts.into_iter().chain(lists) {
        let length = value.chars().count();
        if length < min || length > max {
            return Err(format!("{field} is {length} characters long"));
        }
        if contains_markup(value) || value.chars().any(char::is_control) {
            return Err(format!("{field} holds markup or control characters"));
        }
    }
    if !(1..=10).contains(&written.personality_traits.len())
        || written.distinctive_features.len() > 10
    {
        return Err("too few or too many traits or features".into());
    }
    let WrittenSheet {
        master_description,
        appearance: a,
        clothing: c,
        personality_traits,
        distinctive_features,
        visual_style_notes,
        ..
    } = written;
    Ok(Sheet {
        name,
        master_description,
        appearance: Appearance {
            age_visual: a.age_visual,
            face: a.face,
            hair: a.hair,
            skin: a.skin,
            body: a.body,
        },
        clothing: Clothing {
            top: c.top,
            bottom: c.bottom,
            shoes: c.shoes,
            accessories: c.accessories,
        },
        personality_traits,
        distinctive_features: Some(distinctive_features),
        visual_style_notes,
    })
}
