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

    /// Reads subscription `subscription_id` (of product `product_id`) again from its store, for
    /// a plan past its period end whose notification never came; `None` when the store does not
    /// know it.
    async fn subscription(
        &self,
        platform: Platform,
        product_id: &str,
        subscription_id: &str,
    ) -> Result<Option<StoreSubscription>, StoreUnavailable>;
}

/// A subscription as its store reads it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreSubscription {
    pub subscription_id: String,
    /// Its latest payment, as the store signed it; `None` when none counts here (unpaid, or in
    /// an environment we do not accept).
    pub latest: Option<StorePurchase>,
    /// The end of the grace period the store gives while it retries billing.
    pub grace_until: Option<DateTime<Utc>>,
    /// Its access was taken away whatever was paid (Family Sharing revoked, say).
    pub revoked: bool,
}

impl StoreSubscription {
    /// What the store's reading means as of `now`, in the words of its notifications, for a
    /// plan we hold paid (or extended into a grace period) until `held_until`.
    pub fn event_at(&self, now: DateTime<Utc>, held_until: DateTime<Utc>) -> StoreEvent {
        let subscription_id = self.subscription_id.clone();
        if self.revoked {
            return StoreEvent::Ended {
                subscription_id,
                paid_until: None,
            };
        }
        let paid_until = self.latest.as_ref().and_then(|latest| latest.expires_at);
        match (&self.latest, self.grace_until) {
            (Some(latest), _) if paid_until.is_some_and(|until| until > now) => {
                StoreEvent::Paid(latest.clone())
            }
            (_, Some(grace)) if grace > now => StoreEvent::BillingRetry {
                subscription_id,
                until: Some(grace),
            },
            // Lapsed: the plan as we held it ends (a grace period we extended it into
            // included), unless a renewal moved it on while the store was read.
            _ => StoreEvent::Ended {
                subscription_id,
                paid_until: Some(held_until),
            },
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::purchase::StoreEnvironment;
    use chrono::TimeZone;

    fn at(day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, day, 12, 0, 0).unwrap()
    }

    fn reading(paid_until: Option<u32>, grace: Option<u32>, revoked: bool) -> StoreSubscription {
        StoreSubscription {
            subscription_id: "sub".into(),
            latest: paid_until.map(|day| StorePurchase {
                platform: Platform::Apple,
                store_id: format!("pay-{day}"),
                product_id: "subscription_basic".into(),
                subscription_id: Some("sub".into()),
                expires_at: Some(at(day)),
                environment: StoreEnvironment::Production,
            }),
            grace_until: grace.map(at),
            revoked,
        }
    }

    #[test]
    fn a_period_paid_beyond_now_is_a_payment() {
        let event = reading(Some(20), None, false).event_at(at(10), at(9));
        assert!(matches!(event, StoreEvent::Paid(p) if p.store_id == "pay-20"));
    }

    #[test]
    fn a_lapsed_period_in_its_grace_is_a_billing_retry() {
        let event = reading(Some(5), Some(15), false).event_at(at(10), at(9));
        assert_eq!(
            event,
            StoreEvent::BillingRetry {
                subscription_id: "sub".into(),
                until: Some(at(15))
            }
        );
    }

    #[test]
    fn a_lapsed_period_past_its_grace_ends_the_plan() {
        for grace in [None, Some(8)] {
            let event = reading(Some(5), grace, false).event_at(at(10), at(8));
            assert_eq!(
                event,
                StoreEvent::Ended {
                    subscription_id: "sub".into(),
                    paid_until: Some(at(8))
                }
            );
        }
    }

    #[test]
    fn revoked_access_ends_whatever_was_paid() {
        let event = reading(Some(20), Some(25), true).event_at(at(10), at(9));
        assert_eq!(
            event,
            StoreEvent::Ended {
                subscription_id: "sub".into(),
                paid_until: None
            }
        );
    }
}
