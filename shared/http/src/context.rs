//! A request's context: where it came from (the client IP), which route it is, and the plain
//! request the use cases take.

use crate::state::AppState;
use axum::extract::{ConnectInfo, MatchedPath};
use axum::http::request::Parts;
use std::net::SocketAddr;
use storybook_core::usecases::Request;

/// The route as the log and the audit name it: `METHOD /path/{param}`.
pub fn route_of(parts: &Parts) -> String {
    format!("{} {}", parts.method, path_of(parts))
}

/// The route's path pattern (`/v1/books/{job_id}`), or the raw path when no route matched.
pub fn path_of(parts: &Parts) -> &str {
    parts
        .extensions
        .get::<MatchedPath>()
        .map(|p| p.as_str())
        .unwrap_or_else(|| parts.uri.path())
}

/// API Gateway's source IP on Lambda, the socket's peer locally, if either is known.
pub fn client_ip(parts: &Parts) -> Option<String> {
    use lambda_http::request::RequestContext;
    if let Some(RequestContext::ApiGatewayV2(context)) = parts.extensions.get::<RequestContext>()
        && let Some(ip) = &context.http.source_ip
    {
        return Some(ip.clone());
    }
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip().to_string())
}

/// The request as use cases see it, made by `caller`: client IP, route and the app's "now".
pub fn request_of<C>(state: &AppState, parts: &Parts, caller: C) -> Request<C> {
    Request {
        caller,
        client_ip: client_ip(parts).unwrap_or_else(|| "unknown".into()),
        route: route_of(parts),
        now: state.clock.now(),
        profile: None,
    }
}
