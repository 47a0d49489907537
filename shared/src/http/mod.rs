//! The HTTP API: one router, run by `lambda_http` in each function (its family's routes) and whole
//! by the local server, so the same request meets the same code in both.

pub mod auth;
pub mod catalogue;
pub mod edges;
pub mod error;
pub mod extract;
pub mod limits;
pub mod request_id;
mod routes;

pub use catalogue::{Family, catalogue};

use crate::clock::Clock;
use crate::config::Settings;
use crate::domain::credential::CredentialHasher;
use crate::ports::{BlobStore, StepQueue, Store};
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use error::{ApiError, envelope};
use std::sync::Arc;

/// What every handler may use: the ports and the settings.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub blobs: Arc<dyn BlobStore>,
    pub queue: Arc<dyn StepQueue>,
    pub hasher: CredentialHasher,
    pub settings: Arc<Settings>,
    /// The per-process first line of the rate limits.
    pub limiter: Arc<limits::LocalLimiter>,
    /// What "now" is for days, streaks and daily caps.
    pub clock: Clock,
}

impl AppState {
    pub fn new(
        store: Arc<dyn Store>,
        blobs: Arc<dyn BlobStore>,
        queue: Arc<dyn StepQueue>,
        hasher: CredentialHasher,
        settings: Settings,
    ) -> Self {
        let limiter = Arc::new(limits::LocalLimiter::new(&settings.limits));
        Self {
            store,
            blobs,
            queue,
            hasher,
            settings: Arc::new(settings),
            limiter,
            clock: Clock::system(),
        }
    }
}

/// The routes of `families`, with the API's fallbacks, not yet wrapped in [`with_edges`].
pub fn api(state: AppState, families: &[Family]) -> Router {
    let mut router = Router::new();
    for endpoint in catalogue()
        .into_iter()
        .filter(|e| families.contains(&e.family))
    {
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
pub fn with_edges(router: Router, settings: &Settings) -> Router {
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
