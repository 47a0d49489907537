//! Store payments and plans.
//!
//! | item | pk | sk |
//! | --- | --- | --- |
//! | claim of a store payment | `PURCHASE#{platform}#{store id}` | `CLAIM`: `owner` (absent once the owner is erased), `product_id`, `claimed_at` |
//! | the owner's note of it | `USER#{user hash}` | `PURCHASE#{platform}#{store id}`: erasure removes the claim's `owner` by it |
//! | a user's plan | `USER#{user hash}` | `SUBSCRIPTION`: `doc`; every replacement is conditioned on the `doc` read |
//! | who pays a claim's credits back | `USER#{user hash}` | `PAID#{platform}#{store id}`: erasure removes `paid_to` from the claim |
//! | who holds a store subscription | `STORESUB#{platform}#{subscription id}` | `HOLDER`: `user`, written with the plan |
//! | the holder's note of it | `USER#{user hash}` | `STORESUB#{platform}#{subscription id}`: erasure removes the pointer by it |
//! | a store notification applied | `NOTIFICATION#{platform}#{id}` | `NOTIFICATION`, expires after 180 days |
//! | a running store plan by its period's end | `RENEWALS` | `{period end, ms}#{user hash}`: `user`; written with the plan, what the reconcile reads |
//!
//! A claim that paid credits names its payee (`paid_to`, `credits`); a refund takes them back
//! from that user in one transaction with the claim's `refunded` mark, whoever holds the claim.
//!
//! A redemption is one transaction: the claim (conditioned on its owner as read), the notes,
//! the plans (each conditioned on its `doc` as read) and, when it pays, the balance and its
//! ledger entry (conditioned on the user's `ledger_seq`). A lost race reads again and decides
//! again: twenty racing redemptions of one payment make one claim and one reward.

use super::*;
use aws_sdk_dynamodb::types::Delete;
use storybook_core::domain::purchase::{Platform, Subscription, SubscriptionStatus};
use storybook_core::ports::purchases::{
    ClaimOwner, PurchaseStore, RedeemState, Redeemed, Redemption, Refunded,
};

pub(super) const CLAIM: &str = "CLAIM";
pub(super) const SUBSCRIPTION: &str = "SUBSCRIPTION";
/// The sort-key prefix of the notes of claims a user was paid for.
pub(super) const PAID_PREFIX: &str = "PAID#";
/// The sort-key prefix of the notes of store subscriptions a user was made holder of.
pub(super) const HOLDS_PREFIX: &str = "STORESUB#";

fn holder_pk(platform: Platform, subscription_id: &str) -> String {
    format!("STORESUB#{}#{subscription_id}", platform.as_str())
}

/// The holder pointer of a store plan, or `None` for an operator's plan.
pub(super) fn holder_key(subscription: &Subscription) -> Option<String> {
    match &subscription.source {
        storybook_core::domain::purchase::SubscriptionSource::Store {
            platform,
            subscription_id,
        } => Some(holder_pk(*platform, subscription_id)),
        storybook_core::domain::purchase::SubscriptionSource::Admin => None,
    }
}

fn notification_pk(platform: Platform, id: &str) -> String {
    format!("NOTIFICATION#{}#{id}", platform.as_str())
}

pub(super) fn claim_pk(platform: Platform, store_id: &str) -> String {
    format!("PURCHASE#{}#{store_id}", platform.as_str())
}

/// The note in the owner's partition: the claim's own pk as its sort key.
fn note_sk(platform: Platform, store_id: &str) -> String {
    claim_pk(platform, store_id)
}

/// The index of running store plans by the end of their period: one partition, like the
/// index of unfinished books (a write or two per purchase and renewal).
pub(super) const RENEWALS_PK: &str = "RENEWALS";

/// A plan's entry in the index of renewals: a store plan's that has not expired.
pub(super) fn renewal_sk(user: &UserId, subscription: &Subscription) -> Option<String> {
    let running = subscription.status != SubscriptionStatus::Expired;
    (running && holder_key(subscription).is_some()).then(|| {
        format!(
            "{}#{}",
            renewal_time(subscription.period_end),
            user.as_str()
        )
    })
}

/// One width for every time in the index, so that its order is time's.
fn renewal_time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The sort-key prefix of a user's purchase notes.
pub(super) const NOTE_PREFIX: &str = "PURCHASE#";

impl DynamoStore {
    async fn read_claim(
        &self,
        platform: Platform,
        store_id: &str,
    ) -> Result<Option<ClaimOwner>, StoreError> {
        Ok(self
            .get(claim_pk(platform, store_id), CLAIM)
            .await?
            .map(|item| match optional_text(&item, "owner") {
                Some(owner) => ClaimOwner::User(CredentialHash::from_stored(owner)),
                None => ClaimOwner::Erased,
            }))
    }

    /// The user's plan and its stored document (what a replacement is conditioned on).
    async fn read_subscription(
        &self,
        user: &UserId,
    ) -> Result<Option<(Subscription, String)>, StoreError> {
        self.get(user_pk(user), SUBSCRIPTION)
            .await?
            .map(|item| {
                let doc = text(&item, "doc")?;
                Ok((Subscription::read(&doc)?, doc))
            })
            .transpose()
    }

    /// The writes of the user's plan: its put, conditioned on the plan and document read
    /// (`None`: there was none), and its entry in the index of renewals moved with it.
    fn subscription_writes(
        &self,
        user: &UserId,
        subscription: &Subscription,
        read: Option<(&Subscription, &str)>,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(user_pk(user)))
            .item("sk", s(SUBSCRIPTION))
            .item("doc", s(subscription.write()));
        let put = match read {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some((_, doc)) => put
                .condition_expression("doc = :read")
                .expression_attribute_values(":read", s(doc)),
        };
        let mut writes = vec![
            TransactWriteItem::builder()
                .put(put.build().map_err(StoreError::unavailable)?)
                .build(),
        ];
        let before = read.and_then(|(plan, _)| renewal_sk(user, plan));
        let after = renewal_sk(user, subscription);
        if let Some(before) = before.filter(|before| after.as_ref() != Some(before)) {
            let delete = Delete::builder()
                .table_name(&self.table)
                .key("pk", s(RENEWALS_PK))
                .key("sk", s(before))
                .build()
                .map_err(StoreError::unavailable)?;
            writes.push(TransactWriteItem::builder().delete(delete).build());
        }
        if let Some(after) = after {
            // Put even when unchanged: a plan stored before the index gets its entry.
            let entry = Put::builder()
                .table_name(&self.table)
                .item("pk", s(RENEWALS_PK))
                .item("sk", s(after))
                .item("user", s(user.as_str()))
                .build()
                .map_err(StoreError::unavailable)?;
            writes.push(TransactWriteItem::builder().put(entry).build());
        }
        Ok(writes)
    }

    /// Erasure: the claim a PAID note names no longer names its payee (`paid` is the note's sort
    /// key past its prefix: `{platform}#{store id}`).
    pub(super) async fn forget_payee(&self, paid: &str, user: &UserId) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("PURCHASE#{paid}")))
            .key("sk", s(CLAIM))
            .update_expression("REMOVE paid_to")
            .condition_expression("paid_to = :user")
            .expression_attribute_values(":user", s(user.as_str()))
            .send()
            .await;
        conditionally_written(result).map(|_| ())
    }

    /// Erasure: the claim a PURCHASE note names stays claimed, by no one (its payee and refund
    /// mark kept), unless it moved to someone else meanwhile.
    pub(super) async fn forget_owner(
        &self,
        claim_pk: &str,
        user: &UserId,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(claim_pk))
            .key("sk", s(CLAIM))
            .update_expression("REMOVE #owner")
            .condition_expression("#owner = :user")
            .expression_attribute_names("#owner", "owner")
            .expression_attribute_values(":user", s(user.as_str()))
            .send()
            .await;
        conditionally_written(result).map(|_| ())
    }

    /// Erasure: a store subscription's pointer named by a HOLDS note goes, if it still points
    /// at the erased user (`holder_pk` is the note's sort key: the pointer's pk).
    pub(super) async fn forget_holder(
        &self,
        holder_pk: &str,
        user: &UserId,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(holder_pk))
            .key("sk", s("HOLDER"))
            .condition_expression("#user = :user")
            .expression_attribute_names("#user", "user")
            .expression_attribute_values(":user", s(user.as_str()))
            .send()
            .await;
        conditionally_written(result).map(|_| ())
    }

    /// The pointer from a store subscription to its holder, and the holder's note of it (what
    /// erasure removes the pointer by).
    fn holder_puts(
        &self,
        pk: String,
        holder: &UserId,
    ) -> Result<[TransactWriteItem; 2], StoreError> {
        let pointer = Put::builder()
            .table_name(&self.table)
            .item("pk", s(pk.clone()))
            .item("sk", s("HOLDER"))
            .item("user", s(holder.as_str()))
            .build()
            .map_err(StoreError::unavailable)?;
        let note = Put::builder()
            .table_name(&self.table)
            .item("pk", s(user_pk(holder)))
            .item("sk", s(pk))
            .build()
            .map_err(StoreError::unavailable)?;
        Ok([
            TransactWriteItem::builder().put(pointer).build(),
            TransactWriteItem::builder().put(note).build(),
        ])
    }

    /// One decision and its transaction, over what is stored now.
    async fn redeem_once(&self, redemption: &Redemption) -> Result<Redeemed, Attempt> {
        let purchase = &redemption.purchase;
        let caller = &redemption.user;
        let claim = self
            .read_claim(purchase.platform, &purchase.store_id)
            .await?;
        let previous_owner = match &claim {
            Some(ClaimOwner::User(owner)) if owner != caller => Some(owner.clone()),
            _ => None,
        };
        let owner_read = match &previous_owner {
            Some(owner) => self.read_subscription(owner).await?,
            None => None,
        };
        let caller_read = self.read_subscription(caller).await?;
        let state = RedeemState {
            claim: claim.clone(),
            caller_subscription: caller_read.as_ref().map(|(sub, _)| sub.clone()),
            owner_subscription: owner_read.as_ref().map(|(sub, _)| sub.clone()),
        };
        let writes = redemption.writes(&state);
        let mut items = Vec::new();
        if writes.claim {
            let fields = [
                ("product_id", s(purchase.product_id.clone())),
                ("claimed_at", s(redemption.at.to_rfc3339())),
            ];
            let mut put = Put::builder()
                .table_name(&self.table)
                .item("pk", s(claim_pk(purchase.platform, &purchase.store_id)))
                .item("sk", s(CLAIM))
                .item("owner", s(caller.as_str()));
            for (name, value) in fields.clone() {
                put = put.item(name, value);
            }
            if let Some(subscription_id) = &purchase.subscription_id {
                put = put.item("subscription_id", s(subscription_id.clone()));
            }
            if let Some((credits, _)) = writes.credits {
                // The payee stays when the claim moves: a refund takes back from them.
                put = put
                    .item("paid_to", s(caller.as_str()))
                    .item("credits", n(credits));
                let note = Put::builder()
                    .table_name(&self.table)
                    .item("pk", s(user_pk(caller)))
                    .item(
                        "sk",
                        s(format!(
                            "{PAID_PREFIX}{}#{}",
                            purchase.platform.as_str(),
                            purchase.store_id
                        )),
                    )
                    .build()
                    .map_err(StoreError::unavailable)?;
                items.push(TransactWriteItem::builder().put(note).build());
            }
            let claim = match &previous_owner {
                None => TransactWriteItem::builder()
                    .put(
                        put.condition_expression("attribute_not_exists(pk)")
                            .build()
                            .map_err(StoreError::unavailable)?,
                    )
                    .build(),
                // A move changes the owner alone: the payee, the refund mark stay.
                Some(owner) => TransactWriteItem::builder()
                    .update(
                        Update::builder()
                            .table_name(&self.table)
                            .key("pk", s(claim_pk(purchase.platform, &purchase.store_id)))
                            .key("sk", s(CLAIM))
                            .update_expression("SET #owner = :caller")
                            .condition_expression("#owner = :previous")
                            .expression_attribute_names("#owner", "owner")
                            .expression_attribute_values(":caller", s(caller.as_str()))
                            .expression_attribute_values(":previous", s(owner.as_str()))
                            .build()
                            .map_err(StoreError::unavailable)?,
                    )
                    .build(),
            };
            items.push(claim);
            let mut note = Put::builder()
                .table_name(&self.table)
                .item("pk", s(user_pk(caller)))
                .item("sk", s(note_sk(purchase.platform, &purchase.store_id)));
            for (name, value) in fields {
                note = note.item(name, value);
            }
            items.push(
                TransactWriteItem::builder()
                    .put(note.build().map_err(StoreError::unavailable)?)
                    .build(),
            );
            if let Some(owner) = &previous_owner {
                let delete = Delete::builder()
                    .table_name(&self.table)
                    .key("pk", s(user_pk(owner)))
                    .key("sk", s(note_sk(purchase.platform, &purchase.store_id)))
                    .build()
                    .map_err(StoreError::unavailable)?;
                items.push(TransactWriteItem::builder().delete(delete).build());
            }
        }
        if let Some(subscription) = &writes.caller_subscription {
            let read = caller_read.as_ref().map(|(plan, doc)| (plan, doc.as_str()));
            items.extend(self.subscription_writes(caller, subscription, read)?);
            if let Some(pk) = holder_key(subscription) {
                items.extend(self.holder_puts(pk, caller)?);
            }
        }
        if let (Some(owner), Some(subscription)) = (&previous_owner, &writes.owner_subscription) {
            let read = owner_read.as_ref().map(|(plan, doc)| (plan, doc.as_str()));
            items.extend(self.subscription_writes(owner, subscription, read)?);
        }
        match writes.credits {
            Some((credits, kind)) => {
                let (user, seq) = self
                    .read_user(caller)
                    .await?
                    .ok_or(StoreError::Missing("user"))?;
                let description =
                    format!("{} ({})", purchase.product_id, purchase.platform.as_str());
                let reference = redemption.reference();
                let entry = EntryFields {
                    kind,
                    description: &description,
                    reference: Some(&reference),
                    at: redemption.at,
                };
                self.append_entry(caller, seq, credits, user.credits + credits, entry, items)
                    .await?;
            }
            None if !items.is_empty() => self.transact(items).await?,
            None => {}
        }
        Ok(writes.outcome)
    }
}

#[async_trait]
impl PurchaseStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(user = %redemption.user.truncated()))]
    async fn redeem(&self, redemption: &Redemption) -> Result<Redeemed, StoreError> {
        until_settled(|| self.redeem_once(redemption)).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn claim_owner(
        &self,
        platform: Platform,
        store_id: &str,
    ) -> Result<Option<ClaimOwner>, StoreError> {
        self.read_claim(platform, store_id).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn claimed_subscription(
        &self,
        platform: Platform,
        store_id: &str,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .get(claim_pk(platform, store_id), CLAIM)
            .await?
            .and_then(|item| optional_text(&item, "subscription_id")))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn subscription(&self, user: &UserId) -> Result<Option<Subscription>, StoreError> {
        Ok(self.read_subscription(user).await?.map(|(sub, _)| sub))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn open_subscription(
        &self,
        user: &UserId,
        subscription: &Subscription,
        reference: &str,
    ) -> Result<bool, StoreError> {
        let marker_pk = format!("GRANT#{reference}");
        let attempt = || async {
            if self.get(marker_pk.clone(), "GRANT").await?.is_some() {
                return Ok(false);
            }
            let (account, seq) = self
                .read_user(user)
                .await?
                .ok_or(StoreError::Missing("user"))?;
            let read = self.read_subscription(user).await?;
            let marker = Put::builder()
                .table_name(&self.table)
                .item("pk", s(marker_pk.clone()))
                .item("sk", s("GRANT"))
                .item("amount", n(subscription.credits_per_period))
                .item("created_at", s(subscription.opened_at.to_rfc3339()))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(StoreError::unavailable)?;
            let mut items = vec![TransactWriteItem::builder().put(marker).build()];
            items.extend(self.subscription_writes(
                user,
                subscription,
                read.as_ref().map(|(plan, doc)| (plan, doc.as_str())),
            )?);
            let description = format!("{} plan", subscription.plan);
            let entry = EntryFields {
                kind: EntryKind::Subscription,
                description: &description,
                reference: Some(reference),
                at: subscription.opened_at,
            };
            let credits = subscription.credits_per_period;
            self.append_entry(user, seq, credits, account.credits + credits, entry, items)
                .await?;
            Ok(true)
        };
        until_settled(attempt).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn replace_subscription(
        &self,
        user: &UserId,
        expected: &Subscription,
        replacement: &Subscription,
    ) -> Result<bool, StoreError> {
        let Some((stored, doc)) = self.read_subscription(user).await? else {
            return Ok(false);
        };
        if stored != *expected {
            return Ok(false);
        }
        let writes = self.subscription_writes(user, replacement, Some((&stored, &doc)))?;
        match self.transact(writes).await {
            Ok(()) => Ok(true),
            Err(Attempt::Lost(_)) => Ok(false),
            Err(Attempt::Failed(error)) => Err(error),
        }
    }
    #[tracing::instrument(level = "debug", skip_all)]
    async fn subscription_holder(
        &self,
        platform: Platform,
        subscription_id: &str,
    ) -> Result<Option<UserId>, StoreError> {
        Ok(self
            .get(holder_pk(platform, subscription_id), "HOLDER")
            .await?
            .and_then(|item| optional_text(&item, "user"))
            .map(CredentialHash::from_stored))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn subscriptions_due(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(UserId, Subscription)>, StoreError> {
        let answer = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk < :before")
            .expression_attribute_values(":pk", s(RENEWALS_PK))
            .expression_attribute_values(":before", s(renewal_time(before)))
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe(e)))?;
        let mut due = Vec::new();
        for item in answer.items.unwrap_or_default() {
            let (user, sk) = (
                CredentialHash::from_stored(text(&item, "user")?),
                text(&item, "sk")?,
            );
            match self.read_subscription(&user).await? {
                Some((plan, _)) if renewal_sk(&user, &plan).as_deref() == Some(sk.as_str()) => {
                    due.push((user, plan));
                }
                // Left behind (its plan changed or its user was erased meanwhile): it goes.
                _ => {
                    self.client
                        .delete_item()
                        .table_name(&self.table)
                        .key("pk", s(RENEWALS_PK))
                        .key("sk", s(sk))
                        .send()
                        .await
                        .map_err(|e| StoreError::Unavailable(describe(e)))?;
                }
            }
        }
        Ok(due)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn refund(
        &self,
        platform: Platform,
        store_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Refunded, StoreError> {
        until_settled(|| self.refund_once(platform, store_id, at)).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn reverse_refund(
        &self,
        platform: Platform,
        store_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        until_settled(|| self.reverse_refund_once(platform, store_id, at)).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn notification_seen(&self, platform: Platform, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .get(notification_pk(platform, id), "NOTIFICATION")
            .await?
            .is_some())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn record_notification(
        &self,
        platform: Platform,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(notification_pk(platform, id)))
            .item("sk", s("NOTIFICATION"))
            .item("applied_at", s(at.to_rfc3339()))
            .item(
                "expires_at",
                n((at + chrono::Duration::days(180)).timestamp()),
            )
            .condition_expression("attribute_not_exists(pk)");
        conditionally_written(put.send().await)
    }
}
