//! Credits: the ledger a parent reads, a purchase granted by the app's server, an operator's
//! adjustment, and the proof that a balance is its ledger's sum.

use super::{Refusal, Request, audit};
use crate::app::App;
use crate::domain::api_key::ApiKeyRecord;
use crate::domain::audit::AuditEvent;
use crate::domain::credential::CredentialHash;
use crate::domain::credits::{
    EntryKind, Grant, GrantAmount, GrantOutcome, LedgerEntry, LedgerPage, MAX_GRANT, TransactionId,
    ledger_reconciles,
};
use crate::domain::user::{User, UserId};
use crate::ports::store::whole_ledger;

/// The user's ledger, newest first.
#[tracing::instrument(skip_all)]
pub async fn ledger(app: &App, user: &User, page: LedgerPage) -> Result<Vec<LedgerEntry>, Refusal> {
    Ok(app.store.ledger(&user.id, page).await?)
}

/// A grant's answer: whether it was applied now or before, and the balance after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Granted {
    pub applied_now: bool,
    pub balance: i64,
}

/// Grants a purchase to the user an admin key acts for, once per `transaction_id`; audited.
#[tracing::instrument(skip_all)]
pub async fn grant_purchase(
    app: &App,
    request: &Request<(ApiKeyRecord, User)>,
    amount: GrantAmount,
    transaction_id: TransactionId,
) -> Result<Granted, Refusal> {
    let (admin, user) = &request.caller;
    let grant = Grant {
        user: user.id.clone(),
        delta: amount.get(),
        transaction_id,
        kind: EntryKind::Purchase,
        reason: None,
        at: request.now,
    };
    let detail = format!(
        "+{} by {} ({})",
        amount.get(),
        admin.key_id,
        grant.transaction_id.as_str()
    );
    apply(app, request, &grant, detail)
        .await?
        .map_err(|_| Refusal::internal("a positive grant was refused for want of credits"))
}

/// Applies `grant` once per transaction, audited when applied now. Answers the balance that
/// could not cover a deduction as the inner error.
async fn apply<C>(
    app: &App,
    request: &Request<C>,
    grant: &Grant,
    detail: String,
) -> Result<Result<Granted, i64>, Refusal> {
    Ok(match app.store.grant(grant).await? {
        GrantOutcome::Applied { balance } => {
            let credential = Some(grant.user.truncated().to_owned());
            audit(
                app,
                request,
                AuditEvent::CreditsGranted,
                credential,
                Some(detail),
            )
            .await;
            Ok(Granted {
                applied_now: true,
                balance,
            })
        }
        GrantOutcome::AlreadyProcessed { balance } => Ok(Granted {
            applied_now: false,
            balance,
        }),
        GrantOutcome::InsufficientCredits { balance } => Err(balance),
    })
}

/// A user named by their id as operators see it (the 64 hex digits of the key's hash).
async fn user_by_id(app: &App, raw_id: &str) -> Result<User, Refusal> {
    let not_found = || Refusal::not_found("user", raw_id);
    if raw_id.len() != 64 || !raw_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let id: UserId = CredentialHash::from_stored(raw_id.to_ascii_lowercase());
    app.store.find_user(&id).await?.ok_or_else(not_found)
}

/// Grants (positive) or deducts (negative) credits with a reason, once per transaction; audited.
#[tracing::instrument(skip_all)]
pub async fn adjust_credits(
    app: &App,
    request: &Request<ApiKeyRecord>,
    raw_user_id: &str,
    amount: i64,
    reason: &str,
    transaction_id: Option<String>,
) -> Result<Granted, Refusal> {
    if amount == 0 || amount.abs() > MAX_GRANT {
        return Err(Refusal::Invalid(format!(
            "amount must be non-zero and at most {MAX_GRANT} either way"
        )));
    }
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 200 || reason.chars().any(char::is_control) {
        return Err(Refusal::Invalid(
            "reason must be 1 to 200 characters".into(),
        ));
    }
    let user = user_by_id(app, raw_user_id).await?;
    let transaction = transaction_id.unwrap_or_else(|| format!("admin-{}", uuid::Uuid::new_v4()));
    let grant = Grant {
        user: user.id.clone(),
        delta: amount,
        transaction_id: TransactionId::parse(&transaction).map_err(|e| Refusal::Invalid(e.0))?,
        kind: if amount > 0 {
            EntryKind::Bonus
        } else {
            EntryKind::Clawback
        },
        reason: Some(format!("admin: {reason}")),
        at: request.now,
    };
    let detail = format!("{amount:+} by {}: {reason}", request.caller.key_id);
    apply(app, request, &grant, detail)
        .await?
        .map_err(|balance| Refusal::PaymentRequired {
            reason: "insufficient_credits",
            required: -amount,
            balance,
        })
}

/// A user's balance against their whole ledger.
pub struct Reconciliation {
    pub balance: i64,
    pub ledger_sum: i64,
    pub entries: usize,
    /// The balance equals the ledger's sum, and every entry's `balance_after` the running sum.
    pub reconciled: bool,
}

#[tracing::instrument(skip_all)]
pub async fn reconcile(app: &App, raw_user_id: &str) -> Result<Reconciliation, Refusal> {
    let user = user_by_id(app, raw_user_id).await?;
    let entries = whole_ledger(&*app.store, &user.id).await?;
    Ok(Reconciliation {
        balance: user.credits,
        ledger_sum: entries.iter().map(|e| e.delta).sum(),
        entries: entries.len(),
        reconciled: ledger_reconciles(user.credits, &entries),
    })
}
