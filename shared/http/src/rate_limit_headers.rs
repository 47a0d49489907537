//! The rate-limit headers, written by the limits on every counted answer and by a refusal past
//! the limit.

use axum::http::{HeaderMap, HeaderValue};

/// The rate-limit headers of an answer, in both spellings clients read (`RateLimit-*`, IETF's
/// draft, and `X-RateLimit-*`): the one place they are written.
pub fn write(headers: &mut HeaderMap, limit: u32, remaining: u32, reset_after: u64) {
    for (name, value) in [
        ("ratelimit-limit", u64::from(limit)),
        ("ratelimit-remaining", u64::from(remaining)),
        ("ratelimit-reset", reset_after),
        ("x-ratelimit-limit", u64::from(limit)),
        ("x-ratelimit-remaining", u64::from(remaining)),
        ("x-ratelimit-reset", reset_after),
    ] {
        headers.insert(name, HeaderValue::from(value));
    }
}
