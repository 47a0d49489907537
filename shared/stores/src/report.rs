//! The app contract's webhook body: `{transaction_id, status, payload}` from a trusted bridge,
//! vouched for by the shared `X-Webhook-Token` alone. Accepted only where `IAP_WEBHOOK_SECRET`
//! is set, the token compared in constant time; the stores' own signed formats need no secret.

use serde::Deserialize;
use storybook_core::ports::marketplace::{
    NotificationDelivery, ReportedStatus, StoreEvent, StoreNotification, Unverifiable,
};
use subtle::ConstantTimeEq;

#[derive(Deserialize)]
pub(crate) struct Report {
    transaction_id: String,
    status: String,
}

/// The body as a report, if it is one (a store's own format is not).
pub(crate) fn read(body: &[u8]) -> Option<Report> {
    serde_json::from_slice(body).ok()
}

pub(crate) fn verified(
    report: Report,
    delivery: &NotificationDelivery,
    secret: Option<&str>,
) -> Result<StoreNotification, Unverifiable> {
    let Some(secret) = secret else {
        return Err(Unverifiable("reports are not accepted here".into()));
    };
    let token = delivery.webhook_token.as_deref().unwrap_or_default();
    if !bool::from(token.as_bytes().ct_eq(secret.as_bytes())) {
        return Err(Unverifiable("a report without the webhook token".into()));
    }
    let store_id = report.transaction_id.trim().to_owned();
    if store_id.is_empty() || store_id.len() > 200 {
        return Err(Unverifiable("a report names no payment".into()));
    }
    let status = ReportedStatus::parse(&report.status)
        .ok_or_else(|| Unverifiable("a report of an unknown status".into()))?;
    Ok(StoreNotification {
        // Every report is applied: what it does is once-only by itself (a refund, an end) or
        // a state that may alternate (active, cancelled).
        id: format!("report:{}", uuid::Uuid::new_v4().simple()),
        event: StoreEvent::Reported { store_id, status },
    })
}
