//! The marketplaces: the App Store and Google Play asked about a parent's purchase over their
//! own APIs, with our reqwest client. Only the credits function (and local mode, where
//! a store is configured) links this crate.

mod apple;
mod call;
mod google;
mod report;
pub mod settings;

use call::{StoreCall, with_retries};

use async_trait::async_trait;
use storybook_core::domain::purchase::{Platform, PurchaseRefusal};
use storybook_core::ports::marketplace::{
    Marketplace, NotificationDelivery, PurchaseClaim, StoreAnswer, StoreNotification,
    StoreSubscription, StoreUnavailable, Unverifiable,
};

/// The stores this server is configured for.
pub struct Stores {
    apple: Option<apple::AppleStore>,
    google: Option<google::GooglePlay>,
    webhook_secret: Option<String>,
}

impl Stores {
    /// The stores `settings` configures, over one HTTP client.
    pub fn new(settings: settings::StoreSettings) -> anyhow::Result<Self> {
        let http = call::Http::default();
        Ok(Self {
            apple: settings
                .apple
                .map(|apple| apple::AppleStore::new(apple, http.clone()))
                .transpose()?,
            google: settings
                .google
                .map(|google| google::GooglePlay::new(google, http.clone()))
                .transpose()?,
            webhook_secret: settings.webhook_secret,
        })
    }

    /// The stores a function's settings (`lookup`: the secret, or the environment) configure,
    /// named in the start-up log; none configured refuses every purchase as such.
    pub fn from_lookup(
        lookup: settings::Lookup,
        environment: storybook_core::config::Environment,
    ) -> anyhow::Result<Self> {
        let stores = Self::new(settings::StoreSettings::from_lookup(lookup, environment)?)?;
        tracing::info!(stores = ?stores.names(), "stores");
        Ok(stores)
    }

    /// The names of the stores configured, for the start-up log.
    pub fn names(&self) -> Vec<&'static str> {
        let apple = self.apple.as_ref().map(|_| Platform::Apple.as_str());
        let google = self.google.as_ref().map(|_| Platform::Google.as_str());
        apple.into_iter().chain(google).collect()
    }
}

#[async_trait]
impl Marketplace for Stores {
    async fn confirm(&self, claim: &PurchaseClaim) -> StoreAnswer {
        match (claim.platform, &self.apple) {
            (Platform::Apple, Some(apple)) => with_retries(|| apple.confirm(claim)).await,
            (Platform::Google, _) => match &self.google {
                Some(google) => with_retries(|| google.confirm(claim)).await,
                None => Ok(Err(PurchaseRefusal::StoreNotConfigured)),
            },
            _ => Ok(Err(PurchaseRefusal::StoreNotConfigured)),
        }
    }

    async fn cancel_renewal(
        &self,
        platform: Platform,
        product_id: &str,
        subscription_id: &str,
    ) -> Result<bool, StoreUnavailable> {
        match (platform, &self.google) {
            (Platform::Google, Some(google)) => google
                .cancel(product_id, subscription_id)
                .await
                .map(|()| true)
                .map_err(StoreCall::unavailable),
            _ => Ok(false),
        }
    }

    async fn subscription(
        &self,
        platform: Platform,
        product_id: &str,
        subscription_id: &str,
    ) -> Result<Option<StoreSubscription>, StoreUnavailable> {
        match (platform, &self.apple, &self.google) {
            (Platform::Apple, Some(apple), _) => {
                with_retries(|| apple.subscription(subscription_id)).await
            }
            (Platform::Google, _, Some(google)) => {
                with_retries(|| google.subscription(product_id, subscription_id)).await
            }
            _ => Err(StoreUnavailable(anyhow::anyhow!(
                "{} is not configured",
                platform.as_str()
            ))),
        }
    }

    async fn notification(
        &self,
        delivery: &NotificationDelivery,
    ) -> Result<StoreNotification, Unverifiable> {
        if let Some(report) = report::read(&delivery.body) {
            return report::verified(report, delivery, self.webhook_secret.as_deref());
        }
        match (delivery.platform, &self.apple, &self.google) {
            (Platform::Apple, Some(apple), _) => apple.notification(&delivery.body),
            (Platform::Google, _, Some(google)) => google.notification(delivery).await,
            _ => Err(Unverifiable(format!(
                "{} is not configured",
                delivery.platform.as_str()
            ))),
        }
    }
}
