//! The router: the declared routes of some families, each behind the authentication its
//! access needs (a layer, so no handler's argument order decides who is let in), and the edges
//! every answer passes through.

use crate::auth;
use crate::edges;
use crate::endpoints::{BodyLimit, endpoints};
use crate::error::{ApiError, ErrorCode, envelope};
use crate::limits;
use crate::request_id;
use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use storybook_core::catalogue::{Access, Family};
use storybook_core::config;
use storybook_core::usecases::Refusal;

/// The routes of `families`, with the API's fallbacks, not yet wrapped in [`with_edges`].
pub fn api(state: AppState, families: &[Family]) -> Router {
    let mut router = Router::new();
    // A picture's request: the file, its fields and the multipart framing.
    let upload_limit = state.config.upload_max_bytes + 1024 * 1024;
    for endpoint in endpoints(families) {
        let handler = match endpoint.body {
            BodyLimit::Upload => endpoint.handler.layer(DefaultBodyLimit::max(upload_limit)),
            BodyLimit::Api => endpoint.handler,
        };
        let handler = match endpoint.access {
            Access::Public => handler,
            access => handler.route_layer(axum::middleware::from_fn_with_state(
                auth::Guard {
                    state: state.clone(),
                    access,
                    class: endpoint.class,
                },
                auth::authenticate,
            )),
        };
        router = router.route(endpoint.path, handler);
    }
    router
        .fallback(|uri: axum::http::Uri| async move {
            ApiError::from(Refusal::not_found("route", uri.path()))
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
}

/// What every answer passes through: request id and log span, panic catching, body limit.
pub fn with_edges(router: Router, config: &config::Config) -> Router {
    let router = router
        .layer(axum::middleware::from_fn(limits::headers))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            |_panic: Box<dyn std::any::Any + Send>| {
                tracing::error!("a handler panicked");
                envelope(
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    ErrorCode::InternalError,
                    "Something went wrong on our side",
                    None,
                )
                .into_response()
            },
        ))
        .layer(axum::middleware::from_fn(edges::security_headers))
        .layer(axum::middleware::from_fn(request_id::middleware));
    match edges::cors(&config.cors_origins) {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// The whole API for `families`, ready to serve.
pub fn app(state: AppState, families: &[Family]) -> Router {
    let config = state.config.clone();
    with_edges(api(state, families), &config)
}
