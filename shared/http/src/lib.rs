//! The HTTP API: one router, run by `lambda_http` in each function (its family's routes) and whole
//! by the local server, so the same request meets the same code in both.

pub mod auth;
pub mod edges;
pub mod endpoints;
pub mod error;
pub mod extract;
pub mod lambda;
pub mod limits;
pub mod request_id;
mod routes;

pub use endpoints::{Endpoint, endpoints};
pub use storybook_core::catalogue::Family;

// The layers below, under the names the handlers use (`crate::domain`, `crate::ports`, ...).
use storybook_core::{
    app, book_files, book_records, catalogue, config, domain, metrics, ports, spend,
};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use error::{ApiError, envelope};
use std::sync::Arc;

/// What every handler may use: the application (ports, settings, clock) and the per-process
/// first line of the rate limits.
#[derive(Clone)]
pub struct AppState {
    pub app: app::App,
    pub limiter: Arc<limits::LocalLimiter>,
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
        settings: config::Settings,
    ) -> Self {
        Self::of(app::App::new(store, blobs, queue, hasher, settings))
    }

    /// The HTTP layer's state over `app`.
    pub fn of(app: app::App) -> Self {
        let limiter = Arc::new(limits::LocalLimiter::new(&app.settings.limits));
        Self { app, limiter }
    }
}

/// The routes of `families`, with the API's fallbacks, not yet wrapped in [`with_edges`].
pub fn api(state: AppState, families: &[Family]) -> Router {
    let mut router = Router::new();
    for endpoint in endpoints(families) {
        router = router.route(endpoint.path, endpoint.handler);
    }
    router
        .fallback(|uri: axum::http::Uri| async move {
            ApiError::NotFound {
                resource: "route",
                id: uri.path().to_owned(),
            }
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
}

/// What every answer passes through: request id and log span, panic catching, body limit.
pub fn with_edges(router: Router, settings: &config::Settings) -> Router {
    let router = router
        .layer(axum::middleware::from_fn(limits::headers))
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_panic: Box<dyn std::any::Any + Send>| {
                tracing::error!("a handler panicked");
                envelope(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL_ERROR",
                    "Something went wrong on our side",
                    None,
                )
                .into_response()
            },
        ))
        .layer(axum::middleware::from_fn(edges::security_headers))
        .layer(axum::middleware::from_fn(request_id::middleware));
    match edges::cors(&settings.cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// The whole API for `families`, ready to serve.
pub fn app(state: AppState, families: &[Family]) -> Router {
    let settings = state.settings.clone();
    with_edges(api(state, families), &settings)
}
