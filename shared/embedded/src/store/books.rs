//! Books: creation with its charge, steps' changes, page assets, the library, the sweep.

use super::users::{append_entry, read_user};
use super::*;

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

pub(super) fn read_book(connection: &Connection, id: &str) -> anyhow::Result<Option<StoredBook>> {
    let row: Option<(String, i64)> = connection
        .query_row("SELECT doc, version FROM books WHERE id = ?1", [id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    row.map(|(doc, version)| {
        let book = Book::read(&doc).map_err(|e| StoreError::Corrupt(format!("book {id}: {e}")))?;
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
                    asset: PageAsset::read(&doc)?,
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
pub(super) fn swap_book(
    connection: &Connection,
    book: &Book,
    expected: u64,
) -> anyhow::Result<bool> {
    let doc = book.write();
    Ok(connection.execute(
        "UPDATE books SET doc = ?2, version = version + 1, unfinished = ?4 WHERE id = ?1 AND version = ?3",
        params![book.id.as_str(), doc, expected as i64, !book.is_finished()],
    )? == 1)
}

#[async_trait]
impl BookStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(book = %book.id.as_str()))]
    async fn create_book(
        &self,
        book: &Book,
        idempotency: Option<&Idempotency>,
        unfinished_cap: u32,
    ) -> Result<CreateOutcome, StoreError> {
        let book = book.clone();
        let idempotency = idempotency.cloned();
        let now = self.clock.now().timestamp();
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
                    Some((_, _, expires)) if expires <= now => {
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
                params![book.id.as_str(), user, book.write(), book.created_at.to_rfc3339(), !book.is_finished()],
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

    #[tracing::instrument(level = "debug", skip_all, fields(book = %id.as_str()))]
    async fn find_book(&self, id: &BookId) -> Result<Option<StoredBook>, StoreError> {
        let id = id.as_str().to_owned();
        self.run(move |c| read_book(c, &id)).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
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

    #[tracing::instrument(level = "debug", skip_all, fields(book = %book.id.as_str()))]
    async fn replace_book(&self, book: &Book, expected_version: u64) -> Result<bool, StoreError> {
        let book = book.clone();
        self.run(move |c| swap_book(c, &book, expected_version))
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(book = %book.id.as_str()))]
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

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn books_of(&self, user: &UserId) -> Result<Vec<Book>, StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |c| {
            let docs: Vec<(String, String)> = c
                .prepare_cached("SELECT id, doc FROM books WHERE user_id = ?1 ORDER BY created_at DESC, id DESC")?
                .query_map([user], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<Result<_, _>>()?;
            docs.into_iter()
                .map(|(id, doc): (String, String)| {
                    Book::read(&doc).map_err(|e| anyhow::anyhow!("book {id}: {e}"))
                })
                .collect()
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(book = %book.id.as_str()))]
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

    #[tracing::instrument(level = "debug", skip_all, fields(book = %book.as_str()))]
    async fn record_page_asset(
        &self,
        book: &BookId,
        recorded: &RecordedAsset,
    ) -> Result<bool, StoreError> {
        let id = book.as_str().to_owned();
        let (page, kind) = (recorded.page, recorded.asset.kind());
        let doc = Document::write(&recorded.asset);
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

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
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

    #[tracing::instrument(level = "debug", skip_all)]
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
                .map(|(id, doc, version): (String, String, i64)| {
                    Ok(StoredBook {
                        book: Book::read(&doc)
                            .map_err(|e| StoreError::Corrupt(format!("book {id}: {e}")))?,
                        version: version as u64,
                    })
                })
                .collect()
        })
        .await
    }
}
