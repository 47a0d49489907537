use crate::database::Database;
use crate::domain::api_key::{ApiKeyRecord, KeyEnvironment, Scope};
use crate::domain::audit::{AuditEntry, AuditEvent};
use crate::domain::book::{Book, BookId, Idempotency, IdempotencyKey, PageAsset, RecordedAsset};
use crate::domain::breaker::BreakerRecord;
use crate::domain::character::{Character, CharacterId};
use crate::domain::consent::Consent;
use crate::domain::credential::CredentialHash;
use crate::domain::credits::{EntryKind, Grant, GrantOutcome, LedgerEntry, LedgerPage};
use crate::domain::settings::UserSettings;
use crate::domain::streak::Reading;
use crate::domain::user::{User, UserId, UserLookup};
use crate::ports::store::{
    ApiKeyStore, AuditStore, BookStore, BreakerStore, CharacterStore, ConsentStore, CreateOutcome,
    CreditStore, KeyUsage, LimitDecision, LimitStore, SettingsStore, Settlement, Store, StoreError,
    StoredBook, StoredStreak, StreakAdvance, StreakStore, UserStore, Window,
};
use async_trait::async_trait;
use chrono::NaiveDate;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use storybook_core::clock::Clock;
use storybook_core::documents::Document;

mod audit;
mod books;
mod breakers;
mod characters;
mod consents;
mod keys;
mod limits;
mod settings;
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
