//! The product's vocabulary: validated types that refuse bad values with a reason.
//! Nothing here knows about HTTP, SQLite or AWS.

pub mod api_key;
pub mod audit;
pub mod book;
pub mod breaker;
pub mod character;
pub mod consent;
pub mod credential;
pub mod credits;
pub mod daily;
pub mod failure;
pub mod markup;
pub mod print;
pub mod profile;
pub mod purchase;
pub mod settings;
pub mod share;
pub mod sheet_rules;
pub mod spend;
pub mod streak;
pub mod user;

use chrono::{DateTime, Utc};
use std::time::Duration;

/// The SHA-256 of `parts`, each preceded by its length (so no two lists of parts hash alike), in
/// hex: what tells one request from another under the same idempotency key.
pub fn digest_of(parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    let mut digest = Sha256::new();
    for part in parts {
        digest.update((part.len() as u64).to_be_bytes());
        digest.update(part);
    }
    hex::encode(digest.finalize())
}

/// Why a value was refused; shown to the client as-is, so it never echoes secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(pub String);

impl Invalid {
    pub fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

/// Fill a buffer from the operating system's random source.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source is unavailable");
    bytes
}

/// The stretch of time a counter counts in: a counter is kept per (name, window start) and
/// expires at the window's end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

impl Window {
    /// Consecutive windows of `length` since the epoch (a minute, an hour), the one `now` is in.
    pub fn fixed(length: Duration, now: DateTime<Utc>) -> Self {
        let seconds = length.as_secs().max(1) as i64;
        let start = now.timestamp() - now.timestamp().rem_euclid(seconds);
        let at = |s: i64| DateTime::from_timestamp(s, 0).expect("a representable time");
        Self {
            start: at(start),
            end: at(start + seconds),
            now,
        }
    }

    /// Seconds until the window ends (at least 1).
    pub fn reset_after(&self) -> u64 {
        (self.end - self.now).num_seconds().max(1) as u64
    }
}
