use crate::database::Database;
use crate::domain::api_key::{ApiKeyRecord, KeyEnvironment, Scope};
use crate::domain::audit::{AuditEntry, AuditEvent};
use crate::domain::book::{Book, BookId, Idempotency, IdempotencyKey, RecordedAsset};
use crate::domain::breaker::BreakerRecord;
use crate::domain::credential::CredentialHash;
use crate::domain::credits::{EntryKind, Grant, GrantOutcome, LedgerEntry, LedgerPage};
use crate::domain::settings::UserSettings;
use crate::domain::streak::Reading;
use crate::domain::user::{User, UserId, UserLookup};
use crate::ports::store::{
    ApiKeyStore, AuditStore, BookStore, BreakerStore, CreateOutcome, CreditStore, KeyUsage,
    LimitDecision, LimitStore, SettingsStore, Settlement, Store, StoreError, StoredBook,
    StoredStreak, StreakAdvance, StreakStore, UserStore, Window,
};
use async_trait::async_trait;
use chrono::NaiveDate;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

/// The state store on SQLite. Every write that must be atomic is one `IMMEDIATE` transaction.
#[derive(Clone)]
pub struct SqliteStore {
    db: Database,
}

impl SqliteStore {
    pub fn new(db: Database) -> Self {
        Self { db }
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

fn read_user(connection: &Connection, id: &str) -> anyhow::Result<Option<User>> {
    let row = connection
        .query_row(
            "SELECT credits, total_purchased, total_used, created_at FROM users WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get::<_, String>(3)?)),
        )
        .optional()?;
    row.map(|(credits, total_purchased, total_used, created_at)| {
        Ok(User {
            id: CredentialHash::from_stored(id.to_owned()),
            credits,
            total_purchased,
            total_used,
            created_at: time(created_at)?,
        })
    })
    .transpose()
}

/// Appends a ledger entry and moves the balance, inside the caller's transaction.
fn append_entry(
    connection: &Connection,
    user: &str,
    delta: i64,
    kind: EntryKind,
    description: &str,
    reference: Option<&str>,
    at: DateTime<Utc>,
) -> anyhow::Result<i64> {
    let (balance, seq): (i64, i64) = connection
        .query_row(
            "UPDATE users SET credits = credits + ?2, ledger_seq = ledger_seq + 1,
                 total_purchased = total_purchased + CASE WHEN ?3 IN ('purchase', 'subscription') THEN ?2 ELSE 0 END,
                 total_used = total_used + CASE WHEN ?3 = 'usage' THEN -?2 ELSE 0 END
             WHERE id = ?1 RETURNING credits, ledger_seq",
            params![user, delta, kind.as_str()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or(StoreError::Missing("user"))?;
    connection.execute(
        "INSERT INTO ledger (user_id, seq, delta, balance_after, kind, description, reference, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![user, seq, delta, balance, kind.as_str(), description, reference, at.to_rfc3339()],
    )?;
    Ok(balance)
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn erase_user(&self, id: &UserId) -> Result<u64, StoreError> {
        let id = id.as_str().to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // The ledger stays, under an id that leads back to no one, without its free text.
            let anonymous = format!("erased-{}", uuid::Uuid::new_v4().simple());
            // Its balance stays with it, so that the kept ledger still sums to a balance.
            tx.execute(
                "INSERT INTO users (id, credits, total_purchased, total_used, ledger_seq, created_at)
                 SELECT ?2, credits, total_purchased, total_used, ledger_seq, created_at FROM users WHERE id = ?1",
                params![id, anonymous],
            )?;
            let kept = tx.execute(
                "UPDATE ledger SET user_id = ?2, description = NULL, reference = NULL WHERE user_id = ?1",
                params![id, anonymous],
            )? as u64;
            tx.execute("UPDATE grants SET user_id = ?2 WHERE user_id = ?1", params![id, anonymous])?;
            tx.execute(
                "DELETE FROM page_assets WHERE book_id IN (SELECT id FROM books WHERE user_id = ?1)",
                [&id],
            )?;
            tx.execute("DELETE FROM books WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM idempotency WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM settings WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM streaks WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM readings WHERE user_id = ?1", [&id])?;
            tx.execute("DELETE FROM users WHERE id = ?1", [&id])?;
            tx.commit()?;
            Ok(kept)
        })
        .await
    }

    async fn find_user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        let id = id.as_str().to_owned();
        self.run(move |c| read_user(c, &id)).await
    }

    async fn create_user(
        &self,
        id: &UserId,
        opening_credits: i64,
        at: DateTime<Utc>,
    ) -> Result<UserLookup, StoreError> {
        let id = id.as_str().to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let inserted = tx.execute(
                "INSERT INTO users (id, credits, total_purchased, total_used, ledger_seq, created_at)
                 VALUES (?1, 0, 0, 0, 0, ?2) ON CONFLICT (id) DO NOTHING",
                params![id, at.to_rfc3339()],
            )? == 1;
            if inserted && opening_credits > 0 {
                append_entry(&tx, &id, opening_credits, EntryKind::Bonus, "Welcome credits", None, at)?;
            }
            let user = read_user(&tx, &id)?.ok_or(StoreError::Missing("user"))?;
            tx.commit()?;
            Ok(UserLookup { user, created: inserted })
        })
        .await
    }
}

#[async_trait]
impl CreditStore for SqliteStore {
    async fn grant(&self, grant: &Grant) -> Result<GrantOutcome, StoreError> {
        let grant = grant.clone();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let user = grant.user.as_str();
            let balance = read_user(&tx, user)?.ok_or(StoreError::Missing("user"))?.credits;
            let seen: bool = tx
                .query_row("SELECT 1 FROM grants WHERE transaction_id = ?1", [grant.transaction_id.as_str()], |_| Ok(()))
                .optional()?
                .is_some();
            if seen {
                return Ok(GrantOutcome::AlreadyProcessed { balance });
            }
            if balance + grant.delta < 0 {
                return Ok(GrantOutcome::InsufficientCredits { balance });
            }
            tx.execute(
                "INSERT INTO grants (transaction_id, user_id, amount, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![grant.transaction_id.as_str(), user, grant.delta, grant.at.to_rfc3339()],
            )?;
            let balance = append_entry(
                &tx,
                user,
                grant.delta,
                grant.kind,
                &grant.description(),
                Some(grant.transaction_id.as_str()),
                grant.at,
            )?;
            tx.commit()?;
            Ok(GrantOutcome::Applied { balance })
        })
        .await
    }

    async fn ledger(
        &self,
        user: &UserId,
        page: LedgerPage,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |c| {
            let mut statement = c.prepare_cached(
                "SELECT seq, delta, balance_after, kind, description, reference, created_at
                 FROM ledger WHERE user_id = ?1 ORDER BY seq DESC LIMIT ?2 OFFSET ?3",
            )?;
            let rows = statement.query_map(params![user, page.limit, page.offset], |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get::<_, String>(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get::<_, String>(6)?,
                ))
            })?;
            rows.map(|row| {
                let (seq, delta, balance_after, kind, description, reference, created_at) = row?;
                Ok(LedgerEntry {
                    seq,
                    delta,
                    balance_after,
                    kind: EntryKind::parse(&kind).map_err(|e| StoreError::Corrupt(e.0))?,
                    description,
                    reference,
                    created_at: time(created_at)?,
                })
            })
            .collect()
        })
        .await
    }
}

const KEY_COLUMNS: &str = "hash, key_id, name, display_prefix, environment, scopes, created_at, expires_at, \
                           revoked_at, allowed_ips, rotated_to";

fn key_from_row(r: &rusqlite::Row) -> rusqlite::Result<[Option<String>; 11]> {
    let mut values: [Option<String>; 11] = Default::default();
    for (i, value) in values.iter_mut().enumerate() {
        *value = r.get(i)?;
    }
    Ok(values)
}

fn key_record(values: [Option<String>; 11]) -> anyhow::Result<ApiKeyRecord> {
    let [
        hash,
        key_id,
        name,
        display_prefix,
        environment,
        scopes,
        created_at,
        expires_at,
        revoked_at,
        allowed_ips,
        rotated_to,
    ] = values;
    let corrupt = |e: crate::domain::Invalid| StoreError::Corrupt(e.0);
    let required = |v: Option<String>| {
        v.ok_or_else(|| StoreError::Corrupt("an API key column is empty".into()))
    };
    let list = |v: Option<String>| -> Vec<String> {
        v.unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    Ok(ApiKeyRecord {
        key_id: required(key_id)?,
        name: required(name)?,
        hash: CredentialHash::from_stored(required(hash)?),
        display_prefix: required(display_prefix)?,
        environment: KeyEnvironment::parse(&required(environment)?).map_err(corrupt)?,
        scopes: list(scopes)
            .iter()
            .map(|s| Scope::parse(s))
            .collect::<Result<_, _>>()
            .map_err(corrupt)?,
        created_at: time(required(created_at)?)?,
        expires_at: expires_at.map(time).transpose()?,
        revoked_at: revoked_at.map(time).transpose()?,
        allowed_ips: list(allowed_ips),
        rotated_to,
    })
}

fn key_params(r: &ApiKeyRecord) -> [Option<String>; 11] {
    let scopes: Vec<&str> = r.scopes.iter().map(|s| s.as_str()).collect();
    [
        Some(r.hash.as_str().to_owned()),
        Some(r.key_id.clone()),
        Some(r.name.clone()),
        Some(r.display_prefix.clone()),
        Some(r.environment.as_str().to_owned()),
        Some(scopes.join(",")),
        Some(r.created_at.to_rfc3339()),
        r.expires_at.map(|t| t.to_rfc3339()),
        r.revoked_at.map(|t| t.to_rfc3339()),
        Some(r.allowed_ips.join(",")),
        r.rotated_to.clone(),
    ]
}

impl SqliteStore {
    async fn keys_where(
        &self,
        condition: &'static str,
        value: String,
    ) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.run(move |c| {
            let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE {condition} ORDER BY created_at DESC, key_id DESC");
            let rows: Vec<[Option<String>; 11]> =
                c.prepare_cached(&sql)?.query_map([value], key_from_row)?.collect::<Result<_, _>>()?;
            rows.into_iter().map(key_record).collect()
        })
        .await
    }
}

#[async_trait]
impl ApiKeyStore for SqliteStore {
    async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        let values = key_params(record);
        self.run(move |c| {
            c.execute(
                &format!("INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                          ON CONFLICT (hash) DO NOTHING"),
                rusqlite::params_from_iter(values),
            )?;
            Ok(())
        })
        .await
    }

    async fn find_api_key(
        &self,
        hash: &CredentialHash,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self
            .keys_where("hash = ?1", hash.as_str().to_owned())
            .await?
            .pop())
    }

    async fn find_api_key_by_id(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self
            .keys_where("key_id = ?1", key_id.to_owned())
            .await?
            .pop())
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.keys_where("?1 = ?1", String::new()).await
    }

    async fn update_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        let values = key_params(record);
        self.run(move |c| {
            let changed = c.execute(
                "UPDATE api_keys SET key_id = ?2, name = ?3, display_prefix = ?4, environment = ?5, scopes = ?6,
                     created_at = ?7, expires_at = ?8, revoked_at = ?9, allowed_ips = ?10, rotated_to = ?11
                 WHERE hash = ?1",
                rusqlite::params_from_iter(values),
            )?;
            if changed == 0 {
                return Err(StoreError::Missing("api key").into());
            }
            Ok(())
        })
        .await
    }

    async fn record_key_use(
        &self,
        key_id: &str,
        route: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (key_id, route) = (key_id.to_owned(), route.to_owned());
        self.run(move |c| {
            c.execute(
                "INSERT INTO key_usage (key_id, day, route, count, last_used_at) VALUES (?1, ?2, ?3, 1, ?4)
                 ON CONFLICT (key_id, day, route) DO UPDATE SET count = count + 1, last_used_at = excluded.last_used_at",
                params![key_id, at.format("%Y-%m-%d").to_string(), route, at.to_rfc3339()],
            )?;
            Ok(())
        })
        .await
    }

    async fn key_usage(&self, key_id: &str) -> Result<Vec<KeyUsage>, StoreError> {
        let key_id = key_id.to_owned();
        let oldest = (Utc::now() - chrono::Duration::days(crate::domain::audit::RETENTION_DAYS))
            .format("%Y-%m-%d")
            .to_string();
        self.run(move |c| {
            let rows: Vec<(String, String, i64, String)> = c
                .prepare_cached(
                    "SELECT day, route, count, last_used_at FROM key_usage WHERE key_id = ?1 AND day >= ?2
                     ORDER BY day DESC, route",
                )?
                .query_map(params![key_id, oldest], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<_, _>>()?;
            rows.into_iter()
                .map(|(day, route, count, last)| Ok(KeyUsage { day, route, count: count as u64, last_used_at: time(last)? }))
                .collect()
        })
        .await
    }
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let e = entry.clone();
        self.run(move |c| {
            let expires = (e.at + chrono::Duration::days(crate::domain::audit::RETENTION_DAYS)).timestamp();
            c.execute(
                "INSERT INTO audit_log (id, at, event, credential, client_ip, route, detail, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![e.id, e.at.to_rfc3339(), e.event.as_str(), e.credential, e.client_ip, e.route, e.detail, expires],
            )?;
            Ok(())
        })
        .await
    }

    async fn audit_log(
        &self,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let before = before.map(str::to_owned).unwrap_or_else(|| "~".into());
        self.run(move |c| {
            let rows: Vec<[Option<String>; 7]> = c
                .prepare_cached(
                    "SELECT id, at, event, credential, client_ip, route, detail FROM audit_log
                     WHERE id < ?1 AND expires_at > ?2 ORDER BY id DESC LIMIT ?3",
                )?
                .query_map(params![before, Utc::now().timestamp(), limit], |r| {
                    let mut values: [Option<String>; 7] = Default::default();
                    for (i, value) in values.iter_mut().enumerate() {
                        *value = r.get(i)?;
                    }
                    Ok(values)
                })?
                .collect::<Result<_, _>>()?;
            rows.into_iter()
                .map(|[id, at, event, credential, client_ip, route, detail]| {
                    let event = event
                        .as_deref()
                        .and_then(AuditEvent::parse)
                        .ok_or_else(|| StoreError::Corrupt("audit event".into()))?;
                    Ok(AuditEntry {
                        id: id.unwrap_or_default(),
                        at: time(at.unwrap_or_default())?,
                        event,
                        credential,
                        client_ip: client_ip.unwrap_or_default(),
                        route: route.unwrap_or_default(),
                        detail,
                    })
                })
                .collect()
        })
        .await
    }
}

#[async_trait]
impl LimitStore for SqliteStore {
    async fn peek(&self, counter: &str, window: Window) -> Result<u32, StoreError> {
        let counter = counter.to_owned();
        self.run(move |c| {
            let count: Option<u32> = c
                .query_row(
                    "SELECT count FROM limit_counters WHERE counter = ?1 AND window_start = ?2",
                    params![counter, window.start.timestamp()],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(count.unwrap_or(0))
        })
        .await
    }

    async fn give_back(&self, counter: &str, window: Window) -> Result<(), StoreError> {
        let counter = counter.to_owned();
        self.run(move |c| {
            c.execute(
                "UPDATE limit_counters SET count = count - 1
                 WHERE counter = ?1 AND window_start = ?2 AND count > 0",
                params![counter, window.start.timestamp()],
            )?;
            Ok(())
        })
        .await
    }

    async fn take(
        &self,
        counter: &str,
        limit: u32,
        window: Window,
    ) -> Result<LimitDecision, StoreError> {
        let counter = counter.to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Old windows are dead weight; sweeping them here keeps the table small without a job.
            tx.execute("DELETE FROM limit_counters WHERE expires_at < ?1", [Utc::now().timestamp()])?;
            let count: u32 = tx.query_row(
                "INSERT INTO limit_counters (counter, window_start, count, expires_at) VALUES (?1, ?2, 1, ?3)
                 ON CONFLICT (counter, window_start) DO UPDATE SET count = count + 1
                 RETURNING count",
                params![counter, window.start.timestamp(), window.end.timestamp()],
                |r| r.get(0),
            )?;
            tx.commit()?;
            Ok(LimitDecision {
                allowed: count <= limit,
                limit,
                remaining: limit.saturating_sub(count),
                reset_after: window.reset_after(),
            })
        })
        .await
    }
}

#[async_trait]
impl BreakerStore for SqliteStore {
    async fn breaker(&self, provider: &str) -> Result<(BreakerRecord, u64), StoreError> {
        let provider = provider.to_owned();
        self.run(move |c| {
            let row: Option<(String, i64)> = c
                .query_row(
                    "SELECT doc, version FROM breakers WHERE provider = ?1",
                    params![provider],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            Ok(match row {
                Some((doc, version)) => (serde_json::from_str(&doc)?, version as u64),
                None => (BreakerRecord::default(), 0),
            })
        })
        .await
    }

    async fn put_breaker(
        &self,
        provider: &str,
        record: &BreakerRecord,
        expected: u64,
    ) -> Result<bool, StoreError> {
        let provider = provider.to_owned();
        let doc = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.run(move |c| {
            let changed = if expected == 0 {
                c.execute(
                    "INSERT INTO breakers (provider, doc, version) VALUES (?1, ?2, 1) ON CONFLICT (provider) DO NOTHING",
                    params![provider, doc],
                )?
            } else {
                c.execute(
                    "UPDATE breakers SET doc = ?2, version = version + 1 WHERE provider = ?1 AND version = ?3",
                    params![provider, doc, expected as i64],
                )?
            };
            Ok(changed == 1)
        })
        .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.run(|c| {
            Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))
                .map(|_| ())?)
        })
        .await
    }
}

impl SqliteStore {
    /// Books whose first step may never have been enqueued (the process stopped between the
    /// charge and the enqueue). Local mode enqueues their story again at start-up; the step is
    /// idempotent, so a book that had its message loses nothing.
    pub async fn queued_books(&self) -> Result<Vec<BookId>, StoreError> {
        self.run(|c| {
            let ids: Vec<String> = c
                .prepare("SELECT id FROM books WHERE json_extract(doc, '$.state') = 'queued'")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            ids.into_iter()
                .map(|id| BookId::parse(&id).map_err(|e| StoreError::Corrupt(e.0).into()))
                .collect()
        })
        .await
    }
}

fn read_book(connection: &Connection, id: &str) -> anyhow::Result<Option<StoredBook>> {
    let row: Option<(String, i64)> = connection
        .query_row("SELECT doc, version FROM books WHERE id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    row.map(|(doc, version)| {
        let book: Book = serde_json::from_str(&doc)
            .map_err(|e| StoreError::Corrupt(format!("book {id}: {e}")))?;
        let recorded = connection
            .prepare_cached("SELECT page, doc, at FROM page_assets WHERE book_id = ?1")?
            .query_map([id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?
            .map(|row| {
                let (page, doc, at) = row?;
                Ok(RecordedAsset {
                    page: u8::try_from(page)?,
                    asset: serde_json::from_str(&doc)?,
                    at: DateTime::parse_from_rfc3339(&at)?.with_timezone(&Utc),
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(StoredBook {
            book: book.with_assets(recorded),
            version: version as u64,
        })
    })
    .transpose()
}

/// Swaps the stored document if its version is still `expected`, inside the caller's transaction.
fn swap_book(connection: &Connection, book: &Book, expected: u64) -> anyhow::Result<bool> {
    let doc = serde_json::to_string(book)?;
    Ok(connection.execute(
        "UPDATE books SET doc = ?2, version = version + 1, unfinished = ?4 WHERE id = ?1 AND version = ?3",
        params![book.id.as_str(), doc, expected as i64, !book.is_finished()],
    )? == 1)
}

#[async_trait]
impl BookStore for SqliteStore {
    async fn create_book(
        &self,
        book: &Book,
        idempotency: Option<&Idempotency>,
        unfinished_cap: u32,
    ) -> Result<CreateOutcome, StoreError> {
        let book = book.clone();
        let idempotency = idempotency.cloned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let user = book.user.as_str();
            if let Some(record) = &idempotency {
                let key = record.key.as_str();
                let earlier: Option<(String, String, i64)> = tx
                    .query_row(
                        "SELECT book_id, fingerprint, expires_at FROM idempotency WHERE user_id = ?1 AND key = ?2",
                        params![user, key],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    )
                    .optional()?;
                match earlier {
                    Some((_, _, expires)) if expires <= Utc::now().timestamp() => {
                        // Past its 24 hours the key is free again.
                        tx.execute("DELETE FROM idempotency WHERE user_id = ?1 AND key = ?2", params![user, key])?;
                    }
                    Some((_, fingerprint, _)) if fingerprint != record.fingerprint => {
                        return Ok(CreateOutcome::KeyReused);
                    }
                    Some((earlier, _, _)) => {
                        let stored = read_book(&tx, &earlier)?.ok_or(StoreError::Missing("book"))?;
                        return Ok(CreateOutcome::Replayed(stored));
                    }
                    None => {}
                }
            }
            // Counted inside the write transaction: SQLite runs one at a time.
            let unfinished: i64 = tx.query_row(
                "SELECT COUNT(*) FROM books WHERE user_id = ?1 AND unfinished",
                params![user],
                |r| r.get(0),
            )?;
            if unfinished >= i64::from(unfinished_cap) {
                return Ok(CreateOutcome::TooManyUnfinished);
            }
            let balance = read_user(&tx, user)?.ok_or(StoreError::Missing("user"))?.credits;
            if balance < book.charged {
                return Ok(CreateOutcome::InsufficientCredits { balance });
            }
            if book.charged > 0 {
                append_entry(&tx, user, -book.charged, EntryKind::Usage, "Book", Some(book.id.as_str()), book.created_at)?;
            }
            tx.execute(
                "INSERT INTO books (id, user_id, doc, version, created_at, unfinished) VALUES (?1, ?2, ?3, 1, ?4, ?5)",
                params![book.id.as_str(), user, serde_json::to_string(&book)?, book.created_at.to_rfc3339(), !book.is_finished()],
            )?;
            if let Some(record) = &idempotency {
                tx.execute(
                    "INSERT INTO idempotency (user_id, key, book_id, fingerprint, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![user, record.key.as_str(), book.id.as_str(), record.fingerprint, record.expires_at.timestamp()],
                )?;
            }
            tx.commit()?;
            Ok(CreateOutcome::Created(StoredBook { book, version: 1 }))
        })
        .await
    }

    async fn find_book(&self, id: &BookId) -> Result<Option<StoredBook>, StoreError> {
        let id = id.as_str().to_owned();
        self.run(move |c| read_book(c, &id)).await
    }

    async fn forget_idempotency(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
    ) -> Result<(), StoreError> {
        let (user, key) = (user.as_str().to_owned(), key.as_str().to_owned());
        self.run(move |c| {
            c.execute(
                "DELETE FROM idempotency WHERE user_id = ?1 AND key = ?2",
                params![user, key],
            )?;
            Ok(())
        })
        .await
    }

    async fn replace_book(&self, book: &Book, expected_version: u64) -> Result<bool, StoreError> {
        let book = book.clone();
        self.run(move |c| swap_book(c, &book, expected_version))
            .await
    }

    async fn replace_and_settle(
        &self,
        book: &Book,
        expected_version: u64,
        settlement: Settlement,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let book = book.clone();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if !swap_book(&tx, &book, expected_version)? {
                return Ok(false);
            }
            let user = book.user.as_str();
            let balance = read_user(&tx, user)?
                .ok_or(StoreError::Missing("user"))?
                .credits;
            let delta = settlement.delta(book.charged, balance);
            if delta != 0 {
                append_entry(
                    &tx,
                    user,
                    delta,
                    settlement.entry_kind(),
                    settlement.description(),
                    Some(book.id.as_str()),
                    at,
                )?;
            }
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn books_of(&self, user: &UserId) -> Result<Vec<Book>, StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |c| {
            let docs: Vec<(String, String)> = c
                .prepare_cached("SELECT id, doc FROM books WHERE user_id = ?1 ORDER BY created_at DESC, id DESC")?
                .query_map([user], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            docs.into_iter()
                .map(|(id, doc)| {
                    serde_json::from_str(&doc).map_err(|e| StoreError::Corrupt(format!("book {id}: {e}")).into())
                })
                .collect()
        })
        .await
    }

    async fn delete_book(&self, book: &Book, expected_version: u64) -> Result<bool, StoreError> {
        let id = book.id.as_str().to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let deleted = tx.execute(
                "DELETE FROM books WHERE id = ?1 AND version = ?2",
                params![id, expected_version as i64],
            )? == 1;
            if deleted {
                tx.execute("DELETE FROM page_assets WHERE book_id = ?1", [&id])?;
            }
            tx.commit()?;
            Ok(deleted)
        })
        .await
    }

    async fn record_page_asset(
        &self,
        book: &BookId,
        recorded: &RecordedAsset,
    ) -> Result<bool, StoreError> {
        let id = book.as_str().to_owned();
        let (page, kind) = (recorded.page, recorded.asset.kind());
        let doc = serde_json::to_string(&recorded.asset)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let at = recorded.at.to_rfc3339();
        self.run(move |c| {
            Ok(c.execute(
                "INSERT INTO page_assets (book_id, page, kind, doc, at)
                 SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM books WHERE id = ?1)
                 ON CONFLICT (book_id, page, kind) DO NOTHING",
                params![id, page, kind, doc, at],
            )? == 1)
        })
        .await
    }

    async fn count_unfinished_books(&self, user: &UserId) -> Result<u32, StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |c| {
            Ok(c.query_row(
                "SELECT COUNT(*) FROM books WHERE user_id = ?1 AND unfinished = 1",
                [user],
                |r| r.get(0),
            )?)
        })
        .await
    }

    async fn unfinished_books(
        &self,
        created_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<StoredBook>, StoreError> {
        self.run(move |c| {
            let rows: Vec<(String, String, i64)> = c
                .prepare_cached(
                    "SELECT id, doc, version FROM books WHERE unfinished = 1 AND created_at < ?1
                     ORDER BY created_at LIMIT ?2",
                )?
                .query_map(params![created_before.to_rfc3339(), limit], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<Result<_, _>>()?;
            rows.into_iter()
                .map(|(id, doc, version)| {
                    Ok(StoredBook {
                        book: serde_json::from_str(&doc)
                            .map_err(|e| StoreError::Corrupt(format!("book {id}: {e}")))?,
                        version: version as u64,
                    })
                })
                .collect()
        })
        .await
    }
}

#[async_trait]
impl SettingsStore for SqliteStore {
    async fn find_settings(&self, user: &UserId) -> Result<Option<UserSettings>, StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |c| {
            let doc: Option<String> = c
                .query_row("SELECT doc FROM settings WHERE user_id = ?1", [user], |r| {
                    r.get(0)
                })
                .optional()?;
            doc.map(|doc| {
                serde_json::from_str(&doc)
                    .map_err(|e| StoreError::Corrupt(format!("settings: {e}")).into())
            })
            .transpose()
        })
        .await
    }

    async fn put_settings(&self, user: &UserId, settings: &UserSettings) -> Result<(), StoreError> {
        let user = user.as_str().to_owned();
        let doc = serde_json::to_string(settings).map_err(StoreError::unavailable)?;
        self.run(move |c| {
            c.execute(
                "INSERT INTO settings (user_id, doc) VALUES (?1, ?2)
                 ON CONFLICT (user_id) DO UPDATE SET doc = excluded.doc",
                params![user, doc],
            )?;
            Ok(())
        })
        .await
    }
}

fn read_streak(connection: &Connection, user: &str) -> anyhow::Result<StoredStreak> {
    let row: Option<(String, i64)> = connection
        .query_row(
            "SELECT doc, version FROM streaks WHERE user_id = ?1",
            [user],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match row {
        None => Ok(StoredStreak::default()),
        Some((doc, version)) => Ok(StoredStreak {
            streak: serde_json::from_str(&doc)
                .map_err(|e| StoreError::Corrupt(format!("streak: {e}")))?,
            version: version as u64,
        }),
    }
}

#[async_trait]
impl StreakStore for SqliteStore {
    async fn find_streak(&self, user: &UserId) -> Result<StoredStreak, StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |c| read_streak(c, &user)).await
    }

    async fn record_reading(
        &self,
        user: &UserId,
        reading: &Reading,
        advance: Option<&StreakAdvance>,
    ) -> Result<bool, StoreError> {
        let user = user.as_str().to_owned();
        let reading = reading.clone();
        let advance = advance.cloned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if let Some(advance) = &advance {
                if read_streak(&tx, &user)?.version != advance.expected_version {
                    return Ok(false);
                }
                tx.execute(
                    "INSERT INTO streaks (user_id, doc, version) VALUES (?1, ?2, ?3)
                     ON CONFLICT (user_id) DO UPDATE SET doc = excluded.doc, version = excluded.version",
                    params![user, serde_json::to_string(&advance.streak)?, advance.expected_version as i64 + 1],
                )?;
                if advance.reward > 0 {
                    append_entry(&tx, &user, advance.reward, EntryKind::Bonus, &advance.reward_description, None, reading.read_at)?;
                }
            }
            tx.execute(
                "INSERT INTO readings (user_id, day, read_at, id, book_id, reading_time, completed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    user,
                    reading.day.to_string(),
                    reading.read_at.to_rfc3339(),
                    uuid::Uuid::new_v4().simple().to_string(),
                    reading.book_id.as_str(),
                    reading.reading_time,
                    reading.completed,
                ],
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    async fn readings(
        &self,
        user: &UserId,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<Vec<Reading>, StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |c| {
            let rows: Vec<(String, String, String, u32, bool)> = c
                .prepare_cached(
                    "SELECT day, read_at, book_id, reading_time, completed FROM readings
                     WHERE user_id = ?1 AND day BETWEEN ?2 AND ?3 ORDER BY day, read_at",
                )?
                .query_map(params![user, first.to_string(), last.to_string()], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })?
                .collect::<Result<_, _>>()?;
            rows.into_iter()
                .map(|(day, read_at, book_id, reading_time, completed)| {
                    Ok(Reading {
                        book_id: BookId::parse(&book_id).map_err(|e| StoreError::Corrupt(e.0))?,
                        read_at: time(read_at)?,
                        day: day
                            .parse()
                            .map_err(|e| StoreError::Corrupt(format!("day {day}: {e}")))?,
                        reading_time,
                        completed,
                    })
                })
                .collect()
        })
        .await
    }
}
