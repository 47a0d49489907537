//! `POST /v1/iap/verify`: a store purchase the app made, confirmed with its store and redeemed.

use crate::auth::UserRequest;
use crate::endpoints::{Endpoint, Feature};
use crate::error::{ApiError, Problems};
use crate::extract::JsonBody;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use storybook_core::catalogue::Family;
use storybook_core::domain::purchase::Platform;
use storybook_core::usecases::purchases::{self, PurchaseToVerify, VerifiedPurchase};

/// The routes this file serves.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![Endpoint::post(Family::Credits, "/v1/iap/verify", verify).gives(Feature::Purchases)]
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
