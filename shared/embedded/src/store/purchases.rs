//! Store payments and plans: the purchases and subscriptions tables.

use super::users::{append_entry, read_user};
use super::*;
use storybook_core::domain::purchase::{Platform, Subscription, SubscriptionSource};
use storybook_core::ports::purchases::{
    ClaimOwner, PurchaseStore, RedeemState, Redeemed, Redemption, Refunded, refund_description,
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
    let (platform, subscription_id) = match &subscription.source {
        SubscriptionSource::Store {
            platform,
            subscription_id,
        } => (Some(platform.as_str()), Some(subscription_id.as_str())),
        SubscriptionSource::Admin => (None, None),
    };
    connection.execute(
        "INSERT INTO subscriptions (user_id, platform, subscription_id, doc) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (user_id) DO UPDATE SET platform = excluded.platform,
             subscription_id = excluded.subscription_id, doc = excluded.doc",
        params![user, platform, subscription_id, subscription.write()],
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
                // The payee is whoever this claim paid, and stays so when the claim moves.
                let paid = writes.credits.map_or(0, |(credits, _)| credits);
                tx.execute(
                    "INSERT INTO purchases (platform, store_id, user_id, product_id, claimed_at, subscription_id, paid_to, credits)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, CASE WHEN ?7 > 0 THEN ?3 END, ?7)
                     ON CONFLICT (platform, store_id) DO UPDATE SET user_id = excluded.user_id",
                    params![
                        purchase.platform.as_str(),
                        purchase.store_id,
                        user,
                        purchase.product_id,
                        redemption.at.to_rfc3339(),
                        purchase.subscription_id,
                        paid
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

    #[tracing::instrument(level = "debug", skip_all)]
    async fn claimed_subscription(
        &self,
        platform: Platform,
        store_id: &str,
    ) -> Result<Option<String>, StoreError> {
        let store_id = store_id.to_owned();
        self.run(move |c| {
            Ok(c.query_row(
                "SELECT subscription_id FROM purchases WHERE platform = ?1 AND store_id = ?2",
                params![platform.as_str(), store_id],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()?
            .flatten())
        })
        .await
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
    #[tracing::instrument(level = "debug", skip_all)]
    async fn subscription_holder(
        &self,
        platform: Platform,
        subscription_id: &str,
    ) -> Result<Option<UserId>, StoreError> {
        let subscription_id = subscription_id.to_owned();
        self.run(move |c| {
            let holder: Option<String> = c
                .query_row(
                    // A plan that moved leaves an expired copy behind: the running one first,
                    // then the one paid furthest.
                    "SELECT user_id FROM subscriptions WHERE platform = ?1 AND subscription_id = ?2
                     ORDER BY json_extract(doc, '$.status') = 'expired',
                              json_extract(doc, '$.period_end') DESC LIMIT 1",
                    params![platform.as_str(), subscription_id],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(holder.map(CredentialHash::from_stored))
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn refund(
        &self,
        platform: Platform,
        store_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Refunded, StoreError> {
        let store_id = store_id.to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let claim: Option<(Option<String>, i64, bool)> = tx
                .query_row(
                    "SELECT paid_to, credits, refunded FROM purchases WHERE platform = ?1 AND store_id = ?2",
                    params![platform.as_str(), store_id],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, i64>(2)? != 0)),
                )
                .optional()?;
            let Some((payee, credits, refunded)) = claim else {
                return Ok(Refunded::Unknown);
            };
            if refunded {
                return Ok(Refunded::AlreadyRefunded);
            }
            let outcome = match payee {
                Some(payee) if credits > 0 => {
                    let balance = read_user(&tx, &payee)?.ok_or(StoreError::Missing("user"))?.credits;
                    let taken = credits.min(balance);
                    let shortfall = credits - taken;
                    let description = refund_description(&store_id, shortfall);
                    let reference = format!("{}:{store_id}", platform.as_str());
                    append_entry(&tx, &payee, -taken, EntryKind::Clawback, &description, Some(&reference), at)?;
                    Refunded::TakenBack { taken, shortfall }
                }
                _ => Refunded::NothingToTake,
            };
            let taken = match outcome {
                Refunded::TakenBack { taken, .. } => taken,
                _ => 0,
            };
            tx.execute(
                "UPDATE purchases SET refunded = 1, clawed = ?3 WHERE platform = ?1 AND store_id = ?2",
                params![platform.as_str(), store_id, taken],
            )?;
            tx.commit()?;
            Ok(outcome)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn reverse_refund(
        &self,
        platform: Platform,
        store_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let store_id = store_id.to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let claim: Option<(Option<String>, i64)> = tx
                .query_row(
                    "SELECT paid_to, clawed FROM purchases WHERE platform = ?1 AND store_id = ?2 AND refunded = 1",
                    params![platform.as_str(), store_id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((payee, clawed)) = claim else {
                return Ok(false);
            };
            if let Some(payee) = payee.filter(|_| clawed > 0) {
                let description = format!("Store refund of {store_id} reversed");
                let reference = format!("{}:{store_id}", platform.as_str());
                // Money given back, not bought again: `total_purchased` already counts it.
                append_entry(&tx, &payee, clawed, EntryKind::Refund, &description, Some(&reference), at)?;
            }
            tx.execute(
                "UPDATE purchases SET refunded = 0, clawed = 0 WHERE platform = ?1 AND store_id = ?2",
                params![platform.as_str(), store_id],
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn subscriptions_due(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(UserId, Subscription)>, StoreError> {
        self.run(move |c| {
            let mut statement = c.prepare(
                // The expressions of the `subscriptions_due` index, so that it serves.
                "SELECT user_id, doc FROM subscriptions
                 WHERE platform IS NOT NULL AND json_extract(doc, '$.status') != 'expired'
                   AND julianday(json_extract(doc, '$.period_end')) < julianday(?1)
                 ORDER BY julianday(json_extract(doc, '$.period_end')) LIMIT ?2",
            )?;
            let rows = statement.query_map(params![before.to_rfc3339(), limit], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut due = Vec::new();
            for row in rows {
                let (user, doc) = row?;
                due.push((CredentialHash::from_stored(user), Subscription::read(&doc)?));
            }
            Ok(due)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn notification_seen(&self, platform: Platform, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.run(move |c| {
            Ok(c.query_row(
                "SELECT 1 FROM store_notifications WHERE platform = ?1 AND id = ?2",
                params![platform.as_str(), id],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn record_notification(
        &self,
        platform: Platform,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.run(move |c| {
            Ok(c.execute(
                "INSERT INTO store_notifications (platform, id, applied_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (platform, id) DO NOTHING",
                params![platform.as_str(), id, at.to_rfc3339()],
            )? == 1)
        })
        .await
    }
}
