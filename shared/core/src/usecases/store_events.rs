//! What the stores tell us after a purchase: renewals, billing trouble, ends and refunds,
//! each notification verified as its store signed it and applied once.

use super::{Refusal, Request, audit};
use crate::app::App;
use crate::domain::audit::AuditEvent;
use crate::domain::purchase::{
    Platform, Reward, Subscription, SubscriptionSource, SubscriptionStatus,
};
use crate::domain::user::UserId;
use crate::ports::marketplace::{
    NotificationDelivery, ReportedStatus, StoreEvent, StorePurchase, StoreSubscription,
};
use crate::ports::purchases::{Redeemed, RedeemedAs, Redemption, Refunded};
use chrono::{DateTime, Utc};

/// What applying a notification did, in a word the store's logs can show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// `applied`, or `duplicate` for a notification applied before.
    pub status: &'static str,
    /// What it was about (`paid`, `billing_retry`, `ended`, `refunded`, …).
    pub event: String,
}

/// Verifies a store's notification and applies it once. Every change it makes is itself once
/// only (a payment claimed by its id, a refund by its payment), so a notification that fails
/// half-way is applied whole when the store sends it again; it is marked applied last.
#[tracing::instrument(skip_all, fields(platform = delivery.platform.as_str()))]
pub async fn apply_store_notification(
    app: &App,
    request: &Request<()>,
    delivery: &NotificationDelivery,
) -> Result<Applied, Refusal> {
    let notification = app
        .marketplace
        .notification(delivery)
        .await
        .map_err(|refused| {
            tracing::warn!(reason = %refused.0, "a store notification was refused");
            Refusal::Unauthorized("The notification could not be verified".into())
        })?;
    let platform = delivery.platform;
    let event = event_name(&notification.event);
    if app
        .store
        .notification_seen(platform, &notification.id)
        .await?
    {
        return Ok(Applied {
            status: "duplicate",
            event,
        });
    }
    apply_event(app, request, platform, &notification.event).await?;
    app.store
        .record_notification(platform, &notification.id, request.now)
        .await?;
    Ok(Applied {
        status: "applied",
        event,
    })
}

/// Applies what happened at the store. Each change is once only, so applying an event again
/// changes nothing more.
async fn apply_event(
    app: &App,
    request: &Request<()>,
    platform: Platform,
    event: &StoreEvent,
) -> Result<(), Refusal> {
    match event {
        StoreEvent::Paid(purchase) => paid(app, request, purchase).await,
        StoreEvent::BillingRetry {
            subscription_id,
            until,
        } => match until {
            Some(until) => {
                change_plan(app, platform, subscription_id, |plan| {
                    (plan.period_end < *until).then(|| Subscription {
                        period_end: *until,
                        ..plan.clone()
                    })
                })
                .await
            }
            None => Ok(()),
        },
        StoreEvent::Ended {
            subscription_id,
            paid_until,
        } => end_plan(app, platform, subscription_id, *paid_until, request).await,
        StoreEvent::Refunded {
            store_id,
            subscription_id,
        } => {
            refund_payment(app, platform, store_id, request).await?;
            match subscription_id {
                Some(subscription_id) => {
                    end_plan(app, platform, subscription_id, None, request).await
                }
                None => Ok(()),
            }
        }
        StoreEvent::RefundReversed { store_id } => {
            app.store
                .reverse_refund(platform, store_id, request.now)
                .await?;
            Ok(())
        }
        StoreEvent::Reported { store_id, status } => {
            reported(app, platform, store_id, *status, request).await
        }
        StoreEvent::Informational(_) => Ok(()),
    }
}

/// What a reconcile run did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Reconciled {
    /// Plans read again from their stores and brought in line.
    pub read: usize,
    /// Plans whose store could not be asked, or whose reading could not be applied: read again
    /// on the next run.
    pub unavailable: usize,
    /// Plans their store does not know (a misconfigured store says so of every plan): left as
    /// they are (they give nothing past their period end), logged as errors, for a month past
    /// their period; then ended.
    pub unknown: usize,
}

/// A plan is read again this long after its period ended: a renewal's notification usually
/// comes within minutes, and one that never came is caught on the next run.
pub const RECONCILE_AFTER: chrono::Duration = chrono::Duration::hours(1);

/// A plan its store keeps saying it does not know is ended this long after its period.
pub const UNKNOWN_FOR: chrono::Duration = chrono::Duration::days(30);

/// The most plans one run reads, the longest overdue first; the rest wait for the next run.
pub const RECONCILE_BATCH: u32 = 100;

/// The scheduled reconcile: store plans past their period end are read again from their store
/// and what it says is applied as its notification would have been (a renewal pays its
/// credits once, a lapse ends the plan). Renewals come only from the stores, never from a
/// timer alone. One plan's failure does not stop the others.
#[tracing::instrument(skip_all)]
pub async fn reconcile_subscriptions(app: &App, now: DateTime<Utc>) -> Result<Reconciled, Refusal> {
    let request = Request {
        caller: (),
        client_ip: "scheduler".into(),
        route: "SCHEDULE reconcile-subscriptions".into(),
        now,
        profile: None,
    };
    let mut reconciled = Reconciled::default();
    for (_, plan) in app
        .store
        .subscriptions_due(now - RECONCILE_AFTER, RECONCILE_BATCH)
        .await?
    {
        let SubscriptionSource::Store {
            platform,
            subscription_id,
        } = &plan.source
        else {
            continue;
        };
        // A plan no longer on sale is still read (its store finds its only line).
        let product = app
            .config
            .products
            .product_of_plan(&plan.plan)
            .unwrap_or_default();
        let reading = match app
            .marketplace
            .subscription(*platform, product, subscription_id)
            .await
        {
            Ok(Some(reading)) => reading,
            Ok(None) if now - plan.period_end < UNKNOWN_FOR => {
                tracing::error!(
                    platform = platform.as_str(),
                    "the store does not know a plan it billed"
                );
                reconciled.unknown += 1;
                continue;
            }
            // Unknown for a month past its period: no misconfiguration lasts that long
            // unnoticed; the plan ends and leaves the due list.
            Ok(None) => StoreSubscription {
                subscription_id: subscription_id.clone(),
                latest: None,
                grace_until: None,
                revoked: false,
            },
            Err(unavailable) => {
                tracing::warn!(platform = platform.as_str(), error = %unavailable, "a plan could not be read again");
                reconciled.unavailable += 1;
                continue;
            }
        };
        let event = reading.event_at(now, plan.period_end);
        tracing::info!(platform = platform.as_str(), event = %event_name(&event), "a plan read again");
        match apply_event(app, &request, *platform, &event).await {
            Ok(()) => reconciled.read += 1,
            Err(refusal) => {
                tracing::warn!(%refusal, "a plan's reading could not be applied");
                reconciled.unavailable += 1;
            }
        }
    }
    Ok(reconciled)
}

/// Local mode's reconcile: every hour in the background, as the scheduled function does on
/// Lambda.
pub async fn reconcile_local(app: App) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        tick.tick().await;
        match reconcile_subscriptions(&app, app.clock.now()).await {
            Ok(Reconciled { read: 0, .. }) => {}
            Ok(reconciled) => tracing::info!(?reconciled, "subscriptions reconciled"),
            Err(error) => tracing::warn!(%error, "the subscription reconcile failed"),
        }
    }
}

fn event_name(event: &StoreEvent) -> String {
    match event {
        StoreEvent::Paid(_) => "paid".into(),
        StoreEvent::BillingRetry { .. } => "billing_retry".into(),
        StoreEvent::Ended { .. } => "ended".into(),
        StoreEvent::Refunded { .. } => "refunded".into(),
        StoreEvent::RefundReversed { .. } => "refund_reversed".into(),
        StoreEvent::Reported { status, .. } => format!("reported_{status:?}").to_ascii_lowercase(),
        StoreEvent::Informational(what) => what.to_ascii_lowercase(),
    }
}

/// A period paid at the store: the holder's plan carries on with its credits, once per
/// payment. A subscription no one here holds yet waits for the app to redeem it.
async fn paid(app: &App, request: &Request<()>, purchase: &StorePurchase) -> Result<(), Refusal> {
    let Some(subscription_id) = &purchase.subscription_id else {
        return Ok(());
    };
    let Some(Reward::Plan(plan)) = app.config.products.reward(&purchase.product_id) else {
        tracing::warn!(product = %purchase.product_id, "a paid period of a product not sold here");
        return Ok(());
    };
    let Some(holder) = app
        .store
        .subscription_holder(purchase.platform, subscription_id)
        .await?
    else {
        return Ok(());
    };
    let Some(period_end) = purchase.expires_at else {
        return Ok(());
    };
    // A payment redeemed already (by the app, or an earlier notification) was paid: a
    // notification never moves a claim, and the plan runs to the end of what it paid.
    if app
        .store
        .claim_owner(purchase.platform, &purchase.store_id)
        .await?
        .is_some()
    {
        return change_plan(app, purchase.platform, subscription_id, |plan| {
            (plan.status != SubscriptionStatus::Expired && plan.period_end < period_end).then(
                || Subscription {
                    period_end,
                    ..plan.clone()
                },
            )
        })
        .await;
    }
    let redemption = Redemption {
        user: holder,
        purchase: purchase.clone(),
        reward: RedeemedAs::Plan(Subscription {
            plan: plan.id.clone(),
            credits_per_period: plan.credits_per_period,
            status: SubscriptionStatus::Active,
            period_end,
            source: SubscriptionSource::Store {
                platform: purchase.platform,
                subscription_id: subscription_id.clone(),
            },
            opened_at: request.now,
        }),
        at: request.now,
    };
    if let Redeemed::Granted { credits_added } = app.store.redeem(&redemption).await? {
        tracing::info!(credits_added, "a renewal paid");
    }
    Ok(())
}

/// Takes back what payment `store_id` paid, once; audited when something was taken.
async fn refund_payment(
    app: &App,
    platform: Platform,
    store_id: &str,
    request: &Request<()>,
) -> Result<(), Refusal> {
    let refunded = app.store.refund(platform, store_id, request.now).await?;
    if let Refunded::TakenBack { taken, shortfall } = refunded {
        let detail = format!(
            "{} {store_id}: -{taken} (short {shortfall})",
            platform.as_str()
        );
        audit(
            app,
            request,
            AuditEvent::PurchaseRefunded,
            None,
            Some(detail),
        )
        .await;
    }
    Ok(())
}

/// A bridge's report about payment `store_id`, applied through its claim. Once a plan has
/// ended, `active` and `cancelled` reports no longer change it.
async fn reported(
    app: &App,
    platform: Platform,
    store_id: &str,
    status: ReportedStatus,
    request: &Request<()>,
) -> Result<(), Refusal> {
    let subscription_id = app.store.claimed_subscription(platform, store_id).await?;
    if status == ReportedStatus::Refunded {
        refund_payment(app, platform, store_id, request).await?;
    }
    let Some(subscription_id) = subscription_id else {
        return Ok(());
    };
    match status {
        ReportedStatus::Refunded | ReportedStatus::Expired => {
            end_plan(app, platform, &subscription_id, None, request).await
        }
        ReportedStatus::Cancelled | ReportedStatus::Active => {
            let (from, to) = if status == ReportedStatus::Cancelled {
                (SubscriptionStatus::Active, SubscriptionStatus::Cancelled)
            } else {
                (SubscriptionStatus::Cancelled, SubscriptionStatus::Active)
            };
            change_plan(app, platform, &subscription_id, |plan| {
                (plan.status == from).then(|| Subscription {
                    status: to,
                    ..plan.clone()
                })
            })
            .await
        }
    }
}

/// The holder's plan from `subscription_id` ends now, unless it was paid beyond `paid_until`.
async fn end_plan(
    app: &App,
    platform: Platform,
    subscription_id: &str,
    paid_until: Option<DateTime<Utc>>,
    request: &Request<()>,
) -> Result<(), Refusal> {
    let now = request.now;
    change_plan(app, platform, subscription_id, |plan| {
        let paid_later = paid_until.is_some_and(|until| plan.period_end > until);
        (plan.status != SubscriptionStatus::Expired && !paid_later).then(|| Subscription {
            status: SubscriptionStatus::Expired,
            period_end: plan.period_end.min(now),
            ..plan.clone()
        })
    })
    .await
}

/// Changes the plan that `subscription_id` bills, as `change` says (`None`: leave it), read
/// again when someone else wrote it meanwhile.
async fn change_plan(
    app: &App,
    platform: Platform,
    subscription_id: &str,
    change: impl Fn(&Subscription) -> Option<Subscription>,
) -> Result<(), Refusal> {
    let Some(holder) = app
        .store
        .subscription_holder(platform, subscription_id)
        .await?
    else {
        return Ok(());
    };
    for _ in 0..5 {
        let Some(plan) = billed_by(app, &holder, platform, subscription_id).await? else {
            return Ok(());
        };
        let Some(changed) = change(&plan) else {
            return Ok(());
        };
        if app
            .store
            .replace_subscription(&holder, &plan, &changed)
            .await?
        {
            return Ok(());
        }
    }
    Err(Refusal::unavailable(anyhow::anyhow!(
        "the plan kept changing while a store notification was applied"
    )))
}

/// The user's plan if `subscription_id` bills it.
async fn billed_by(
    app: &App,
    user: &UserId,
    platform: Platform,
    subscription_id: &str,
) -> Result<Option<Subscription>, Refusal> {
    let wanted = SubscriptionSource::Store {
        platform,
        subscription_id: subscription_id.to_owned(),
    };
    Ok(app
        .store
        .subscription(user)
        .await?
        .filter(|plan| plan.source == wanted))
}
