//! Extractors that turn a request into validated domain values, refusing with [`ApiError`].

use crate::error::{ApiError, Problem};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use bytes::Bytes;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use storybook_core::domain::book::IdempotencyKey;

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

/// Deserialises `T`, naming where it went wrong in the app contract's `{loc, msg, type}` terms.
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
    // Every body is an object. serde would also fill a struct from an array of its fields in
    // order (`[]` makes one of all defaults), which no client means.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(ApiError::schema(Problem::new(
            &["body"],
            "Input should be a valid dictionary or object to extract fields from",
            "model_attributes_type",
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

/// `X-Profile-Id`, when sent: the child profile a request is scoped to, 1–60 characters of
/// `[A-Za-z0-9_-]` (400 `BAD_REQUEST` otherwise); a blank one is no header. No header means the
/// whole account. Routes take it through [`crate::auth::ScopedRequest`].
pub struct ProfileScope(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ProfileScope {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(raw) = parts
            .headers
            .get("x-profile-id")
            .filter(|v| !v.as_bytes().trim_ascii().is_empty())
        else {
            return Ok(ProfileScope(None));
        };
        let valid = raw.to_str().ok().filter(|v| {
            (1..=60).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        });
        match valid {
            Some(profile) => Ok(ProfileScope(Some(profile.to_owned()))),
            None => Err(ApiError::BadRequest("Invalid X-Profile-Id format".into())),
        }
    }
}

/// `X-Idempotency-Key`, when sent: 1 to 80 visible ASCII characters (422 otherwise).
pub struct IdempotencyKeyHeader(pub Option<IdempotencyKey>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKeyHeader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let Some(raw) = parts.headers.get("x-idempotency-key") else {
            return Ok(IdempotencyKeyHeader(None));
        };
        let parsed = raw
            .to_str()
            .ok()
            .and_then(|raw| IdempotencyKey::parse(raw).ok());
        parsed
            .map(|key| IdempotencyKeyHeader(Some(key)))
            .ok_or_else(|| {
                ApiError::schema(Problem::new(
                    &["header", "x-idempotency-key"],
                    "X-Idempotency-Key must be 1 to 80 visible ASCII characters",
                    "value_error",
                ))
            })
    }
}

/// Whether the request is a dry run (`X-Dry-Run: true`, our addition): checked like a real one
/// and answered 204 when it would be made, with nothing charged, stored or enqueued. The
/// release's smoke test asks this way.
pub struct DryRun(pub bool);

impl<S: Send + Sync> FromRequestParts<S> for DryRun {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        match parts
            .headers
            .get("x-dry-run")
            .map(|v| v.to_str().unwrap_or_default())
        {
            None | Some("false") => Ok(DryRun(false)),
            Some("true") => Ok(DryRun(true)),
            Some(_) => Err(ApiError::schema(Problem::new(
                &["header", "x-dry-run"],
                "Input should be true or false",
                "bool_parsing",
            ))),
        }
    }
}

/// `?limit=&offset=` of a paged list, 20 from the first by default, as the app contract's lists take
/// them; each route checks its own bounds.
#[derive(Deserialize)]
pub struct PageQuery {
    #[serde(default = "twenty")]
    pub limit: i64,
    #[serde(default)]
    pub offset: i64,
}

fn twenty() -> i64 {
    20
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
