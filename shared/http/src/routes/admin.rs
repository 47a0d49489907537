//! Our additions for operators and servers, under `/v1/admin/`, with admin-scoped API keys:
//! the API key lifecycle, per-key usage, credits for a user, the audit log.

use crate::auth::AdminRequest;
use crate::endpoints::Endpoint;
use crate::error::{ApiError, Problem};
use crate::extract::{JsonBody, PathParam, QueryParams, parse_json};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use storybook_core::catalogue::{Access, Family};
use storybook_core::domain::api_key::{ApiKeyRecord, KeyEnvironment, Scope, parse_ip_rule};
use storybook_core::domain::audit::AuditEntry;
use storybook_core::usecases::keys::{self, KeyChange, MadeKey, NewKey};
use storybook_core::usecases::{self, credits};

/// The path of more than one route here.
const API_KEYS: &str = "/v1/admin/api-keys";

/// The path of more than one route here.
const API_KEY: &str = "/v1/admin/api-keys/{key_id}";

/// The routes this file serves.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::post(Family::Admin, API_KEYS, create_key).access(Access::AdminApiKey),
        Endpoint::get(Family::Admin, API_KEYS, list_keys).access(Access::AdminApiKey),
        Endpoint::get(Family::Admin, API_KEY, get_key).access(Access::AdminApiKey),
        Endpoint::patch(Family::Admin, API_KEY, update_key).access(Access::AdminApiKey),
        Endpoint::delete(Family::Admin, API_KEY, revoke_key).access(Access::AdminApiKey),
        Endpoint::post(
            Family::Admin,
            "/v1/admin/api-keys/{key_id}/rotate",
            rotate_key,
        )
        .access(Access::AdminApiKey),
        Endpoint::get(
            Family::Admin,
            "/v1/admin/api-keys/{key_id}/usage",
            key_usage,
        )
        .access(Access::AdminApiKey),
        Endpoint::post(
            Family::Admin,
            "/v1/admin/users/{user_id}/credits",
            adjust_credits,
        )
        .access(Access::AdminApiKey),
        Endpoint::get(Family::Admin, "/v1/admin/audit-log", audit_log).access(Access::AdminApiKey),
        Endpoint::get(
            Family::Admin,
            "/v1/admin/users/{user_id}/reconciliation",
            reconcile,
        )
        .access(Access::AdminApiKey),
    ]
}

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

fn expiry_of(
    raw: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    match raw {
        Some(at) if at <= now => Err(problem("expires_at", "The expiry must be in the future")),
        other => Ok(other),
    }
}

/// A key as operators see it: everything but the secret and its hash.
#[derive(Serialize)]
pub struct KeyView {
    key_id: String,
    name: String,
    prefix: String,
    environment: &'static str,
    scopes: Vec<&'static str>,
    allowed_ips: Vec<String>,
    created_at: String,
    expires_at: Option<String>,
    revoked_at: Option<String>,
    rotated_to: Option<String>,
    status: &'static str,
    /// Only in the answer that made the key, and there once.
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    /// Only when one key is read.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used_at: Option<Option<String>>,
    /// Only in a rotation's answer: the key it replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_key: Option<Box<KeyView>>,
}

impl KeyView {
    fn of(record: ApiKeyRecord, now: DateTime<Utc>) -> Self {
        KeyView {
            status: record.status(now),
            environment: record.environment.as_str(),
            scopes: record.scopes.iter().map(|s| s.as_str()).collect(),
            created_at: record.created_at.to_rfc3339(),
            expires_at: record.expires_at.map(|t| t.to_rfc3339()),
            revoked_at: record.revoked_at.map(|t| t.to_rfc3339()),
            key_id: record.key_id,
            name: record.name,
            prefix: record.display_prefix,
            allowed_ips: record.allowed_ips,
            rotated_to: record.rotated_to,
            key: None,
            last_used_at: None,
            previous_key: None,
        }
    }

    /// A key just made, with its secret.
    fn made(made: MadeKey, now: DateTime<Utc>) -> Self {
        KeyView {
            key: Some(made.secret.expose().to_owned()),
            ..KeyView::of(made.record, now)
        }
    }
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

/// Makes a key; its secret is in this answer and nowhere else, ever.
pub async fn create_key(
    State(state): State<AppState>,
    AdminRequest(request): AdminRequest,
    JsonBody(body): JsonBody<CreateKey>,
) -> Result<(StatusCode, Json<KeyView>), ApiError> {
    let environment = match body.environment.as_deref() {
        None => KeyEnvironment::Live,
        Some(raw) => KeyEnvironment::parse(raw).map_err(|e| problem("environment", e.0))?,
    };
    let key = NewKey {
        name: name_of(&body.name)?,
        scopes: scopes_of(&body.scopes)?,
        environment,
        expires_at: expiry_of(body.expires_at, request.now)?,
        allowed_ips: ips_of(&body.allowed_ips)?,
    };
    let made = keys::create_key(&state, &request, key).await?;
    Ok((StatusCode::CREATED, Json(KeyView::made(made, request.now))))
}

#[derive(Serialize)]
pub struct KeyList {
    keys: Vec<KeyView>,
    total: usize,
}

pub async fn list_keys(
    State(state): State<AppState>,
    AdminRequest(request): AdminRequest,
) -> Result<Json<KeyList>, ApiError> {
    let keys: Vec<KeyView> = keys::list_keys(&state)
        .await?
        .into_iter()
        .map(|record| KeyView::of(record, request.now))
        .collect();
    Ok(Json(KeyList {
        total: keys.len(),
        keys,
    }))
}

pub async fn get_key(
    State(state): State<AppState>,
    AdminRequest(request): AdminRequest,
    PathParam(key_id): PathParam,
) -> Result<Json<KeyView>, ApiError> {
    let (record, last_used) = keys::key_with_last_use(&state, &key_id).await?;
    Ok(Json(KeyView {
        last_used_at: Some(last_used.map(|t| t.to_rfc3339())),
        ..KeyView::of(record, request.now)
    }))
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
    AdminRequest(request): AdminRequest,
    PathParam(key_id): PathParam,
    JsonBody(update): JsonBody<UpdateKey>,
) -> Result<Json<KeyView>, ApiError> {
    let change = KeyChange {
        name: update.name.as_deref().map(name_of).transpose()?,
        scopes: update.scopes.as_deref().map(scopes_of).transpose()?,
        expires_at: update
            .expires_at
            .map(|at| expiry_of(at, request.now))
            .transpose()?,
        allowed_ips: update.allowed_ips.as_deref().map(ips_of).transpose()?,
    };
    let record = keys::update_key(&state, &request, &key_id, change).await?;
    Ok(Json(KeyView::of(record, request.now)))
}

/// Revokes a key at once.
pub async fn revoke_key(
    State(state): State<AppState>,
    AdminRequest(request): AdminRequest,
    PathParam(key_id): PathParam,
) -> Result<Json<KeyView>, ApiError> {
    let record = keys::revoke_key(&state, &request, &key_id).await?;
    Ok(Json(KeyView::of(record, request.now)))
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
    AdminRequest(request): AdminRequest,
    PathParam(key_id): PathParam,
    body: axum::body::Bytes,
) -> Result<(StatusCode, Json<KeyView>), ApiError> {
    // The body is optional: no body, the configured grace period.
    let rotate: Rotate = if body.is_empty() {
        Rotate::default()
    } else {
        parse_json(&body)?
    };
    if let Some(seconds) = rotate.grace_period_seconds {
        ApiError::unless_between(&["body", "grace_period_seconds"], seconds, 0, 30 * 86_400)?;
    }
    let rotated = keys::rotate_key(&state, &request, &key_id, rotate.grace_period_seconds).await?;
    let now = request.now;
    Ok((
        StatusCode::CREATED,
        Json(KeyView {
            previous_key: Some(Box::new(KeyView::of(rotated.previous, now))),
            ..KeyView::made(rotated.new, now)
        }),
    ))
}

/// Requests per day and per route, for the last 90 days.
#[derive(Serialize)]
pub struct KeyUsage {
    key_id: String,
    last_used_at: Option<String>,
    days: Vec<UsageDay>,
}

#[derive(Serialize)]
struct UsageDay {
    day: String,
    requests: u64,
    routes: BTreeMap<String, u64>,
}

pub async fn key_usage(
    State(state): State<AppState>,
    _caller: AdminRequest,
    PathParam(key_id): PathParam,
) -> Result<Json<KeyUsage>, ApiError> {
    let usage = keys::key_usage(&state, &key_id).await?;
    Ok(Json(KeyUsage {
        last_used_at: usage.last_used_at.map(|t| t.to_rfc3339()),
        days: usage
            .days
            .into_iter()
            .map(|day| UsageDay {
                day: day.day,
                requests: day.requests,
                routes: day.routes,
            })
            .collect(),
        key_id,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdjustCredits {
    amount: i64,
    reason: String,
    #[serde(default)]
    transaction_id: Option<String>,
}

/// An operator's adjustment of a user's credits.
#[derive(Serialize)]
pub struct Adjusted {
    status: &'static str,
    user_id: String,
    new_balance: i64,
}

/// Grants (positive) or deducts (negative) credits with a reason; audited.
pub async fn adjust_credits(
    State(state): State<AppState>,
    AdminRequest(request): AdminRequest,
    PathParam(user_id): PathParam,
    JsonBody(body): JsonBody<AdjustCredits>,
) -> Result<Json<Adjusted>, ApiError> {
    let granted = credits::adjust_credits(
        &state,
        &request,
        &user_id,
        body.amount,
        &body.reason,
        body.transaction_id,
    )
    .await?;
    Ok(Json(Adjusted {
        status: if granted.applied_now {
            "success"
        } else {
            "already_processed"
        },
        user_id,
        new_balance: granted.balance,
    }))
}

/// A user's balance against their ledger.
#[derive(Serialize)]
pub struct Reconciliation {
    user_id: String,
    balance: i64,
    ledger_sum: i64,
    entries: usize,
    reconciled: bool,
}

/// Proves a user's balance: it must equal the sum of their ledger, and every entry's
/// `balance_after` the running sum.
pub async fn reconcile(
    State(state): State<AppState>,
    _caller: AdminRequest,
    PathParam(user_id): PathParam,
) -> Result<Json<Reconciliation>, ApiError> {
    let proof = credits::reconcile(&state, &user_id).await?;
    Ok(Json(Reconciliation {
        user_id,
        balance: proof.balance,
        ledger_sum: proof.ledger_sum,
        entries: proof.entries,
        reconciled: proof.reconciled,
    }))
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
#[derive(Serialize)]
pub struct AuditPage {
    entries: Vec<AuditView>,
    next_before: Option<String>,
}

#[derive(Serialize)]
struct AuditView {
    id: String,
    at: String,
    event: &'static str,
    credential: Option<String>,
    client_ip: String,
    route: String,
    detail: Option<String>,
}

impl From<AuditEntry> for AuditView {
    fn from(entry: AuditEntry) -> Self {
        AuditView {
            id: entry.id,
            at: entry.at.to_rfc3339(),
            event: entry.event.as_str(),
            credential: entry.credential,
            client_ip: entry.client_ip,
            route: entry.route,
            detail: entry.detail,
        }
    }
}

pub async fn audit_log(
    State(state): State<AppState>,
    _caller: AdminRequest,
    QueryParams(query): QueryParams<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    ApiError::unless_between(&["query", "limit"], query.limit, 1, 200)?;
    let entries = usecases::audit_log(&state, query.limit as u32, query.before.as_deref()).await?;
    let next_before = (entries.len() == query.limit as usize)
        .then(|| entries.last().map(|e| e.id.clone()))
        .flatten();
    Ok(Json(AuditPage {
        entries: entries.into_iter().map(AuditView::from).collect(),
        next_before,
    }))
}
