//! Google Play: a purchase looked up with the Play Developer API by the token the app holds
//! (`purchases.productsv2` for packs, `purchases.subscriptionsv2` for plans), with an OAuth
//! token minted from the service account (an RS256 assertion to its `token_uri`, kept until
//! shortly before it expires). A subscription is acknowledged once confirmed: Google refunds
//! one left unacknowledged for three days.

use crate::call::StoreCall;
use crate::settings::GoogleSettings;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use storybook_core::domain::purchase::{Platform, PurchaseRefusal, StoreEnvironment};
use storybook_core::ports::marketplace::{
    NotificationDelivery, PurchaseClaim, StoreEvent, StoreNotification, StorePurchase,
    StoreSubscription, Unverifiable,
};

mod push;

const SCOPE: &str = "https://www.googleapis.com/auth/androidpublisher";

pub struct GooglePlay {
    settings: GoogleSettings,
    key: jsonwebtoken::EncodingKey,
    http: crate::call::Http,
    /// The access token and when to stop using it.
    token: Mutex<Option<(String, DateTime<Utc>)>>,
    /// Google's keys for push tokens, as last fetched.
    keys: Mutex<Option<jsonwebtoken::jwk::JwkSet>>,
}

#[derive(Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    scope: &'static str,
    aud: &'a str,
    iat: i64,
    exp: i64,
}

#[derive(Deserialize)]
struct AccessToken {
    access_token: String,
    #[serde(default = "an_hour")]
    expires_in: i64,
}

fn an_hour() -> i64 {
    3600
}

/// `purchases.productsv2`: what the fields we read say.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProductPurchase {
    #[serde(default)]
    product_line_item: Vec<ProductLine>,
    order_id: Option<String>,
    purchase_state_context: Option<PurchaseStateContext>,
    test_purchase_context: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProductLine {
    product_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PurchaseStateContext {
    purchase_state: Option<String>,
}

/// `purchases.subscriptionsv2`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionPurchase {
    subscription_state: Option<String>,
    #[serde(default)]
    line_items: Vec<SubscriptionLine>,
    acknowledgement_state: Option<String>,
    test_purchase: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscriptionLine {
    product_id: String,
    expiry_time: Option<DateTime<Utc>>,
    latest_successful_order_id: Option<String>,
}

/// Google's order id without a renewal's `..N` suffix: the purchase's own order.
fn first_order(order_id: &str) -> &str {
    order_id.split("..").next().unwrap_or(order_id)
}

impl GooglePlay {
    pub(crate) fn new(settings: GoogleSettings, http: crate::call::Http) -> anyhow::Result<Self> {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(settings.private_key.as_bytes())
            .map_err(|_| {
                anyhow::anyhow!("GOOGLE_SERVICE_ACCOUNT_JSON's private_key is not an RSA key")
            })?;
        Ok(Self {
            settings,
            key,
            http,
            token: Mutex::new(None),
            keys: Mutex::new(None),
        })
    }

    /// An access token for the Play Developer API, minted when the last one is near its end.
    async fn access_token(&self) -> Result<String, StoreCall> {
        let now = Utc::now();
        if let Some((token, until)) = self.token.lock().expect("token lock").clone()
            && until > now
        {
            return Ok(token);
        }
        let claims = Assertion {
            iss: &self.settings.client_email,
            scope: SCOPE,
            aud: &self.settings.token_uri,
            iat: now.timestamp(),
            exp: now.timestamp() + 3600,
        };
        let assertion = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &self.key,
        )
        .map_err(|e| StoreCall::Unavailable(anyhow::anyhow!("signing the assertion: {e}")))?;
        let response = self
            .http
            .client()
            .post(&self.settings.token_uri)
            .form(&[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", assertion.as_str()),
            ])
            .send()
            .await
            .map_err(|e| StoreCall::Unavailable(e.without_url().into()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(StoreCall::Unavailable(anyhow::anyhow!(
                "Google's token endpoint answered {status}"
            )));
        }
        let token: AccessToken = response.json().await.map_err(|e| {
            StoreCall::Unavailable(anyhow::anyhow!(
                "Google's token answer: {}",
                e.without_url()
            ))
        })?;
        let until = now + chrono::Duration::seconds((token.expires_in - 60).clamp(0, 3600));
        *self.token.lock().expect("token lock") = Some((token.access_token.clone(), until));
        Ok(token.access_token)
    }

    fn url(&self, path: &[&str]) -> Result<url::Url, StoreCall> {
        let base = &self.settings.api_url;
        let mut url = url::Url::parse(base).map_err(|e| StoreCall::Unavailable(e.into()))?;
        url.path_segments_mut()
            .map_err(|()| StoreCall::Unavailable(anyhow::anyhow!("{base} cannot be a base")))?
            .pop_if_empty()
            .extend(
                [
                    "androidpublisher",
                    "v3",
                    "applications",
                    &self.settings.package_name,
                    "purchases",
                ]
                .iter()
                .chain(path),
            );
        Ok(url)
    }

    /// A GET of the API; `None` when Google does not know the token.
    async fn read<T: serde::de::DeserializeOwned>(
        &self,
        path: &[&str],
    ) -> Result<Option<T>, StoreCall> {
        let response = self
            .http
            .client()
            .get(self.url(path)?)
            .bearer_auth(self.access_token().await?)
            .send()
            .await
            .map_err(|e| StoreCall::Unavailable(e.without_url().into()))?;
        let status = response.status().as_u16();
        match status {
            200 => response.json().await.map(Some).map_err(|e| {
                StoreCall::Unavailable(anyhow::anyhow!("Google Play's answer: {}", e.without_url()))
            }),
            400 | 404 | 410 => Ok(None),
            429 | 500..=599 => Err(StoreCall::Retry(anyhow::anyhow!(
                "Google Play answered {status}"
            ))),
            _ => Err(StoreCall::Unavailable(anyhow::anyhow!(
                "Google Play answered {status}"
            ))),
        }
    }

    pub async fn confirm(
        &self,
        claim: &PurchaseClaim,
    ) -> Result<Result<StorePurchase, PurchaseRefusal>, StoreCall> {
        let Some(token) = claim.purchase_token.as_deref() else {
            return Ok(Err(PurchaseRefusal::Invalid(
                "purchase_token is required for Google Play purchases".into(),
            )));
        };
        if claim.subscription {
            self.confirm_subscription(claim, token).await
        } else {
            self.confirm_product(claim, token).await
        }
    }

    async fn confirm_product(
        &self,
        claim: &PurchaseClaim,
        token: &str,
    ) -> Result<Result<StorePurchase, PurchaseRefusal>, StoreCall> {
        let Some(purchase) = self
            .read::<ProductPurchase>(&["productsv2", "tokens", token])
            .await?
        else {
            return Ok(Err(PurchaseRefusal::NotFound));
        };
        let Some(order_id) = purchase.order_id else {
            return Ok(Err(PurchaseRefusal::NotPaid));
        };
        if first_order(&order_id) != first_order(&claim.transaction_id) {
            return Ok(Err(PurchaseRefusal::NotFound));
        }
        if !purchase
            .product_line_item
            .iter()
            .any(|line| line.product_id == claim.product_id)
        {
            return Ok(Err(PurchaseRefusal::ProductMismatch));
        }
        let state = purchase
            .purchase_state_context
            .and_then(|context| context.purchase_state);
        if state.as_deref() != Some("PURCHASED") {
            return Ok(Err(PurchaseRefusal::NotPaid));
        }
        Ok(self
            .environment_of(purchase.test_purchase_context.is_some())
            .map(|environment| StorePurchase {
                platform: Platform::Google,
                store_id: order_id,
                product_id: claim.product_id.clone(),
                subscription_id: None,
                expires_at: None,
                environment,
            }))
    }

    async fn confirm_subscription(
        &self,
        claim: &PurchaseClaim,
        token: &str,
    ) -> Result<Result<StorePurchase, PurchaseRefusal>, StoreCall> {
        let Some(subscription) = self
            .read::<SubscriptionPurchase>(&["subscriptionsv2", "tokens", token])
            .await?
        else {
            return Ok(Err(PurchaseRefusal::NotFound));
        };
        let Some(line) = subscription
            .line_items
            .iter()
            .find(|line| line.product_id == claim.product_id)
        else {
            return Ok(Err(PurchaseRefusal::ProductMismatch));
        };
        let Some(order_id) = line.latest_successful_order_id.clone() else {
            return Ok(Err(PurchaseRefusal::NotPaid));
        };
        if first_order(&order_id) != first_order(&claim.transaction_id) {
            return Ok(Err(PurchaseRefusal::NotFound));
        }
        // Paid states: active, in its grace period, or cancelled but running to its end.
        let paid = matches!(
            subscription.subscription_state.as_deref(),
            Some(
                "SUBSCRIPTION_STATE_ACTIVE"
                    | "SUBSCRIPTION_STATE_IN_GRACE_PERIOD"
                    | "SUBSCRIPTION_STATE_CANCELED"
                    | "SUBSCRIPTION_STATE_EXPIRED"
            )
        );
        if !paid {
            return Ok(Err(PurchaseRefusal::NotPaid));
        }
        let environment = match self.environment_of(subscription.test_purchase.is_some()) {
            Ok(environment) => environment,
            Err(refusal) => return Ok(Err(refusal)),
        };
        if subscription.acknowledgement_state.as_deref() == Some("ACKNOWLEDGEMENT_STATE_PENDING") {
            self.acknowledge(&claim.product_id, token).await?;
        }
        Ok(Ok(StorePurchase {
            platform: Platform::Google,
            store_id: order_id,
            product_id: claim.product_id.clone(),
            subscription_id: Some(token.to_owned()),
            expires_at: line.expiry_time,
            environment,
        }))
    }

    /// A test purchase counts only where the sandbox does.
    fn environment_of(&self, test: bool) -> Result<StoreEnvironment, PurchaseRefusal> {
        let environment = if test {
            StoreEnvironment::Sandbox
        } else {
            StoreEnvironment::Production
        };
        if self.settings.environments.contains(&environment) {
            Ok(environment)
        } else {
            Err(PurchaseRefusal::SandboxNotAllowed)
        }
    }

    /// `purchases.subscriptions.acknowledge` (still on the v1 path).
    async fn acknowledge(&self, product_id: &str, token: &str) -> Result<(), StoreCall> {
        self.subscription_call(product_id, token, "acknowledge")
            .await
    }

    /// `purchases.subscriptions.cancel`: it stops renewing and lasts until its period ends.
    pub(crate) async fn cancel(&self, product_id: &str, token: &str) -> Result<(), StoreCall> {
        self.subscription_call(product_id, token, "cancel").await
    }

    /// A `POST …/subscriptions/{product}/tokens/{token}:{action}` of the v1 API.
    async fn subscription_call(
        &self,
        product_id: &str,
        token: &str,
        action: &str,
    ) -> Result<(), StoreCall> {
        let mut url = self.url(&["subscriptions", product_id, "tokens"])?;
        url.path_segments_mut()
            .map_err(|()| StoreCall::Unavailable(anyhow::anyhow!("no base")))?
            .push(&format!("{token}:{action}"));
        let response = self
            .http
            .client()
            .post(url)
            .bearer_auth(self.access_token().await?)
            .json(&serde_json::json!({}))
            .send()
            .await
            .map_err(|e| StoreCall::Unavailable(e.without_url().into()))?;
        let status = response.status().as_u16();
        match status {
            200..=299 => Ok(()),
            429 | 500..=599 => Err(StoreCall::Retry(anyhow::anyhow!(
                "Google Play's {action} answered {status}"
            ))),
            _ => Err(StoreCall::Unavailable(anyhow::anyhow!(
                "Google Play's {action} answered {status}"
            ))),
        }
    }

    /// A subscription read again by its purchase token, for the reconcile.
    pub async fn subscription(
        &self,
        product_id: &str,
        token: &str,
    ) -> Result<Option<StoreSubscription>, StoreCall> {
        Ok(self
            .read::<SubscriptionPurchase>(&["subscriptionsv2", "tokens", token])
            .await?
            .map(|subscription| self.reading(product_id, token.to_owned(), subscription)))
    }

    /// What `purchases.subscriptionsv2` says of subscription `token` to product `product_id`
    /// (its only line when no product is named):
    /// its latest paid order (in an environment we accept) and until when it is paid; while
    /// Google retries billing, the line's expiry is the grace period's end.
    fn reading(
        &self,
        product_id: &str,
        token: String,
        subscription: SubscriptionPurchase,
    ) -> StoreSubscription {
        let line = subscription
            .line_items
            .into_iter()
            .find(|line| product_id.is_empty() || line.product_id == product_id);
        let in_grace = subscription.subscription_state.as_deref()
            == Some("SUBSCRIPTION_STATE_IN_GRACE_PERIOD");
        let environment = self.environment_of(subscription.test_purchase.is_some());
        let grace_until = line
            .as_ref()
            .and_then(|line| line.expiry_time)
            .filter(|_| in_grace);
        let latest = line.and_then(|line| {
            Some(StorePurchase {
                platform: Platform::Google,
                store_id: line.latest_successful_order_id?,
                product_id: line.product_id,
                subscription_id: Some(token.clone()),
                expires_at: line.expiry_time,
                environment: environment.ok()?,
            })
        });
        StoreSubscription {
            subscription_id: token,
            latest,
            grace_until,
            revoked: false,
        }
    }
}
