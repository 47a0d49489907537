use crate::auth::{AdminForUserRequest, UserRequest};
use crate::endpoints::{Endpoint, Feature};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, PageQuery, QueryParams};
use crate::routes::subscriptions::{PlanView, SubscriptionView};
use crate::routes::timestamp;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use storybook_core::catalogue::{Access, Family};
use storybook_core::domain::credits::{GrantAmount, LedgerEntry, LedgerPage, TransactionId};
use storybook_core::usecases::{Refusal, credits, purchases};

/// The balance: the release smoke test reads it too.
pub(crate) const BALANCE: &str = "/v1/credits/balance";

/// The routes this file serves.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(Family::Credits, BALANCE, balance).gives(Feature::Credits),
        Endpoint::get(Family::Credits, "/v1/credits/status", status),
        Endpoint::get(Family::Credits, "/v1/credits/check", check),
        Endpoint::get(Family::Credits, "/v1/credits/transactions", transactions),
        Endpoint::post(Family::Credits, "/v1/credits/add", add).access(Access::AdminForUser),
    ]
}

/// `{"credits": n}`: what the app reads before offering a book.
#[derive(Serialize)]
pub struct Balance {
    credits: i64,
}

pub async fn balance(UserRequest(request): UserRequest) -> Json<Balance> {
    Json(Balance {
        credits: request.caller.credits,
    })
}

/// The app contract's `CreditsStatusResponse`: the balance, the running plan and the plans.
#[derive(Serialize)]
pub struct CreditsStatus {
    credits: CreditTotals,
    subscription: Option<SubscriptionView>,
    available_plans: Vec<PlanView>,
}

#[derive(Serialize)]
struct CreditTotals {
    credits: i64,
    total_purchased: i64,
    total_used: i64,
}

pub async fn status(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
) -> Result<Json<CreditsStatus>, ApiError> {
    let running = purchases::current_subscription(&state, &request).await?;
    let catalogue = &state.config.products;
    let user = request.caller;
    Ok(Json(CreditsStatus {
        credits: CreditTotals {
            credits: user.credits,
            total_purchased: user.total_purchased,
            total_used: user.total_used,
        },
        subscription: running.map(|s| SubscriptionView::of(&s, catalogue)),
        available_plans: PlanView::all(catalogue),
    }))
}

#[derive(Deserialize)]
pub struct CheckQuery {
    #[serde(default = "one")]
    required: i64,
}

fn one() -> i64 {
    1
}

/// Whether the balance covers `required` credits.
#[derive(Serialize)]
pub struct CreditCheck {
    has_enough_credits: bool,
    credits: i64,
    required: i64,
}

/// Whether the balance covers `required` credits (default 1).
pub async fn check(
    UserRequest(request): UserRequest,
    QueryParams(query): QueryParams<CheckQuery>,
) -> Result<Json<CreditCheck>, ApiError> {
    ApiError::unless_between(&["query", "required"], query.required, 0, 1_000_000)?;
    let credits = request.caller.credits;
    Ok(Json(CreditCheck {
        has_enough_credits: credits >= query.required,
        credits,
        required: query.required,
    }))
}

/// The app contract's `TransactionResponse`.
#[derive(Serialize)]
pub struct Transaction {
    id: i64,
    amount: i64,
    balance_after: i64,
    transaction_type: &'static str,
    description: Option<String>,
    created_at: String,
}

impl From<LedgerEntry> for Transaction {
    fn from(entry: LedgerEntry) -> Self {
        Transaction {
            id: entry.seq,
            amount: entry.delta,
            balance_after: entry.balance_after,
            transaction_type: entry.kind.as_str(),
            description: entry.description,
            created_at: timestamp(entry.created_at),
        }
    }
}

/// The ledger, newest first.
pub async fn transactions(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<Json<Vec<Transaction>>, ApiError> {
    let page = LedgerPage::parse(query.limit, query.offset).map_err(|reason| {
        let field = if reason.0.starts_with("limit") {
            "limit"
        } else {
            "offset"
        };
        ApiError::schema(Problem::new(&["query", field], reason.0, "value_error"))
    })?;
    let entries = credits::ledger(&state, &request.caller, page).await?;
    Ok(Json(entries.into_iter().map(Transaction::from).collect()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddCreditsRequest {
    amount: i64,
    #[serde(default)]
    transaction_id: Option<String>,
}

/// The app contract's answer to a grant.
#[derive(Serialize)]
pub struct Granted {
    status: &'static str,
    message: String,
    new_balance: i64,
}

/// Grants credits to the `X-User-Key` user, once per `transaction_id` (an admin key is required).
pub async fn add(
    State(state): State<AppState>,
    AdminForUserRequest(request): AdminForUserRequest,
    JsonBody(body): JsonBody<AddCreditsRequest>,
) -> Result<Json<Granted>, ApiError> {
    let amount = GrantAmount::parse(body.amount).map_err(|e| Refusal::Invalid(e.0))?;
    let transaction_id = TransactionId::parse(body.transaction_id.as_deref().unwrap_or_default())
        .map_err(|e| Refusal::Invalid(e.0))?;
    let granted = credits::grant_purchase(&state, &request, amount, transaction_id).await?;
    Ok(Json(if granted.applied_now {
        Granted {
            status: "success",
            message: format!("Added {} credits", amount.get()),
            new_balance: granted.balance,
        }
    } else {
        Granted {
            status: "already_processed",
            message: "This transaction was already processed".into(),
            new_balance: granted.balance,
        }
    }))
}
