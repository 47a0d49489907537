//! Credentials (device keys, API keys) are high-entropy random values, so they are stored as an
//! HMAC-SHA256 under a server-side pepper: one hash, one lookup, microseconds per check. A slow
//! password hash would buy nothing against 122+ bits of entropy (see
//! `docs/decisions/0001-credentials-hmac-under-a-pepper.md`).

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::fmt;

/// The server-side secret every credential hash is keyed with. Never logged.
#[derive(Clone)]
pub struct Pepper(Vec<u8>);

impl Pepper {
    /// At least 32 bytes: a shorter pepper is a configuration mistake, not a choice.
    pub fn new(bytes: Vec<u8>) -> Result<Self, super::Invalid> {
        if bytes.len() < 32 {
            return Err(super::Invalid::new(
                "the key pepper must be at least 32 bytes",
            ));
        }
        Ok(Self(bytes))
    }

    pub fn generate() -> Self {
        Self(super::random_bytes::<32>().to_vec())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for Pepper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pepper(***)")
    }
}

/// What a credential is stored and found by: hex HMAC-SHA256, domain-separated per credential kind.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct CredentialHash(String);

impl CredentialHash {
    /// Rebuild from storage; only our own hashes are ever stored.
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A short, non-reversible label for logs and audit entries.
    pub fn truncated(&self) -> &str {
        &self.0[..12.min(self.0.len())]
    }
}

impl fmt::Debug for CredentialHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CredentialHash({}…)", self.truncated())
    }
}

impl fmt::Display for CredentialHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kinds of secret we hash; the label keeps a device key and an API key with equal text apart.
#[derive(Debug, Clone, Copy)]
pub enum CredentialKind {
    UserKey,
    ApiKey,
    /// Not a credential: the key that signs local blob URLs, derived so that one secret suffices.
    BlobUrlSigning,
}

impl CredentialKind {
    fn label(self) -> &'static [u8] {
        match self {
            CredentialKind::UserKey => b"user-key\0",
            CredentialKind::ApiKey => b"api-key\0",
            CredentialKind::BlobUrlSigning => b"blob-url\0",
        }
    }
}

/// Hashes credentials under the pepper.
#[derive(Clone, Debug)]
pub struct CredentialHasher {
    pepper: Pepper,
}

impl CredentialHasher {
    pub fn new(pepper: Pepper) -> Self {
        Self { pepper }
    }

    pub fn hash(&self, kind: CredentialKind, secret: &str) -> CredentialHash {
        CredentialHash(hex::encode(self.mac(kind, secret.as_bytes())))
    }

    /// Raw keyed MAC, for signing (blob URLs) rather than lookup.
    pub fn mac(&self, kind: CredentialKind, message: &[u8]) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.pepper.as_bytes())
            .expect("HMAC accepts keys of any length");
        mac.update(kind.label());
        mac.update(message);
        mac.finalize().into_bytes().into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_hash_apart_and_peppers_matter() {
        let a = CredentialHasher::new(Pepper::generate());
        let b = CredentialHasher::new(Pepper::generate());
        let secret = "0b6f4a52-43f1-4f8e-9d1e-6a0d8c7a1f00";
        assert_eq!(
            a.hash(CredentialKind::UserKey, secret),
            a.hash(CredentialKind::UserKey, secret)
        );
        assert_ne!(
            a.hash(CredentialKind::UserKey, secret),
            a.hash(CredentialKind::ApiKey, secret)
        );
        assert_ne!(
            a.hash(CredentialKind::UserKey, secret),
            b.hash(CredentialKind::UserKey, secret)
        );
        assert_eq!(a.hash(CredentialKind::UserKey, secret).as_str().len(), 64);
    }

    #[test]
    fn short_pepper_is_refused_and_never_printed() {
        assert!(Pepper::new(vec![1; 31]).is_err());
        let pepper = Pepper::new(vec![7; 32]).unwrap();
        assert_eq!(format!("{pepper:?}"), "Pepper(***)");
    }
}
