//! Which providers serve each capability, by name, from the variables the providers' own
//! settings read (`OPENAI_API_KEY`, `REPLICATE_API_TOKEN`, `FAL_KEY`, `IMAGE_PROVIDERS`, the
//! model names). Every function can say which providers serve (the capabilities answer) without
//! linking them; the step worker's provider settings build on the same decisions.

use crate::domain::Invalid;
use serde::Serialize;

pub type Lookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The model names used when none is configured: the one place they are written.
pub const STORY_MODEL: &str = "gpt-4o-mini";
pub const MODERATION_MODEL: &str = "omni-moderation-latest";
pub const SPEECH_MODEL: &str = "gpt-4o-mini-tts";

/// The image providers tried when `IMAGE_PROVIDERS` names none: each one with a key, in this order.
const IMAGE_ORDER: [&str; 3] = ["fal", "replicate", "openai"];

/// A variable's trimmed value; unset and blank are the same.
pub fn value(lookup: Lookup, name: &str) -> Option<String> {
    lookup(name)
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

pub fn or(lookup: Lookup, name: &str, default: &str) -> String {
    value(lookup, name).unwrap_or_else(|| default.to_owned())
}

/// A comma-separated list.
pub fn list(lookup: Lookup, name: &str, default: &str) -> Vec<String> {
    or(lookup, name, default)
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The image providers in the order they are tried: `IMAGE_PROVIDERS`, each of which must have
/// its key, or every provider with a key.
pub fn image_chain(lookup: Lookup) -> Result<Vec<String>, Invalid> {
    let configured = |name: &str| match name {
        "fal" => value(lookup, "FAL_KEY").is_some(),
        "replicate" => value(lookup, "REPLICATE_API_TOKEN").is_some(),
        "openai" => value(lookup, "OPENAI_API_KEY").is_some(),
        _ => false,
    };
    match value(lookup, "IMAGE_PROVIDERS") {
        Some(_) => {
            let chain = list(lookup, "IMAGE_PROVIDERS", "");
            if let Some(missing) = chain.iter().find(|name| !configured(name)) {
                return Err(Invalid::new(format!(
                    "IMAGE_PROVIDERS names {missing:?}, which is unknown or has no key set"
                )));
            }
            Ok(chain)
        }
        None => Ok(IMAGE_ORDER
            .into_iter()
            .filter(|name| configured(name))
            .map(str::to_owned)
            .collect()),
    }
}

/// The names of the providers serving each capability, in the order they are tried.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ProviderNames {
    pub story: String,
    pub moderation: String,
    pub images: Vec<String>,
    pub speech: String,
}

impl ProviderNames {
    /// Every capability served offline.
    pub fn offline() -> Self {
        Self {
            story: "offline".into(),
            moderation: "offline".into(),
            images: vec!["offline".into()],
            speech: "offline".into(),
        }
    }

    /// Which providers the configuration names: OpenAI's models where its key is set, the image
    /// chain, and offline for the rest.
    pub fn from_lookup(lookup: Lookup) -> Result<Self, Invalid> {
        let mut names = Self::offline();
        if value(lookup, "OPENAI_API_KEY").is_some() {
            names.story = format!("openai:{}", or(lookup, "STORY_MODEL", STORY_MODEL));
            names.moderation = format!(
                "openai:{}",
                or(lookup, "MODERATION_MODEL", MODERATION_MODEL)
            );
            names.speech = format!("openai:{}", or(lookup, "SPEECH_MODEL", SPEECH_MODEL));
        }
        let chain = image_chain(lookup)?;
        if !chain.is_empty() {
            names.images = chain;
        }
        Ok(names)
    }
}
