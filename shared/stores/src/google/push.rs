//! Google Play's real-time developer notifications, pushed by Pub/Sub: the push token checked
//! as Google signs it, and the purchase read again (a notification carries no state).

use super::*;
use crate::settings::PushSettings;

/// Google's real-time developer notification, as Pub/Sub pushes it.
#[derive(Deserialize)]
struct Push {
    message: PushMessage,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PushMessage {
    data: String,
    message_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeveloperNotification {
    package_name: String,
    subscription_notification: Option<SubscriptionNotification>,
    voided_purchase_notification: Option<VoidedPurchase>,
    one_time_product_notification: Option<serde_json::Value>,
    test_notification: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionNotification {
    notification_type: i64,
    purchase_token: String,
    subscription_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VoidedPurchase {
    purchase_token: String,
    order_id: String,
    /// 1: a subscription, 2: a one-time product.
    product_type: i64,
}

/// The claims we check in Pub/Sub's push token.
#[derive(Deserialize)]
struct PushClaims {
    email: Option<String>,
    email_verified: Option<bool>,
}

/// Google's `SUBSCRIPTION_REVOKED`: access ends whatever was paid.
const REVOKED: i64 = 12;

impl GooglePlay {
    /// A Pub/Sub push of a real-time developer notification: its bearer token must be a
    /// Google-signed OIDC token for our audience from our push service account; the
    /// notification carries no state, so the purchase is read again from the API.
    pub async fn notification(
        &self,
        delivery: &NotificationDelivery,
    ) -> Result<StoreNotification, Unverifiable> {
        let Some(push) = &self.settings.push else {
            return Err(Unverifiable("Google's push is not configured".into()));
        };
        let token = delivery
            .authorization
            .as_deref()
            .and_then(|value| value.strip_prefix("Bearer "))
            .ok_or_else(|| Unverifiable("no push token".into()))?;
        self.check_push_token(push, token).await?;
        let push_body: Push = serde_json::from_slice(&delivery.body)
            .map_err(|_| Unverifiable("not a Pub/Sub push".into()))?;
        use base64::Engine;
        let data = base64::engine::general_purpose::STANDARD
            .decode(&push_body.message.data)
            .map_err(|_| Unverifiable("the push's data is not base64".into()))?;
        let notification: DeveloperNotification = serde_json::from_slice(&data)
            .map_err(|_| Unverifiable("not a developer notification".into()))?;
        if notification.package_name != self.settings.package_name {
            return Err(Unverifiable("a notification for another app".into()));
        }
        let id = push_body.message.message_id;
        let event = self
            .event_of(notification)
            .await
            .map_err(|e| Unverifiable(format!("reading the purchase again: {e:?}")))?;
        Ok(StoreNotification { id, event })
    }

    async fn event_of(&self, notification: DeveloperNotification) -> Result<StoreEvent, StoreCall> {
        if let Some(voided) = notification.voided_purchase_notification {
            return Ok(StoreEvent::Refunded {
                store_id: voided.order_id,
                subscription_id: (voided.product_type == 1).then_some(voided.purchase_token),
            });
        }
        if let Some(changed) = notification.subscription_notification {
            let token = changed.purchase_token;
            let Some(subscription) = self
                .read::<SubscriptionPurchase>(&["subscriptionsv2", "tokens", &token])
                .await?
            else {
                return Ok(StoreEvent::Informational("unknown_purchase".into()));
            };
            let state = subscription.subscription_state.clone().unwrap_or_default();
            let reading = self.reading(&changed.subscription_id, token, subscription);
            return Ok(match (changed.notification_type, state.as_str()) {
                (REVOKED, _) => StoreEvent::Ended {
                    subscription_id: reading.subscription_id,
                    paid_until: None,
                },
                (_, "SUBSCRIPTION_STATE_ACTIVE" | "SUBSCRIPTION_STATE_IN_GRACE_PERIOD") => {
                    match reading.latest {
                        Some(latest) => StoreEvent::Paid(latest),
                        None => StoreEvent::Informational("unpaid".into()),
                    }
                }
                (
                    _,
                    "SUBSCRIPTION_STATE_EXPIRED"
                    | "SUBSCRIPTION_STATE_ON_HOLD"
                    | "SUBSCRIPTION_STATE_PAUSED",
                ) => StoreEvent::Ended {
                    paid_until: reading.latest.and_then(|latest| latest.expires_at),
                    subscription_id: reading.subscription_id,
                },
                // Cancelled: it will not renew, and lasts until its period ends.
                (_, other) => StoreEvent::Informational(other.to_ascii_lowercase()),
            });
        }
        Ok(StoreEvent::Informational(
            if notification.test_notification.is_some() {
                "test"
            } else if notification.one_time_product_notification.is_some() {
                "one_time_product"
            } else {
                "unknown"
            }
            .into(),
        ))
    }

    /// Pub/Sub's push token: RS256 by one of Google's keys (`GOOGLE_JWKS_URL`), issued by
    /// Google, for our audience, from our push service account with its email verified.
    async fn check_push_token(&self, push: &PushSettings, token: &str) -> Result<(), Unverifiable> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| Unverifiable("the push token is not a JWT".into()))?;
        let kid = header
            .kid
            .ok_or_else(|| Unverifiable("the push token names no key".into()))?;
        let key = self
            .signing_key(push, &kid)
            .await
            .ok_or_else(|| Unverifiable("the push token's key is not Google's".into()))?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&[&push.audience]);
        validation.set_issuer(&["accounts.google.com", "https://accounts.google.com"]);
        let claims = jsonwebtoken::decode::<PushClaims>(token, &key, &validation)
            .map_err(|e| Unverifiable(format!("the push token: {e}")))?
            .claims;
        if claims.email.as_deref() != Some(push.service_account.as_str())
            || claims.email_verified != Some(true)
        {
            return Err(Unverifiable("the push token is from another sender".into()));
        }
        Ok(())
    }

    /// Google's key `kid`, from the keys fetched before or fetched now (Google rotates them).
    async fn signing_key(
        &self,
        push: &PushSettings,
        kid: &str,
    ) -> Option<jsonwebtoken::DecodingKey> {
        let known = |keys: &jsonwebtoken::jwk::JwkSet| {
            keys.find(kid)
                .and_then(|jwk| jsonwebtoken::DecodingKey::from_jwk(jwk).ok())
        };
        if let Some(keys) = self.keys.lock().expect("keys lock").as_ref()
            && let Some(key) = known(keys)
        {
            return Some(key);
        }
        let fetched: jsonwebtoken::jwk::JwkSet = self
            .http
            .client()
            .get(&push.jwks_url)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let key = known(&fetched);
        *self.keys.lock().expect("keys lock") = Some(fetched);
        key
    }
}
