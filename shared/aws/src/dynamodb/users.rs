//! Users and their credits: the profile item, the ledger, grants.

use super::book_items::UNFINISHED_PK;
use super::*;
use storybook_core::domain::purchase::Subscription;

#[async_trait]
impl UserStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(user = %id.truncated()))]
    async fn erase_user(&self, id: &UserId) -> Result<u64, StoreError> {
        use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, WriteRequest};
        let anonymous = format!("ERASED#{}", uuid::Uuid::new_v4().simple());
        let mut requests = Vec::new();
        let mut kept = 0;
        for item in self.query_all(user_pk(id), "", false).await? {
            let sk = text(&item, "sk")?;
            if sk == PROFILE || sk.starts_with("LEDGER#") {
                // Kept, under an id that leads back to no one, without its free text.
                let mut copy: Item = item.clone();
                copy.insert("pk".into(), s(anonymous.clone()));
                copy.remove("description");
                copy.remove("reference");
                kept += u64::from(sk != PROFILE);
                let put = PutRequest::builder()
                    .set_item(Some(copy))
                    .build()
                    .map_err(StoreError::unavailable)?;
                requests.push(WriteRequest::builder().put_request(put).build());
            }
            if let Some(paid) = sk.strip_prefix(purchases::PAID_PREFIX) {
                self.forget_payee(paid, id).await?;
            }
            if sk.starts_with(purchases::HOLDS_PREFIX) {
                self.forget_holder(&sk, id).await?;
            }
            if let Some(order) = sk.strip_prefix(print_orders::NOTE_PREFIX) {
                // The order itself, and the address it holds.
                let delete = DeleteRequest::builder()
                    .key("pk", s(print_orders::order_pk(order)))
                    .key("sk", s(print_orders::ORDER))
                    .build()
                    .map_err(StoreError::unavailable)?;
                requests.push(WriteRequest::builder().delete_request(delete).build());
            }
            if let Some(token_hash) = sk.strip_prefix(shares::NOTE_PREFIX) {
                let delete = DeleteRequest::builder()
                    .key("pk", s(shares::share_pk(token_hash)))
                    .key("sk", s(shares::SHARE))
                    .build()
                    .map_err(StoreError::unavailable)?;
                requests.push(WriteRequest::builder().delete_request(delete).build());
            }
            if sk == purchases::SUBSCRIPTION {
                // Its entry in the index of renewals, if it has one.
                // A plan that cannot be read never stops an erasure.
                let plan = text(&item, "doc").and_then(|doc| Subscription::read(&doc));
                if let Some(entry) = plan.ok().and_then(|plan| purchases::renewal_sk(id, &plan)) {
                    let delete = DeleteRequest::builder()
                        .key("pk", s(purchases::RENEWALS_PK))
                        .key("sk", s(entry))
                        .build()
                        .map_err(StoreError::unavailable)?;
                    requests.push(WriteRequest::builder().delete_request(delete).build());
                }
            }
            if sk.starts_with(purchases::NOTE_PREFIX) {
                // The store payment stays claimed, by no one: never redeemed again.
                self.forget_owner(&sk, id).await?;
            }
            if let Some(created_and_id) = sk.strip_prefix("BOOK#") {
                let book = text(&item, "book_id")?;
                // The book with its page assets, and its entry in the index of unfinished books
                // if it has one.
                let mut keys: Vec<(String, String)> = self
                    .query_all(format!("BOOK#{book}"), "", false)
                    .await?
                    .iter()
                    .filter_map(|item| optional_text(item, "sk"))
                    .map(|sk| (format!("BOOK#{book}"), sk))
                    .collect();
                keys.push((UNFINISHED_PK.to_owned(), created_and_id.to_owned()));
                for (pk, sk) in keys {
                    let delete = DeleteRequest::builder()
                        .key("pk", s(pk))
                        .key("sk", s(sk))
                        .build()
                        .map_err(StoreError::unavailable)?;
                    requests.push(WriteRequest::builder().delete_request(delete).build());
                }
            }
            let delete = DeleteRequest::builder()
                .key("pk", s(user_pk(id)))
                .key("sk", s(sk))
                .build()
                .map_err(StoreError::unavailable)?;
            requests.push(WriteRequest::builder().delete_request(delete).build());
        }
        self.write_batches(requests).await?;
        Ok(kept)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %id.truncated()))]
    async fn find_user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        Ok(self.read_user(id).await?.map(|(user, _)| user))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %id.truncated()))]
    async fn create_user(
        &self,
        id: &UserId,
        opening_credits: i64,
        at: DateTime<Utc>,
    ) -> Result<UserLookup, StoreError> {
        let seq = i64::from(opening_credits > 0);
        let profile = Put::builder()
            .table_name(&self.table)
            .item("pk", s(user_pk(id)))
            .item("sk", s(PROFILE))
            .item("credits", n(opening_credits))
            .item("total_purchased", n(0))
            .item("total_used", n(0))
            .item("ledger_seq", n(seq))
            .item("created_at", s(at.to_rfc3339()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(StoreError::unavailable)?;
        let mut items = vec![TransactWriteItem::builder().put(profile).build()];
        if seq == 1 {
            let entry = EntryFields {
                kind: EntryKind::Bonus,
                description: "Welcome credits",
                reference: None,
                at,
            };
            items.push(self.ledger_put(id, 1, opening_credits, opening_credits, entry)?);
        }
        let attempt = || async {
            match self.transact(items.clone()).await {
                Ok(()) => Ok(true),
                // Cancelled: another request made this user first (theirs stands), or a
                // transaction conflict that the next attempt settles.
                Err(Attempt::Lost(_)) if self.read_user(id).await?.is_some() => Ok(false),
                Err(other) => Err(other),
            }
        };
        let created = until_settled(attempt).await?;
        let (user, _) = self
            .read_user(id)
            .await?
            .ok_or(StoreError::Missing("user"))?;
        Ok(UserLookup { user, created })
    }
}

#[async_trait]
impl CreditStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(user = %grant.user.truncated()))]
    async fn grant(&self, grant: &Grant) -> Result<GrantOutcome, StoreError> {
        let grant_pk = format!("GRANT#{}", grant.transaction_id.as_str());
        let description = grant.description();
        let attempt = || async {
            if self.get(grant_pk.clone(), "GRANT").await?.is_some() {
                let (user, _) = self
                    .read_user(&grant.user)
                    .await?
                    .ok_or(StoreError::Missing("user"))?;
                return Ok(GrantOutcome::AlreadyProcessed {
                    balance: user.credits,
                });
            }
            let (user, seq) = self
                .read_user(&grant.user)
                .await?
                .ok_or(StoreError::Missing("user"))?;
            let marker = Put::builder()
                .table_name(&self.table)
                .item("pk", s(grant_pk.clone()))
                .item("sk", s("GRANT"))
                // No user: the marker only makes the transaction once, and erasure must not
                // leave the user's hash behind (the ledger entry names the transaction).
                .item("amount", n(grant.delta))
                .item("created_at", s(grant.at.to_rfc3339()))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(StoreError::unavailable)?;
            let balance = user.credits + grant.delta;
            if balance < 0 {
                return Ok(GrantOutcome::InsufficientCredits {
                    balance: user.credits,
                });
            }
            let entry = EntryFields {
                kind: grant.kind,
                description: &description,
                reference: Some(grant.transaction_id.as_str()),
                at: grant.at,
            };
            let marker = TransactWriteItem::builder().put(marker).build();
            self.append_entry(&grant.user, seq, grant.delta, balance, entry, vec![marker])
                .await?;
            Ok(GrantOutcome::Applied { balance })
        };
        // A lost race is either another grant on this balance or this very grant applied
        // concurrently; the next attempt's first read tells which.
        until_settled(attempt).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn ledger(
        &self,
        user: &UserId,
        page: LedgerPage,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let wanted = (page.offset + page.limit) as usize;
        let mut items: Vec<Item> = Vec::with_capacity(wanted);
        let mut start = None;
        loop {
            let answer = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :ledger)")
                .expression_attribute_values(":pk", s(user_pk(user)))
                .expression_attribute_values(":ledger", s("LEDGER#"))
                .scan_index_forward(false)
                .consistent_read(true)
                .limit((wanted - items.len()).min(1000) as i32)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(describe(e)))?;
            items.extend(answer.items.unwrap_or_default());
            start = answer.last_evaluated_key;
            if start.is_none() || items.len() >= wanted {
                break;
            }
        }
        items
            .iter()
            .skip(page.offset as usize)
            .take(page.limit as usize)
            .map(|item| {
                Ok(LedgerEntry {
                    seq: num(item, "seq")?,
                    delta: num(item, "delta")?,
                    balance_after: num(item, "balance_after")?,
                    kind: EntryKind::parse(&text(item, "kind")?)
                        .map_err(|e| StoreError::Corrupt(e.0))?,
                    description: optional_text(item, "description"),
                    reference: optional_text(item, "reference"),
                    created_at: time(item, "created_at")?,
                })
            })
            .collect()
    }
}
