use super::Database;
use crate::domain::api_key::{ApiKeyRecord, KeyEnvironment, Scope};
use crate::domain::book::{Book, BookId, IdempotencyKey};
use crate::domain::credential::CredentialHash;
use crate::domain::credits::{EntryKind, Grant, GrantOutcome, LedgerEntry, LedgerPage};
use crate::domain::user::{User, UserId, UserLookup};
use crate::ports::store::{
    ApiKeyStore, BookStore, CreateOutcome, CreditStore, LimitDecision, LimitStore, Store,
    StoreError, StoredBook, UserStore, fixed_window,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use std::time::Duration;

/// The state store on SQLite. Every write that must be atomic is one `IMMEDIATE` transaction.
#[derive(Clone)]
pub struct SqliteStore {
    db: Database,
}

impl SqliteStore {
    pub fn new(db: Database) -> Self {
        Self { db }
    }

    async fn run<T: Send + 'static>(
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
            let fresh = tx.execute(
                "INSERT INTO grants (transaction_id, user_id, amount, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (transaction_id) DO NOTHING",
                params![grant.transaction_id.as_str(), user, grant.amount.get(), grant.at.to_rfc3339()],
            )? == 1;
            let outcome = if fresh {
                let description = format!("{} {}", grant.kind.as_str(), grant.transaction_id.as_str());
                let balance = append_entry(
                    &tx,
                    user,
                    grant.amount.get(),
                    grant.kind,
                    &description,
                    Some(grant.transaction_id.as_str()),
                    grant.at,
                )?;
                GrantOutcome::Applied { balance }
            } else {
                let user = read_user(&tx, user)?.ok_or(StoreError::Missing("user"))?;
                GrantOutcome::AlreadyProcessed { balance: user.credits }
            };
            tx.commit()?;
            Ok(outcome)
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

#[async_trait]
impl ApiKeyStore for SqliteStore {
    async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        let r = record.clone();
        self.run(move |c| {
            let scopes: Vec<&str> = r.scopes.iter().map(|s| s.as_str()).collect();
            c.execute(
                "INSERT INTO api_keys (hash, key_id, name, display_prefix, environment, scopes, created_at, expires_at, revoked_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (hash) DO NOTHING",
                params![
                    r.hash.as_str(),
                    r.key_id,
                    r.name,
                    r.display_prefix,
                    r.environment.as_str(),
                    scopes.join(","),
                    r.created_at.to_rfc3339(),
                    r.expires_at.map(|t| t.to_rfc3339()),
                    r.revoked_at.map(|t| t.to_rfc3339()),
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn find_api_key(
        &self,
        hash: &CredentialHash,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        let hash = hash.clone();
        self.run(move |c| {
            let row = c
                .query_row(
                    "SELECT key_id, name, display_prefix, environment, scopes, created_at, expires_at, revoked_at
                     FROM api_keys WHERE hash = ?1",
                    [hash.as_str()],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, String>(5)?,
                            r.get::<_, Option<String>>(6)?,
                            r.get::<_, Option<String>>(7)?,
                        ))
                    },
                )
                .optional()?;
            let Some((key_id, name, display_prefix, environment, scopes, created_at, expires_at, revoked_at)) = row
            else {
                return Ok(None);
            };
            let corrupt = |e: crate::domain::Invalid| StoreError::Corrupt(e.0);
            Ok(Some(ApiKeyRecord {
                key_id,
                name,
                hash,
                display_prefix,
                environment: KeyEnvironment::parse(&environment).map_err(corrupt)?,
                scopes: scopes
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(Scope::parse)
                    .collect::<Result<_, _>>()
                    .map_err(corrupt)?,
                created_at: time(created_at)?,
                expires_at: expires_at.map(time).transpose()?,
                revoked_at: revoked_at.map(time).transpose()?,
            }))
        })
        .await
    }
}

#[async_trait]
impl LimitStore for SqliteStore {
    async fn take(
        &self,
        counter: &str,
        limit: u32,
        window: Duration,
        now: DateTime<Utc>,
    ) -> Result<LimitDecision, StoreError> {
        let counter = counter.to_owned();
        let (window_start, reset_after) = fixed_window(window, now);
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Old windows are dead weight; sweeping them here keeps the table small without a job.
            tx.execute("DELETE FROM limit_counters WHERE expires_at < ?1", [now.timestamp()])?;
            let count: u32 = tx.query_row(
                "INSERT INTO limit_counters (counter, window_start, count, expires_at) VALUES (?1, ?2, 1, ?3)
                 ON CONFLICT (counter, window_start) DO UPDATE SET count = count + 1
                 RETURNING count",
                params![counter, window_start, window_start + window.as_secs() as i64],
                |r| r.get(0),
            )?;
            tx.commit()?;
            Ok(LimitDecision {
                allowed: count <= limit,
                limit,
                remaining: limit.saturating_sub(count),
                reset_after,
            })
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
        Ok(StoredBook {
            book,
            version: version as u64,
        })
    })
    .transpose()
}

/// Swaps the stored document if its version is still `expected`, inside the caller's transaction.
fn swap_book(connection: &Connection, book: &Book, expected: u64) -> anyhow::Result<bool> {
    let doc = serde_json::to_string(book)?;
    Ok(connection.execute(
        "UPDATE books SET doc = ?2, version = version + 1 WHERE id = ?1 AND version = ?3",
        params![book.id.as_str(), doc, expected as i64],
    )? == 1)
}

#[async_trait]
impl BookStore for SqliteStore {
    async fn create_book(
        &self,
        book: &Book,
        idempotency: Option<&IdempotencyKey>,
    ) -> Result<CreateOutcome, StoreError> {
        let book = book.clone();
        let key = idempotency.map(|k| k.as_str().to_owned());
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let user = book.user.as_str();
            if let Some(key) = &key {
                let earlier: Option<String> = tx
                    .query_row(
                        "SELECT book_id FROM idempotency WHERE user_id = ?1 AND key = ?2",
                        params![user, key],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(earlier) = earlier {
                    let stored = read_book(&tx, &earlier)?.ok_or(StoreError::Missing("book"))?;
                    return Ok(CreateOutcome::Replayed(stored));
                }
            }
            let balance = read_user(&tx, user)?.ok_or(StoreError::Missing("user"))?.credits;
            if balance < book.charged {
                return Ok(CreateOutcome::InsufficientCredits { balance });
            }
            if book.charged > 0 {
                append_entry(&tx, user, -book.charged, EntryKind::Usage, "Book", Some(book.id.as_str()), book.created_at)?;
            }
            tx.execute(
                "INSERT INTO books (id, user_id, doc, version, created_at) VALUES (?1, ?2, ?3, 1, ?4)",
                params![book.id.as_str(), user, serde_json::to_string(&book)?, book.created_at.to_rfc3339()],
            )?;
            if let Some(key) = &key {
                tx.execute(
                    "INSERT INTO idempotency (user_id, key, book_id) VALUES (?1, ?2, ?3)",
                    params![user, key, book.id.as_str()],
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

    async fn replace_book(&self, book: &Book, expected_version: u64) -> Result<bool, StoreError> {
        let book = book.clone();
        self.run(move |c| swap_book(c, &book, expected_version))
            .await
    }

    async fn replace_with_refund(
        &self,
        book: &Book,
        expected_version: u64,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let book = book.clone();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if !swap_book(&tx, &book, expected_version)? {
                return Ok(false);
            }
            append_entry(
                &tx,
                book.user.as_str(),
                book.charged,
                EntryKind::Refund,
                "Refund of a failed book",
                Some(book.id.as_str()),
                at,
            )?;
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
            Ok(c.execute(
                "DELETE FROM books WHERE id = ?1 AND version = ?2",
                params![id, expected_version as i64],
            )? == 1)
        })
        .await
    }
}
