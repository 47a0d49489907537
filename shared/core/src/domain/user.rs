//! App users. A user is known only by the keyed hash of their device key (`X-User-Key`).

use super::Invalid;
use super::credential::CredentialHash;
use chrono::{DateTime, Utc};
use std::fmt;

/// The app's device key: any `8-4-4-4-12` hex UUID, case-insensitive, version digit unchecked.
/// A bearer secret: it is hashed at once and never stored, logged or echoed.
#[derive(Clone, PartialEq, Eq)]
pub struct UserKey(String);

impl UserKey {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let bytes = raw.as_bytes();
        let well_formed = bytes.len() == 36
            && bytes.iter().enumerate().all(|(i, b)| match i {
                8 | 13 | 18 | 23 => *b == b'-',
                _ => b.is_ascii_hexdigit(),
            });
        if !well_formed {
            return Err(Invalid::new(
                "X-User-Key must be a UUID (8-4-4-4-12 hexadecimal digits)",
            ));
        }
        // One user per key whatever the letter case the app sends.
        Ok(Self(raw.to_ascii_lowercase()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserKey(***)")
    }
}

/// A user's identity in storage: the keyed hash of their device key.
pub type UserId = CredentialHash;

/// A user and their credit balance, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub credits: i64,
    pub total_purchased: i64,
    pub total_used: i64,
    pub created_at: DateTime<Utc>,
}

/// What `find_or_create` found: whether this request made the user matters for limits and audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserLookup {
    pub user: User,
    pub created: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_any_uuid_shape_in_any_case() {
        let k = UserKey::parse("0B6F4A52-43F1-0F8E-9D1E-6A0D8C7A1F00").unwrap();
        assert_eq!(k.expose(), "0b6f4a52-43f1-0f8e-9d1e-6a0d8c7a1f00");
    }

    #[test]
    fn refuses_everything_else() {
        for bad in [
            "",
            "not-a-uuid",
            "0b6f4a5243f14f8e9d1e6a0d8c7a1f00",
            "0b6f4a52-43f1-4f8e-9d1e-6a0d8c7a1f0",
            "0b6f4a52-43f1-4f8e-9d1e-6a0d8c7a1f000",
            "0b6f4a52-43f1-4f8e-9d1e-6a0d8c7a1fzz",
            "{0b6f4a52-43f1-4f8e-9d1e-6a0d8c7a1f0}",
            "0b6f4a52_43f1-4f8e-9d1e-6a0d8c7a1f00",
        ] {
            assert!(UserKey::parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let k = UserKey::parse("0b6f4a52-43f1-4f8e-9d1e-6a0d8c7a1f00").unwrap();
        assert!(!format!("{k:?}").contains("0b6f"));
    }
}
