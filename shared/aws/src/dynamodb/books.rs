//! Books: creation with its charge, steps' changes, page assets, the library, the sweep.

use super::book_items::{UNFINISHED_PK, book_pk, idempotency_sk, library_sk};
use super::*;

#[async_trait]
impl BookStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(book = %book.id.as_str()))]
    async fn create_book(
        &self,
        book: &Book,
        idempotency: Option<&Idempotency>,
        unfinished_cap: u32,
    ) -> Result<CreateOutcome, StoreError> {
        let idempotency_sk = idempotency.map(|r| idempotency_sk(&r.key));
        let attempt = || async {
            let now = self.clock.now().timestamp();
            if let (Some(sk), Some(record)) = (&idempotency_sk, idempotency)
                && let Some(earlier) = self.get(user_pk(&book.user), sk).await?
                // Past its 24 hours the record is as good as absent (TTL deletes it days late).
                && num(&earlier, "expires_at")? > now
            {
                if optional_text(&earlier, "fingerprint").as_deref()
                    != Some(record.fingerprint.as_str())
                {
                    return Ok(CreateOutcome::KeyReused);
                }
                let id = BookId::parse(&text(&earlier, "book_id")?)
                    .map_err(|e| StoreError::Corrupt(e.0))?;
                let stored = self
                    .find_book(&id)
                    .await?
                    .ok_or(StoreError::Missing("book"))?;
                return Ok(CreateOutcome::Replayed(stored));
            }
            let profile = self
                .get(user_pk(&book.user), PROFILE)
                .await?
                .ok_or(StoreError::Missing("user"))?;
            let (credits, seq) = (num(&profile, "credits")?, num(&profile, "ledger_seq")?);
            // The count is read after the user's item, and the write below is guarded by that
            // item (its ledger sequence, or for a free book its count of books made), so a book
            // another request made in between makes this attempt lose and count again.
            if self.count_unfinished_books(&book.user).await? >= unfinished_cap {
                return Ok(CreateOutcome::TooManyUnfinished);
            }
            if credits < book.charged {
                return Ok(CreateOutcome::InsufficientCredits { balance: credits });
            }
            let mut items = vec![
                self.book_put(book, 1, None)?,
                self.plain_put(user_pk(&book.user), library_sk(book), &book.id)?,
            ];
            if !book.is_finished() {
                items.extend(self.unfinished_puts(book)?);
            }
            if let (Some(sk), Some(record)) = (&idempotency_sk, idempotency) {
                let put = Put::builder()
                    .table_name(&self.table)
                    .item("pk", s(user_pk(&book.user)))
                    .item("sk", s(sk.clone()))
                    .item("book_id", s(book.id.as_str()))
                    .item("fingerprint", s(&record.fingerprint))
                    .item("expires_at", n(record.expires_at.timestamp()))
                    .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
                    .expression_attribute_values(":now", n(now))
                    .build()
                    .map_err(StoreError::unavailable)?;
                items.push(TransactWriteItem::builder().put(put).build());
            }
            if book.charged > 0 {
                let entry = EntryFields {
                    kind: EntryKind::Usage,
                    description: "Book",
                    reference: Some(book.id.as_str()),
                    at: book.created_at,
                };
                self.append_entry(
                    &book.user,
                    seq,
                    -book.charged,
                    credits - book.charged,
                    entry,
                    items,
                )
                .await?;
            } else {
                let made = optional_num(&profile, "books_made")?.unwrap_or(0);
                let guard = Update::builder()
                    .table_name(&self.table)
                    .key("pk", s(user_pk(&book.user)))
                    .key("sk", s(PROFILE))
                    .update_expression("SET books_made = :next")
                    .condition_expression(
                        "ledger_seq = :seq AND (attribute_not_exists(books_made) OR books_made = :made)",
                    )
                    .expression_attribute_values(":next", n(made + 1))
                    .expression_attribute_values(":made", n(made))
                    .expression_attribute_values(":seq", n(seq))
                    .build()
                    .map_err(StoreError::unavailable)?;
                items.push(TransactWriteItem::builder().update(guard).build());
                self.transact(items).await?;
            }
            Ok(CreateOutcome::Created(StoredBook {
                book: book.clone(),
                version: 1,
            }))
        };
        until_settled(attempt).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(book = %id.as_str()))]
    async fn find_book(&self, id: &BookId) -> Result<Option<StoredBook>, StoreError> {
        // The book and its recorded page assets share a partition: one Query reads them all.
        let items = self.query_all(book_pk(id), "", false).await?;
        let Some(book) = items
            .iter()
            .find(|item| optional_text(item, "sk").as_deref() == Some("BOOK"))
        else {
            return Ok(None);
        };
        let mut stored = Self::parse_book(book)?;
        let recorded = items
            .iter()
            .filter(|item| optional_text(item, "sk").is_some_and(|sk| sk.starts_with("ASSET#")))
            .map(|item| {
                Ok(RecordedAsset {
                    page: u8::try_from(num(item, "page")?)
                        .map_err(|_| StoreError::Corrupt("a page number".into()))?,
                    asset: Document::read(&text(item, "doc")?)?,
                    at: DateTime::parse_from_rfc3339(&text(item, "at")?)
                        .map_err(|e| StoreError::Corrupt(format!("page asset time: {e}")))?
                        .with_timezone(&Utc),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        stored.book = stored.book.with_assets(recorded);
        Ok(Some(stored))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(book = %book.as_str()))]
    async fn record_page_asset(
        &self,
        book: &BookId,
        recorded: &RecordedAsset,
    ) -> Result<bool, StoreError> {
        let doc = Document::write(&recorded.asset);
        // Only beside a book that still exists: a step finishing after its book was deleted
        // (its user erased) must leave no item naming it.
        let book_exists = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", s(book_pk(book)))
            .key("sk", s("BOOK"))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(StoreError::unavailable)?;
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(book_pk(book)))
            .item("sk", s(asset_sk(recorded.page, recorded.asset.kind())))
            .item("page", n(i64::from(recorded.page)))
            .item("doc", s(doc))
            .item("at", s(recorded.at.to_rfc3339()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(StoreError::unavailable)?;
        match self
            .transact(vec![
                TransactWriteItem::builder()
                    .condition_check(book_exists)
                    .build(),
                TransactWriteItem::builder().put(put).build(),
            ])
            .await
        {
            Ok(()) => Ok(true),
            // The book is gone or the asset was recorded before: either way nothing to record.
            Err(Attempt::Lost(_)) => Ok(false),
            Err(Attempt::Failed(error)) => Err(error),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn forget_idempotency(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
    ) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(user_pk(user)))
            .key("sk", s(idempotency_sk(key)))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe(e)))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(book = %book.id.as_str()))]
    async fn replace_book(&self, book: &Book, expected_version: u64) -> Result<bool, StoreError> {
        self.swap(self.book_writes(book, expected_version + 1, Some(expected_version))?)
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
        let attempt = || async {
            let (user, seq) = self
                .read_user(&book.user)
                .await?
                .ok_or(StoreError::Missing("user"))?;
            let writes = self.book_writes(book, expected_version + 1, Some(expected_version))?;
            let delta = settlement.delta(book.charged, user.credits);
            let entry = EntryFields {
                kind: settlement.entry_kind(),
                description: settlement.description(),
                reference: Some(book.id.as_str()),
                at,
            };
            let written = if delta == 0 {
                self.transact(writes).await
            } else {
                self.append_entry(&book.user, seq, delta, user.credits + delta, entry, writes)
                    .await
            };
            match written {
                Ok(()) => Ok(true),
                // Lost to another writer of the book (its put comes first), or only to a balance
                // change: only the second is worth another try. When DynamoDB named no failed
                // condition, the book's version tells.
                Err(lost) if lost.condition_failed_at(0) => Ok(false),
                Err(Attempt::Lost(failed)) if !failed.is_empty() => Err(Attempt::Lost(failed)),
                Err(Attempt::Lost(failed)) => match self.find_book(&book.id).await? {
                    Some(now) if now.version == expected_version => Err(Attempt::Lost(failed)),
                    _ => Ok(false),
                },
                Err(failed) => Err(failed),
            }
        };
        until_settled(attempt).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn books_of(&self, user: &UserId) -> Result<Vec<Book>, StoreError> {
        let ids = self
            .query_all(user_pk(user), "BOOK#", true)
            .await?
            .iter()
            .map(|item| text(item, "book_id"))
            .collect::<Result<Vec<_>, _>>()?;
        // A hundred books a round trip (BatchGetItem), put back in the library's order.
        let mut found: HashMap<String, Book> = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(100) {
            let keys = chunk
                .iter()
                .map(|id| {
                    HashMap::from([
                        ("pk".to_owned(), s(format!("BOOK#{id}"))),
                        ("sk".to_owned(), s("BOOK")),
                    ])
                })
                .collect();
            let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(StoreError::unavailable)?;
            let mut pending = Some(HashMap::from([(self.table.clone(), request)]));
            while let Some(request) = pending.take().filter(|p| !p.is_empty()) {
                let answer = self
                    .client
                    .batch_get_item()
                    .set_request_items(Some(request))
                    .send()
                    .await
                    .map_err(|e| StoreError::Unavailable(describe(e)))?;
                for item in answer
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default()
                {
                    let stored = Self::parse_book(&item)?;
                    found.insert(stored.book.id.as_str().to_owned(), stored.book);
                }
                pending = answer.unprocessed_keys;
            }
        }
        // A pointer whose book is gone (deleted between the two writes' readers) is skipped.
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn count_unfinished_books(&self, user: &UserId) -> Result<u32, StoreError> {
        let answer = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :unfinished)")
            .expression_attribute_values(":pk", s(user_pk(user)))
            .expression_attribute_values(":unfinished", s("UNFINISHED#"))
            .select(aws_sdk_dynamodb::types::Select::Count)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe(e)))?;
        Ok(answer.count.max(0) as u32)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(book = %book.id.as_str()))]
    async fn delete_book(&self, book: &Book, expected_version: u64) -> Result<bool, StoreError> {
        let delete = |pk: String, sk: String| {
            aws_sdk_dynamodb::types::Delete::builder()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
        };
        let guarded = delete(book_pk(&book.id), "BOOK".into())
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", n(expected_version as i64))
            .build()
            .map_err(StoreError::unavailable)?;
        let pointer = delete(user_pk(&book.user), library_sk(book))
            .build()
            .map_err(StoreError::unavailable)?;
        // Its recorded page assets: at most 2 x 13 items, within a transaction's 100.
        let assets = (0..=book.request.page_count.get())
            .flat_map(|page| ["image", "audio"].map(|kind| asset_sk(page, kind)))
            .map(|sk| {
                delete(book_pk(&book.id), sk)
                    .build()
                    .map(|d| TransactWriteItem::builder().delete(d).build())
                    .map_err(StoreError::unavailable)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.swap(
            vec![
                TransactWriteItem::builder().delete(guarded).build(),
                TransactWriteItem::builder().delete(pointer).build(),
            ]
            .into_iter()
            .chain(self.unfinished_deletes(book)?)
            .chain(assets)
            .collect(),
        )
        .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn unfinished_books(
        &self,
        created_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<StoredBook>, StoreError> {
        let answer = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk < :before")
            .expression_attribute_values(":pk", s(UNFINISHED_PK))
            .expression_attribute_values(":before", s(created_before.to_rfc3339()))
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe(e)))?;
        let mut books = Vec::new();
        for item in answer.items.unwrap_or_default() {
            let id =
                BookId::parse(&text(&item, "book_id")?).map_err(|e| StoreError::Corrupt(e.0))?;
            // An entry whose book is gone (its user erased) or finished is skipped; the book's
            // own writes remove entries, so these are rare.
            match self.find_book(&id).await? {
                Some(stored) if !stored.book.is_finished() => books.push(stored),
                _ => {}
            }
        }
        Ok(books)
    }
}
