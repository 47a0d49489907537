//! The app's error envelope, built in one place:
//! `{"detail", "error": {"code", "message", "details"}, "request_id"}`; for schema errors (422)
//! `detail` and `error.details` are the list of `{loc, msg, type}` problems.

use super::request_id::current_request_id;
use crate::ports::{BlobError, QueueError, StoreError};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// One problem with a request, as the seed's `ValidationError` has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub loc: Vec<Value>,
    pub msg: String,
    pub kind: &'static str,
}

impl Problem {
    pub fn new(loc: &[&str], msg: impl Into<String>, kind: &'static str) -> Self {
        Self {
            loc: loc.iter().map(|l| Value::from(*l)).collect(),
            msg: msg.into(),
            kind,
        }
    }

    fn to_json(&self) -> Value {
        json!({"loc": self.loc, "msg": self.msg, "type": self.kind})
    }
}

/// Every refusal the API makes. Each maps to one status and one stable code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request does not fit the schema (422 `VALIDATION_ERROR` with the problems).
    #[error("request validation failed")]
    Schema(Vec<Problem>),
    /// A malformed credential header (400 `BAD_REQUEST`).
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed but refused on its meaning (400 `VALIDATION_ERROR`).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Forbidden(String),
    /// A missing, malformed, unknown, revoked or expired API key (401 `UNAUTHORIZED`).
    #[error("{0}")]
    Unauthorized(String),
    /// Not enough credits (402 `PAYMENT_REQUIRED`).
    #[error("Not enough credits")]
    PaymentRequired {
        reason: &'static str,
        required: i64,
        balance: i64,
    },
    /// An idempotency key sent again with a different request (422 `IDEMPOTENCY_KEY_REUSED`).
    #[error("This X-Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    /// The resource is not in a state that allows this (409 `CONFLICT`).
    #[error("{0}")]
    Conflict(String),
    #[error("{resource} not found")]
    NotFound { resource: &'static str, id: String },
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("rate limit exceeded")]
    RateLimited { limit: u32, retry_after: u64 },
    /// The user's books for their local day are used up (429 `DAILY_LIMIT_EXCEEDED`).
    #[error("Today's books are used up; more tomorrow")]
    DailyLimit { limit: u32, retry_after: u64 },
    /// The user has as many unfinished books as allowed (429 `TOO_MANY_PENDING_JOBS`).
    #[error("Too many books are still being made; wait for one to finish")]
    TooManyPending { limit: u32 },
    /// Today's provider spend reached the hard limit (429 `SERVICE_BUDGET_EXCEEDED`), until the
    /// next UTC day.
    #[error("Book making is paused for today; try again tomorrow")]
    BudgetExceeded { retry_after: u64 },
    /// An operator switched generation off (503 `SERVICE_UNAVAILABLE`).
    #[error("Book making is paused for now; try again later")]
    GenerationOff,
    /// A dependency (store, queue, blobs) cannot be reached; the client may retry.
    #[error("the service is temporarily unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// Never planned: logged in full, answered with a message that says nothing of internals.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn schema(problem: Problem) -> Self {
        Self::Schema(vec![problem])
    }

    /// A 422 naming `loc` unless `value` is within `low..=high`, worded as the seed's checks are.
    pub fn unless_between(loc: &[&str], value: i64, low: i64, high: i64) -> Result<(), Self> {
        if (low..=high).contains(&value) {
            return Ok(());
        }
        Err(Self::schema(Problem::new(
            loc,
            format!("Input should be between {low} and {high}"),
            "value_error",
        )))
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Schema(_) => (StatusCode::UNPROCESSABLE_ENTITY, "VALIDATION_ERROR"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BAD_REQUEST"),
            ApiError::Invalid(_) => (StatusCode::BAD_REQUEST, "VALIDATION_ERROR"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "FORBIDDEN"),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED"),
            ApiError::DailyLimit { .. } => (StatusCode::TOO_MANY_REQUESTS, "DAILY_LIMIT_EXCEEDED"),
            ApiError::TooManyPending { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "TOO_MANY_PENDING_JOBS")
            }
            ApiError::PaymentRequired { .. } => (StatusCode::PAYMENT_REQUIRED, "PAYMENT_REQUIRED"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "CONFLICT"),
            ApiError::IdempotencyKeyReused => {
                (StatusCode::UNPROCESSABLE_ENTITY, "IDEMPOTENCY_KEY_REUSED")
            }
            ApiError::NotFound { .. } => (StatusCode::NOT_FOUND, "NOT_FOUND"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT_EXCEEDED"),
            ApiError::BudgetExceeded { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "SERVICE_BUDGET_EXCEEDED")
            }
            ApiError::GenerationOff | ApiError::Unavailable(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_ERROR"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(source) => ApiError::Unavailable(source),
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<crate::domain::spend::Stopped> for ApiError {
    fn from(stopped: crate::domain::spend::Stopped) -> Self {
        match stopped {
            crate::domain::spend::Stopped::Switched { .. } => ApiError::GenerationOff,
            crate::domain::spend::Stopped::OverBudget { retry_after, .. } => {
                ApiError::BudgetExceeded { retry_after }
            }
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(error: QueueError) -> Self {
        ApiError::Unavailable(error.into())
    }
}

impl From<BlobError> for ApiError {
    fn from(error: BlobError) -> Self {
        ApiError::Unavailable(error.into())
    }
}

/// The 422 envelope: `detail` and `error.details` are the list of problems.
fn problem_list(status: StatusCode, code: &str, message: &str, problems: &[Problem]) -> Response {
    let list: Vec<Value> = problems.iter().map(Problem::to_json).collect();
    let body = json!({
        "detail": list,
        "error": {"code": code, "message": message, "details": list},
        "request_id": current_request_id(),
    });
    (status, axum::Json(body)).into_response()
}

/// The envelope for a status, code and message, with optional details.
pub fn envelope(status: StatusCode, code: &str, message: &str, details: Option<Value>) -> Response {
    let mut error = json!({"code": code, "message": message});
    if let Some(details) = details {
        error["details"] = details;
    }
    let body = json!({"detail": message, "error": error, "request_id": current_request_id()});
    (status, axum::Json(body)).into_response()
}

/// A refusal that says when to come back.
fn with_retry_after(mut response: Response, seconds: u64) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        match &self {
            ApiError::Unavailable(source) => {
                crate::metrics::count(crate::metrics::SERVER_ERRORS);
                tracing::warn!(error = format!("{source:#}"), "dependency unavailable")
            }
            ApiError::Internal(source) => {
                crate::metrics::count(crate::metrics::SERVER_ERRORS);
                tracing::error!(error = format!("{source:#}"), "internal error")
            }
            _ => {}
        }
        match self {
            ApiError::Schema(problems) => {
                problem_list(status, code, "Request validation failed", &problems)
            }
            // A 422 like every other: the seed's `HTTPValidationError` shape, its own code.
            ApiError::IdempotencyKeyReused => problem_list(
                status,
                code,
                "This X-Idempotency-Key was already used for a different request",
                &[Problem::new(
                    &["header", "x-idempotency-key"],
                    "This key was already used for a different request; use a new key",
                    "idempotency_key_reused",
                )],
            ),
            ApiError::NotFound { resource, id } => envelope(
                status,
                code,
                &format!("{resource} not found"),
                Some(json!({"resource": resource, "id": id})),
            ),
            ApiError::PaymentRequired {
                reason,
                required,
                balance,
            } => envelope(
                status,
                code,
                "Not enough credits",
                Some(json!({"reason": reason, "required": required, "balance": balance})),
            ),
            ApiError::RateLimited { limit, retry_after } => {
                crate::metrics::count(crate::metrics::RATE_LIMITED);
                let details = json!({"retry_after": retry_after});
                let message = "Too many requests; try again later";
                let mut response =
                    with_retry_after(envelope(status, code, message, Some(details)), retry_after);
                let headers = response.headers_mut();
                for (name, value) in [
                    ("x-ratelimit-limit", u64::from(limit)),
                    ("x-ratelimit-remaining", 0),
                    ("x-ratelimit-reset", retry_after),
                    ("ratelimit-limit", u64::from(limit)),
                    ("ratelimit-remaining", 0),
                    ("ratelimit-reset", retry_after),
                ] {
                    headers.insert(name, HeaderValue::from(value));
                }
                response
            }
            ApiError::BudgetExceeded { retry_after } => {
                crate::metrics::count(crate::metrics::BUDGET_REFUSED);
                let details = json!({"retry_after": retry_after});
                let message = "Book making is paused for today; try again tomorrow";
                with_retry_after(envelope(status, code, message, Some(details)), retry_after)
            }
            ApiError::DailyLimit { limit, retry_after } => {
                crate::metrics::count(crate::metrics::RATE_LIMITED);
                let details = json!({"limit": limit, "retry_after": retry_after});
                let message = "Today's books are used up; more tomorrow";
                with_retry_after(envelope(status, code, message, Some(details)), retry_after)
            }
            ApiError::TooManyPending { limit } => envelope(
                status,
                code,
                "Too many books are still being made; wait for one to finish",
                Some(json!({"limit": limit})),
            ),
            ApiError::Unavailable(_) => envelope(
                status,
                code,
                "The service is temporarily unavailable; try again shortly",
                None,
            ),
            ApiError::Internal(_) => {
                envelope(status, code, "Something went wrong on our side", None)
            }
            other => {
                let message = other.to_string();
                envelope(status, code, &message, None)
            }
        }
    }
}
