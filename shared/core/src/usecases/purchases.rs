//! What parents buy: a store purchase confirmed with its store and redeemed once, plans opened
//! by a purchase or an operator, and a plan's cancellation.

use super::{Refusal, Request, audit};
use crate::app::App;
use crate::domain::api_key::ApiKeyRecord;
use crate::domain::audit::AuditEvent;
use crate::domain::purchase::{
    FREE, Plan, Platform, PurchaseRefusal, Reward, Subscription, SubscriptionSource,
    SubscriptionStatus,
};
use crate::domain::user::User;
use crate::ports::marketplace::PurchaseClaim;
use crate::ports::purchases::{Redeemed, RedeemedAs, Redemption};
use chrono::Duration;

/// What the app sends to redeem a purchase (`POST /v1/iap/verify`).
#[derive(Debug, Clone)]
pub struct PurchaseToVerify {
    pub platform: Platform,
    pub product_id: String,
    pub transaction_id: String,
    pub purchase_token: Option<String>,
}

/// How a redemption ended, in the app contract's words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyStatus {
    Verified,
    AlreadyProcessed,
    AlreadySubscribed,
    Restored,
}

impl VerifyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyStatus::Verified => "verified",
            VerifyStatus::AlreadyProcessed => "already_processed",
            VerifyStatus::AlreadySubscribed => "already_subscribed",
            VerifyStatus::Restored => "restored",
        }
    }
}

/// A redeemed purchase: the app contract's `IAPVerifyResponse`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedPurchase {
    pub status: VerifyStatus,
    pub transaction_id: String,
    pub product_id: String,
    /// A pack's credits when given now; 0 for plans (their credits arrive as a `subscription`
    /// entry) and for anything given before.
    pub credits_added: i64,
    pub plan: Option<String>,
    pub verification_source: &'static str,
}

/// Confirms the purchase with its store and redeems it for the caller, once per store payment.
#[tracing::instrument(skip_all, fields(platform = purchase.platform.as_str()))]
pub async fn verify_purchase(
    app: &App,
    request: &Request<User>,
    purchase: PurchaseToVerify,
) -> Result<VerifiedPurchase, Refusal> {
    let refused = |refusal: PurchaseRefusal| Refusal::Purchase(refusal);
    let product_id = purchase.product_id.trim().to_owned();
    let transaction_id = purchase.transaction_id.trim().to_owned();
    // The app contract's own words for these two.
    if product_id.is_empty() {
        return Err(refused(PurchaseRefusal::Invalid(
            "product_id는 공백일 수 없습니다.".into(),
        )));
    }
    if transaction_id.is_empty() {
        return Err(refused(PurchaseRefusal::Invalid(
            "transaction_id는 공백일 수 없습니다.".into(),
        )));
    }
    let purchase_token = purchase
        .purchase_token
        .map(|token| token.trim().to_owned())
        .filter(|token| !token.is_empty());
    if purchase.platform == Platform::Google && purchase_token.is_none() {
        return Err(refused(PurchaseRefusal::Invalid(
            "purchase_token is required for Google Play purchases".into(),
        )));
    }
    let catalogue = &app.config.products;
    let Some(reward) = catalogue.reward(&product_id) else {
        return Err(refused(PurchaseRefusal::UnknownProduct {
            product_id,
            supported: catalogue.product_ids(),
        }));
    };
    let plan = match reward {
        Reward::Plan(plan) => Some(plan.id.clone()),
        Reward::Credits(_) => None,
    };
    let answer = |status: VerifyStatus, credits_added: i64| VerifiedPurchase {
        status,
        transaction_id: transaction_id.clone(),
        product_id: product_id.clone(),
        credits_added,
        plan: plan.clone(),
        verification_source: purchase.platform.verification_source(),
    };
    // The caller's own retry is answered without asking the store again.
    if let Some(crate::ports::purchases::ClaimOwner::User(owner)) = app
        .store
        .claim_owner(purchase.platform, &transaction_id)
        .await?
        && owner == request.caller.id
    {
        return Ok(answer(VerifyStatus::AlreadyProcessed, 0));
    }
    let claim = PurchaseClaim {
        platform: purchase.platform,
        product_id: product_id.clone(),
        transaction_id: transaction_id.clone(),
        purchase_token,
        subscription: plan.is_some(),
    };
    let confirmed = app
        .marketplace
        .confirm(&claim)
        .await
        .map_err(|unavailable| Refusal::unavailable(unavailable.0))?
        .map_err(refused)?;
    if confirmed.product_id != product_id {
        return Err(refused(PurchaseRefusal::ProductMismatch));
    }
    let reward = match reward {
        Reward::Credits(credits) => RedeemedAs::Credits(*credits),
        Reward::Plan(plan) => {
            let period_end = confirmed
                .expires_at
                .unwrap_or(request.now - Duration::seconds(1));
            RedeemedAs::Plan(Subscription {
                plan: plan.id.clone(),
                credits_per_period: plan.credits_per_period,
                status: SubscriptionStatus::Active,
                period_end,
                source: SubscriptionSource::Store {
                    platform: confirmed.platform,
                    subscription_id: confirmed
                        .subscription_id
                        .clone()
                        .unwrap_or_else(|| confirmed.store_id.clone()),
                },
                opened_at: request.now,
            })
        }
    };
    let redemption = Redemption {
        user: request.caller.id.clone(),
        purchase: confirmed,
        reward,
        at: request.now,
    };
    let outcome = app.store.redeem(&redemption).await?;
    if matches!(outcome, Redeemed::Granted { .. } | Redeemed::Restored) {
        let detail = format!(
            "{} {} {} ({:?}, {})",
            redemption.purchase.platform.as_str(),
            redemption.purchase.store_id,
            product_id,
            outcome,
            redemption.purchase.environment.as_str(),
        );
        let credential = Some(request.caller.id.truncated().to_owned());
        audit(
            app,
            request,
            AuditEvent::PurchaseRedeemed,
            credential,
            Some(detail),
        )
        .await;
    }
    Ok(match outcome {
        Redeemed::Granted { credits_added } => {
            let packs_only = if plan.is_some() { 0 } else { credits_added };
            answer(VerifyStatus::Verified, packs_only)
        }
        Redeemed::Restored => answer(VerifyStatus::Restored, 0),
        Redeemed::AlreadySubscribed => answer(VerifyStatus::AlreadySubscribed, 0),
        Redeemed::AlreadyYours | Redeemed::RedeemedByErasedAccount => {
            answer(VerifyStatus::AlreadyProcessed, 0)
        }
    })
}

/// The caller's plan while it gives its credits: active or cancelled, before its period ends.
#[tracing::instrument(skip_all)]
pub async fn current_subscription(
    app: &App,
    request: &Request<User>,
) -> Result<Option<Subscription>, Refusal> {
    Ok(app
        .store
        .subscription(&request.caller.id)
        .await?
        .filter(|subscription| subscription.is_current(request.now)))
}

/// What asking for a plan did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subscribed {
    /// The free plan: nothing to pay, nothing given.
    Free,
    /// The caller already has this plan.
    AlreadySubscribed(Subscription),
}

/// The app's `POST /v1/credits/subscribe`. A paid plan is opened only by a purchase the store
/// confirmed (or an operator), so asking for one here answers the caller's running plan or a
/// refusal naming the product to buy.
#[tracing::instrument(skip_all)]
pub async fn subscribe(
    app: &App,
    request: &Request<User>,
    plan: &str,
) -> Result<Subscribed, Refusal> {
    let plan = plan.trim().to_ascii_lowercase();
    let current = current_subscription(app, request).await?;
    if plan == FREE {
        return match current {
            Some(running) => Err(Refusal::ActivePaidSubscription {
                current_plan: running.plan,
            }),
            None => Ok(Subscribed::Free),
        };
    }
    let catalogue = &app.config.products;
    if catalogue.plan(&plan).is_none() {
        return Err(Refusal::Purchase(PurchaseRefusal::UnknownPlan {
            available_plans: plan_ids(&catalogue.plans()),
        }));
    }
    match current {
        Some(running) if running.plan == plan => Ok(Subscribed::AlreadySubscribed(running)),
        _ => Err(Refusal::Forbidden(format!(
            "Plans are bought in the App Store or Google Play (product {})",
            catalogue.product_of_plan(&plan).unwrap_or_default()
        ))),
    }
}

/// `free` and the paid plans' ids.
fn plan_ids(plans: &[&Plan]) -> Vec<String> {
    std::iter::once(FREE.to_owned())
        .chain(plans.iter().map(|plan| plan.id.clone()))
        .collect()
}

/// What cancelling did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancelled {
    /// The plan will not renew; it lasts until its period ends.
    Now(Subscription),
    /// The App Store bills it: only the parent can cancel it there. It lasts until its period
    /// ends.
    AtTheStore {
        platform: Platform,
        subscription: Subscription,
    },
}

/// The app's `POST /v1/credits/cancel-subscription`: the caller's running plan stops renewing.
#[tracing::instrument(skip_all)]
pub async fn cancel_subscription(app: &App, request: &Request<User>) -> Result<Cancelled, Refusal> {
    let Some(running) = current_subscription(app, request).await? else {
        return Err(Refusal::not_found("subscription", "current"));
    };
    if running.status == SubscriptionStatus::Cancelled {
        return Ok(Cancelled::Now(running));
    }
    match &running.source {
        SubscriptionSource::Store {
            platform,
            subscription_id,
        } => {
            let product_id = app
                .config
                .products
                .product_of_plan(&running.plan)
                .unwrap_or_default()
                .to_owned();
            let stopped = app
                .marketplace
                .cancel_renewal(*platform, &product_id, subscription_id)
                .await
                .map_err(|unavailable| Refusal::unavailable(unavailable.0))?;
            if !stopped {
                return Ok(Cancelled::AtTheStore {
                    platform: *platform,
                    subscription: running,
                });
            }
            mark_cancelled(app, request, running).await
        }
        SubscriptionSource::Admin => mark_cancelled(app, request, running).await,
    }
}

/// The caller's running plan, marked as not renewing.
async fn mark_cancelled(
    app: &App,
    request: &Request<User>,
    running: Subscription,
) -> Result<Cancelled, Refusal> {
    let cancelled = Subscription {
        status: SubscriptionStatus::Cancelled,
        ..running.clone()
    };
    if !app
        .store
        .replace_subscription(&request.caller.id, &running, &cancelled)
        .await?
    {
        return Err(Refusal::Conflict(
            "The plan changed meanwhile; read it again".into(),
        ));
    }
    Ok(Cancelled::Now(cancelled))
}

/// How long a plan an operator gives lasts: one period, not renewed.
pub const GRANTED_PERIOD_DAYS: i64 = 30;

/// An operator opens a paid plan for the `X-User-Key` user, with its first period's credits;
/// audited. A plan the stores bill is left to them.
#[tracing::instrument(skip_all)]
pub async fn grant_subscription(
    app: &App,
    request: &Request<(ApiKeyRecord, User)>,
    plan: &str,
) -> Result<Subscription, Refusal> {
    let (admin, user) = &request.caller;
    let plan_id = plan.trim().to_ascii_lowercase();
    let catalogue = &app.config.products;
    let Some(plan) = catalogue.plan(&plan_id) else {
        return Err(Refusal::Purchase(PurchaseRefusal::UnsupportedPlan {
            supported: catalogue.plans().iter().map(|p| p.id.clone()).collect(),
        }));
    };
    let as_user = request.by(user.clone());
    if let Some(running) = current_subscription(app, &as_user).await?
        && matches!(running.source, SubscriptionSource::Store { .. })
    {
        return Err(Refusal::Conflict(
            "The user's plan is billed by a store; it cannot be replaced here".into(),
        ));
    }
    let subscription = Subscription {
        plan: plan.id.clone(),
        credits_per_period: plan.credits_per_period,
        status: SubscriptionStatus::Active,
        period_end: request.now + Duration::days(GRANTED_PERIOD_DAYS),
        source: SubscriptionSource::Admin,
        opened_at: request.now,
    };
    let reference = format!("admin:{}", uuid::Uuid::new_v4().simple());
    app.store
        .open_subscription(&user.id, &subscription, &reference)
        .await?;
    audit(
        app,
        request,
        AuditEvent::SubscriptionGranted,
        Some(user.id.truncated().to_owned()),
        Some(format!(
            "{} (+{}) by {}",
            plan.id, plan.credits_per_period, admin.key_id
        )),
    )
    .await;
    Ok(subscription)
}
