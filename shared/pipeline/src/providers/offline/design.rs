//! The offline character designer: a sheet from the parent's words, or from the colours a
//! picture is mostly made of. Deterministic, and no network.

use crate::providers::designer::{self, WrittenAppearance, WrittenClothing, WrittenSheet};
use crate::providers::{CharacterDesigner, DesignBrief, Metered, ProviderError, Usage};
use async_trait::async_trait;
use storybook_core::domain::character::{Sheet, UploadKind};

pub struct OfflineDesigner;

/// A sheet's English description, in the offline designer's few words.
fn written(name: &str, look: &str, traits: Vec<String>, colour: &str) -> WrittenSheet {
    WrittenSheet {
        name: name.to_owned(),
        master_description: format!(
            "{name}, a friendly cartoon character: {look}, wearing a {colour} top and a \
             {colour} cap, with big round eyes and a warm smile"
        ),
        appearance: WrittenAppearance {
            age_visual: "a young child".into(),
            face: "round face, big round eyes, warm smile".into(),
            hair: format!("short {colour} hair"),
            skin: "warm".into(),
            body: "small and sturdy".into(),
        },
        clothing: WrittenClothing {
            top: format!("{colour} top"),
            bottom: "blue trousers".into(),
            shoes: "white sneakers".into(),
            accessories: format!("{colour} cap"),
        },
        personality_traits: traits,
        distinctive_features: vec![format!("{colour} cap")],
        visual_style_notes: "soft outlines, bright flat colours".into(),
    }
}

#[async_trait]
impl CharacterDesigner for OfflineDesigner {
    async fn design(&self, brief: &DesignBrief) -> Result<Metered<Sheet>, ProviderError> {
        let sheet = match brief {
            DesignBrief::Words(words) => {
                let traits: Vec<String> = words.traits.iter().take(10).cloned().collect();
                let look = format!("aged {}", words.age.chars().take(20).collect::<String>());
                written(&words.name, &look, traits, "yellow")
            }
            DesignBrief::Picture {
                kind,
                colours,
                name,
                ..
            } => {
                let main = colours.first().copied().unwrap_or("orange");
                let look = match kind {
                    UploadKind::Photo => format!("drawn from a photo in {}", colours.join(" and ")),
                    UploadKind::Drawing => {
                        format!(
                            "redrawn from a child's drawing in {}",
                            colours.join(" and ")
                        )
                    }
                };
                let name = name.as_deref().unwrap_or("Sunny");
                written(name, &look, vec!["cheerful".into(), "curious".into()], main)
            }
        };
        let sheet = designer::check(sheet, brief).map_err(ProviderError::Malformed)?;
        Ok(Metered {
            value: sheet,
            usage: Usage::new("offline", "offline"),
        })
    }
}
