//! What parents buy in the app: credit packs and plans, sold by the App Store and Google Play,
//! and the subscription a plan opens.

use super::Invalid;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The store a purchase was made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Platform {
    Apple,
    Google,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Apple => "apple",
            Platform::Google => "google",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "apple" => Ok(Platform::Apple),
            "google" => Ok(Platform::Google),
            other => Err(Invalid::new(format!("unknown platform {other:?}"))),
        }
    }

    /// The app contract's `verification_source` for a purchase the store itself confirmed.
    pub fn verification_source(self) -> &'static str {
        match self {
            Platform::Apple => "apple_store",
            Platform::Google => "google_play",
        }
    }
}

/// What one product gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reward {
    /// A credit pack: its credits, once.
    Credits(i64),
    /// A plan: its credits at the start of each paid period.
    Plan(Plan),
}

/// A paid plan as the app lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `basic`, `premium`: what the app sends to subscribe and reads back.
    pub id: String,
    pub name: String,
    /// For display only, in the store's own currency (the store sets what is charged).
    pub price: i64,
    pub credits_per_period: i64,
}

/// The products the stores sell (`IAP_PRODUCTS`), by store product id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Catalogue {
    products: BTreeMap<String, Reward>,
}

/// One product as `IAP_PRODUCTS` writes it: `{"credits": 5}` or
/// `{"plan": "basic", "name": "Basic", "price": 6900, "credits": 10}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProductEntry {
    credits: i64,
    #[serde(default)]
    plan: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    price: Option<i64>,
}

/// The app's five products, as the app contract names them.
pub const DEFAULT_PRODUCTS: &str = r#"{
  "credit_pack_1": {"credits": 1},
  "credit_pack_5": {"credits": 5},
  "credit_pack_10": {"credits": 10},
  "subscription_basic": {"plan": "basic", "name": "Basic", "price": 6900, "credits": 10},
  "subscription_premium": {"plan": "premium", "name": "Premium", "price": 14900, "credits": 30}
}"#;

impl Default for Catalogue {
    fn default() -> Self {
        Self::parse(DEFAULT_PRODUCTS).expect("the default catalogue parses")
    }
}

impl Catalogue {
    /// Reads `IAP_PRODUCTS`: every product gives 1 to 1000 credits; a plan's id is lower-case
    /// letters and is sold by one product only.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let entries: BTreeMap<String, ProductEntry> = serde_json::from_str(raw)
            .map_err(|e| Invalid::new(format!("IAP_PRODUCTS is not a product list: {e}")))?;
        let mut products = BTreeMap::new();
        let mut plans = Vec::new();
        for (product_id, entry) in entries {
            if product_id.trim().is_empty() || product_id.len() > 120 {
                return Err(Invalid::new(
                    "IAP_PRODUCTS: a product id is 1 to 120 characters",
                ));
            }
            if !(1..=1000).contains(&entry.credits) {
                return Err(Invalid::new(format!(
                    "IAP_PRODUCTS: {product_id} must give 1 to 1000 credits"
                )));
            }
            let reward = match entry.plan {
                None => Reward::Credits(entry.credits),
                Some(id) => {
                    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_lowercase()) || id == FREE {
                        return Err(Invalid::new(format!(
                            "IAP_PRODUCTS: {product_id}'s plan must be lower-case letters, not {FREE:?}"
                        )));
                    }
                    if plans.contains(&id) {
                        return Err(Invalid::new(format!(
                            "IAP_PRODUCTS: plan {id:?} is sold by two products"
                        )));
                    }
                    plans.push(id.clone());
                    Reward::Plan(Plan {
                        name: entry.name.unwrap_or_else(|| id.clone()),
                        price: entry.price.unwrap_or(0),
                        credits_per_period: entry.credits,
                        id,
                    })
                }
            };
            products.insert(product_id, reward);
        }
        Ok(Self { products })
    }

    pub fn reward(&self, product_id: &str) -> Option<&Reward> {
        self.products.get(product_id)
    }

    /// Every product id, sorted: what an unknown product's refusal lists.
    pub fn product_ids(&self) -> Vec<String> {
        self.products.keys().cloned().collect()
    }

    /// The paid plans, cheapest first.
    pub fn plans(&self) -> Vec<&Plan> {
        let mut plans: Vec<&Plan> = self
            .products
            .values()
            .filter_map(|reward| match reward {
                Reward::Plan(plan) => Some(plan),
                Reward::Credits(_) => None,
            })
            .collect();
        plans.sort_by_key(|plan| (plan.price, plan.credits_per_period));
        plans
    }

    pub fn plan(&self, id: &str) -> Option<&Plan> {
        self.plans().into_iter().find(|plan| plan.id == id)
    }

    /// The product that sells plan `id`.
    pub fn product_of_plan(&self, id: &str) -> Option<&str> {
        self.products
            .iter()
            .find_map(|(product, reward)| match reward {
                Reward::Plan(plan) if plan.id == id => Some(product.as_str()),
                _ => None,
            })
    }
}

/// The plan without payment: no subscription at all.
pub const FREE: &str = "free";

/// The store's environment a purchase was made in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreEnvironment {
    Production,
    /// Apple's sandbox (App Review and TestFlight buy there) or a Google test purchase: no money
    /// changed hands.
    Sandbox,
}

impl StoreEnvironment {
    pub fn as_str(self) -> &'static str {
        match self {
            StoreEnvironment::Production => "Production",
            StoreEnvironment::Sandbox => "Sandbox",
        }
    }
}

/// Where a subscription came from: who decides when it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubscriptionSource {
    /// A store subscription: its id at the store (Apple's original transaction id, Google's
    /// purchase token) decides renewals, cancellation and refunds.
    Store {
        platform: Platform,
        subscription_id: String,
    },
    /// Given by an operator (`/v1/credits/admin/grant-subscription`): one period, no renewal.
    Admin,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriptionStatus {
    Active,
    /// Will not renew; usable until the period ends.
    Cancelled,
    Expired,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::Cancelled => "cancelled",
            SubscriptionStatus::Expired => "expired",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "active" => Ok(SubscriptionStatus::Active),
            "cancelled" => Ok(SubscriptionStatus::Cancelled),
            "expired" => Ok(SubscriptionStatus::Expired),
            other => Err(Invalid::new(format!(
                "unknown subscription status {other:?}"
            ))),
        }
    }
}

/// A user's plan: one at a time per user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    pub plan: String,
    pub credits_per_period: i64,
    pub status: SubscriptionStatus,
    pub period_end: DateTime<Utc>,
    pub source: SubscriptionSource,
    pub opened_at: DateTime<Utc>,
}

impl Subscription {
    /// Whether it still gives its plan at `now`: active or cancelled, before its period ends.
    pub fn is_current(&self, now: DateTime<Utc>) -> bool {
        self.status != SubscriptionStatus::Expired && self.period_end > now
    }
}

/// Why the stores' answer does not buy anything: the app contract's 400 with `details.reason`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PurchaseRefusal {
    #[error("{0}")]
    Invalid(String),
    #[error("This product is not sold here")]
    UnknownProduct {
        product_id: String,
        supported: Vec<String>,
    },
    /// The platform's store is not configured on this server.
    #[error("Purchases from this store cannot be checked here")]
    StoreNotConfigured,
    /// The store does not know the transaction.
    #[error("The store does not know this purchase")]
    NotFound,
    /// The store's answer is not signed by the store, or is signed for another app.
    #[error("The store's answer could not be verified")]
    Unverified,
    #[error("The purchase is for another product")]
    ProductMismatch,
    /// A test purchase (Apple's sandbox) where only real ones count.
    #[error("Test purchases are not accepted here")]
    SandboxNotAllowed,
    /// Refunded, revoked or not paid.
    #[error("The store says this purchase is not paid for")]
    NotPaid,
    #[error("No such plan")]
    UnknownPlan { available_plans: Vec<String> },
    /// An operator may give only a paid plan.
    #[error("Only a paid plan can be given")]
    UnsupportedPlan { supported: Vec<String> },
}

impl PurchaseRefusal {
    /// The stable `details.reason` the app may branch on.
    pub fn reason(&self) -> &'static str {
        match self {
            PurchaseRefusal::Invalid(_) => "invalid",
            PurchaseRefusal::UnknownProduct { .. } => "unknown_product",
            PurchaseRefusal::StoreNotConfigured => "store_not_configured",
            PurchaseRefusal::NotFound => "not_found",
            PurchaseRefusal::Unverified => "unverified",
            PurchaseRefusal::ProductMismatch => "product_mismatch",
            PurchaseRefusal::SandboxNotAllowed => "sandbox_not_allowed",
            PurchaseRefusal::NotPaid => "not_paid",
            PurchaseRefusal::UnknownPlan { .. } => "unknown_plan",
            PurchaseRefusal::UnsupportedPlan { .. } => "unsupported_plan",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_catalogue_is_the_app_contracts() {
        let catalogue = Catalogue::default();
        assert_eq!(catalogue.reward("credit_pack_5"), Some(&Reward::Credits(5)));
        let plans: Vec<(&str, i64)> = catalogue
            .plans()
            .iter()
            .map(|p| (p.id.as_str(), p.credits_per_period))
            .collect();
        assert_eq!(plans, [("basic", 10), ("premium", 30)]);
        assert_eq!(
            catalogue.product_of_plan("premium"),
            Some("subscription_premium")
        );
        assert_eq!(catalogue.product_ids().len(), 5);
    }

    #[test]
    fn a_catalogue_refuses_what_it_cannot_sell() {
        for bad in [
            "[]",
            r#"{"p": {"credits": 0}}"#,
            r#"{"p": {"credits": 5, "plan": "free"}}"#,
            r#"{"p": {"credits": 5, "plan": "Basic"}}"#,
            r#"{"p": {"credits": 5, "plan": "a"}, "q": {"credits": 9, "plan": "a"}}"#,
            r#"{"p": {"credits": 5, "colour": "red"}}"#,
        ] {
            assert!(Catalogue::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_subscription_is_current_until_its_period_ends_unless_expired() {
        let now = Utc::now();
        let mut subscription = Subscription {
            plan: "basic".into(),
            credits_per_period: 10,
            status: SubscriptionStatus::Cancelled,
            period_end: now + chrono::Duration::days(1),
            source: SubscriptionSource::Admin,
            opened_at: now,
        };
        assert!(subscription.is_current(now));
        assert!(!subscription.is_current(now + chrono::Duration::days(2)));
        subscription.status = SubscriptionStatus::Expired;
        assert!(!subscription.is_current(now));
    }
}
