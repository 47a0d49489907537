//! Store payments and plans.
//!
//! | item | pk | sk |
//! | --- | --- | --- |
//! | claim of a store payment | `PURCHASE#{platform}#{store id}` | `CLAIM`: `owner` (absent once the owner is erased), `product_id`, `claimed_at` |
//! | the owner's note of it | `USER#{user hash}` | `PURCHASE#{platform}#{store id}`: the same fields, so erasure can leave the claim ownerless |
//! | a user's plan | `USER#{user hash}` | `SUBSCRIPTION`: `doc`; every replacement is conditioned on the `doc` read |
//!
//! A redemption is one transaction: the claim (conditioned on its owner as read), the notes,
//! the plans (each conditioned on its `doc` as read) and, when it pays, the balance and its
//! ledger entry (conditioned on the user's `ledger_seq`). A lost race reads again and decides
//! again: twenty racing redemptions of one payment make one claim and one reward.

use super::*;
use aws_sdk_dynamodb::types::Delete;
use storybook_core::domain::purchase::{Platform, Subscription};
use storybook_core::ports::purchases::{
    ClaimOwner, PurchaseStore, RedeemState, Redeemed, Redemption,
};

const CLAIM: &str = "CLAIM";
const SUBSCRIPTION: &str = "SUBSCRIPTION";

fn claim_pk(platform: Platform, store_id: &str) -> String {
    format!("PURCHASE#{}#{store_id}", platform.as_str())
}

/// The note in the owner's partition: the claim's own pk as its sort key.
fn note_sk(platform: Platform, store_id: &str) -> String {
    claim_pk(platform, store_id)
}

/// The sort-key prefix of a user's purchase notes.
pub(super) const NOTE_PREFIX: &str = "PURCHASE#";

/// The claim an erased owner leaves behind: the note's pk-as-sk becomes the claim's pk, without
/// an owner.
pub(super) fn ownerless_claim(note: &Item) -> Result<Item, StoreError> {
    let mut claim = note.clone();
    claim.insert("pk".into(), s(text(note, "sk")?));
    claim.insert("sk".into(), s(CLAIM));
    Ok(claim)
}

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

    /// A put of the user's plan, conditioned on the document read (`None`: there was none).
    fn subscription_put(
        &self,
        user: &UserId,
        subscription: &Subscription,
        read: Option<&str>,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(user_pk(user)))
            .item("sk", s(SUBSCRIPTION))
            .item("doc", s(subscription.write()));
        let put = match read {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(doc) => put
                .condition_expression("doc = :read")
                .expression_attribute_values(":read", s(doc)),
        };
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(StoreError::unavailable)?)
            .build())
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
            put = match &previous_owner {
                None => put.condition_expression("attribute_not_exists(pk)"),
                Some(owner) => put
                    .condition_expression("#owner = :previous")
                    .expression_attribute_names("#owner", "owner")
                    .expression_attribute_values(":previous", s(owner.as_str())),
            };
            items.push(
                TransactWriteItem::builder()
                    .put(put.build().map_err(StoreError::unavailable)?)
                    .build(),
            );
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
            let read = caller_read.as_ref().map(|(_, doc)| doc.as_str());
            items.push(self.subscription_put(caller, subscription, read)?);
        }
        if let (Some(owner), Some(subscription)) = (&previous_owner, &writes.owner_subscription) {
            let read = owner_read.as_ref().map(|(_, doc)| doc.as_str());
            items.push(self.subscription_put(owner, subscription, read)?);
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
            let items = vec![
                TransactWriteItem::builder().put(marker).build(),
                self.subscription_put(user, subscription, read.as_ref().map(|(_, d)| d.as_str()))?,
            ];
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
        let put = self.subscription_put(user, replacement, Some(&doc))?;
        match self.transact(vec![put]).await {
            Ok(()) => Ok(true),
            Err(Attempt::Lost(_)) => Ok(false),
            Err(Attempt::Failed(error)) => Err(error),
        }
    }
}
