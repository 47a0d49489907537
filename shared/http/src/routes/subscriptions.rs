//! A parent's plan: `POST /v1/credits/subscribe`, `/cancel-subscription` and an operator's
//! `/admin/grant-subscription`. Paid plans are bought in the stores (`/v1/iap/verify`).

use crate::auth::{AdminForUserRequest, UserRequest};
use crate::endpoints::Endpoint;
use crate::error::ApiError;
use crate::extract::JsonBody;
use crate::routes::timestamp;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use storybook_core::catalogue::{Access, Family};
use storybook_core::domain::purchase::{Catalogue, FREE, Plan, Platform, Subscription};
use storybook_core::usecases::purchases::{self, Cancelled, Subscribed};

/// The routes this file serves.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::post(Family::Credits, "/v1/credits/subscribe", subscribe),
        Endpoint::post(Family::Credits, "/v1/credits/cancel-subscription", cancel),
        Endpoint::post(
            Family::Credits,
            "/v1/credits/admin/grant-subscription",
            grant,
        )
        .access(Access::AdminForUser),
    ]
}

/// The app contract's `SubscriptionResponse`.
#[derive(Serialize)]
pub struct SubscriptionView {
    plan: String,
    plan_name: String,
    status: &'static str,
    credits_per_month: i64,
    current_period_end: String,
    features: Vec<String>,
}

impl SubscriptionView {
    pub fn of(subscription: &Subscription, catalogue: &Catalogue) -> Self {
        let plan_name = catalogue
            .plan(&subscription.plan)
            .map_or_else(|| subscription.plan.clone(), |plan| plan.name.clone());
        SubscriptionView {
            plan: subscription.plan.clone(),
            plan_name,
            status: subscription.status.as_str(),
            credits_per_month: subscription.credits_per_period,
            current_period_end: timestamp(subscription.period_end),
            features: features(subscription.credits_per_period),
        }
    }
}

/// What a plan gives, as the app lists it.
fn features(credits: i64) -> Vec<String> {
    vec![format!("{credits} credits each period")]
}

/// The app contract's `SubscriptionPlan`.
#[derive(Serialize)]
pub struct PlanView {
    id: String,
    name: String,
    price: i64,
    credits_per_month: i64,
    features: Vec<String>,
}

impl PlanView {
    /// The free plan (no credits: nothing is paid for them) and the paid ones.
    pub fn all(catalogue: &Catalogue) -> Vec<PlanView> {
        let free = PlanView {
            id: FREE.into(),
            name: "Free".into(),
            price: 0,
            credits_per_month: 0,
            features: Vec::new(),
        };
        std::iter::once(free)
            .chain(catalogue.plans().into_iter().map(PlanView::of))
            .collect()
    }

    fn of(plan: &Plan) -> Self {
        PlanView {
            id: plan.id.clone(),
            name: plan.name.clone(),
            price: plan.price,
            credits_per_month: plan.credits_per_period,
            features: features(plan.credits_per_period),
        }
    }
}

#[derive(Deserialize)]
pub struct PlanRequest {
    plan: String,
}

#[derive(Serialize)]
pub struct SubscribeResponse {
    status: &'static str,
    message: String,
    subscription: Option<SubscriptionView>,
}

pub async fn subscribe(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
    JsonBody(body): JsonBody<PlanRequest>,
) -> Result<Json<SubscribeResponse>, ApiError> {
    Ok(Json(
        match purchases::subscribe(&state, &request, &body.plan).await? {
            Subscribed::Free => SubscribeResponse {
                status: "success",
                message: "You are on the free plan".into(),
                subscription: None,
            },
            Subscribed::AlreadySubscribed(running) => SubscribeResponse {
                status: "already_subscribed",
                message: "This plan is already yours".into(),
                subscription: Some(SubscriptionView::of(&running, &state.config.products)),
            },
        },
    ))
}

#[derive(Serialize)]
pub struct CancelResponse {
    /// `success`: it will not renew; `cancel_in_store`: the parent cancels it in the store that
    /// bills it. Either way it lasts until `current_period_end`.
    status: &'static str,
    message: String,
    /// Where the parent manages the plan, when a store bills it.
    manage_url: Option<&'static str>,
    subscription: SubscriptionView,
}

pub async fn cancel(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
) -> Result<Json<CancelResponse>, ApiError> {
    let catalogue = &state.config.products;
    Ok(Json(
        match purchases::cancel_subscription(&state, &request).await? {
            Cancelled::Now(subscription) => CancelResponse {
                status: "success",
                message: "Your plan will not renew; it lasts until its period ends".into(),
                manage_url: None,
                subscription: SubscriptionView::of(&subscription, catalogue),
            },
            Cancelled::AtTheStore {
                platform,
                subscription,
            } => {
                let (store, url) = match platform {
                    Platform::Apple => (
                        "the App Store",
                        "https://apps.apple.com/account/subscriptions",
                    ),
                    Platform::Google => (
                        "Google Play",
                        "https://play.google.com/store/account/subscriptions",
                    ),
                };
                CancelResponse {
                    status: "cancel_in_store",
                    message: format!(
                        "{store} bills this plan: cancel it there; it lasts until its period ends"
                    ),
                    manage_url: Some(url),
                    subscription: SubscriptionView::of(&subscription, catalogue),
                }
            }
        },
    ))
}

#[derive(Serialize)]
pub struct GrantResponse {
    plan: String,
    status: &'static str,
    current_period_end: String,
}

/// An operator gives the `X-User-Key` user a paid plan for one period, with its credits.
pub async fn grant(
    State(state): State<AppState>,
    AdminForUserRequest(request): AdminForUserRequest,
    JsonBody(body): JsonBody<PlanRequest>,
) -> Result<Json<GrantResponse>, ApiError> {
    let subscription = purchases::grant_subscription(&state, &request, &body.plan).await?;
    Ok(Json(GrantResponse {
        plan: subscription.plan,
        status: subscription.status.as_str(),
        current_period_end: timestamp(subscription.period_end),
    }))
}
