//! The app's error envelope, built in one place:
//! `{"detail", "error": {"code", "message", "details"}, "request_id"}`; for schema errors (422)
//! `detail` and `error.details` are the list of `{loc, msg, type}` problems.

use super::request_id::current_request_id;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};
use storybook_core::domain::character::UploadRefusal;
use storybook_core::domain::print::PrintRefusal;
use storybook_core::domain::profile::ProfileRefusal;
use storybook_core::domain::purchase::PurchaseRefusal;
use storybook_core::domain::sheet_rules::{self, Broken, SheetProblem};
use storybook_core::ports::{BlobError, QueueError, StoreError};
use storybook_core::usecases::{Failure, Refusal};

/// One problem with a request, as the app contract's `ValidationError` has it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Problem {
    pub loc: Vec<Value>,
    pub msg: String,
    #[serde(rename = "type")]
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
}

/// Every refusal the API makes: the use cases' [`Refusal`]s, and what only HTTP can get wrong
/// (the schema, a malformed header, the method). Each maps to one status and one [`ErrorCode`].
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request does not fit the schema (422 `VALIDATION_ERROR` with the problems).
    #[error("Request validation failed")]
    Schema(Vec<Problem>),
    /// A malformed credential or path (400 `BAD_REQUEST`).
    #[error("{0}")]
    BadRequest(String),
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error(transparent)]
    Refused(#[from] Refusal),
}

/// The stable upper-case codes of the error envelope, as the app's contract names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    ValidationError,
    SafetyInput,
    BadRequest,
    Unauthorized,
    Forbidden,
    PaymentRequired,
    NotFound,
    MethodNotAllowed,
    Conflict,
    RequestTimeout,
    IdempotencyKeyReused,
    RateLimitExceeded,
    DailyLimitExceeded,
    TooManyPendingJobs,
    ServiceBudgetExceeded,
    ServiceUnavailable,
    InternalError,
    ActivePaidSubscription,
    PodRegionUnsupported,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ValidationError => "VALIDATION_ERROR",
            ErrorCode::SafetyInput => "SAFETY_INPUT",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::Unauthorized => "UNAUTHORIZED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::PaymentRequired => "PAYMENT_REQUIRED",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::RequestTimeout => "REQUEST_TIMEOUT",
            ErrorCode::IdempotencyKeyReused => "IDEMPOTENCY_KEY_REUSED",
            ErrorCode::RateLimitExceeded => "RATE_LIMIT_EXCEEDED",
            ErrorCode::DailyLimitExceeded => "DAILY_LIMIT_EXCEEDED",
            ErrorCode::TooManyPendingJobs => "TOO_MANY_PENDING_JOBS",
            ErrorCode::ServiceBudgetExceeded => "SERVICE_BUDGET_EXCEEDED",
            ErrorCode::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            ErrorCode::InternalError => "INTERNAL_ERROR",
            ErrorCode::ActivePaidSubscription => "ACTIVE_PAID_SUBSCRIPTION",
            ErrorCode::PodRegionUnsupported => "POD_REGION_UNSUPPORTED",
        }
    }
}

impl ApiError {
    pub fn schema(problem: Problem) -> Self {
        Self::Schema(vec![problem])
    }

    /// A 422 naming `loc` unless `value` is within `low..=high`, worded as the app contract's checks are.
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

    fn status_and_code(&self) -> (StatusCode, ErrorCode) {
        use ErrorCode as C;
        match self {
            ApiError::Schema(_) => (StatusCode::UNPROCESSABLE_ENTITY, C::ValidationError),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, C::BadRequest),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, C::MethodNotAllowed),
            ApiError::Refused(refusal) => match refusal {
                Refusal::Invalid(_) => (StatusCode::BAD_REQUEST, C::ValidationError),
                Refusal::Unsafe(_) => (StatusCode::BAD_REQUEST, C::SafetyInput),
                Refusal::Forbidden(_) | Refusal::ConsentRequired => {
                    (StatusCode::FORBIDDEN, C::Forbidden)
                }
                Refusal::Upload(_) | Refusal::Purchase(_) => {
                    (StatusCode::BAD_REQUEST, C::ValidationError)
                }
                Refusal::ActivePaidSubscription { .. } => {
                    (StatusCode::BAD_REQUEST, C::ActivePaidSubscription)
                }
                Refusal::Profile(refusal) => match refusal {
                    ProfileRefusal::NotFound => (StatusCode::NOT_FOUND, C::NotFound),
                    ProfileRefusal::DuplicateName(_) => (StatusCode::CONFLICT, C::Conflict),
                    _ => (StatusCode::BAD_REQUEST, C::ValidationError),
                },
                Refusal::Print(refusal) => match refusal {
                    PrintRefusal::RegionUnsupported { .. } => {
                        (StatusCode::BAD_REQUEST, C::PodRegionUnsupported)
                    }
                    PrintRefusal::BookNotFinished | PrintRefusal::TooManyOpen { .. } => {
                        (StatusCode::CONFLICT, C::Conflict)
                    }
                    _ => (StatusCode::BAD_REQUEST, C::ValidationError),
                },
                Refusal::Unauthorized(_) => (StatusCode::UNAUTHORIZED, C::Unauthorized),
                Refusal::DailyLimit { .. } => {
                    (StatusCode::TOO_MANY_REQUESTS, C::DailyLimitExceeded)
                }
                Refusal::TooManyPending { .. } => {
                    (StatusCode::TOO_MANY_REQUESTS, C::TooManyPendingJobs)
                }
                Refusal::PaymentRequired { .. } => {
                    (StatusCode::PAYMENT_REQUIRED, C::PaymentRequired)
                }
                Refusal::Conflict(_) => (StatusCode::CONFLICT, C::Conflict),
                Refusal::IdempotencyKeyReused => {
                    (StatusCode::UNPROCESSABLE_ENTITY, C::IdempotencyKeyReused)
                }
                Refusal::NotFound { .. } => (StatusCode::NOT_FOUND, C::NotFound),
                Refusal::RateLimited { .. } => {
                    (StatusCode::TOO_MANY_REQUESTS, C::RateLimitExceeded)
                }
                Refusal::BudgetExceeded { .. } => {
                    (StatusCode::TOO_MANY_REQUESTS, C::ServiceBudgetExceeded)
                }
                Refusal::GenerationOff | Refusal::Failed(Failure::Unavailable(_)) => {
                    (StatusCode::SERVICE_UNAVAILABLE, C::ServiceUnavailable)
                }
                Refusal::Failed(Failure::Internal(_)) => {
                    (StatusCode::INTERNAL_SERVER_ERROR, C::InternalError)
                }
            },
        }
    }

    /// What the envelope's `error.details` says beyond the message, and when to come back.
    fn details(&self) -> (Option<Value>, Option<u64>) {
        let Self::Refused(refusal) = self else {
            return (None, None);
        };
        match refusal {
            Refusal::NotFound { resource, id } => {
                (Some(json!({"resource": resource, "id": id})), None)
            }
            Refusal::PaymentRequired {
                reason,
                required,
                balance,
            } => (
                Some(json!({"reason": reason, "required": required, "balance": balance})),
                None,
            ),
            Refusal::RateLimited { retry_after, .. } | Refusal::BudgetExceeded { retry_after } => (
                Some(json!({"retry_after": retry_after})),
                Some(*retry_after),
            ),
            Refusal::DailyLimit { limit, retry_after } => (
                Some(json!({"limit": limit, "retry_after": retry_after})),
                Some(*retry_after),
            ),
            Refusal::ConsentRequired => (Some(json!({"reason": "photo_consent_required"})), None),
            Refusal::Upload(refusal) => {
                let mut details = json!({"reason": refusal.reason()});
                match refusal {
                    UploadRefusal::TooLarge { limit_bytes } => {
                        details["limit_bytes"] = json!(limit_bytes)
                    }
                    UploadRefusal::TooManyPixels { limit_pixels } => {
                        details["limit_pixels"] = json!(limit_pixels)
                    }
                    _ => {}
                }
                (Some(details), None)
            }
            Refusal::TooManyPending { limit } => (Some(json!({"limit": limit})), None),
            Refusal::Purchase(refusal) => {
                let mut details = json!({"reason": refusal.reason()});
                match refusal {
                    PurchaseRefusal::UnknownProduct {
                        product_id,
                        supported,
                    } => {
                        details["product_id"] = json!(product_id);
                        details["supported"] = json!(supported);
                    }
                    PurchaseRefusal::UnknownPlan { available_plans } => {
                        details["available_plans"] = json!(available_plans)
                    }
                    PurchaseRefusal::UnsupportedPlan { supported } => {
                        details["supported"] = json!(supported)
                    }
                    _ => {}
                }
                (Some(details), None)
            }
            Refusal::ActivePaidSubscription { current_plan } => {
                (Some(json!({"current_plan": current_plan})), None)
            }
            Refusal::Print(refusal) => (
                match refusal {
                    PrintRefusal::RegionUnsupported { country, supported } => {
                        Some(json!({"country": country, "supported_countries": supported}))
                    }
                    PrintRefusal::Required(fields) => Some(json!({"required": fields})),
                    PrintRefusal::BookNotFinished => Some(json!({"reason": "book_not_finished"})),
                    PrintRefusal::TooManyOpen { limit } => {
                        Some(json!({"reason": "too_many_open_orders", "limit": limit}))
                    }
                    _ => None,
                },
                None,
            ),
            _ => (None, None),
        }
    }

    /// Counts and logs what is ours to fix, or what operators watch.
    fn record(&self) {
        use storybook_core::metrics::{BUDGET_REFUSED, RATE_LIMITED, SERVER_ERRORS, count};
        match self {
            ApiError::Refused(Refusal::Failed(failure)) => {
                count(SERVER_ERRORS);
                match failure {
                    Failure::Unavailable(source) => {
                        tracing::warn!(error = format!("{source:#}"), "dependency unavailable")
                    }
                    Failure::Internal(source) => {
                        tracing::error!(error = format!("{source:#}"), "internal error")
                    }
                }
            }
            ApiError::Refused(Refusal::RateLimited { .. } | Refusal::DailyLimit { .. }) => {
                count(RATE_LIMITED)
            }
            ApiError::Refused(Refusal::BudgetExceeded { .. }) => count(BUDGET_REFUSED),
            _ => {}
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        ApiError::Refused(error.into())
    }
}

impl From<QueueError> for ApiError {
    fn from(error: QueueError) -> Self {
        ApiError::Refused(error.into())
    }
}

impl From<BlobError> for ApiError {
    fn from(error: BlobError) -> Self {
        ApiError::Refused(error.into())
    }
}

/// The app's error envelope. `detail` is the message, or for a 422 the list of problems (as is
/// `error.details` then).
#[derive(Serialize)]
struct Envelope<'a> {
    detail: Value,
    error: EnvelopeError<'a>,
    request_id: String,
}

#[derive(Serialize)]
struct EnvelopeError<'a> {
    code: &'static str,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Value>,
}

/// The envelope for a status, code and message, with optional details.
pub fn envelope(
    status: StatusCode,
    code: ErrorCode,
    message: &str,
    details: Option<Value>,
) -> Response {
    let body = Envelope {
        detail: Value::from(message),
        error: EnvelopeError {
            code: code.as_str(),
            message,
            details,
        },
        request_id: current_request_id(),
    };
    (status, axum::Json(body)).into_response()
}

/// The 422 envelope: `detail` and `error.details` are the list of problems.
fn problem_list(
    status: StatusCode,
    code: ErrorCode,
    message: &str,
    problems: &[Problem],
) -> Response {
    let list = serde_json::to_value(problems).expect("problems serialize");
    let body = Envelope {
        detail: list.clone(),
        error: EnvelopeError {
            code: code.as_str(),
            message,
            details: Some(list),
        },
        request_id: current_request_id(),
    };
    (status, axum::Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.record();
        let (status, code) = self.status_and_code();
        let message = self.to_string();
        let (details, retry_after) = self.details();
        let mut response = match &self {
            ApiError::Schema(problems) => problem_list(status, code, &message, problems),
            // A 422 like every other: the app contract's `HTTPValidationError` shape, its own code.
            ApiError::Refused(Refusal::IdempotencyKeyReused) => problem_list(
                status,
                code,
                &message,
                &[Problem::new(
                    &["header", "x-idempotency-key"],
                    "This key was already used for a different request; use a new key",
                    "idempotency_key_reused",
                )],
            ),
            _ => envelope(status, code, &message, details),
        };
        if let Some(seconds) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let ApiError::Refused(Refusal::RateLimited { limit, retry_after }) = self {
            crate::rate_limit_headers::write(response.headers_mut(), limit, 0, retry_after);
        }
        response
    }
}

/// Collects the app contract's length rules and the markup rule, every problem at once.
#[derive(Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    /// `value` under `body.<loc>`: `min` to `max` characters, no markup, no control characters.
    pub fn text(&mut self, loc: &[&str], value: &str, min: usize, max: usize) {
        if let Some(broken) = sheet_rules::text_rule(value, min, max) {
            let place: Vec<String> = loc.iter().map(|l| l.to_string()).collect();
            self.push(&SheetProblem { place, broken });
        }
    }

    /// A problem with a sheet (or any text of the request), under `body`.
    pub fn push(&mut self, problem: &SheetProblem) {
        let mut loc = vec!["body"];
        loc.extend(problem.place.iter().map(String::as_str));
        let (msg, kind) = match problem.broken {
            Broken::TooShort { min } => (
                format!("String should have at least {min} characters"),
                "string_too_short",
            ),
            Broken::TooLong { max } => (
                format!("String should have at most {max} characters"),
                "string_too_long",
            ),
            Broken::Markup => (
                "The text may not contain markup, script or control characters".to_owned(),
                "value_error",
            ),
            Broken::Items { min, max } => {
                (format!("List should have {min} to {max} items"), "too_long")
            }
        };
        self.0.push(Problem::new(&loc, msg, kind));
    }
}

impl Problems {
    /// The problems found, as a 422; nothing when there were none.
    pub fn into_result(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Schema(self.0))
        }
    }
}
