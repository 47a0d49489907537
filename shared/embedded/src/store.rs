use crate::database::Database;
use async_trait::async_trait;
use chrono::NaiveDate;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use storybook_core::clock::Clock;
use storybook_core::documents::Document;
use storybook_core::domain::api_key::{ApiKeyRecord, KeyEnvironment, Scope};
use storybook_core::domain::audit::{AuditEntry, AuditEvent};
use storybook_core::domain::book::{
    Book, BookId, Idempotency, IdempotencyKey, PageAsset, RecordedAsset,
};
use storybook_core::domain::breaker::BreakerRecord;
use storybook_core::domain::character::{Character, CharacterId};
use storybook_core::domain::consent::Consent;
use storybook_core::domain::credential::CredentialHash;
use storybook_core::domain::credits::{EntryKind, Grant, GrantOutcome, LedgerEntry, LedgerPage};
use storybook_core::domain::settings::UserSettings;
use storybook_core::domain::streak::Reading;
use storybook_core::domain::user::{User, UserId, UserLookup};
use storybook_core::ports::store::{
    ApiKeyStore, AuditStore, BookStore, BreakerStore, CharacterStore, ConsentStore, CreateOutcome,
    CreditStore, KeyUsage, LimitDecision, LimitStore, SettingsStore, Settlement, Store, StoreError,
    StoredBook, StoredStreak, StreakAdvance, StreakStore, UserStore, Window,
};

mod audit;
mod books;
mod breakers;
mod characters;
mod consents;
mod keys;
mod limits;
mod print_orders;
mod profiles;
mod purchases;
mod settings;
mod shares;
mod streaks;
mod users;

/// The state store on SQLite. Every write that must be atomic is one `IMMEDIATE` transaction.
#[derive(Clone)]
pub struct SqliteStore {
    db: Database,
    /// What "now" is when an entry's time to live is read.
    clock: Clock,
}

impl SqliteStore {
    pub fn new(db: Database) -> Self {
        Self {
            db,
            clock: Clock::system(),
        }
    }

    /// The store reading time from `clock`.
    pub fn with_clock(self, clock: Clock) -> Self {
        Self { clock, ..self }
    }

    pub(super) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.db
            .run(work)
            .await
            .map_err(|error| match error.downcast::<StoreError>() {
                Ok(store_error) => store_error,
                Err(other) => StoreError::Unavailable(other),
            })
    }
}

fn time(raw: String) -> anyhow::Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(&raw)
        .map_err(|e| StoreError::Corrupt(format!("time {raw:?}: {e}")))?
        .with_timezone(&Utc))
}

#[async_trait]
impl Store for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|c| {
            Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map(|_| ())?)
        })
        .await
    }
}
