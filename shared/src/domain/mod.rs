//! The product's vocabulary: validated types that refuse bad values with a reason.
//! Nothing here knows about HTTP, SQLite or AWS.

pub mod api_key;
pub mod audit;
pub mod book;
pub mod credential;
pub mod credits;
pub mod user;

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
