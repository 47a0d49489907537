//! A store payment's refund and its reversal: taken from (and given back to) the user it paid,
//! in one transaction with the claim's `refunded` mark. See `purchases.rs` for the items.

use super::purchases::{CLAIM, claim_pk};
use super::*;
use storybook_core::domain::purchase::Platform;
use storybook_core::ports::purchases::{Refunded, refund_description};

impl DynamoStore {
    /// Marks the claim refunded (`taken` credits taken back), if it was not.
    fn refund_mark(
        &self,
        platform: Platform,
        store_id: &str,
        taken: i64,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(claim_pk(platform, store_id)))
            .key("sk", s(CLAIM))
            .update_expression("SET refunded = :yes, clawed = :taken")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(refunded)")
            .expression_attribute_values(":yes", AttributeValue::Bool(true))
            .expression_attribute_values(":taken", n(taken))
            .build()
            .map_err(StoreError::unavailable)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    pub(super) async fn refund_once(
        &self,
        platform: Platform,
        store_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Refunded, Attempt> {
        let Some(claim) = self.get(claim_pk(platform, store_id), CLAIM).await? else {
            return Ok(Refunded::Unknown);
        };
        if claim.contains_key("refunded") {
            return Ok(Refunded::AlreadyRefunded);
        }
        let credits = optional_num(&claim, "credits")?.unwrap_or(0);
        let payee = optional_text(&claim, "paid_to").map(CredentialHash::from_stored);
        let (Some(payee), true) = (payee, credits > 0) else {
            self.transact(vec![self.refund_mark(platform, store_id, 0)?])
                .await?;
            return Ok(Refunded::NothingToTake);
        };
        let (user, seq) = self
            .read_user(&payee)
            .await?
            .ok_or(StoreError::Missing("user"))?;
        let taken = credits.min(user.credits);
        let shortfall = credits - taken;
        let description = refund_description(store_id, shortfall);
        let reference = format!("{}:{store_id}", platform.as_str());
        let entry = EntryFields {
            kind: EntryKind::Clawback,
            description: &description,
            reference: Some(&reference),
            at,
        };
        let mark = self.refund_mark(platform, store_id, taken)?;
        self.append_entry(&payee, seq, -taken, user.credits - taken, entry, vec![mark])
            .await?;
        Ok(Refunded::TakenBack { taken, shortfall })
    }

    pub(super) async fn reverse_refund_once(
        &self,
        platform: Platform,
        store_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, Attempt> {
        let Some(claim) = self.get(claim_pk(platform, store_id), CLAIM).await? else {
            return Ok(false);
        };
        if !claim.contains_key("refunded") {
            return Ok(false);
        }
        let clawed = optional_num(&claim, "clawed")?.unwrap_or(0);
        let unmark = Update::builder()
            .table_name(&self.table)
            .key("pk", s(claim_pk(platform, store_id)))
            .key("sk", s(CLAIM))
            .update_expression("REMOVE refunded, clawed")
            .condition_expression("attribute_exists(refunded)")
            .build()
            .map_err(StoreError::unavailable)?;
        let unmark = TransactWriteItem::builder().update(unmark).build();
        let payee = optional_text(&claim, "paid_to").map(CredentialHash::from_stored);
        match payee.filter(|_| clawed > 0) {
            Some(payee) => {
                let (user, seq) = self
                    .read_user(&payee)
                    .await?
                    .ok_or(StoreError::Missing("user"))?;
                let description = format!("Store refund of {store_id} reversed");
                let reference = format!("{}:{store_id}", platform.as_str());
                let entry = EntryFields {
                    // Money given back, not bought again: `total_purchased` already counts it.
                    kind: EntryKind::Refund,
                    description: &description,
                    reference: Some(&reference),
                    at,
                };
                self.append_entry(
                    &payee,
                    seq,
                    clawed,
                    user.credits + clawed,
                    entry,
                    vec![unmark],
                )
                .await?;
            }
            None => self.transact(vec![unmark]).await?,
        }
        Ok(true)
    }
}
