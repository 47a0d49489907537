use crate::auth::{AdminKey, AppUser};
use crate::context::{AuditContext, audit};
use crate::domain::audit::AuditEvent;
use crate::domain::credits::{
    EntryKind, Grant, GrantAmount, GrantOutcome, LedgerPage, TransactionId,
};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, QueryParams};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

/// `{"credits": n}`: what the app reads before offering a book.
pub async fn balance(AppUser(user): AppUser) -> Json<Value> {
    Json(json!({"credits": user.credits}))
}

/// The seed's `CreditsStatusResponse`. We sell no subscriptions (yet), so none and no plans.
pub async fn status(AppUser(user): AppUser) -> Json<Value> {
    Json(json!({
        "credits": {
            "credits": user.credits,
            "total_purchased": user.total_purchased,
            "total_used": user.total_used,
        },
        "subscription": null,
        "available_plans": [],
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

/// Whether the balance covers `required` credits (default 1).
pub async fn check(
    AppUser(user): AppUser,
    QueryParams(query): QueryParams<CheckQuery>,
) -> Result<Json<Value>, ApiError> {
    ApiError::unless_between(&["query", "required"], query.required, 0, 1_000_000)?;
    Ok(Json(json!({
        "has_enough_credits": user.credits >= query.required,
        "credits": user.credits,
        "required": query.required,
    })))
}

#[derive(Deserialize)]
pub struct TransactionsQuery {
    #[serde(default = "twenty")]
    limit: i64,
    #[serde(default)]
    offset: i64,
}

fn twenty() -> i64 {
    20
}

/// The ledger, newest first, as the seed's `TransactionResponse` list.
pub async fn transactions(
    State(state): State<AppState>,
    AppUser(user): AppUser,
    QueryParams(query): QueryParams<TransactionsQuery>,
) -> Result<Json<Value>, ApiError> {
    let page = LedgerPage::parse(query.limit, query.offset).map_err(|reason| {
        let field = if reason.0.starts_with("limit") {
            "limit"
        } else {
            "offset"
        };
        ApiError::schema(Problem::new(&["query", field], reason.0, "value_error"))
    })?;
    let entries = state.store.ledger(&user.id, page).await?;
    Ok(Json(Value::Array(
        entries
            .into_iter()
            .map(|e| {
                json!({
                    "id": e.seq,
                    "amount": e.delta,
                    "balance_after": e.balance_after,
                    "transaction_type": e.kind.as_str(),
                    "description": e.description,
                    "created_at": e.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                })
            })
            .collect(),
    )))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddCreditsRequest {
    amount: i64,
    #[serde(default)]
    transaction_id: Option<String>,
}

/// Grants credits to the `X-User-Key` user, once per `transaction_id` (an admin key is required).
pub async fn add(
    State(state): State<AppState>,
    context: AuditContext,
    AdminKey(admin): AdminKey,
    AppUser(user): AppUser,
    JsonBody(request): JsonBody<AddCreditsRequest>,
) -> Result<Json<Value>, ApiError> {
    let amount = GrantAmount::parse(request.amount).map_err(|e| ApiError::Invalid(e.0))?;
    let transaction_id =
        TransactionId::parse(request.transaction_id.as_deref().unwrap_or_default())
            .map_err(|e| ApiError::Invalid(e.0))?;
    let grant = Grant {
        user: user.id.clone(),
        delta: amount.get(),
        transaction_id,
        kind: EntryKind::Purchase,
        reason: None,
        at: chrono::Utc::now(),
    };
    let outcome = state.store.grant(&grant).await?;
    Ok(Json(match outcome {
        GrantOutcome::Applied { balance } => {
            let detail = Some(format!(
                "+{} by {} ({})",
                amount.get(),
                admin.key_id,
                grant.transaction_id.as_str()
            ));
            audit(
                &state,
                AuditEvent::CreditsGranted,
                Some(user.id.truncated().to_owned()),
                &context.ip,
                &context.route,
                detail,
            )
            .await;
            json!({"status": "success", "message": format!("Added {} credits", amount.get()), "new_balance": balance})
        }
        GrantOutcome::AlreadyProcessed { balance } => json!({
            "status": "already_processed",
            "message": "This transaction was already processed",
            "new_balance": balance,
        }),
        GrantOutcome::InsufficientCredits { .. } => {
            return Err(ApiError::Internal(anyhow::anyhow!(
                "a positive grant was refused for want of credits"
            )));
        }
    }))
}
