//! Provider ports (story writer, moderator, illustrator, narrator), shaped for real providers
//! (a prompt, a style, a seed, a reference), and the offline implementations local mode and tests
//! use.

pub mod offline;

use crate::domain::book::{BookRequest, Language, Style};
use async_trait::async_trait;
use bytes::Bytes;
use std::sync::Arc;

/// Why a provider call failed; each maps to one of the seed's job `ErrorCode`s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider timed out")]
    Timeout,
    #[error("the provider is rate limiting us")]
    RateLimited,
    #[error("the provider answered something we cannot use: {0}")]
    Malformed(String),
    #[error("the provider failed: {0}")]
    Failed(String),
}

/// A story: a title and one text per page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrittenStory {
    pub title: String,
    pub pages: Vec<String>,
}

#[async_trait]
pub trait StoryWriter: Send + Sync {
    async fn write(&self, request: &BookRequest) -> Result<WrittenStory, ProviderError>;
}

/// What moderation decided about a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Refused, with the reason a parent may read.
    Refused(String),
}

#[async_trait]
pub trait Moderator: Send + Sync {
    async fn check(&self, text: &str) -> Result<Verdict, ProviderError>;
}

/// What keeps a character looking the same on every page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharacterReference {
    pub name: String,
    pub description: Option<String>,
    /// Real providers get an image; the offline illustrator derives its palette from this.
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImagePrompt {
    pub prompt: String,
    pub negative_prompt: String,
    pub style: Style,
    /// Varies per page so that scenes differ; the same prompt and seed give the same picture.
    pub seed: u64,
    pub reference: CharacterReference,
    /// The cover is composed differently.
    pub cover: bool,
}

#[async_trait]
pub trait Illustrator: Send + Sync {
    /// A PNG.
    async fn illustrate(&self, prompt: &ImagePrompt) -> Result<Bytes, ProviderError>;
}

#[async_trait]
pub trait Narrator: Send + Sync {
    /// A WAV file of `text` read aloud.
    async fn narrate(&self, text: &str, language: Language) -> Result<Bytes, ProviderError>;
}

/// The providers a pipeline runs with.
#[derive(Clone)]
pub struct Providers {
    pub writer: Arc<dyn StoryWriter>,
    pub moderator: Arc<dyn Moderator>,
    pub illustrator: Arc<dyn Illustrator>,
    pub narrator: Arc<dyn Narrator>,
}

impl Providers {
    /// Deterministic, network-free providers that make real text, PNGs and WAVs.
    pub fn offline() -> Self {
        Self {
            writer: Arc::new(offline::OfflineWriter),
            moderator: Arc::new(offline::OfflineModerator),
            illustrator: Arc::new(offline::OfflineIllustrator),
            narrator: Arc::new(offline::OfflineNarrator),
        }
    }
}

/// A stable 64-bit seed from text (FNV-1a): the same name always gives the same look.
pub fn seed_of(text: &str) -> u64 {
    text.bytes().fold(0xcbf29ce484222325u64, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x100000001b3)
    })
}
