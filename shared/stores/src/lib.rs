//! The marketplaces: the App Store (and, to come, Google Play) asked about a parent's purchase
//! over their own APIs, with our reqwest client. Only the credits function (and local mode, where
//! a store is configured) links this crate.

mod apple;
mod call;
mod google;
mod report;
pub mod settings;

use call::with_retries;

use async_trait::async_trait;
use storybook_core::domain::purchase::{Platform, PurchaseRefusal};
use storybook_core::ports::marketplace::{
    Marketplace, NotificationDelivery, PurchaseClaim, StoreAnswer, StoreNotification,
    StoreUnavailable, Unverifiable,
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

    /// The names of the stores configured, for the start-up log.
    pub fn names(&self) -> Vec<&'static str> {
        self.apple
            .iter()
            .map(|_| Platform::Apple.as_str())
            .collect()
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
                .map_err(|e| match e {
                    call::StoreCall::Retry(e) | call::StoreCall::Unavailable(e) => {
                        StoreUnavailable(e)
                    }
                }),
            _ => Ok(false),
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
