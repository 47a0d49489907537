//! Printed copies of a finished book: a quote per region, an order saved once per idempotency
//! key within a user's limit of open orders, read by its owner only, approved by an operator
//! before anything is printed (the app takes no payment), then sent to the printer, its state
//! followed by the printer's signed webhooks and read again while the parent looks.

use super::{Refusal, Request, audit};
use crate::app::App;
use crate::domain::api_key::ApiKeyRecord;
use crate::domain::audit::AuditEvent;
use crate::domain::print::{PrintOrder, PrintRefusal, PrintStatus, Quote, ShippingAddress};
use crate::domain::spend::{Microdollars, SpendCharge, spend_day};
use crate::domain::user::User;
use crate::ports::print_orders::Placed;
use crate::ports::printer::{PrintJob, PrinterError};
use crate::spend::SpendGuard;

/// The app's `GET /v1/pod/quote`.
pub fn quote(app: &App, country: &str, quantity: u32) -> Result<Quote, Refusal> {
    Ok(app.config.print_prices.quote(country, quantity)?)
}

/// What the app asks to print.
#[derive(Debug, Clone)]
pub struct OrderRequest {
    pub book_id: String,
    pub quantity: u32,
    pub address: ShippingAddress,
    pub idempotency_key: Option<String>,
}

/// Whether the order was made now or answered from an earlier request with the same key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderSource {
    New,
    Idempotent,
}

/// The app's `POST /v1/pod/orders`: the caller's finished book, a checked address, the
/// region's price; saved as `pending_review` (an operator approves what is printed).
#[tracing::instrument(skip_all)]
pub async fn place_order(
    app: &App,
    request: &Request<User>,
    order: OrderRequest,
) -> Result<(PrintOrder, OrderSource), Refusal> {
    let book = super::books::owned_book(app, &request.caller, &order.book_id, "book").await?;
    let address = order.address.checked()?;
    let quote = app
        .config
        .print_prices
        .quote(&address.country, order.quantity)?;
    if !book.is_readable() {
        return Err(PrintRefusal::BookNotFinished.into());
    }
    let placed = PrintOrder {
        id: PrintOrder::new_id(request.now),
        user: request.caller.id.clone(),
        book_id: book.id.clone(),
        quantity: order.quantity,
        address: Some(address),
        quote,
        status: PrintStatus::PendingReview,
        provider_order_id: None,
        provider_total: None,
        provider_currency: None,
        tracking_number: None,
        idempotency_key: order.idempotency_key,
        created_at: request.now,
        updated_at: request.now,
    };
    let limit = app.config.print_orders_open_per_user;
    match app.store.place_print_order(&placed, limit).await? {
        Placed::New => {
            tracing::info!(order = %placed.id, "a print order placed");
            if !app.config.print_auto_submit {
                return Ok((placed, OrderSource::New));
            }
            // Paid for in the app before it ordered: to the printer now. Should that fail, the
            // order stays approved for an operator.
            let approved = placed.moved_to(PrintStatus::Approved, request.now);
            if !app.store.replace_print_order(&placed, &approved).await? {
                return Ok((placed, OrderSource::New));
            }
            match submit(app, approved.clone(), request.now).await {
                Ok(order) => Ok((order, OrderSource::New)),
                Err(refusal) => {
                    tracing::warn!(order = %approved.id, %refusal, "an order was not submitted at once");
                    Ok((approved, OrderSource::New))
                }
            }
        }
        Placed::Existing(earlier) => Ok((*earlier, OrderSource::Idempotent)),
        Placed::TooManyOpen(_) => Err(PrintRefusal::TooManyOpen { limit }.into()),
    }
}

/// The app's `GET /v1/pod/orders/{order_id}`: the caller's order (read again from the printer
/// while it is there), or 404 whether it is missing or someone else's.
#[tracing::instrument(skip_all)]
pub async fn order(
    app: &App,
    request: &Request<User>,
    id: &str,
) -> Result<(PrintOrder, Synced), Refusal> {
    let not_found = || Refusal::not_found("order", id);
    if !PrintOrder::is_id(id) {
        return Err(not_found());
    }
    match app.store.print_order(id).await? {
        Some(order) if order.user == request.caller.id => Ok(synced(app, order, request.now).await),
        _ => Err(not_found()),
    }
}

/// An operator's approval of an order waiting for review (`POST /v1/admin/pod/orders/{id}/approve`),
/// audited, and its submission to the printer. An approved order the printer did not take (not
/// configured, unreachable, generation stopped) is submitted again by approving it again.
#[tracing::instrument(skip_all)]
pub async fn approve_order(
    app: &App,
    request: &Request<ApiKeyRecord>,
    id: &str,
) -> Result<PrintOrder, Refusal> {
    let not_found = || Refusal::not_found("order", id);
    if !PrintOrder::is_id(id) {
        return Err(not_found());
    }
    for _ in 0..5 {
        let order = app.store.print_order(id).await?.ok_or_else(not_found)?;
        match order.status {
            PrintStatus::PendingReview => {
                let approved = order.moved_to(PrintStatus::Approved, request.now);
                if app.store.replace_print_order(&order, &approved).await? {
                    audit(
                        app,
                        request,
                        AuditEvent::PrintOrderApproved,
                        Some(request.caller.key_id.clone()),
                        Some(format!("{} by {}", approved.id, request.caller.key_id)),
                    )
                    .await;
                    return submit(app, approved, request.now).await;
                }
            }
            PrintStatus::Approved => return submit(app, order, request.now).await,
            _ => return Ok(order),
        }
    }
    Err(Refusal::unavailable(anyhow::anyhow!(
        "the order kept changing while it was approved"
    )))
}

/// Sends an approved order to the printer, unless generation is stopped (the kill switch, or
/// today's spend at its limit): then, and when no printer is configured, it stays approved.
/// Its files and cost are prepared first; then the order is claimed (`submitting`), so two
/// approvals (or an approval racing `POD_AUTO_SUBMIT`) make one job; a job not made puts it
/// back to `approved`, and a job whose creation got no answer leaves it `submitting` for an
/// operator (approving it again sends nothing). The printer's charge counts in today's spend.
async fn submit(
    app: &App,
    order: PrintOrder,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<PrintOrder, Refusal> {
    if let Some(stopped) = SpendGuard::new(app).stopped().await? {
        tracing::warn!(order = %order.id, ?stopped, "a print order waits: generation is stopped");
        return Ok(order);
    }
    let Some(book) = app.store.find_book(&order.book_id).await? else {
        return Err(Refusal::Conflict(
            "The order's book was deleted; it cannot be printed".into(),
        ));
    };
    // Everything short of the job first, unclaimed: safe to repeat, and a failure leaves the
    // order approved.
    let prepared = match app.printer.prepare(&order, &book.book).await {
        Ok(prepared) => prepared,
        Err(PrinterError::NotConfigured) => {
            tracing::info!(order = %order.id, "no printer is configured: the order waits");
            return Ok(order);
        }
        Err(failure) => return Err(printer_refusal(&order, failure)),
    };
    let claimed = order.moved_to(PrintStatus::Submitting, now);
    if !app.store.replace_print_order(&order, &claimed).await? {
        // Someone else is sending it, or did: the order as it is now.
        let current = app.store.print_order(&order.id).await?;
        return Ok(current.unwrap_or(order));
    }
    let job = match app.printer.create(&claimed, &prepared).await {
        Ok(job) => job,
        Err(PrinterError::Unknown(error)) => {
            tracing::error!(order = %order.id, error = format!("{error:#}"), "the printer may have made a job: the order stays submitting; check the printer before acting");
            return Err(Refusal::unavailable(error));
        }
        Err(failure) => {
            // No job was made: back to approved, for the next approval to send.
            if let Err(error) = app.store.replace_print_order(&claimed, &order).await {
                tracing::warn!(order = %order.id, %error, "a claimed order could not be released");
            }
            return Err(printer_refusal(&order, failure));
        }
    };
    // The job exists at the printer: its record is written however the order changed meanwhile.
    let mut current = claimed;
    for _ in 0..5 {
        let changed = with_job(&current, &job, now);
        if app.store.replace_print_order(&current, &changed).await? {
            record_spend(app, &changed).await;
            tracing::info!(order = %changed.id, job = %job.id, "a print order sent to the printer");
            return Ok(changed);
        }
        match app.store.print_order(&current.id).await? {
            Some(stored) => current = stored,
            None => return Ok(with_job(&current, &job, now)),
        }
    }
    Err(Refusal::unavailable(anyhow::anyhow!(
        "the order kept changing while its print job was recorded"
    )))
}

/// What the approval answers when the printer made no job.
fn printer_refusal(order: &PrintOrder, failure: PrinterError) -> Refusal {
    match failure {
        PrinterError::Refused(reason) => {
            tracing::warn!(order = %order.id, %reason, "the printer refused an order");
            Refusal::Conflict("The printer refused the order; its reason is in the logs".into())
        }
        PrinterError::NotConfigured => {
            Refusal::Conflict("No printer is configured; the order stays approved".into())
        }
        PrinterError::Unavailable(error) | PrinterError::Unknown(error) => {
            Refusal::unavailable(error)
        }
    }
}

/// The printer's charge for an order, in today's spend (priced in dollars: a charge in another
/// currency is logged, not counted).
async fn record_spend(app: &App, order: &PrintOrder) {
    let (Some(total), Some(currency)) = (order.provider_total, order.provider_currency.as_deref())
    else {
        return;
    };
    if currency != "USD" {
        tracing::warn!(order = %order.id, total, currency, "a print charge not in dollars is not counted in the spend");
        return;
    }
    let charge = SpendCharge {
        day: spend_day(app.clock.now()).0,
        book: order.book_id.clone(),
        cost: Microdollars(u64::try_from(total).unwrap_or(0) * 10_000),
    };
    match app.store.add_spend(&charge).await {
        Ok(total) => {
            tracing::info!(order = %order.id, cost_usd = charge.cost.usd(), spent_today_usd = total.usd(), "print usage")
        }
        Err(error) => tracing::warn!(%error, "a print charge could not be counted"),
    }
}

/// The order as its print job now stands.
fn with_job(order: &PrintOrder, job: &PrintJob, now: chrono::DateTime<chrono::Utc>) -> PrintOrder {
    // An order that ended stays as it ended; one never approved is not the job's.
    let follows = order.status.is_open() && order.status != PrintStatus::PendingReview;
    let status = if follows { job.status } else { order.status };
    PrintOrder {
        provider_order_id: Some(job.id.clone()),
        provider_total: job.total.or(order.provider_total),
        provider_currency: job.currency.clone().or(order.provider_currency.clone()),
        tracking_number: job
            .tracking_number
            .clone()
            .or(order.tracking_number.clone()),
        ..order.moved_to(status, now)
    }
}

/// Where an order's answer comes from: the printer just now, or what was stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synced {
    Printer,
    Stored,
}

/// An order at the printer, read again from it (failing that, as stored).
async fn synced(
    app: &App,
    order: PrintOrder,
    now: chrono::DateTime<chrono::Utc>,
) -> (PrintOrder, Synced) {
    let Some(job_id) = order
        .provider_order_id
        .clone()
        .filter(|_| order.status.is_open())
    else {
        return (order, Synced::Stored);
    };
    match app.printer.job(&job_id).await {
        Ok(job) => {
            let changed = with_job(&order, &job, now);
            if changed.status == order.status && changed.tracking_number == order.tracking_number {
                return (order, Synced::Printer);
            }
            match app.store.replace_print_order(&order, &changed).await {
                Ok(_) => (changed, Synced::Printer),
                Err(error) => {
                    tracing::warn!(%error, "a print order's state could not be stored");
                    (changed, Synced::Printer)
                }
            }
        }
        Err(error) => {
            tracing::warn!(order = %order.id, %error, "the printer could not be asked");
            (order, Synced::Stored)
        }
    }
}

/// The printer's webhook: a job's new state, believed only when the printer signed it, applied
/// to the order it names.
#[tracing::instrument(skip_all)]
pub async fn apply_print_webhook(
    app: &App,
    request: &Request<()>,
    body: &[u8],
    signature: Option<&str>,
) -> Result<Option<PrintOrder>, Refusal> {
    let job = app.printer.webhook(body, signature).map_err(|refused| {
        tracing::warn!(reason = %refused.0, "a printer webhook was refused");
        Refusal::Unauthorized("The webhook could not be verified".into())
    })?;
    let Some(id) = job.order_id.clone().filter(|id| PrintOrder::is_id(id)) else {
        return Ok(None);
    };
    for _ in 0..5 {
        let Some(order) = app.store.print_order(&id).await? else {
            return Ok(None);
        };
        if order
            .provider_order_id
            .as_deref()
            .is_some_and(|known| known != job.id)
        {
            tracing::warn!(order = %id, "a webhook about another job of the order");
            return Ok(None);
        }
        let changed = with_job(&order, &job, request.now);
        if app.store.replace_print_order(&order, &changed).await? {
            return Ok(Some(changed));
        }
    }
    Err(Refusal::unavailable(anyhow::anyhow!(
        "the order kept changing while a webhook was applied"
    )))
}
