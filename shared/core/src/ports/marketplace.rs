//! The marketplaces: the App Store and Google Play, asked about a purchase the app names. Only
//! what the store itself signed or answered is believed; the app's word is an id to look up.
//! The one implementation is `storybook-stores`; a server with no store configured is given
//! [`NotGiven`](super::NotGiven), which refuses every purchase as `store_not_configured`.

use crate::domain::purchase::{Platform, PurchaseRefusal, StoreEnvironment};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// The purchase the app says it made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PurchaseClaim {
    pub platform: Platform,
    pub product_id: String,
    /// The store's id as the app read it (Apple's transaction id, Google's order id).
    pub transaction_id: String,
    /// Google's purchase token: what the Play Developer API looks a purchase up by.
    pub purchase_token: Option<String>,
    /// Whether the product is a plan (a subscription at the store) rather than a pack.
    pub subscription: bool,
}

/// A purchase as its store confirmed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorePurchase {
    pub platform: Platform,
    /// The store's id of this payment (Apple's `transactionId`, Google's `orderId`): the one
    /// thing a reward is paid out once for.
    pub store_id: String,
    pub product_id: String,
    /// A subscription's lasting id at the store (Apple's `originalTransactionId`, Google's
    /// purchase token); `None` for a credit pack.
    pub subscription_id: Option<String>,
    /// When a subscription's paid period ends; `None` for a credit pack (and a subscription
    /// without one counts as expired).
    pub expires_at: Option<DateTime<Utc>>,
    pub environment: StoreEnvironment,
}

/// Why the store could not be asked: the caller may retry later.
#[derive(Debug, thiserror::Error)]
#[error("the store is unavailable: {0:#}")]
pub struct StoreUnavailable(pub anyhow::Error);

/// What asking a store gives: a confirmed purchase, the store's (or our checks') refusal, or no
/// answer.
pub type StoreAnswer = Result<Result<StorePurchase, PurchaseRefusal>, StoreUnavailable>;

#[async_trait]
pub trait Marketplace: Send + Sync {
    /// Asks the claim's store for the purchase, checks its signature, app, environment and
    /// product, and answers what the store says was bought.
    async fn confirm(&self, claim: &PurchaseClaim) -> StoreAnswer;

    /// Stops subscription `subscription_id` (of product `product_id`) renewing at its store,
    /// where the store lets a server do it (Google Play): false where only the buyer can (the
    /// App Store). It lasts until its period ends either way.
    async fn cancel_renewal(
        &self,
        platform: Platform,
        product_id: &str,
        subscription_id: &str,
    ) -> Result<bool, StoreUnavailable>;

    /// Verifies a notification as its store signed it and reads what it says.
    async fn notification(
        &self,
        delivery: &NotificationDelivery,
    ) -> Result<StoreNotification, Unverifiable>;
}

/// A store's notification as it arrived: its body and what vouches for it besides its own
/// signature (Google's push token; the app contract's `X-Webhook-Token` for a report).
#[derive(Clone)]
pub struct NotificationDelivery {
    pub platform: Platform,
    pub body: Vec<u8>,
    pub authorization: Option<String>,
    pub webhook_token: Option<String>,
}

impl std::fmt::Debug for NotificationDelivery {
    /// The body's size only, and never a token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationDelivery")
            .field("platform", &self.platform)
            .field("body", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A notification its store signed, in our words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreNotification {
    /// The store's id of this notification (Apple's `notificationUUID`): applied once.
    pub id: String,
    pub event: StoreEvent,
}

/// What happened at the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEvent {
    /// A subscription's period was paid (a first purchase or a renewal): its transaction.
    Paid(StorePurchase),
    /// Billing failed and the store retries; the plan lasts until `until` (a grace period).
    BillingRetry {
        subscription_id: String,
        until: Option<DateTime<Utc>>,
    },
    /// The subscription ended (expired, its grace over, or its access revoked). An expiry names
    /// the period it ends (`paid_until`): it ends nothing paid for later, so a late one is
    /// harmless.
    Ended {
        subscription_id: String,
        paid_until: Option<DateTime<Utc>>,
    },
    /// The store gave the money for payment `store_id` back.
    Refunded {
        store_id: String,
        subscription_id: Option<String>,
    },
    /// A refund of payment `store_id` was taken back.
    RefundReversed { store_id: String },
    /// A trusted bridge's report of a payment's state (the app contract's webhook body, sent
    /// with the shared `X-Webhook-Token`): applied through the payment's claim.
    Reported {
        store_id: String,
        status: ReportedStatus,
    },
    /// Nothing for us to change (a test, a consumption request, a renewal preference).
    Informational(String),
}

/// The app contract's webhook statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportedStatus {
    Active,
    Cancelled,
    Expired,
    Refunded,
}

impl ReportedStatus {
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "active" => Some(ReportedStatus::Active),
            "cancelled" => Some(ReportedStatus::Cancelled),
            "expired" => Some(ReportedStatus::Expired),
            "refunded" => Some(ReportedStatus::Refunded),
            _ => None,
        }
    }
}

/// A notification that is not its store's: answered 401, nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the notification could not be verified: {0}")]
pub struct Unverifiable(pub String);
