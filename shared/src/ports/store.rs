//! The state store: domain-level operations, atomic where money or state demands it.

use crate::domain::api_key::ApiKeyRecord;
use crate::domain::book::{Book, BookId, IdempotencyKey};
use crate::domain::credential::CredentialHash;
use crate::domain::credits::{Grant, GrantOutcome, LedgerEntry, LedgerPage};
use crate::domain::user::{User, UserId, UserLookup};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::time::Duration;

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

#[async_trait]
pub trait UserStore: Send + Sync {
    /// One read by the keyed hash of the device key.
    async fn find_user(&self, id: &UserId) -> Result<Option<User>, StoreError>;

    /// Creates the user with `opening_credits` and one `bonus` ledger entry in one atomic step,
    /// unless the user exists: however many callers race, one user and one bonus.
    async fn create_user(
        &self,
        id: &UserId,
        opening_credits: i64,
        at: DateTime<Utc>,
    ) -> Result<UserLookup, StoreError>;
}

#[async_trait]
pub trait CreditStore: Send + Sync {
    /// Adds credits and a ledger entry atomically, once per transaction id (globally: an external
    /// payment is paid out once). The user must exist.
    async fn grant(&self, grant: &Grant) -> Result<GrantOutcome, StoreError>;

    /// The user's ledger, newest first.
    async fn ledger(&self, user: &UserId, page: LedgerPage)
    -> Result<Vec<LedgerEntry>, StoreError>;
}

#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Stores a key; storing the same hash again leaves the first record as it was.
    async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError>;

    /// One read by the keyed hash of the secret.
    async fn find_api_key(&self, hash: &CredentialHash)
    -> Result<Option<ApiKeyRecord>, StoreError>;
}

/// The answer of a fixed-window counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitDecision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the window ends.
    pub reset_after: u64,
}

#[async_trait]
pub trait LimitStore: Send + Sync {
    /// Counts one event against `counter` in the current fixed window and says whether it fits
    /// under `limit`; atomic in the store, so concurrent processes share one count.
    async fn take(
        &self,
        counter: &str,
        limit: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<LimitDecision, StoreError>;
}

#[async_trait]
pub trait Store: UserStore + CreditStore + ApiKeyStore + LimitStore + BookStore {
    /// A cheap round trip for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// The window a moment falls in, and the seconds left in it; shared by both adapters.
pub fn fixed_window(window: Duration, now: DateTime<Utc>) -> (i64, u64) {
    let length = window.as_secs().max(1) as i64;
    let now = now.timestamp();
    let start = now - now.rem_euclid(length);
    (start, (start + length - now) as u64)
}

/// A book as stored, with the version its next replacement must name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBook {
    pub book: Book,
    pub version: u64,
}

/// What creating (and charging for) a book did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Charged and stored now.
    Created(StoredBook),
    /// The idempotency key was used before: its book, charged then and not again.
    Replayed(StoredBook),
    /// Nothing stored, nothing charged.
    InsufficientCredits { balance: i64 },
}

#[async_trait]
pub trait BookStore: Send + Sync {
    /// Charges `book.charged` credits (a `usage` ledger entry), stores the book and, with a key,
    /// the idempotency record, all in one atomic step. The user must exist.
    async fn create_book(
        &self,
        book: &Book,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<CreateOutcome, StoreError>;

    async fn find_book(&self, id: &BookId) -> Result<Option<StoredBook>, StoreError>;

    /// Replaces the book if it is still at `expected_version`; false when someone else wrote first.
    async fn replace_book(&self, book: &Book, expected_version: u64) -> Result<bool, StoreError>;

    /// Replaces the book (already marked failed and refunded) and gives its charge back with a
    /// `refund` ledger entry, in one atomic step; false when the book changed meanwhile.
    async fn replace_with_refund(
        &self,
        book: &Book,
        expected_version: u64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// The user's books, newest first.
    async fn books_of(&self, user: &UserId) -> Result<Vec<Book>, StoreError>;

    /// Removes the book from the store; false when it changed meanwhile.
    async fn delete_book(&self, book: &Book, expected_version: u64) -> Result<bool, StoreError>;
}
