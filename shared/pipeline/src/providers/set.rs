//! The providers a pipeline calls, one per capability.

use super::fetch::{FetchPolicy, SafeFetcher};
use super::offline::{OfflineIllustrator, OfflineModerator, OfflineNarrator, OfflineWriter};
use super::{Illustrator, Moderator, Narrator, ProviderNames, StoryWriter};
use std::sync::Arc;

/// The providers a pipeline runs with.
#[derive(Clone)]
pub struct Providers {
    pub writer: Arc<dyn StoryWriter>,
    pub moderator: Arc<dyn Moderator>,
    pub illustrator: Arc<dyn Illustrator>,
    pub narrator: Arc<dyn Narrator>,
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
            fetcher: SafeFetcher::new(FetchPolicy::default()),
            names: ProviderNames::offline(),
        }
    }
}
