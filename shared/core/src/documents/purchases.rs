//! A user's plan, kept as a document.

use crate::domain::purchase::{Platform, Subscription, SubscriptionSource, SubscriptionStatus};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Version 1 of a subscription: a store's plan names its platform and subscription id, an
/// operator's names neither.
#[derive(Serialize, Deserialize)]
struct SubscriptionV1 {
    plan: String,
    credits_per_period: i64,
    status: String,
    period_end: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    subscription_id: Option<String>,
    opened_at: DateTime<Utc>,
}

impl From<&Subscription> for SubscriptionV1 {
    fn from(s: &Subscription) -> Self {
        let (platform, subscription_id) = match &s.source {
            SubscriptionSource::Store {
                platform,
                subscription_id,
            } => (
                Some(platform.as_str().to_owned()),
                Some(subscription_id.clone()),
            ),
            SubscriptionSource::Admin => (None, None),
        };
        SubscriptionV1 {
            plan: s.plan.clone(),
            credits_per_period: s.credits_per_period,
            status: s.status.as_str().to_owned(),
            period_end: s.period_end,
            platform,
            subscription_id,
            opened_at: s.opened_at,
        }
    }
}

impl TryFrom<SubscriptionV1> for Subscription {
    type Error = crate::domain::Invalid;

    fn try_from(s: SubscriptionV1) -> Result<Self, Self::Error> {
        let source = match (s.platform, s.subscription_id) {
            (Some(platform), Some(subscription_id)) => SubscriptionSource::Store {
                platform: Platform::parse(&platform)?,
                subscription_id,
            },
            (None, None) => SubscriptionSource::Admin,
            _ => {
                return Err(crate::domain::Invalid::new(
                    "a store subscription names both its platform and its id",
                ));
            }
        };
        Ok(Subscription {
            plan: s.plan,
            credits_per_period: s.credits_per_period,
            status: SubscriptionStatus::parse(&s.status)?,
            period_end: s.period_end,
            source,
            opened_at: s.opened_at,
        })
    }
}

version_one!(Subscription, "subscription", SubscriptionV1, checked);
