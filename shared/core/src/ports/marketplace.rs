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
}
