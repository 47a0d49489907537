//! Extractors that turn a request into validated domain values, refusing with [`ApiError`].

use super::AppState;
use super::error::{ApiError, Problem};
use crate::domain::api_key::{ApiKeyRecord, Scope};
use crate::domain::audit::AuditEvent;
use crate::domain::credential::CredentialKind;
use crate::domain::user::{User, UserKey};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;

/// A JSON body that must match `T` exactly; every mismatch is a 422 with its location.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                ApiError::schema(Problem::new(
                    &["body"],
                    rejection.body_text(),
                    "body_unreadable",
                ))
            })?;
        if bytes.is_empty() {
            return Err(ApiError::schema(Problem::new(
                &["body"],
                "Field required",
                "missing",
            )));
        }
        parse_json(&bytes).map(JsonBody)
    }
}

/// Deserialises `T`, naming where it went wrong in the seed's `{loc, msg, type}` terms.
/// Deepest nesting of arrays and objects a body may have.
pub const MAX_JSON_DEPTH: usize = 32;

/// The nesting depth of a JSON text, counting brackets outside strings (cheap, before parsing).
fn json_depth(bytes: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for &b in bytes {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if json_depth(bytes) > MAX_JSON_DEPTH {
        return Err(ApiError::schema(Problem::new(
            &["body"],
            format!("JSON nested deeper than {MAX_JSON_DEPTH} levels"),
            "json_too_deep",
        )));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let mut loc: Vec<Value> = vec![Value::from("body")];
        let inner = error.inner();
        if inner.is_syntax() || inner.is_eof() {
            return ApiError::Schema(vec![Problem {
                loc,
                msg: "JSON decode error".into(),
                kind: "json_invalid",
            }]);
        }
        for segment in error.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => loc.push(Value::from(*index)),
                serde_path_to_error::Segment::Map { key } => loc.push(Value::from(key.as_str())),
                serde_path_to_error::Segment::Enum { variant } => {
                    loc.push(Value::from(variant.as_str()))
                }
                serde_path_to_error::Segment::Unknown => {}
            }
        }
        // serde_json's message ends with " at line L column C", which says nothing to the app.
        let message = inner.to_string();
        let message = message
            .split(" at line ")
            .next()
            .unwrap_or_default()
            .to_owned();
        let (kind, field) = if let Some(rest) = message.strip_prefix("missing field `") {
            ("missing", rest.split('`').next())
        } else if let Some(rest) = message.strip_prefix("unknown field `") {
            ("extra_forbidden", rest.split('`').next())
        } else if message.starts_with("invalid type") {
            ("type_error", None)
        } else {
            ("value_error", None)
        };
        if let Some(field) = field
            && loc.last().and_then(Value::as_str) != Some(field)
        {
            loc.push(Value::from(field));
        }
        let msg = match kind {
            "missing" => "Field required".to_owned(),
            "extra_forbidden" => "Extra inputs are not permitted".to_owned(),
            _ => message,
        };
        ApiError::Schema(vec![Problem { loc, msg, kind }])
    })?;
    // Trailing bytes after the value make the whole body invalid JSON.
    deserializer.end().map_err(|_| {
        ApiError::Schema(vec![Problem::new(
            &["body"],
            "JSON decode error",
            "json_invalid",
        )])
    })?;
    Ok(parsed)
}

/// One path parameter as text. axum's own rejection (a parameter that is not UTF-8 once
/// percent-decoded, like `/v1/books/%ff%fe`) is plain text; this one is the envelope's 400.
pub struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| PathParam(value))
            .map_err(|_| ApiError::BadRequest("The path is not valid UTF-8 text".into()))
    }
}

/// Query parameters that must match `T`; a mismatch is a 422 naming the parameter.
pub struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(QueryParams)
            .map_err(|error| {
                let mut loc = vec![Value::from("query")];
                let path = error.path().to_string();
                let message = error.inner().to_string();
                if path != "." {
                    loc.push(Value::from(path));
                } else if let Some(rest) = message.strip_prefix("missing field `") {
                    loc.push(Value::from(rest.split('`').next().unwrap_or_default()));
                }
                ApiError::Schema(vec![Problem {
                    loc,
                    msg: message,
                    kind: "value_error",
                }])
            })
    }
}

/// `X-Profile-Id`, when sent, is 1–60 characters of `[A-Za-z0-9_-]` (400 `BAD_REQUEST` otherwise);
/// its shape is all we check until profiles exist.
pub fn check_profile_header(headers: &HeaderMap) -> Result<(), ApiError> {
    if let Some(raw) = headers.get("x-profile-id") {
        let valid = raw.to_str().is_ok_and(|v| {
            (1..=60).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
        if !valid {
            return Err(ApiError::BadRequest("Invalid X-Profile-Id format".into()));
        }
    }
    Ok(())
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

/// The app user behind `X-User-Key`. A missing key is a schema error (422), a malformed one a
/// 400, both before any store read; an unknown well-formed key creates the user.
pub struct AppUser(pub User);

pub const USER_KEY_HEADER: &str = "x-user-key";

impl FromRequestParts<AppState> for AppUser {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(raw) = parts.headers.get(USER_KEY_HEADER) else {
            return Err(ApiError::schema(Problem::new(
                &["header", USER_KEY_HEADER],
                "Field required",
                "missing",
            )));
        };
        let key = raw
            .to_str()
            .ok()
            .and_then(|raw| UserKey::parse(raw).ok())
            .ok_or_else(|| ApiError::BadRequest("Invalid X-User-Key format".into()))?;
        let id = state.hasher.hash(CredentialKind::UserKey, key.expose());
        let caller = format!("user:{}", id.as_str());
        if let Some(user) = state.store.find_user(&id).await? {
            super::limits::enforce(state, parts, &caller).await?;
            return Ok(AppUser(user));
        }
        // Making accounts is limited per client IP, so one client cannot mint free credits.
        let ClientIp(ip) = ClientIp::from_request_parts(parts, state)
            .await
            .unwrap_or_else(|never| match never {});
        let now = chrono::Utc::now();
        let decision = state
            .store
            .take(
                &format!("signup:{ip}"),
                state.settings.account_creations_per_ip_per_hour,
                crate::ports::store::Window::fixed(Duration::from_secs(3600), now),
            )
            .await?;
        if !decision.allowed {
            tracing::warn!(client_ip = %ip, "account creation limited");
            return Err(ApiError::RateLimited {
                limit: decision.limit,
                retry_after: decision.reset_after,
            });
        }
        let lookup = state
            .store
            .create_user(&id, state.settings.opening_credits, now)
            .await?;
        if lookup.created {
            tracing::info!(user = lookup.user.id.truncated(), "user created");
        }
        if lookup.created {
            let route = super::limits::route_of(parts);
            super::auth::audit(
                state,
                AuditEvent::UserCreated,
                Some(id.truncated().to_owned()),
                &ip,
                &route,
                None,
            )
            .await;
        }
        super::limits::enforce(state, parts, &caller).await?;
        Ok(AppUser(lookup.user))
    }
}

/// An admin API key in `X-Admin-Key` (the app contract's header for admin calls). Anything but an
/// active admin key of this environment answers 403 `FORBIDDEN`, as the app expects.
pub struct AdminKey(pub ApiKeyRecord);

pub const ADMIN_KEY_HEADER: &str = "x-admin-key";

impl FromRequestParts<AppState> for AdminKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let record = super::auth::verify(
            state,
            parts,
            super::auth::KeyHeader::AdminHeader,
            Scope::Admin,
        )
        .await?;
        Ok(AdminKey(record))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_brackets_outside_strings() {
        assert_eq!(json_depth(br#"{"a": [1, {"b": 2}]}"#), 3);
        assert_eq!(json_depth(br#"{"a": "[[[[\"]]]"}"#), 1);
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert!(matches!(
            parse_json::<serde_json::Value>(deep.as_bytes()),
            Err(ApiError::Schema(_))
        ));
    }
}
