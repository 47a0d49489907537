//! Which providers serve, from the environment, under the providers' own variable names:
//! `OPENAI_API_KEY`/`OPENAI_BASE_URL` (any OpenAI-compatible server), `REPLICATE_API_TOKEN`,
//! `FAL_KEY`. With no key set the offline providers serve. Model names are configuration, never
//! code: the defaults below are the one place they are written, and each has its variable.

use super::chain::{Breakers, Guarded, IllustratorChain};
use super::fal::{FalImages, FalSettings};
use super::fetch::{FetchPolicy, SafeFetcher};
use super::offline::OfflineModerator;
use super::openai::{
    ChatCharacterDesigner, ChatStoryWriter, ModerationEndpoint, OpenAi, OpenAiImages, OpenAiSpeech,
    VoiceChoice,
};
use super::replicate::{ReplicateImages, ReplicateSettings};
use super::wire::{ApiSecret, RetryPolicy};
use super::{Illustrator, Metered, Moderator, ProviderError, ProviderNames, Providers, Verdict};
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use storybook_core::clock::Clock;
use storybook_core::config::providers::{
    Lookup, MODERATION_MODEL, SPEECH_MODEL, STORY_MODEL, image_chain, list, or, value,
};
use storybook_core::domain::Invalid;
use storybook_core::domain::breaker::BreakerPolicy;
use storybook_core::ports::store::BreakerStore;

/// The OpenAI-compatible provider's settings.
#[derive(Debug, Clone)]
pub struct OpenAiSettings {
    pub api: OpenAi,
    pub story_model: String,
    /// Fills in character sheets, from words or a picture: a vision-capable chat model.
    pub character_model: String,
    pub moderation_model: String,
    pub image_model: String,
    pub image_size: String,
    pub image_quality: Option<String>,
    pub speech_model: String,
    pub voices: VoiceChoice,
    pub speech_format: &'static str,
}

/// Every provider setting, read once at start-up.
#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub openai: Option<OpenAiSettings>,
    pub replicate: Option<ReplicateSettings>,
    pub fal: Option<FalSettings>,
    /// The image providers in the order they are tried.
    pub image_chain: Vec<String>,
    pub story_timeout: Duration,
    pub image_timeout: Duration,
    pub speech_timeout: Duration,
    /// The largest narration of one page kept (`MAX_AUDIO_BYTES`).
    pub max_audio_bytes: u64,
    pub fetch: FetchPolicy,
    pub breaker: BreakerPolicy,
    /// Which provider serves each capability (decided with the core's configuration).
    names: ProviderNames,
}

impl Default for ProviderSettings {
    /// Offline everywhere.
    fn default() -> Self {
        Self::from_lookup(&|_| None).expect("defaults are valid")
    }
}

fn seconds(lookup: Lookup, name: &str, default: u64) -> Result<Duration, Invalid> {
    match value(lookup, name) {
        None => Ok(Duration::from_secs(default)),
        Some(raw) => raw
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| Invalid::new(format!("{name} must be a positive number of seconds"))),
    }
}

fn number<T: std::str::FromStr>(lookup: Lookup, name: &str, default: T) -> Result<T, Invalid> {
    match value(lookup, name) {
        None => Ok(default),
        Some(raw) => raw
            .parse()
            .map_err(|_| Invalid::new(format!("{name} has an unusable value"))),
    }
}

/// The asset hosts of the providers we know (their output URLs), fetched when nothing else is
/// configured.
const ASSET_HOSTS: &str = "replicate.delivery,*.replicate.delivery,fal.media,*.fal.media,oaidalleapiprodscus.blob.core.windows.net";

impl ProviderSettings {
    pub fn from_env() -> Result<Self, Invalid> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: Lookup) -> Result<Self, Invalid> {
        let story_timeout = seconds(lookup, "STORY_TIMEOUT_SECONDS", 30)?;
        let image_timeout = seconds(lookup, "IMAGE_TIMEOUT_SECONDS", 90)?;
        let speech_timeout = seconds(lookup, "SPEECH_TIMEOUT_SECONDS", 30)?;
        let retry = RetryPolicy {
            retries: number(lookup, "PROVIDER_RETRIES", RetryPolicy::default().retries)?,
            ..RetryPolicy::default()
        };
        let poll_every = seconds(lookup, "PROVIDER_POLL_SECONDS", 1)?;
        let openai = value(lookup, "OPENAI_API_KEY").map(|key| {
            let format = match or(lookup, "SPEECH_FORMAT", "mp3").as_str() {
                "wav" => "wav",
                _ => "mp3",
            };
            OpenAiSettings {
                api: OpenAi {
                    base_url: or(lookup, "OPENAI_BASE_URL", "https://api.openai.com/v1"),
                    key: ApiSecret::new(key),
                    retry,
                },
                story_model: or(lookup, "STORY_MODEL", STORY_MODEL),
                character_model: or(
                    lookup,
                    "CHARACTER_MODEL",
                    &or(lookup, "STORY_MODEL", STORY_MODEL),
                ),
                moderation_model: or(lookup, "MODERATION_MODEL", MODERATION_MODEL),
                image_model: or(lookup, "IMAGE_MODEL", "gpt-image-1"),
                image_size: or(lookup, "IMAGE_SIZE", "1536x1024"),
                image_quality: value(lookup, "IMAGE_QUALITY"),
                speech_model: or(lookup, "SPEECH_MODEL", SPEECH_MODEL),
                voices: VoiceChoice {
                    default: or(lookup, "SPEECH_VOICE", "nova"),
                    by_language: list(lookup, "SPEECH_VOICES", "")
                        .iter()
                        .filter_map(|pair| pair.split_once(':'))
                        .map(|(language, voice)| {
                            (language.trim().to_owned(), voice.trim().to_owned())
                        })
                        .collect::<BTreeMap<_, _>>(),
                },
                speech_format: format,
            }
        });
        let replicate = value(lookup, "REPLICATE_API_TOKEN").map(|token| ReplicateSettings {
            base_url: or(lookup, "REPLICATE_BASE_URL", "https://api.replicate.com/v1"),
            token: ApiSecret::new(token),
            model: or(lookup, "REPLICATE_MODEL", "black-forest-labs/flux-dev"),
            reference_model: Some(or(
                lookup,
                "REPLICATE_REFERENCE_MODEL",
                "black-forest-labs/flux-kontext-pro",
            )),
            aspect_ratio: or(lookup, "REPLICATE_ASPECT_RATIO", "3:2"),
            poll_every,
            timeout: image_timeout,
            retry,
        });
        let fal = value(lookup, "FAL_KEY").map(|key| FalSettings {
            base_url: or(lookup, "FAL_BASE_URL", "https://queue.fal.run"),
            key: ApiSecret::new(key),
            model: or(lookup, "FAL_MODEL", "fal-ai/flux/dev"),
            reference_model: Some(or(lookup, "FAL_REFERENCE_MODEL", "fal-ai/flux-pro/kontext")),
            image_size: or(lookup, "FAL_IMAGE_SIZE", "landscape_4_3"),
            poll_every,
            timeout: image_timeout,
            retry,
        });
        let names = ProviderNames::from_lookup(lookup)?;
        let image_chain = image_chain(lookup)?;
        let breaker = BreakerPolicy {
            threshold: number(
                lookup,
                "BREAKER_FAILURES",
                BreakerPolicy::default().threshold,
            )?,
            window: chrono::Duration::from_std(seconds(lookup, "BREAKER_WINDOW_SECONDS", 60)?)
                .map_err(|_| Invalid::new("BREAKER_WINDOW_SECONDS is too large"))?,
            cooldown: chrono::Duration::from_std(seconds(lookup, "BREAKER_COOLDOWN_SECONDS", 30)?)
                .map_err(|_| Invalid::new("BREAKER_COOLDOWN_SECONDS is too large"))?,
            ..BreakerPolicy::default()
        };
        Ok(Self {
            openai,
            replicate,
            fal,
            image_chain,
            story_timeout,
            image_timeout,
            speech_timeout,
            max_audio_bytes: number(lookup, "MAX_AUDIO_BYTES", super::openai::MAX_AUDIO_BYTES)?,
            fetch: FetchPolicy {
                allowed_hosts: list(lookup, "ASSET_HOSTS", ASSET_HOSTS),
                max_bytes: number(lookup, "MAX_IMAGE_BYTES", 10 * 1024 * 1024)?,
                timeout: image_timeout,
                ..FetchPolicy::default()
            },
            breaker,
            names,
        })
    }

    /// Which provider serves each capability, in the order they are tried.
    pub fn names(&self) -> ProviderNames {
        self.names.clone()
    }

    /// The providers these settings name, each real one behind its breaker in `store`.
    pub fn build(&self, store: Arc<dyn BreakerStore>, clock: Clock) -> Providers {
        let breakers = Breakers::new(store, self.breaker, clock);
        let guard = |name: &str| (name.to_owned(), breakers.clone());
        let mut providers = Providers::offline();
        providers.names = self.names();
        providers.fetcher = SafeFetcher::new(self.fetch.clone());
        if let Some(openai) = &self.openai {
            let (name, breakers) = guard("openai-chat");
            providers.writer = Arc::new(Guarded::<dyn super::StoryWriter> {
                name,
                breakers,
                inner: Arc::new(ChatStoryWriter::new(
                    openai.api.clone(),
                    &openai.story_model,
                    self.story_timeout,
                )),
            });
            let (name, breakers) = guard("openai-chat");
            providers.designer = Arc::new(Guarded::<dyn super::CharacterDesigner> {
                name,
                breakers,
                inner: Arc::new(ChatCharacterDesigner::new(
                    openai.api.clone(),
                    &openai.character_model,
                    self.story_timeout,
                )),
            });
            let (name, breakers) = guard("openai-moderation");
            providers.moderator = Arc::new(WordsThenModel {
                model: Arc::new(Guarded::<dyn Moderator> {
                    name,
                    breakers,
                    inner: Arc::new(ModerationEndpoint::new(
                        openai.api.clone(),
                        &openai.moderation_model,
                        self.story_timeout,
                    )),
                }),
            });
            let (name, breakers) = guard("openai-speech");
            providers.narrator = Arc::new(Guarded::<dyn super::Narrator> {
                name,
                breakers,
                inner: Arc::new(
                    OpenAiSpeech::new(
                        openai.api.clone(),
                        &openai.speech_model,
                        openai.voices.clone(),
                        openai.speech_format,
                        self.speech_timeout,
                    )
                    .with_max_bytes(self.max_audio_bytes),
                ),
            });
        }
        if !self.image_chain.is_empty() {
            let links = self
                .image_chain
                .iter()
                .filter_map(|name| {
                    let inner: Arc<dyn Illustrator> = match name.as_str() {
                        "fal" => Arc::new(FalImages::new(self.fal.clone()?)),
                        "replicate" => Arc::new(ReplicateImages::new(self.replicate.clone()?)),
                        "openai" => {
                            let openai = self.openai.as_ref()?;
                            Arc::new(OpenAiImages::new(
                                openai.api.clone(),
                                &openai.image_model,
                                &openai.image_size,
                                openai.image_quality.clone(),
                                self.image_timeout,
                            ))
                        }
                        _ => return None,
                    };
                    Some(Guarded {
                        name: name.clone(),
                        breakers: breakers.clone(),
                        inner,
                    })
                })
                .collect();
            providers.illustrator = Arc::new(IllustratorChain { links });
        }
        providers
    }
}

/// The local list of forbidden words first (free, instant, Korean and English), then the model.
struct WordsThenModel {
    model: Arc<dyn Moderator>,
}

#[async_trait]
impl Moderator for WordsThenModel {
    async fn check(&self, text: &str) -> Result<Metered<Verdict>, ProviderError> {
        let listed = OfflineModerator.check(text).await?;
        if matches!(listed.value, Verdict::Refused(_)) {
            return Ok(listed);
        }
        self.model.check(text).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> Result<ProviderSettings, Invalid> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProviderSettings::from_lookup(&move |name| map.get(name).cloned())
    }

    #[test]
    fn offline_without_keys_and_a_chain_of_what_is_configured() {
        let none = settings(&[]).unwrap();
        assert!(none.openai.is_none() && none.image_chain.is_empty());
        let some = settings(&[("FAL_KEY", "k"), ("OPENAI_API_KEY", "sk")]).unwrap();
        assert_eq!(some.image_chain, ["fal", "openai"]);
        let names = some.names();
        assert_eq!(names.images, ["fal", "openai"]);
        assert_eq!(names.story, "openai:gpt-4o-mini");
        assert_eq!(none.names(), crate::providers::ProviderNames::offline());
        let chosen = settings(&[
            ("FAL_KEY", "k"),
            ("OPENAI_API_KEY", "sk"),
            ("IMAGE_PROVIDERS", "openai, fal"),
        ])
        .unwrap();
        assert_eq!(chosen.image_chain, ["openai", "fal"]);
        let error = settings(&[("IMAGE_PROVIDERS", "replicate")]).unwrap_err();
        assert!(error.0.contains("replicate"));
        let story = settings(&[("OPENAI_API_KEY", "sk"), ("STORY_MODEL", "llama3.1")]).unwrap();
        assert_eq!(story.openai.unwrap().story_model, "llama3.1");
        assert!(settings(&[("IMAGE_TIMEOUT_SECONDS", "-1")]).is_err());
    }

    #[test]
    fn keys_do_not_print() {
        let some = settings(&[
            ("OPENAI_API_KEY", "sk-secret-value"),
            ("FAL_KEY", "fal-secret"),
        ])
        .unwrap();
        let printed = format!("{some:?}");
        assert!(!printed.contains("secret"), "{printed}");
    }
}
