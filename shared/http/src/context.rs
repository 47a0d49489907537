//! A request's context: where it came from (the client IP), which route it is, and the audit
//! entries written in its name.

use crate::domain::audit::{AuditEntry, AuditEvent};
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use std::net::SocketAddr;

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

/// The caller's address: API Gateway's source IP on Lambda, the socket's peer locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            client_ip(parts).unwrap_or_else(|| "unknown".to_owned()),
        ))
    }
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

/// Where a request came from, for its audit entries: the client IP and the route.
pub struct AuditContext {
    pub ip: String,
    pub route: String,
}

impl<S: Send + Sync> FromRequestParts<S> for AuditContext {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(AuditContext {
            ip: client_ip(parts).unwrap_or_else(|| "unknown".into()),
            route: route_of(parts),
        })
    }
}

/// Records an audit entry; an audit that cannot be written is logged, never fatal to the answer.
pub async fn audit(
    state: &AppState,
    event: AuditEvent,
    credential: Option<String>,
    ip: &str,
    route: &str,
    detail: Option<String>,
) {
    let entry = AuditEntry::new(event, credential, ip, route, detail);
    if let Err(error) = state.store.append_audit(&entry).await {
        tracing::error!(
            error = format!("{error:#}"),
            event = event.as_str(),
            "audit entry not written"
        );
    }
}
