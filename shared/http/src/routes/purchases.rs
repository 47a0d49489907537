//! `POST /v1/iap/verify`: a store purchase the app made, confirmed with its store and redeemed;
//! `POST /v1/iap/webhook/apple` and `/google`: what the stores tell us afterwards (renewals,
//! refunds, ends).

use crate::auth::{AnonymousRequest, UserRequest};
use crate::endpoints::{Endpoint, Feature};
use crate::error::{ApiError, Problems};
use crate::extract::JsonBody;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use storybook_core::catalogue::Family;
use storybook_core::domain::purchase::Platform;
use storybook_core::ports::marketplace::NotificationDelivery;
use storybook_core::usecases::purchases::{self, PurchaseToVerify, VerifiedPurchase};
use storybook_core::usecases::store_events;

/// The routes this file serves.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::post(Family::Credits, "/v1/iap/verify", verify).gives(Feature::Purchases),
        // The stores sign what they send; it carries no key of ours.
        Endpoint::post(Family::Credits, "/v1/iap/webhook/apple", apple_notification).public(),
        Endpoint::post(
            Family::Credits,
            "/v1/iap/webhook/google",
            google_notification,
        )
        .public(),
    ]
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum PlatformName {
    Apple,
    Google,
}

/// The app contract's `IAPVerifyRequest`. `receipt_data` (Apple's app receipt, which the app
/// still sends) is read past and never trusted: the App Store is asked about the transaction.
/// `is_subscription` is ignored: the product decides.
#[derive(Deserialize)]
pub struct VerifyRequest {
    platform: PlatformName,
    product_id: String,
    transaction_id: String,
    #[serde(default)]
    purchase_token: Option<String>,
}

/// The app contract's `IAPVerifyResponse`.
#[derive(Serialize)]
pub struct VerifyResponse {
    status: &'static str,
    transaction_id: String,
    product_id: String,
    credits_added: i64,
    plan: Option<String>,
    verification_source: &'static str,
}

impl From<VerifiedPurchase> for VerifyResponse {
    fn from(verified: VerifiedPurchase) -> Self {
        VerifyResponse {
            status: verified.status.as_str(),
            transaction_id: verified.transaction_id,
            product_id: verified.product_id,
            credits_added: verified.credits_added,
            plan: verified.plan,
            verification_source: verified.verification_source,
        }
    }
}

pub async fn verify(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
    JsonBody(body): JsonBody<VerifyRequest>,
) -> Result<Json<VerifyResponse>, ApiError> {
    // The app contract's lengths; a blank id is the use case's refusal (400), as the app expects.
    let mut problems = Problems::default();
    problems.text(&["product_id"], &body.product_id, 0, 120);
    problems.text(&["transaction_id"], &body.transaction_id, 0, 200);
    if let Some(token) = &body.purchase_token {
        problems.text(&["purchase_token"], token, 0, 500);
    }
    problems.into_result()?;
    let purchase = PurchaseToVerify {
        platform: match body.platform {
            PlatformName::Apple => Platform::Apple,
            PlatformName::Google => Platform::Google,
        },
        product_id: body.product_id,
        transaction_id: body.transaction_id,
        purchase_token: body.purchase_token,
    };
    let verified = purchases::verify_purchase(&state, &request, purchase).await?;
    Ok(Json(verified.into()))
}

/// What a store's notification did: `applied`, or `duplicate` for one applied before.
#[derive(Serialize)]
pub struct NotificationAnswer {
    status: &'static str,
    event: String,
}

/// An App Store Server Notification V2 (or a bridge's report): verified as Apple signed it
/// (401 otherwise, nothing changed) and applied once.
pub async fn apple_notification(
    state: State<AppState>,
    request: AnonymousRequest,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<NotificationAnswer>, ApiError> {
    notification(state, request, Platform::Apple, headers, body).await
}

/// Google Play's notifications: only a bridge's report is read until the Play store is
/// configured here; anything else is unverifiable (401).
pub async fn google_notification(
    state: State<AppState>,
    request: AnonymousRequest,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<NotificationAnswer>, ApiError> {
    notification(state, request, Platform::Google, headers, body).await
}

async fn notification(
    State(state): State<AppState>,
    AnonymousRequest(request): AnonymousRequest,
    platform: Platform,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<NotificationAnswer>, ApiError> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    let delivery = NotificationDelivery {
        platform,
        body: body.to_vec(),
        authorization: header("authorization"),
        webhook_token: header("x-webhook-token"),
    };
    let applied = store_events::apply_store_notification(&state, &request, &delivery).await?;
    Ok(Json(NotificationAnswer {
        status: applied.status,
        event: applied.event,
    }))
}
