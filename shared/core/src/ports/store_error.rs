//! Why a state store call failed: what every store port answers beside its result.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or refused the call; retrying later may work.
    #[error("store unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// An operation needs a record that is not there (a caller's ordering mistake, not user input).
    #[error("missing {0}")]
    Missing(&'static str),
    /// A stored record does not parse as what we write.
    #[error("stored record is malformed: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn unavailable(error: impl Into<anyhow::Error>) -> Self {
        Self::Unavailable(error.into())
    }
}
