//! What the product's operations run over: the ports, the settings and the clock. The HTTP
//! layer, the step worker and the scheduled functions each hold one.

use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::credential::CredentialHasher;
use crate::ports::{BlobStore, StepQueue, Store};
use std::sync::Arc;

#[derive(Clone)]
pub struct App {
    pub store: Arc<dyn Store>,
    pub blobs: Arc<dyn BlobStore>,
    pub queue: Arc<dyn StepQueue>,
    pub hasher: CredentialHasher,
    pub settings: Arc<Settings>,
    /// What "now" is for days, streaks and daily caps.
    pub clock: Clock,
}

impl App {
    pub fn new(
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
        queue: Arc<dyn StepQueue>,
        hasher: CredentialHasher,
        settings: Settings,
    ) -> Self {
        Self {
            store,
            blobs,
            queue,
            hasher,
            settings: Arc::new(settings),
            clock: Clock::system(),
        }
    }
}
