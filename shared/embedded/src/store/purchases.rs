//! Store payments and plans: the purchases and subscriptions tables.

use super::users::{append_entry, read_user};
use super::*;
use storybook_core::domain::purchase::{Platform, Subscription};
use storybook_core::ports::purchases::{
    ClaimOwner, PurchaseStore, RedeemState, Redeemed, Redemption,
};

fn read_claim(
    connection: &Connection,
    platform: Platform,
    store_id: &str,
) -> anyhow::Result<Option<ClaimOwner>> {
    let row: Option<Option<String>> = connection
        .query_row(
            "SELECT user_id FROM purchases WHERE platform = ?1 AND store_id = ?2",
            params![platform.as_str(), store_id],
            |r| r.get(0),
        )
        .optional()?;
    Ok(row.map(|owner| match owner {
        Some(id) => ClaimOwner::User(CredentialHash::from_stored(id)),
        None => ClaimOwner::Erased,
    }))
}

fn read_subscription(connection: &Connection, user: &str) -> anyhow::Result<Option<Subscription>> {
    let doc: Option<String> = connection
        .query_row(
            "SELECT doc FROM subscriptions WHERE user_id = ?1",
            [user],
            |r| r.get(0),
        )
        .optional()?;
    doc.map(|doc| Subscription::read(&doc).map_err(anyhow::Error::from))
        .transpose()
}

fn write_subscription(
    connection: &Connection,
    user: &str,
    subscription: &Subscription,
) -> anyhow::Result<()> {
    connection.execute(
        "INSERT INTO subscriptions (user_id, doc) VALUES (?1, ?2)
         ON CONFLICT (user_id) DO UPDATE SET doc = excluded.doc",
        params![user, subscription.write()],
    )?;
    Ok(())
}

#[async_trait]
impl PurchaseStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(user = %redemption.user.truncated()))]
    async fn redeem(&self, redemption: &Redemption) -> Result<Redeemed, StoreError> {
        let redemption = redemption.clone();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let purchase = &redemption.purchase;
            let user = redemption.user.as_str();
            let claim = read_claim(&tx, purchase.platform, &purchase.store_id)?;
            let owner_subscription = match &claim {
                Some(ClaimOwner::User(owner)) if *owner != redemption.user => {
                    read_subscription(&tx, owner.as_str())?
                }
                _ => None,
            };
            let state = RedeemState {
                claim: claim.clone(),
                caller_subscription: read_subscription(&tx, user)?,
                owner_subscription,
            };
            let writes = redemption.writes(&state);
            if writes.claim {
                tx.execute(
                    "INSERT INTO purchases (platform, store_id, user_id, product_id, claimed_at)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                     ON CONFLICT (platform, store_id) DO UPDATE SET user_id = excluded.user_id",
                    params![
                        purchase.platform.as_str(),
                        purchase.store_id,
                        user,
                        purchase.product_id,
                        redemption.at.to_rfc3339()
                    ],
                )?;
            }
            if let Some((credits, kind)) = writes.credits {
                let description =
                    format!("{} ({})", purchase.product_id, purchase.platform.as_str());
                append_entry(
                    &tx,
                    user,
                    credits,
                    kind,
                    &description,
                    Some(&redemption.reference()),
                    redemption.at,
                )?;
            }
            if let Some(subscription) = &writes.caller_subscription {
                write_subscription(&tx, user, subscription)?;
            }
            if let (Some(ClaimOwner::User(owner)), Some(subscription)) =
                (&claim, &writes.owner_subscription)
            {
                write_subscription(&tx, owner.as_str(), subscription)?;
            }
            tx.commit()?;
            Ok(writes.outcome)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn claim_owner(
        &self,
        platform: Platform,
        store_id: &str,
    ) -> Result<Option<ClaimOwner>, StoreError> {
        let store_id = store_id.to_owned();
        self.run(move |c| read_claim(c, platform, &store_id)).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn subscription(&self, user: &UserId) -> Result<Option<Subscription>, StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |c| read_subscription(c, &user)).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn open_subscription(
        &self,
        user: &UserId,
        subscription: &Subscription,
        reference: &str,
    ) -> Result<bool, StoreError> {
        let (user, subscription, reference) = (
            user.as_str().to_owned(),
            subscription.clone(),
            reference.to_owned(),
        );
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // The grants table makes the opening's credits once per reference.
            let opened = tx.execute(
                "INSERT INTO grants (transaction_id, user_id, amount, created_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (transaction_id) DO NOTHING",
                params![reference, user, subscription.credits_per_period, subscription.opened_at.to_rfc3339()],
            )? == 1;
            if opened {
                read_user(&tx, &user)?.ok_or(StoreError::Missing("user"))?;
                let description = format!("{} plan", subscription.plan);
                append_entry(
                    &tx,
                    &user,
                    subscription.credits_per_period,
                    EntryKind::Subscription,
                    &description,
                    Some(&reference),
                    subscription.opened_at,
                )?;
                write_subscription(&tx, &user, &subscription)?;
            }
            tx.commit()?;
            Ok(opened)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn replace_subscription(
        &self,
        user: &UserId,
        expected: &Subscription,
        replacement: &Subscription,
    ) -> Result<bool, StoreError> {
        let (user, expected, replacement) = (
            user.as_str().to_owned(),
            expected.clone(),
            replacement.clone(),
        );
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if read_subscription(&tx, &user)?.as_ref() != Some(&expected) {
                return Ok(false);
            }
            write_subscription(&tx, &user, &replacement)?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }
}
