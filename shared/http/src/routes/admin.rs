//! Our additions for operators and servers, under `/v1/admin/`, with admin-scoped API keys:
//! the API key lifecycle, per-key usage, credits for a user, the audit log.

use crate::auth::AdminCaller;
use crate::context::{AuditContext, audit};
use crate::domain::api_key::{ApiKeyRecord, ApiKeySecret, KeyEnvironment, Scope, parse_ip_rule};
use crate::domain::audit::AuditEvent;
use crate::domain::credential::{CredentialHash, CredentialKind};
use crate::domain::credits::{
    EntryKind, Grant, GrantOutcome, MAX_GRANT, TransactionId, ledger_reconciles,
};
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, PathParam, QueryParams, parse_json};
use crate::ports::store::whole_ledger;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn problem(field: &str, msg: impl Into<String>) -> ApiError {
    ApiError::schema(Problem::new(&["body", field], msg, "value_error"))
}

fn name_of(raw: &str) -> Result<String, ApiError> {
    let name = raw.trim();
    let length = name.chars().count();
    if length == 0 || length > 60 || name.chars().any(char::is_control) {
        return Err(problem("name", "String should have 1 to 60 characters"));
    }
    Ok(name.to_owned())
}

fn scopes_of(raw: &[String]) -> Result<Vec<Scope>, ApiError> {
    if raw.is_empty() || raw.len() > 3 {
        return Err(problem(
            "scopes",
            "Give one to three of 'read', 'write', 'admin'",
        ));
    }
    let mut scopes: Vec<Scope> = raw
        .iter()
        .map(|s| Scope::parse(s).map_err(|e| problem("scopes", e.0)))
        .collect::<Result<_, _>>()?;
    scopes.sort();
    scopes.dedup();
    Ok(scopes)
}

fn ips_of(raw: &[String]) -> Result<Vec<String>, ApiError> {
    if raw.len() > 20 {
        return Err(problem("allowed_ips", "At most 20 entries"));
    }
    raw.iter()
        .map(|r| {
            parse_ip_rule(r)
                .map(|net| net.to_string())
                .map_err(|e| problem("allowed_ips", e.0))
        })
        .collect()
}

fn expiry_of(raw: Option<DateTime<Utc>>) -> Result<Option<DateTime<Utc>>, ApiError> {
    match raw {
        Some(at) if at <= Utc::now() => {
            Err(problem("expires_at", "The expiry must be in the future"))
        }
        other => Ok(other),
    }
}

/// A key as operators see it: everything but the secret and its hash.
fn view(record: &ApiKeyRecord) -> Value {
    let now = Utc::now();
    let status = if record.revoked_at.is_some_and(|at| at <= now) {
        "revoked"
    } else if record.expires_at.is_some_and(|at| at <= now) {
        "expired"
    } else {
        "active"
    };
    json!({
        "key_id": record.key_id,
        "name": record.name,
        "prefix": record.display_prefix,
        "environment": record.environment.as_str(),
        "scopes": record.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "allowed_ips": record.allowed_ips,
        "created_at": record.created_at.to_rfc3339(),
        "expires_at": record.expires_at.map(|t| t.to_rfc3339()),
        "revoked_at": record.revoked_at.map(|t| t.to_rfc3339()),
        "rotated_to": record.rotated_to,
        "status": status,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    name: String,
    scopes: Vec<String>,
    #[serde(default)]
    environment: Option<String>,
    #[serde(default)]
    expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    allowed_ips: Vec<String>,
}

async fn store_new_key(
    state: &AppState,
    template: ApiKeyRecord,
    environment: KeyEnvironment,
) -> Result<(ApiKeySecret, ApiKeyRecord), ApiError> {
    let secret = ApiKeySecret::generate(environment);
    let record = ApiKeyRecord {
        key_id: ApiKeyRecord::new_id(),
        hash: state.hasher.hash(CredentialKind::ApiKey, secret.expose()),
        display_prefix: secret.display_prefix(),
        environment,
        created_at: Utc::now(),
        revoked_at: None,
        rotated_to: None,
        ..template
    };
    state.store.put_api_key(&record).await?;
    Ok((secret, record))
}

/// Makes a key; its secret is in this answer and nowhere else, ever.
pub async fn create_key(
    State(state): State<AppState>,
    context: AuditContext,
    AdminCaller(caller): AdminCaller,
    JsonBody(request): JsonBody<CreateKey>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let environment = match request.environment.as_deref() {
        None => KeyEnvironment::Live,
        Some(raw) => KeyEnvironment::parse(raw).map_err(|e| problem("environment", e.0))?,
    };
    let template = ApiKeyRecord {
        key_id: String::new(),
        name: name_of(&request.name)?,
        hash: CredentialHash::from_stored(String::new()),
        display_prefix: String::new(),
        environment,
        scopes: scopes_of(&request.scopes)?,
        created_at: Utc::now(),
        expires_at: expiry_of(request.expires_at)?,
        revoked_at: None,
        allowed_ips: ips_of(&request.allowed_ips)?,
        rotated_to: None,
    };
    let (secret, record) = store_new_key(&state, template, environment).await?;
    audit(
        &state,
        AuditEvent::KeyCreated,
        Some(record.key_id.clone()),
        &context.ip,
        &context.route,
        Some(format!("by {}", caller.key_id)),
    )
    .await;
    let mut answer = view(&record);
    answer["key"] = json!(secret.expose());
    Ok((StatusCode::CREATED, Json(answer)))
}

pub async fn list_keys(
    State(state): State<AppState>,
    _caller: AdminCaller,
) -> Result<Json<Value>, ApiError> {
    let keys: Vec<Value> = state
        .store
        .list_api_keys()
        .await?
        .iter()
        .map(view)
        .collect();
    Ok(Json(json!({"keys": keys, "total": keys.len()})))
}

async fn key_by_id(state: &AppState, key_id: &str) -> Result<ApiKeyRecord, ApiError> {
    let not_found = || ApiError::NotFound {
        resource: "api_key",
        id: key_id.to_owned(),
    };
    if key_id.len() > 40
        || !key_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
    {
        return Err(not_found());
    }
    state
        .store
        .find_api_key_by_id(key_id)
        .await?
        .ok_or_else(not_found)
}

/// The last use of a key, from its usage counters.
async fn last_used(state: &AppState, key_id: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    Ok(state
        .store
        .key_usage(key_id)
        .await?
        .iter()
        .map(|u| u.last_used_at)
        .max())
}

pub async fn get_key(
    State(state): State<AppState>,
    _caller: AdminCaller,
    PathParam(key_id): PathParam,
) -> Result<Json<Value>, ApiError> {
    let record = key_by_id(&state, &key_id).await?;
    let mut answer = view(&record);
    answer["last_used_at"] = json!(last_used(&state, &key_id).await?.map(|t| t.to_rfc3339()));
    Ok(Json(answer))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpdateKey {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    /// Present and null clears the expiry.
    #[serde(default, deserialize_with = "present")]
    expires_at: Option<Option<DateTime<Utc>>>,
    #[serde(default)]
    allowed_ips: Option<Vec<String>>,
}

/// A field that may be absent (`None`), null (`Some(None)`) or set.
fn present<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

pub async fn update_key(
    State(state): State<AppState>,
    context: AuditContext,
    AdminCaller(caller): AdminCaller,
    PathParam(key_id): PathParam,
    JsonBody(update): JsonBody<UpdateKey>,
) -> Result<Json<Value>, ApiError> {
    let mut record = key_by_id(&state, &key_id).await?;
    if let Some(name) = &update.name {
        record.name = name_of(name)?;
    }
    if let Some(scopes) = &update.scopes {
        record.scopes = scopes_of(scopes)?;
    }
    if let Some(expires_at) = update.expires_at {
        record.expires_at = expiry_of(expires_at)?;
    }
    if let Some(ips) = &update.allowed_ips {
        record.allowed_ips = ips_of(ips)?;
    }
    state.store.update_api_key(&record).await?;
    audit(
        &state,
        AuditEvent::KeyUpdated,
        Some(key_id),
        &context.ip,
        &context.route,
        Some(format!("by {}", caller.key_id)),
    )
    .await;
    Ok(Json(view(&record)))
}

/// Revokes a key at once.
pub async fn revoke_key(
    State(state): State<AppState>,
    context: AuditContext,
    AdminCaller(caller): AdminCaller,
    PathParam(key_id): PathParam,
) -> Result<Json<Value>, ApiError> {
    let mut record = key_by_id(&state, &key_id).await?;
    if record.revoked_at.is_none() {
        record.revoked_at = Some(Utc::now());
        state.store.update_api_key(&record).await?;
        audit(
            &state,
            AuditEvent::KeyRevoked,
            Some(key_id),
            &context.ip,
            &context.route,
            Some(format!("by {}", caller.key_id)),
        )
        .await;
    }
    Ok(Json(view(&record)))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Rotate {
    #[serde(default)]
    grace_period_seconds: Option<i64>,
}

/// Replaces a key: the new secret is shown once; the old key keeps working for the grace period.
pub async fn rotate_key(
    State(state): State<AppState>,
    context: AuditContext,
    AdminCaller(caller): AdminCaller,
    PathParam(key_id): PathParam,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    // The body is optional: no body, the configured grace period.
    let rotate: Rotate = if body.is_empty() {
        Rotate::default()
    } else {
        parse_json(&body)?
    };
    let grace = match rotate.grace_period_seconds {
        None => state.settings.rotation_grace.as_secs() as i64,
        Some(seconds) => {
            ApiError::unless_between(&["body", "grace_period_seconds"], seconds, 0, 30 * 86_400)?;
            seconds
        }
    };
    let mut old = key_by_id(&state, &key_id).await?;
    let now = Utc::now();
    if !old.is_active(now) || old.rotated_to.is_some() {
        return Err(ApiError::Conflict(
            "Only an active key that was not rotated yet can be rotated".into(),
        ));
    }
    let environment = old.environment;
    let (secret, new) = store_new_key(&state, ApiKeyRecord { ..old.clone() }, environment).await?;
    let grace_end = now + chrono::Duration::seconds(grace);
    old.expires_at = Some(old.expires_at.map_or(grace_end, |at| at.min(grace_end)));
    old.rotated_to = Some(new.key_id.clone());
    state.store.update_api_key(&old).await?;
    let detail = format!(
        "by {}; replaced by {}; old key works until {}",
        caller.key_id,
        new.key_id,
        grace_end.to_rfc3339()
    );
    audit(
        &state,
        AuditEvent::KeyRotated,
        Some(key_id),
        &context.ip,
        &context.route,
        Some(detail),
    )
    .await;
    let mut answer = view(&new);
    answer["key"] = json!(secret.expose());
    answer["previous_key"] = view(&old);
    Ok((StatusCode::CREATED, Json(answer)))
}

/// Requests per day and per route, for the last 90 days.
pub async fn key_usage(
    State(state): State<AppState>,
    _caller: AdminCaller,
    PathParam(key_id): PathParam,
) -> Result<Json<Value>, ApiError> {
    key_by_id(&state, &key_id).await?;
    let usage = state.store.key_usage(&key_id).await?;
    let mut days: BTreeMap<String, (u64, BTreeMap<String, u64>)> = BTreeMap::new();
    for entry in &usage {
        let day = days.entry(entry.day.clone()).or_default();
        day.0 += entry.count;
        day.1.insert(entry.route.clone(), entry.count);
    }
    let days: Vec<Value> = days
        .into_iter()
        .rev()
        .map(|(day, (total, routes))| json!({"day": day, "requests": total, "routes": routes}))
        .collect();
    let last_used = usage.iter().map(|u| u.last_used_at).max();
    Ok(Json(
        json!({"key_id": key_id, "last_used_at": last_used.map(|t| t.to_rfc3339()), "days": days}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdjustCredits {
    amount: i64,
    reason: String,
    #[serde(default)]
    transaction_id: Option<String>,
}

/// Grants (positive) or deducts (negative) credits with a reason; audited.
pub async fn adjust_credits(
    State(state): State<AppState>,
    context: AuditContext,
    AdminCaller(caller): AdminCaller,
    PathParam(user_id): PathParam,
    JsonBody(request): JsonBody<AdjustCredits>,
) -> Result<Json<Value>, ApiError> {
    if request.amount == 0 || request.amount.abs() > MAX_GRANT {
        return Err(ApiError::Invalid(format!(
            "amount must be non-zero and at most {MAX_GRANT} either way"
        )));
    }
    let reason = request.reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 || reason.chars().any(char::is_control) {
        return Err(ApiError::Invalid(
            "reason must be 1 to 200 characters".into(),
        ));
    }
    let not_found = || ApiError::NotFound {
        resource: "user",
        id: user_id.clone(),
    };
    if user_id.len() != 64 || !user_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let id = CredentialHash::from_stored(user_id.to_ascii_lowercase());
    state.store.find_user(&id).await?.ok_or_else(not_found)?;
    let transaction = request
        .transaction_id
        .unwrap_or_else(|| format!("admin-{}", uuid::Uuid::new_v4()));
    let grant = Grant {
        user: id.clone(),
        delta: request.amount,
        transaction_id: TransactionId::parse(&transaction).map_err(|e| ApiError::Invalid(e.0))?,
        kind: if request.amount > 0 {
            EntryKind::Bonus
        } else {
            EntryKind::Clawback
        },
        reason: Some(format!("admin: {reason}")),
        at: Utc::now(),
    };
    let status = match state.store.grant(&grant).await? {
        GrantOutcome::Applied { balance } => {
            let detail = format!("{:+} by {}: {reason}", request.amount, caller.key_id);
            audit(
                &state,
                AuditEvent::CreditsGranted,
                Some(id.truncated().to_owned()),
                &context.ip,
                &context.route,
                Some(detail),
            )
            .await;
            json!({"status": "success", "user_id": user_id, "new_balance": balance})
        }
        GrantOutcome::AlreadyProcessed { balance } => {
            json!({"status": "already_processed", "user_id": user_id, "new_balance": balance})
        }
        GrantOutcome::InsufficientCredits { balance } => {
            return Err(ApiError::PaymentRequired {
                reason: "insufficient_credits",
                required: -request.amount,
                balance,
            });
        }
    };
    Ok(Json(status))
}

/// Proves a user's balance: it must equal the sum of their ledger, and every entry's
/// `balance_after` the running sum.
pub async fn reconcile(
    State(state): State<AppState>,
    _caller: AdminCaller,
    PathParam(user_id): PathParam,
) -> Result<Json<Value>, ApiError> {
    let not_found = || ApiError::NotFound {
        resource: "user",
        id: user_id.clone(),
    };
    if user_id.len() != 64 || !user_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let id = CredentialHash::from_stored(user_id.to_ascii_lowercase());
    let user = state.store.find_user(&id).await?.ok_or_else(not_found)?;
    let entries = whole_ledger(&*state.store, &id).await?;
    let sum: i64 = entries.iter().map(|e| e.delta).sum();
    Ok(Json(json!({
        "user_id": user_id,
        "balance": user.credits,
        "ledger_sum": sum,
        "entries": entries.len(),
        "reconciled": ledger_reconciles(user.credits, &entries),
    })))
}

#[derive(Deserialize)]
pub struct AuditQuery {
    #[serde(default = "fifty")]
    limit: i64,
    #[serde(default)]
    before: Option<String>,
}

fn fifty() -> i64 {
    50
}

/// The audit log, newest first, paged by `before` (the last entry's id).
pub async fn audit_log(
    State(state): State<AppState>,
    _caller: AdminCaller,
    QueryParams(query): QueryParams<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    ApiError::unless_between(&["query", "limit"], query.limit, 1, 200)?;
    let entries = state
        .store
        .audit_log(query.limit as u32, query.before.as_deref())
        .await?;
    let next = (entries.len() == query.limit as usize)
        .then(|| entries.last().map(|e| e.id.clone()))
        .flatten();
    let entries: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "at": e.at.to_rfc3339(),
                "event": e.event.as_str(),
                "credential": e.credential,
                "client_ip": e.client_ip,
                "route": e.route,
                "detail": e.detail,
            })
        })
        .collect();
    Ok(Json(json!({"entries": entries, "next_before": next})))
}
