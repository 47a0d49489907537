//! What a character's sheet must hold, whoever fills it in: the JSON schema a chat model is held
//! to, the instructions it is given, and the checks every answer passes (the same length and
//! markup rules as a sheet the parent writes).

use super::DesignBrief;
use serde::Deserialize;
use serde_json::{Value, json};
use storybook_core::domain::character::{Appearance, Clothing, Sheet, UploadKind};
use storybook_core::domain::sheet_rules;

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

/// The answer as a sheet, if it keeps the sheet rules (`domain::sheet_rules`: the same as a
/// sheet a parent writes). The parent's name, when they gave one, is kept whatever the model
/// wrote.
pub fn check(written: WrittenSheet, brief: &DesignBrief) -> Result<Sheet, String> {
    let given_name = match brief {
        DesignBrief::Words(words) => Some(words.name.clone()),
        DesignBrief::Picture { name, .. } => name.clone(),
    };
    let (a, c) = (written.appearance, written.clothing);
    let sheet = Sheet {
        name: given_name.unwrap_or(written.name),
        master_description: written.master_description,
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
        personality_traits: written.personality_traits,
        distinctive_features: Some(written.distinctive_features),
        visual_style_notes: written.visual_style_notes,
    };
    match sheet_rules::problems(&sheet).first() {
        None => Ok(sheet),
        Some(problem) => Err(format!(
            "{} breaks the sheet's rules: {:?}",
            problem.place.join("."),
            problem.broken
        )),
    }
}
