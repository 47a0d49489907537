//! The state store: domain-level operations, atomic where money or state demands it.

pub use crate::domain::Window;
use crate::domain::api_key::ApiKeyRecord;
use crate::domain::audit::AuditEntry;
use crate::domain::book::{Book, BookId, Idempotency, IdempotencyKey, RecordedAsset};
use crate::domain::breaker::BreakerRecord;
use crate::domain::character::{Character, CharacterId};
use crate::domain::consent::Consent;
use crate::domain::credential::CredentialHash;
use crate::domain::credits::{EntryKind, Grant, GrantOutcome, LedgerEntry, LedgerPage};
use crate::domain::settings::UserSettings;
use crate::domain::spend::{DaySpend, KillSwitch, Microdollars, SpendCharge};
use crate::domain::streak::{Reading, Streak};
use crate::domain::user::{User, UserId, UserLookup};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

pub use super::store_error::StoreError;

#[async_trait]
pub trait UserStore: Send + Sync {
    /// One read by the keyed hash of the device key.
    async fn find_user(&self, id: &UserId) -> Result<Option<User>, StoreError>;

    /// Erases the user: profile, books, library and idempotency records go; ledger entries are
    /// kept without the user (amounts, kinds and times only), as the accounts must be. Answers how
    /// many ledger entries were kept. The next request with the same key starts afresh.
    async fn erase_user(&self, id: &UserId) -> Result<u64, StoreError>;

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
    /// Moves the balance by `grant.delta` with a ledger entry, atomically, once per transaction id
    /// (globally: an external payment is paid out once). A deduction that would take the balance
    /// below zero changes nothing. The user must exist.
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

    async fn find_api_key_by_id(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError>;

    /// Every key, newest first.
    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError>;

    /// Replaces a stored key's record (found by its hash); the key must exist.
    async fn update_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError>;

    /// Counts one use of the key on `route` on the (UTC) day of `at`, and remembers `at`: one
    /// write per use.
    async fn record_key_use(
        &self,
        key_id: &str,
        route: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The key's use per day and route, newest day first, for the last 90 days.
    async fn key_usage(&self, key_id: &str) -> Result<Vec<KeyUsage>, StoreError>;
}

/// Uses of one key on one route on one (UTC) day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUsage {
    pub day: String,
    pub route: String,
    pub count: u64,
    pub last_used_at: DateTime<Utc>,
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an entry; it expires after 90 days.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError>;

    /// Up to `limit` entries older than the entry `before` (or the newest), newest first.
    async fn audit_log(
        &self,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Vec<AuditEntry>, StoreError>;
}

/// The answer of a window counter.
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
    /// Counts one event against `counter` in `window` and says whether it fits under `limit`;
    /// atomic in the store, so concurrent processes share one count.
    async fn take(
        &self,
        counter: &str,
        limit: u32,
        window: Window,
    ) -> Result<LimitDecision, StoreError>;

    /// How many events `counter` holds in `window`, without counting one.
    async fn peek(&self, counter: &str, window: Window) -> Result<u32, StoreError>;

    /// Gives back one event [`LimitStore::take`] counted, when the work it was taken for did not
    /// happen (refused, failed, or a replay); never below zero.
    async fn give_back(&self, counter: &str, window: Window) -> Result<(), StoreError>;
}

#[async_trait]
pub trait SettingsStore: Send + Sync {
    /// The user's settings, or `None` while they never changed one.
    async fn find_settings(&self, user: &UserId) -> Result<Option<UserSettings>, StoreError>;

    async fn put_settings(&self, user: &UserId, settings: &UserSettings) -> Result<(), StoreError>;
}

/// A parent's characters.
#[async_trait]
pub trait CharacterStore: Send + Sync {
    /// Stores a new character; answers false (and writes nothing) when one with its id exists
    /// (a retry under the same idempotency key).
    async fn put_character(&self, character: &Character) -> Result<bool, StoreError>;

    /// Replaces a character that still exists; answers false (and writes nothing) for one
    /// deleted meanwhile, so that a late writer never brings it back.
    async fn replace_character(&self, character: &Character) -> Result<bool, StoreError>;

    /// The user's character `id`; `None` when there is none of theirs by that id.
    async fn find_character(
        &self,
        user: &UserId,
        id: &CharacterId,
    ) -> Result<Option<Character>, StoreError>;

    /// The user's characters, newest first.
    async fn characters_of(&self, user: &UserId) -> Result<Vec<Character>, StoreError>;

    /// Deletes the user's character `id`; answers whether there was one.
    async fn delete_character(&self, user: &UserId, id: &CharacterId) -> Result<bool, StoreError>;
}

/// A parent's consent records: the latest decides, the earlier ones stay as proof.
#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// The user's latest consent record, revoked or not; `None` while they never gave one.
    async fn latest_consent(&self, user: &UserId) -> Result<Option<Consent>, StoreError>;

    /// Records a new grant; it supersedes the one before it, which is kept.
    async fn add_consent(&self, user: &UserId, consent: &Consent) -> Result<(), StoreError>;

    /// Marks the record granted at `granted_at` revoked at `revoked_at`; answers whether there
    /// was such a record not revoked yet.
    async fn revoke_consent(
        &self,
        user: &UserId,
        granted_at: DateTime<Utc>,
        revoked_at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

/// A streak as stored, with the version its next replacement must name (0: none stored yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoredStreak {
    pub streak: Streak,
    pub version: u64,
}

/// A read that counts a new day: the streak it makes and the credits its milestones earn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreakAdvance {
    pub streak: Streak,
    pub expected_version: u64,
    /// Credits for the milestones reached (a `bonus` ledger entry when above 0).
    pub reward: i64,
    pub reward_description: String,
}

#[async_trait]
pub trait StreakStore: Send + Sync {
    async fn find_streak(&self, user: &UserId) -> Result<StoredStreak, StoreError>;

    /// Records the reading and, with `advance`, replaces the streak and pays the reward, all in one
    /// atomic step. False when the streak changed since `expected_version` (nothing is written):
    /// concurrent first reads of a day count it once.
    async fn record_reading(
        &self,
        user: &UserId,
        reading: &Reading,
        advance: Option<&StreakAdvance>,
    ) -> Result<bool, StoreError>;

    /// A child profile's own streak (advanced by the reads under its profile; it pays no
    /// rewards: those come from the account's streak, whoever read).
    async fn find_profile_streak(
        &self,
        user: &UserId,
        profile: &str,
    ) -> Result<StoredStreak, StoreError>;

    /// Replaces a profile's streak if it is still at `expected_version`; false when another
    /// read moved it first.
    async fn replace_profile_streak(
        &self,
        user: &UserId,
        profile: &str,
        streak: &Streak,
        expected_version: u64,
    ) -> Result<bool, StoreError>;

    /// The readings of local days `first..=last`, oldest first, every profile's.
    async fn readings(
        &self,
        user: &UserId,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<Vec<Reading>, StoreError>;
}

#[async_trait]
pub trait BreakerStore: Send + Sync {
    /// A provider's circuit breaker and its version (the default record and 0 when none is
    /// stored).
    async fn breaker(&self, provider: &str) -> Result<(BreakerRecord, u64), StoreError>;

    /// Stores the breaker if its version is still `expected`; answers whether it did.
    async fn put_breaker(
        &self,
        provider: &str,
        record: &BreakerRecord,
        expected: u64,
    ) -> Result<bool, StoreError>;
}

#[async_trait]
pub trait SpendStore: Send + Sync {
    /// Adds one provider call's cost to its day's total and to its book's cost records (for the
    /// day and in all); answers the day's total just after this add. Each record moves
    /// atomically and concurrent adds sum exactly; the day's total is written first, so a
    /// crash can leave a call in the total (what the hard limit reads) without its book's
    /// records, never the other way round.
    async fn add_spend(&self, charge: &SpendCharge) -> Result<Microdollars, StoreError>;

    /// The day's total alone: one read, on every book create and before every provider call.
    async fn spent_on(&self, day: NaiveDate) -> Result<Microdollars, StoreError>;

    /// The day's total and what is behind it (the books charged, the books finished).
    async fn day_spend(&self, day: NaiveDate) -> Result<DaySpend, StoreError>;

    /// A book's whole cost so far and its provider calls.
    async fn book_cost(&self, book: &BookId) -> Result<(Microdollars, u64), StoreError>;

    /// Counts a finished book and its whole cost into `day`, once per book however often it is
    /// called; answers whether this call counted it.
    async fn record_finished_book(&self, day: NaiveDate, book: &BookId)
    -> Result<bool, StoreError>;

    /// Moves an erased book's spend to an anonymous record (`erased`) of the same days, keeping
    /// every sum, and drops its whole-cost record: no item names the book afterwards.
    async fn anonymise_book_spend(&self, book: &BookId) -> Result<(), StoreError>;

    async fn kill_switch(&self) -> Result<Option<KillSwitch>, StoreError>;

    async fn put_kill_switch(&self, switch: &KillSwitch) -> Result<(), StoreError>;
}

#[async_trait]
pub trait Store:
    UserStore
    + CreditStore
    + ApiKeyStore
    + LimitStore
    + BookStore
    + AuditStore
    + SettingsStore
    + ConsentStore
    + CharacterStore
    + StreakStore
    + BreakerStore
    + SpendStore
    + super::purchases::PurchaseStore
    + super::print_orders::PrintOrderStore
    + super::profiles::ProfileStore
    + super::shares::ShareStore
{
    /// A cheap round trip for readiness checks.
    async fn ping(&self) -> Result<(), StoreError>;
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
    /// The idempotency key was used before for the same request: its book, charged then and not
    /// again.
    Replayed(StoredBook),
    /// The idempotency key was used before for another request: nothing stored or charged.
    KeyReused,
    /// Nothing stored, nothing charged.
    InsufficientCredits { balance: i64 },
    /// The user already has `unfinished_cap` unfinished books: nothing stored or charged.
    TooManyUnfinished,
}

#[async_trait]
pub trait BookStore: Send + Sync {
    /// Charges `book.charged` credits (a `usage` ledger entry), stores the book and, with a key,
    /// the idempotency record, all in one atomic step, unless the user already has
    /// `unfinished_cap` unfinished books: the count and the creation are one step, so concurrent
    /// requests cannot all pass a count none of them is in yet. The user must exist.
    async fn create_book(
        &self,
        book: &Book,
        idempotency: Option<&Idempotency>,
        unfinished_cap: u32,
    ) -> Result<CreateOutcome, StoreError>;

    async fn find_book(&self, id: &BookId) -> Result<Option<StoredBook>, StoreError>;

    /// Records one page's picture or narration, apart from the book document (so parallel steps
    /// never contend on it), if none of its kind is recorded for that page yet and the book
    /// still exists (a step finishing after its book was deleted records nothing); answers
    /// whether this call recorded it. [`BookStore::find_book`] lays recorded assets over the book's pages.
    async fn record_page_asset(
        &self,
        book: &BookId,
        recorded: &RecordedAsset,
    ) -> Result<bool, StoreError>;

    /// Frees an idempotency key whose request ended in an error, so that the client's retry
    /// with it runs the request again (as Powertools deletes the record of a failed call).
    async fn forget_idempotency(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
    ) -> Result<(), StoreError>;

    /// Replaces the book if it is still at `expected_version`; false when someone else wrote first.
    async fn replace_book(&self, book: &Book, expected_version: u64) -> Result<bool, StoreError>;

    /// Replaces the book and settles its charge with the user's balance, in one atomic step;
    /// false when the book changed meanwhile (nothing is written).
    async fn replace_and_settle(
        &self,
        book: &Book,
        expected_version: u64,
        settlement: Settlement,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// The user's books, newest first.
    async fn books_of(&self, user: &UserId) -> Result<Vec<Book>, StoreError>;

    /// How many of the user's books are unfinished (queued or running), read from the index of
    /// unfinished books: the cap on them is checked on every create.
    async fn count_unfinished_books(&self, user: &UserId) -> Result<u32, StoreError>;

    /// Removes the book from the store; false when it changed meanwhile.
    async fn delete_book(&self, book: &Book, expected_version: u64) -> Result<bool, StoreError>;

    /// Unfinished (queued or running) books created before `created_before`, oldest first, at
    /// most `limit`: what the stuck-book sweep looks at. Read from an index that holds only
    /// unfinished books, so its cost follows them, not the whole library.
    async fn unfinished_books(
        &self,
        created_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<StoredBook>, StoreError>;
}

/// How a book's charge is settled when its fate is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// The book failed: its charge is given back (a `refund` entry).
    Refund,
    /// A refunded book was finished after all: the refund is taken back (a `clawback` entry), as
    /// much of it as the balance holds, since no balance goes below zero.
    Clawback,
}

impl Settlement {
    /// The balance change for a book that charged `charged`, with `balance` credits left.
    pub fn delta(self, charged: i64, balance: i64) -> i64 {
        match self {
            Settlement::Refund => charged,
            Settlement::Clawback => -charged.min(balance).max(0),
        }
    }

    pub fn entry_kind(self) -> EntryKind {
        match self {
            Settlement::Refund => EntryKind::Refund,
            Settlement::Clawback => EntryKind::Clawback,
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Settlement::Refund => "Refund of a failed book",
            Settlement::Clawback => "Refund taken back: the failed book was finished after all",
        }
    }
}

/// A user's whole ledger, oldest first, read a page at a time (reconciliation reads it all).
pub async fn whole_ledger(
    store: &dyn Store,
    user: &UserId,
) -> Result<Vec<LedgerEntry>, StoreError> {
    let mut all = Vec::new();
    loop {
        let page =
            LedgerPage::parse(100, all.len() as i64).map_err(|e| StoreError::Corrupt(e.0))?;
        let entries = store.ledger(user, page).await?;
        let done = entries.len() < 100;
        all.extend(entries);
        if done {
            break;
        }
    }
    all.reverse();
    Ok(all)
}
