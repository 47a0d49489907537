//! What the product's operations run over: the ports, the settings and the clock. The HTTP
//! layer, the step worker and the scheduled functions each hold one.

use crate::clock::Clock;
use crate::config::Config;
use crate::domain::credential::CredentialHasher;
use crate::ports::{BlobStore, Marketplace, NotGiven, Printer, StepQueue, Store, Studio};
use std::sync::Arc;

#[derive(Clone)]
pub struct App {
    pub store: Arc<dyn Store>,
    pub blobs: Arc<dyn BlobStore>,
    pub queue: Arc<dyn StepQueue>,
    /// The providers' calls made while the caller waits: only the studio function (and local
    /// mode) is given them.
    pub studio: Arc<dyn Studio>,
    /// The App Store and Google Play: only the credits function (and local mode) is given them.
    pub marketplace: Arc<dyn Marketplace>,
    /// The printer of paid-for copies: only the studio function (and local mode) is given it.
    pub printer: Arc<dyn Printer>,
    pub hasher: CredentialHasher,
    pub config: Arc<Config>,
    /// What "now" is for days, streaks and daily caps.
    pub clock: Clock,
}

impl App {
    pub fn new(
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
        queue: Arc<dyn StepQueue>,
        hasher: CredentialHasher,
        config: Config,
    ) -> Self {
        Self {
            store,
            blobs,
            queue,
            studio: Arc::new(NotGiven),
            marketplace: Arc::new(NotGiven),
            printer: Arc::new(NotGiven),
            hasher,
            config: Arc::new(config),
            clock: Clock::system(),
        }
    }

    /// The same application, given the studio.
    pub fn with_studio(mut self, studio: Arc<dyn Studio>) -> Self {
        self.studio = studio;
        self
    }

    /// The same application, given the printer.
    pub fn with_printer(mut self, printer: Arc<dyn Printer>) -> Self {
        self.printer = printer;
        self
    }

    /// The same application, given the stores.
    pub fn with_marketplace(mut self, marketplace: Arc<dyn Marketplace>) -> Self {
        self.marketplace = marketplace;
        self
    }
}
