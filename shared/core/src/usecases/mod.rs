//! The product's use cases: one function per thing a caller can do (make a book, grant credits,
//! rotate a key, erase a user, record a reading...), over the application's ports. Each takes a
//! plain [`Request`] (the caller, where the call came from, and "now") and answers a domain value
//! or a [`Refusal`]; the HTTP layer only extracts, calls one of them and shapes the answer.

pub mod access;
pub mod books;
pub mod characters;
pub mod consent;
pub mod credits;
pub mod daily;
pub mod health;
pub mod keys;
pub mod library;
pub mod pages;
pub mod print_orders;
pub mod profiles;
pub mod purchases;
pub mod shares;
pub mod spend;
pub mod store_events;
pub mod streaks;
pub mod users;

use crate::app::App;
use crate::domain::audit::{AuditEntry, AuditEvent};
use crate::domain::spend::Stopped;
use crate::ports::{BlobError, QueueError, StoreError};
use chrono::{DateTime, Utc};

/// Who is calling, from where, on which route, and when: all a use case knows of its request.
#[derive(Debug, Clone)]
pub struct Request<C> {
    pub caller: C,
    /// The client's address (API Gateway's source IP, the socket's peer locally), or `unknown`.
    pub client_ip: String,
    /// `METHOD /path/{param}`, as logs and audit entries name it.
    pub route: String,
    pub now: DateTime<Utc>,
    /// The child profile the request is scoped to (`X-Profile-Id`), on the routes the
    /// contract scopes; `None` there means the whole account, and elsewhere it is always `None`.
    pub profile: Option<String>,
}

impl<C> Request<C> {
    /// The same request made by another caller (an admin acting for a user, say).
    pub fn by<D>(&self, caller: D) -> Request<D> {
        Request {
            caller,
            client_ip: self.client_ip.clone(),
            route: self.route.clone(),
            now: self.now,
            profile: self.profile.clone(),
        }
    }
}

/// What a use case answers instead of its result, in the product's words: a refusal (the
/// caller's doing: a 4xx, or a 503 while generation is stopped) or a [`Failure`] (ours: 5xx).
/// The HTTP layer gives each its status and stable code; its message is its `Display`.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// Well-formed but refused on its meaning.
    #[error("{0}")]
    Invalid(String),
    /// Words (or a picture) moderation refused: what a children's book must never carry. The
    /// message says what was refused, never why in detail.
    #[error("{0}")]
    Unsafe(String),
    /// A credential that is valid but may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// A child's photo or drawing without a standing consent that includes photos.
    #[error("A parent's consent to photos is needed first")]
    ConsentRequired,
    /// An upload refused for what it is (type, size, content), with its reason.
    #[error("{0}")]
    Upload(crate::domain::character::UploadRefusal),
    /// A missing, malformed, unknown, revoked or expired API key.
    #[error("{0}")]
    Unauthorized(String),
    #[error("Not enough credits")]
    PaymentRequired {
        reason: &'static str,
        required: i64,
        balance: i64,
    },
    /// An idempotency key sent again with a different request.
    #[error("This X-Idempotency-Key was already used for a different request")]
    IdempotencyKeyReused,
    /// The resource is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    #[error("{resource} not found")]
    NotFound { resource: &'static str, id: String },
    #[error("Too many requests; try again later")]
    RateLimited { limit: u32, retry_after: u64 },
    /// The user's books for their local day are used up.
    #[error("Today's books are used up; more tomorrow")]
    DailyLimit { limit: u32, retry_after: u64 },
    /// The user has as many unfinished books as allowed.
    #[error("Too many books are still being made; wait for one to finish")]
    TooManyPending { limit: u32 },
    /// Today's provider spend reached the hard limit, until the next UTC day.
    #[error("Book making is paused for today; try again tomorrow")]
    BudgetExceeded { retry_after: u64 },
    /// An operator switched generation off.
    #[error("Book making is paused for now; try again later")]
    GenerationOff,
    /// A store purchase that buys nothing here, with its stable reason.
    #[error("{0}")]
    Purchase(crate::domain::purchase::PurchaseRefusal),
    /// A change to the child profiles their rules refuse.
    #[error(transparent)]
    Profile(#[from] crate::domain::profile::ProfileRefusal),
    /// A print order the contract refuses (400), or one that must wait (409).
    #[error(transparent)]
    Print(#[from] crate::domain::print::PrintRefusal),
    /// The free plan asked for while a paid one runs.
    #[error("A paid plan is still running; it ends on its own at the end of its period")]
    ActivePaidSubscription { current_plan: String },
    /// Not the caller's doing: ours.
    #[error(transparent)]
    Failed(#[from] Failure),
}

/// What went wrong on our side: logged in full, answered with a message that says nothing of
/// internals.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// A dependency (store, queue, blobs, a provider) cannot be reached; the caller may retry.
    #[error("The service is temporarily unavailable; try again shortly")]
    Unavailable(#[source] anyhow::Error),
    /// Never planned.
    #[error("Something went wrong on our side")]
    Internal(#[source] anyhow::Error),
}

impl Refusal {
    pub fn not_found(resource: &'static str, id: impl Into<String>) -> Self {
        Refusal::NotFound {
            resource,
            id: id.into(),
        }
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        Failure::Internal(anyhow::anyhow!("{message}")).into()
    }

    pub fn unavailable(error: impl Into<anyhow::Error>) -> Self {
        Failure::Unavailable(error.into()).into()
    }
}

impl From<StoreError> for Refusal {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Unavailable(source) => Failure::Unavailable(source).into(),
            other => Failure::Internal(other.into()).into(),
        }
    }
}

impl From<QueueError> for Refusal {
    fn from(error: QueueError) -> Self {
        Refusal::unavailable(error)
    }
}

impl From<BlobError> for Refusal {
    fn from(error: BlobError) -> Self {
        Refusal::unavailable(error)
    }
}

impl From<crate::ports::StudioError> for Refusal {
    fn from(error: crate::ports::StudioError) -> Self {
        use crate::ports::StudioError;
        match error {
            StudioError::Upload(refusal) => Refusal::Upload(refusal),
            StudioError::Stopped(stopped) => stopped.into(),
            StudioError::Refused => Refusal::Unsafe(
                "The words or the picture were refused: they are not suitable for a children's book"
                    .into(),
            ),
            StudioError::Unavailable(source) => Refusal::unavailable(source),
        }
    }
}

impl From<Stopped> for Refusal {
    fn from(stopped: Stopped) -> Self {
        match stopped {
            Stopped::Switched { .. } => Refusal::GenerationOff,
            Stopped::OverBudget { retry_after, .. } => Refusal::BudgetExceeded { retry_after },
        }
    }
}

/// Refuses paid work while generation is stopped (the kill switch, today's hard limit): nothing
/// is charged or started, and every paid route answers as a new book does.
async fn refuse_while_stopped(app: &App) -> Result<(), Refusal> {
    match crate::spend::SpendGuard::new(app).stopped().await? {
        Some(stopped) => Err(stopped.into()),
        None => Ok(()),
    }
}

/// A blob key as a stored record names it; one that does not parse is our bug, not the caller's.
fn stored_key(raw: &str) -> Result<crate::ports::BlobKey, Refusal> {
    crate::ports::BlobKey::parse(raw)
        .map_err(|e| Refusal::internal(format!("stored blob key {raw:?}: {e}")))
}

/// Records an audit entry in the request's name; an audit that cannot be written is logged,
/// never fatal to the answer.
#[tracing::instrument(skip_all)]
pub async fn audit<C>(
    app: &App,
    request: &Request<C>,
    event: AuditEvent,
    credential: Option<String>,
    detail: Option<String>,
) {
    let entry = AuditEntry::new(
        event,
        credential,
        &request.client_ip,
        &request.route,
        detail,
        request.now,
    );
    if let Err(error) = app.store.append_audit(&entry).await {
        tracing::error!(
            error = format!("{error:#}"),
            event = event.as_str(),
            "audit entry not written"
        );
    }
}

/// The audit log, newest first, `limit` entries from before the entry `before` (its id).
#[tracing::instrument(skip_all)]
pub async fn audit_log(
    app: &App,
    limit: u32,
    before: Option<&str>,
) -> Result<Vec<AuditEntry>, Refusal> {
    Ok(app.store.audit_log(limit, before).await?)
}
