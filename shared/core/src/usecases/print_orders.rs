//! Printed copies of a finished book: a quote per region, an order saved once per idempotency
//! key within a user's limit of open orders, read by its owner only, and approved by an
//! operator before anything is printed (the app takes no payment).

use super::{Refusal, Request, audit};
use crate::app::App;
use crate::domain::api_key::ApiKeyRecord;
use crate::domain::audit::AuditEvent;
use crate::domain::print::{PrintOrder, PrintRefusal, PrintStatus, Quote, ShippingAddress};
use crate::domain::user::User;
use crate::ports::print_orders::Placed;

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
            Ok((placed, OrderSource::New))
        }
        Placed::Existing(earlier) => Ok((*earlier, OrderSource::Idempotent)),
        Placed::TooManyOpen(_) => Err(PrintRefusal::TooManyOpen { limit }.into()),
    }
}

/// The app's `GET /v1/pod/orders/{order_id}`: the caller's order, or 404 whether it is
/// missing or someone else's.
#[tracing::instrument(skip_all)]
pub async fn order(app: &App, request: &Request<User>, id: &str) -> Result<PrintOrder, Refusal> {
    let not_found = || Refusal::not_found("order", id);
    if !PrintOrder::is_id(id) {
        return Err(not_found());
    }
    match app.store.print_order(id).await? {
        Some(order) if order.user == request.caller.id => Ok(order),
        _ => Err(not_found()),
    }
}

/// An operator's approval of an order waiting for review (`POST /v1/admin/pod/orders/{id}/approve`),
/// audited. Approving again answers the order as it is.
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
        if order.status != PrintStatus::PendingReview {
            return Ok(order);
        }
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
            return Ok(approved);
        }
    }
    Err(Refusal::unavailable(anyhow::anyhow!(
        "the order kept changing while it was approved"
    )))
}
