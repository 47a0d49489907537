//! A book shared by link: a token of 128 random bits the parent hands out (kept only as its
//! hash), a lifetime, and the book's share generation, which a revoke moves so that every token
//! of the book ends at once.

use super::book::BookId;
use super::user::UserId;
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};

/// The lifetime a link gets when the parent asks for none (`expires_in_days: 0`).
pub const DEFAULT_SHARE_DAYS: i64 = 30;
/// The longest lifetime a parent may ask for.
pub const MAX_SHARE_DAYS: i64 = 365;

/// The secret in a share link: 32 lowercase hex characters (the contract's form) of 16 random
/// bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct ShareToken(String);

impl ShareToken {
    pub fn generate() -> Self {
        ShareToken(hex::encode(super::random_bytes::<16>()))
    }

    /// A token from a link; anything that is not 32 lowercase hex characters is none (and is
    /// never looked up).
    pub fn parse(raw: &str) -> Option<Self> {
        let valid = raw.len() == 32 && raw.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        valid.then(|| ShareToken(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What the store keeps and looks up: the SHA-256 of the token, in hex. A leaked table
    /// opens no book.
    pub fn hash(&self) -> String {
        hex::encode(Sha256::digest(self.0.as_bytes()))
    }
}

/// The token is a credential: it is never printed.
impl std::fmt::Debug for ShareToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShareToken(..)")
    }
}

/// A share link as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub token_hash: String,
    pub user: UserId,
    pub book: BookId,
    /// The book's share generation when the link was made: the link lives while the book's is
    /// still this one.
    pub generation: u64,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl Share {
    /// Whether the link opens its book at `now`, the book's share generation being `current`.
    pub fn is_active(&self, current: u64, now: DateTime<Utc>) -> bool {
        self.generation == current && now < self.expires_at
    }
}

/// When a link made at `now` for `days` (0: the default) expires; `None` past the bounds.
pub fn expiry(days: i64, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let days = match days {
        0 => DEFAULT_SHARE_DAYS,
        1..=MAX_SHARE_DAYS => days,
        _ => return None,
    };
    Some(now + Duration::days(days))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_128_bits_of_hex_and_hashed() {
        let token = ShareToken::generate();
        assert_eq!(token.as_str().len(), 32);
        assert_eq!(ShareToken::parse(token.as_str()), Some(token.clone()));
        assert_ne!(token, ShareToken::generate());
        assert_eq!(token.hash().len(), 64);
        assert_ne!(token.hash(), token.as_str());
        assert!(!format!("{token:?}").contains(token.as_str()));
        for bad in [
            "",
            "../etc",
            &"A".repeat(32),
            &"a".repeat(31),
            &"g".repeat(32),
        ] {
            assert_eq!(ShareToken::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn lifetimes() {
        let now = Utc::now();
        assert_eq!(expiry(0, now), Some(now + Duration::days(30)));
        assert_eq!(expiry(365, now), Some(now + Duration::days(365)));
        assert_eq!(expiry(366, now), None);
        assert_eq!(expiry(-1, now), None);
        let share = Share {
            token_hash: String::new(),
            user: UserId::from_stored("u".into()),
            book: BookId::parse("bk_1").unwrap(),
            generation: 2,
            created_at: now,
            expires_at: now + Duration::days(1),
        };
        assert!(share.is_active(2, now));
        assert!(!share.is_active(3, now), "revoked");
        assert!(!share.is_active(2, now + Duration::days(1)), "expired");
    }
}
