//! Extractors that turn a request into validated domain values, refusing with [`ApiError`].

use super::AppState;
use super::error::{ApiError, Problem};
use crate::config::Environment;
use crate::domain::api_key::{ApiKeyRecord, ApiKeySecret, KeyEnvironment, Scope};
use crate::domain::credential::CredentialKind;
use crate::domain::user::{User, UserKey};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
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
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
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

/// The caller's address: API Gateway's source IP on Lambda, the socket's peer locally.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        use lambda_http::request::RequestContext;
        if let Some(RequestContext::ApiGatewayV2(context)) =
            parts.extensions.get::<RequestContext>()
            && let Some(ip) = &context.http.source_ip
        {
            return Ok(ClientIp(ip.clone()));
        }
        if let Some(ConnectInfo(address)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
            return Ok(ClientIp(address.ip().to_string()));
        }
        Ok(ClientIp("unknown".to_owned()))
    }
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
        if let Some(user) = state.store.find_user(&id).await? {
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
                Duration::from_secs(3600),
                now,
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
        let refused = || ApiError::Forbidden("Admin access required".into());
        // Cheapest check first: the format, before any store read.
        let secret = parts
            .headers
            .get(ADMIN_KEY_HEADER)
            .and_then(|raw| raw.to_str().ok())
            .and_then(|raw| ApiKeySecret::parse(raw).ok())
            .ok_or_else(refused)?;
        if secret.environment() == KeyEnvironment::Test
            && state.settings.environment == Environment::Prod
        {
            tracing::warn!(key_prefix = %secret.display_prefix(), "test key refused in production");
            return Err(refused());
        }
        let hash = state.hasher.hash(CredentialKind::ApiKey, secret.expose());
        let record = state.store.find_api_key(&hash).await?.ok_or_else(refused)?;
        if !record.is_active(chrono::Utc::now()) || !record.allows(Scope::Admin) {
            tracing::warn!(key_id = %record.key_id, "admin key inactive or without admin scope");
            return Err(refused());
        }
        Ok(AdminKey(record))
    }
}
