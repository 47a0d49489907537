//! The App Store: a transaction looked up with the App Store Server API
//! (`GET /inApps/v1/transactions/{transactionId}`, a subscription read again with
//! `GET /inApps/v1/subscriptions/{originalTransactionId}`; a short-lived ES256 token per request) and
//! believed only as Apple signed it: a JWS whose `x5c` chain ends at a root we pin (never the
//! one it carries), with Apple's marker extensions on the intermediate and the leaf, for our
//! bundle, in an environment we accept.

use crate::call::StoreCall;
use crate::settings::AppleSettings;
use app_store_server_library::models::app_store_environment::Environment;
use app_store_server_library::models::jws_transaction_decoded_payload::JWSTransactionDecodedPayload;
use app_store_server_library::models::notification_type_v2::NotificationTypeV2;
use app_store_server_library::models::product_type::ProductType;
use app_store_server_library::models::status_response::StatusResponse;
use app_store_server_library::signed_data_verifier::{SignedDataVerifier, SignedDataVerifierError};
use serde::{Deserialize, Serialize};
use storybook_core::domain::purchase::{Platform, PurchaseRefusal, StoreEnvironment};
use storybook_core::ports::marketplace::{
    PurchaseClaim, StoreEvent, StoreNotification, StorePurchase, StoreSubscription, Unverifiable,
};

/// Apple's error code for a transaction id its environment does not know.
const TRANSACTION_ID_NOT_FOUND: i64 = 4040010;
/// Apple's error code for an id that cannot be a transaction id.
const INVALID_TRANSACTION_ID: i64 = 4000006;
/// Apple's error codes for an original transaction id unknown, or impossible.
const ORIGINAL_TRANSACTION_ID_NOT_FOUND: i64 = 4040005;
const INVALID_ORIGINAL_TRANSACTION_ID: i64 = 4000008;

pub struct AppleStore {
    settings: AppleSettings,
    key: jsonwebtoken::EncodingKey,
    production: SignedDataVerifier,
    sandbox: SignedDataVerifier,
    http: crate::call::Http,
}

#[derive(Serialize)]
struct ApiClaims<'a> {
    iss: &'a str,
    iat: i64,
    exp: i64,
    aud: &'static str,
    bid: &'a str,
}

#[derive(Deserialize)]
struct TransactionInfo {
    #[serde(rename = "signedTransactionInfo")]
    signed_transaction_info: String,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(rename = "errorCode")]
    error_code: Option<i64>,
}

/// What one environment said about an id.
enum Lookup {
    Found(bytes::Bytes),
    NotFound,
}

impl AppleStore {
    pub(crate) fn new(settings: AppleSettings, http: crate::call::Http) -> anyhow::Result<Self> {
        let key = jsonwebtoken::EncodingKey::from_ec_pem(settings.private_key.as_bytes())
            .map_err(|_| anyhow::anyhow!("APPLE_PRIVATE_KEY is not an EC private key in PEM"))?;
        let verifier = |environment: Environment| {
            SignedDataVerifier::new(
                settings.roots.clone(),
                environment,
                settings.bundle_id.clone(),
                Some(settings.app_apple_id),
                false,
            )
            .map_err(|e| anyhow::anyhow!("the App Store verifier: {e}"))
        };
        Ok(Self {
            production: verifier(Environment::Production)?,
            sandbox: verifier(Environment::Sandbox)?,
            key,
            settings,
            http,
        })
    }

    /// The API's token: ES256 with the In-App Purchase key, five minutes long.
    fn token(&self) -> Result<String, anyhow::Error> {
        let now = chrono::Utc::now().timestamp();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some(self.settings.key_id.clone());
        header.typ = Some("JWT".into());
        let claims = ApiClaims {
            iss: &self.settings.issuer_id,
            iat: now,
            exp: now + 300,
            aud: "appstoreconnect-v1",
            bid: &self.settings.bundle_id,
        };
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| anyhow::anyhow!("signing the App Store token: {e}"))
    }

    /// Asks one environment's API for `path` (under `/inApps/v1/`): its answer's body, or
    /// `NotFound` when that environment does not know the id.
    async fn look_up(&self, base: &str, path: &[&str]) -> Result<Lookup, StoreCall> {
        let mut url = url::Url::parse(base).map_err(|e| StoreCall::Unavailable(e.into()))?;
        url.path_segments_mut()
            .map_err(|()| StoreCall::Unavailable(anyhow::anyhow!("{base} cannot be a base")))?
            .pop_if_empty()
            .extend(["inApps", "v1"])
            .extend(path);
        let response = self
            .http
            .client()
            .get(url)
            .bearer_auth(self.token().map_err(StoreCall::Unavailable)?)
            .send()
            .await
            .map_err(|e| StoreCall::Unavailable(e.without_url().into()))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| StoreCall::Unavailable(e.without_url().into()))?;
        if status.is_success() {
            return Ok(Lookup::Found(body));
        }
        let code = serde_json::from_slice::<ApiError>(&body)
            .ok()
            .and_then(|e| e.error_code);
        match (status.as_u16(), code) {
            (404, Some(TRANSACTION_ID_NOT_FOUND | ORIGINAL_TRANSACTION_ID_NOT_FOUND))
            | (400, Some(INVALID_TRANSACTION_ID | INVALID_ORIGINAL_TRANSACTION_ID)) => {
                Ok(Lookup::NotFound)
            }
            // An app never released answers 401 in production: its purchases are all sandbox.
            (401, _) if base == self.settings.production_url => Ok(Lookup::NotFound),
            (401 | 403, _) => Err(StoreCall::Unavailable(anyhow::anyhow!(
                "the App Store refused our credentials ({status})"
            ))),
            (429, _) | (500..=599, _) => Err(StoreCall::Retry(anyhow::anyhow!(
                "the App Store answered {status}"
            ))),
            _ => Err(StoreCall::Unavailable(anyhow::anyhow!(
                "the App Store answered {status} (error {code:?})"
            ))),
        }
    }

    /// Production first; the sandbox when production does not know the id (App Review and
    /// TestFlight buy in the sandbox against a production build): the answer's body, and
    /// the verifier of its environment.
    async fn look_up_anywhere(
        &self,
        path: &[&str],
    ) -> Result<Option<(bytes::Bytes, &SignedDataVerifier)>, StoreCall> {
        if let Lookup::Found(body) = self.look_up(&self.settings.production_url, path).await? {
            return Ok(Some((body, &self.production)));
        }
        match self.look_up(&self.settings.sandbox_url, path).await? {
            Lookup::Found(body) => Ok(Some((body, &self.sandbox))),
            Lookup::NotFound => Ok(None),
        }
    }

    async fn signed_transaction(
        &self,
        transaction_id: &str,
    ) -> Result<Option<(String, &SignedDataVerifier)>, StoreCall> {
        let Some((body, verifier)) = self
            .look_up_anywhere(&["transactions", transaction_id])
            .await?
        else {
            return Ok(None);
        };
        let info: TransactionInfo = serde_json::from_slice(&body)
            .map_err(|e| StoreCall::Unavailable(anyhow::anyhow!("the App Store's answer: {e}")))?;
        Ok(Some((info.signed_transaction_info, verifier)))
    }

    /// A subscription read again (`GET /inApps/v1/subscriptions/{originalTransactionId}`):
    /// believed from what Apple signed (its latest transaction and renewal information), not
    /// from the answer's unsigned status.
    pub async fn subscription(
        &self,
        original_transaction_id: &str,
    ) -> Result<Option<StoreSubscription>, StoreCall> {
        let Some((body, verifier)) = self
            .look_up_anywhere(&["subscriptions", original_transaction_id])
            .await?
        else {
            return Ok(None);
        };
        let statuses: StatusResponse = serde_json::from_slice(&body)
            .map_err(|e| StoreCall::Unavailable(anyhow::anyhow!("the App Store's answer: {e}")))?;
        let Some(last) = statuses
            .data
            .into_iter()
            .flatten()
            .flat_map(|group| group.last_transactions.unwrap_or_default())
            .find(|last| last.original_transaction_id.as_deref() == Some(original_transaction_id))
        else {
            return Ok(None);
        };
        let unverified = |e: SignedDataVerifierError| {
            StoreCall::Unavailable(anyhow::anyhow!(
                "an App Store subscription failed verification: {e}"
            ))
        };
        let transaction = last
            .signed_transaction_info
            .as_deref()
            .map(|signed| verifier.verify_and_decode_signed_transaction(signed))
            .transpose()
            .map_err(unverified)?;
        let renewal = last
            .signed_renewal_info
            .as_deref()
            .map(|signed| verifier.verify_and_decode_renewal_info(signed))
            .transpose()
            .map_err(unverified)?;
        let revoked = transaction
            .as_ref()
            .is_some_and(|t| t.revocation_date.is_some());
        let latest = transaction
            .filter(|t| t.original_transaction_id.as_deref() == Some(original_transaction_id))
            .and_then(|t| self.purchase_in(t).ok());
        Ok(Some(StoreSubscription {
            subscription_id: original_transaction_id.to_owned(),
            latest,
            grace_until: renewal.and_then(|r| r.grace_period_expires_date),
            revoked,
        }))
    }

    pub async fn confirm(
        &self,
        claim: &PurchaseClaim,
    ) -> Result<Result<StorePurchase, PurchaseRefusal>, StoreCall> {
        let Some((signed, verifier)) = self.signed_transaction(&claim.transaction_id).await? else {
            return Ok(Err(PurchaseRefusal::NotFound));
        };
        let transaction = match verifier.verify_and_decode_signed_transaction(&signed) {
            Ok(transaction) => transaction,
            Err(error) => {
                tracing::warn!(%error, "an App Store transaction failed verification");
                return Ok(Err(PurchaseRefusal::Unverified));
            }
        };
        Ok(self.purchase_of(claim, transaction))
    }

    /// What a verified transaction bought, if it still stands, as the app claimed it.
    fn purchase_of(
        &self,
        claim: &PurchaseClaim,
        transaction: JWSTransactionDecodedPayload,
    ) -> Result<StorePurchase, PurchaseRefusal> {
        let revoked = transaction.revocation_date.is_some();
        let purchase = self.purchase_in(transaction)?;
        if purchase.store_id != claim.transaction_id {
            return Err(PurchaseRefusal::NotFound);
        }
        if purchase.product_id != claim.product_id {
            return Err(PurchaseRefusal::ProductMismatch);
        }
        if revoked {
            return Err(PurchaseRefusal::NotPaid);
        }
        Ok(purchase)
    }

    /// The payment a verified transaction records, in an environment we accept.
    fn purchase_in(
        &self,
        transaction: JWSTransactionDecodedPayload,
    ) -> Result<StorePurchase, PurchaseRefusal> {
        let environment = match transaction.environment {
            Some(Environment::Production) => StoreEnvironment::Production,
            Some(Environment::Sandbox) => StoreEnvironment::Sandbox,
            // Unsigned test environments never verify; anything else is not a purchase.
            _ => return Err(PurchaseRefusal::Unverified),
        };
        if !self.settings.environments.contains(&environment) {
            return Err(PurchaseRefusal::SandboxNotAllowed);
        }
        let (Some(store_id), Some(product_id)) =
            (transaction.transaction_id, transaction.product_id)
        else {
            return Err(PurchaseRefusal::Unverified);
        };
        let subscription_id = match transaction.r#type {
            Some(ProductType::AutoRenewableSubscription) => transaction
                .original_transaction_id
                .or_else(|| Some(store_id.clone())),
            _ => None,
        };
        Ok(StorePurchase {
            platform: Platform::Apple,
            store_id,
            product_id,
            expires_at: transaction.expires_date,
            subscription_id,
            environment,
        })
    }

    /// An App Store Server Notification V2 (`{"signedPayload"}`), verified with its
    /// environment's verifier, and what it says in our words.
    pub fn notification(&self, body: &[u8]) -> Result<StoreNotification, Unverifiable> {
        #[derive(Deserialize)]
        struct Body {
            #[serde(rename = "signedPayload")]
            signed_payload: String,
        }
        let body: Body =
            serde_json::from_slice(body).map_err(|_| Unverifiable("not a signedPayload".into()))?;
        let refused = |e: SignedDataVerifierError| Unverifiable(e.to_string());
        let (payload, verifier) = match self
            .production
            .verify_and_decode_notification(&body.signed_payload)
        {
            Ok(payload) => (payload, &self.production),
            Err(SignedDataVerifierError::InvalidEnvironment) => (
                self.sandbox
                    .verify_and_decode_notification(&body.signed_payload)
                    .map_err(refused)?,
                &self.sandbox,
            ),
            Err(other) => return Err(refused(other)),
        };
        let id = payload
            .notification_uuid
            .clone()
            .ok_or_else(|| Unverifiable("no notificationUUID".into()))?;
        // The sandbox's payments never count where the sandbox does not: nor do its refunds,
        // renewals and ends.
        let sandbox = std::ptr::eq(verifier, &self.sandbox);
        if sandbox
            && !self
                .settings
                .environments
                .contains(&StoreEnvironment::Sandbox)
        {
            return Ok(StoreNotification {
                id,
                event: StoreEvent::Informational("sandbox_not_allowed".into()),
            });
        }
        let data = payload.data.as_ref();
        let transaction = data
            .and_then(|d| d.signed_transaction_info.as_deref())
            .map(|signed| verifier.verify_and_decode_signed_transaction(signed))
            .transpose()
            .map_err(refused)?;
        let renewal = data
            .and_then(|d| d.signed_renewal_info.as_deref())
            .map(|signed| verifier.verify_and_decode_renewal_info(signed))
            .transpose()
            .map_err(refused)?;
        let subscription_id = transaction
            .as_ref()
            .and_then(|t| t.original_transaction_id.clone())
            .or_else(|| {
                renewal
                    .as_ref()
                    .and_then(|r| r.original_transaction_id.clone())
            });
        let event = match (payload.notification_type.clone(), transaction) {
            (Some(NotificationTypeV2::Subscribed | NotificationTypeV2::DidRenew), Some(t)) => {
                match self.purchase_in(t) {
                    Ok(purchase) => StoreEvent::Paid(purchase),
                    Err(refusal) => StoreEvent::Informational(refusal.reason().into()),
                }
            }
            (Some(NotificationTypeV2::DidFailToRenew), _) if subscription_id.is_some() => {
                StoreEvent::BillingRetry {
                    subscription_id: subscription_id.unwrap_or_default(),
                    until: renewal.and_then(|r| r.grace_period_expires_date),
                }
            }
            (
                Some(
                    kind @ (NotificationTypeV2::Expired
                    | NotificationTypeV2::GracePeriodExpired
                    | NotificationTypeV2::Revoke),
                ),
                t,
            ) if subscription_id.is_some() => StoreEvent::Ended {
                subscription_id: subscription_id.unwrap_or_default(),
                // An expiry ends the period it names; a grace period's end, the plan we
                // extended into it (never one a later renewal paid); Family Sharing's access
                // revoked ends it whatever was paid.
                paid_until: match kind {
                    NotificationTypeV2::Expired => t.and_then(|t| t.expires_date),
                    NotificationTypeV2::GracePeriodExpired => {
                        renewal.as_ref().and_then(|r| r.grace_period_expires_date)
                    }
                    _ => None,
                },
            },
            // The library names a plain REFUND this way (6.0).
            (Some(NotificationTypeV2::AdvancedCommerceRefund), Some(t)) => {
                let renewing = matches!(t.r#type, Some(ProductType::AutoRenewableSubscription));
                StoreEvent::Refunded {
                    store_id: t.transaction_id.clone().unwrap_or_default(),
                    subscription_id: subscription_id.filter(|_| renewing),
                }
            }
            (Some(NotificationTypeV2::RefundReversed), Some(t)) => StoreEvent::RefundReversed {
                store_id: t.transaction_id.unwrap_or_default(),
            },
            (Some(kind), _) => StoreEvent::Informational(format!("{kind:?}")),
            (None, _) => StoreEvent::Informational("unknown".into()),
        };
        Ok(StoreNotification { id, event })
    }
}
