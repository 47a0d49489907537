//! What every handler holds: the application (ports, settings, clock) and the per-process first
//! line of the rate limits.

use crate::limiter::LocalLimiter;
use std::sync::Arc;
use storybook_core::{app, config, domain, ports};

/// What every handler may use: the application (ports, settings, clock) and the per-process
/// first line of the rate limits.
#[derive(Clone)]
pub struct AppState {
    pub app: app::App,
    pub limiter: Arc<LocalLimiter>,
}

impl std::ops::Deref for AppState {
    type Target = app::App;
    fn deref(&self) -> &app::App {
        &self.app
    }
}

impl std::ops::DerefMut for AppState {
    fn deref_mut(&mut self) -> &mut app::App {
        &mut self.app
    }
}

impl AppState {
    pub fn new(
        store: Arc<dyn ports::Store>,
        blobs: Arc<dyn ports::BlobStore>,
        queue: Arc<dyn ports::StepQueue>,
        hasher: domain::credential::CredentialHasher,
        config: config::Config,
    ) -> Self {
        Self::of(app::App::new(store, blobs, queue, hasher, config))
    }

    /// The HTTP layer's state over `app`.
    pub fn of(app: app::App) -> Self {
        let limiter = Arc::new(LocalLimiter::new(&app.config.limits));
        Self { app, limiter }
    }
}
