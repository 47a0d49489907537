//! The providers a pipeline calls, one per capability.

use super::fetch::{FetchPolicy, SafeFetcher};
use super::offline::{
    OfflineDesigner, OfflineIllustrator, OfflineModerator, OfflineNarrator, OfflineWriter,
};
use super::{CharacterDesigner, Illustrator, Moderator, Narrator, ProviderNames, StoryWriter};
use std::sync::Arc;

/// The providers a pipeline runs with.
#[derive(Clone)]
pub struct Providers {
    pub writer: Arc<dyn StoryWriter>,
    pub moderator: Arc<dyn Moderator>,
    pub illustrator: Arc<dyn Illustrator>,
    pub narrator: Arc<dyn Narrator>,
    /// Fills in character sheets (the story's chat model, which also sees pictures).
    pub designer: Arc<dyn CharacterDesigner>,
    /// Fetches the URLs illustrators answer with.
    pub fetcher: SafeFetcher,
    /// Which provider serves each capability, for the capabilities route and the logs.
    pub names: ProviderNames,
}

impl Providers {
    /// Deterministic, network-free providers that make real text, PNGs and WAVs.
    pub fn offline() -> Self {
        Self {
            writer: Arc::new(OfflineWriter),
            moderator: Arc::new(OfflineModerator),
            illustrator: Arc::new(OfflineIllustrator),
            narrator: Arc::new(OfflineNarrator),
            designer: Arc::new(OfflineDesigner),
            fetcher: SafeFetcher::new(FetchPolicy::default()),
            names: ProviderNames::offline(),
        }
    }
}
