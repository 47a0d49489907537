//! Printed copies of a book: `GET /v1/pod/quote`, `POST /v1/pod/orders`,
//! `GET /v1/pod/orders/{order_id}`, an operator's `POST /v1/admin/pod/orders/{order_id}/approve`
//! and the printer's `POST /v1/pod/webhook/lulu`.
//! Prices are kept in minor units and answered in the currency's major units, as the app shows
//! them.

use crate::auth::{AdminRequest, AnonymousRequest, UserRequest};
use crate::endpoints::Endpoint;
use crate::error::{ApiError, Problem};
use crate::extract::{IdempotencyKeyHeader, JsonBody, PathParam, QueryParams};
use crate::routes::timestamp;
use crate::state::AppState;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use storybook_core::catalogue::{Access, Family};
use storybook_core::domain::print::{PrintOrder, Quote, ShippingAddress, minor_units_per_major};
use storybook_core::usecases::print_orders::{self, OrderRequest, OrderSource, Synced};

/// The routes this file serves: the studio function's, which holds the book's pictures the
/// printer's files are made from.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(Family::Studio, "/v1/pod/quote", quote),
        Endpoint::post(Family::Studio, "/v1/pod/orders", place),
        Endpoint::get(Family::Studio, "/v1/pod/orders/{order_id}", order),
        Endpoint::post(
            Family::Studio,
            "/v1/admin/pod/orders/{order_id}/approve",
            approve,
        )
        .access(Access::AdminApiKey),
        Endpoint::post(Family::Studio, "/v1/pod/webhook/lulu", lulu_webhook).public(),
    ]
}

/// An amount in the currency's major units: whole won and yen, dollars with their cents.
fn major(minor: i64, currency: &str) -> Value {
    let per = minor_units_per_major(currency);
    if minor % per == 0 {
        Value::from(minor / per)
    } else {
        Value::from(minor as f64 / per as f64)
    }
}

#[derive(Deserialize)]
pub struct QuoteQuery {
    country: String,
    #[serde(default = "one")]
    quantity: i64,
}

fn one() -> i64 {
    1
}

#[derive(Serialize)]
pub struct QuoteView {
    unit_price: Value,
    shipping_fee: Value,
    total_price: Value,
    currency: String,
}

impl From<&Quote> for QuoteView {
    fn from(quote: &Quote) -> Self {
        QuoteView {
            unit_price: major(quote.unit_price, &quote.currency),
            shipping_fee: major(quote.shipping_fee, &quote.currency),
            total_price: major(quote.total_price, &quote.currency),
            currency: quote.currency.clone(),
        }
    }
}

/// A quantity the contract refuses with 400 (not 422) is any outside 1..=10.
fn quantity(raw: i64) -> u32 {
    u32::try_from(raw).unwrap_or(0)
}

pub async fn quote(
    State(state): State<AppState>,
    UserRequest(_): UserRequest,
    QueryParams(query): QueryParams<QuoteQuery>,
) -> Result<Json<QuoteView>, ApiError> {
    let quote = print_orders::quote(&state, &query.country, quantity(query.quantity))?;
    Ok(Json(QuoteView::from(&quote)))
}

#[derive(Deserialize)]
pub struct OrderBody {
    book_id: String,
    #[serde(default = "one")]
    quantity: i64,
    shipping_address: ShippingAddress,
}

/// The schema's bounds: lengths the app's form keeps to (422 beyond them; a blank that is
/// not empty is the use case's 400 naming what is required).
fn within_bounds(address: &ShippingAddress) -> Result<(), ApiError> {
    // Characters, not bytes: a Korean address is three bytes a letter.
    let length = |value: &str| value.chars().count();
    let optional = |value: &Option<String>| value.as_deref().map_or(0, length);
    for (field, length, most) in [
        ("name", length(&address.name), 120),
        ("line1", length(&address.line1), 200),
        ("line2", optional(&address.line2), 200),
        ("city", optional(&address.city), 120),
        ("state", optional(&address.state), 120),
        ("postal_code", length(&address.postal_code), 40),
        ("phone", optional(&address.phone), 40),
    ] {
        if length > most {
            return Err(ApiError::schema(Problem::new(
                &["body", "shipping_address", field],
                format!("String should have at most {most} characters"),
                "string_too_long",
            )));
        }
    }
    for (field, value) in [
        ("name", &address.name),
        ("line1", &address.line1),
        ("postal_code", &address.postal_code),
    ] {
        if value.is_empty() {
            return Err(ApiError::schema(Problem::new(
                &["body", "shipping_address", field],
                "String should have at least 1 character",
                "string_too_short",
            )));
        }
    }
    if address.country.trim().chars().count() != 2 {
        return Err(ApiError::schema(Problem::new(
            &["body", "shipping_address", "country"],
            "String should have 2 characters",
            "string_too_short",
        )));
    }
    Ok(())
}

/// The app contract's order answer.
#[derive(Serialize)]
pub struct OrderView {
    order_id: String,
    status: &'static str,
    provider: &'static str,
    book_id: String,
    quantity: u32,
    unit_price: Value,
    shipping_fee: Value,
    total_price: Value,
    currency: String,
    provider_total: Option<Value>,
    provider_currency: Option<String>,
    provider_order_id: Option<String>,
    tracking_number: Option<String>,
    sync_source: &'static str,
    created_at: String,
    updated_at: String,
}

impl OrderView {
    fn of(order: &PrintOrder, sync_source: &'static str) -> Self {
        let quote = QuoteView::from(&order.quote);
        OrderView {
            order_id: order.id.clone(),
            status: order.status.as_str(),
            provider: "lulu",
            book_id: order.book_id.as_str().to_owned(),
            quantity: order.quantity,
            unit_price: quote.unit_price,
            shipping_fee: quote.shipping_fee,
            total_price: quote.total_price,
            currency: quote.currency,
            provider_total: order
                .provider_total
                .zip(order.provider_currency.as_deref())
                .map(|(total, currency)| major(total, currency)),
            provider_currency: order.provider_currency.clone(),
            provider_order_id: order.provider_order_id.clone(),
            tracking_number: order.tracking_number.clone(),
            sync_source,
            created_at: timestamp(order.created_at),
            updated_at: timestamp(order.updated_at),
        }
    }
}

pub async fn place(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
    IdempotencyKeyHeader(key): IdempotencyKeyHeader,
    JsonBody(body): JsonBody<OrderBody>,
) -> Result<Json<OrderView>, ApiError> {
    within_bounds(&body.shipping_address)?;
    let order = OrderRequest {
        book_id: body.book_id,
        quantity: quantity(body.quantity),
        address: body.shipping_address,
        idempotency_key: key.map(|key| key.as_str().to_owned()),
    };
    let (order, source) = print_orders::place_order(&state, &request, order).await?;
    let sync_source = match source {
        OrderSource::New => "local",
        OrderSource::Idempotent => "idempotent",
    };
    Ok(Json(OrderView::of(&order, sync_source)))
}

pub async fn order(
    State(state): State<AppState>,
    UserRequest(request): UserRequest,
    PathParam(order_id): PathParam,
) -> Result<Json<OrderView>, ApiError> {
    let (order, synced) = print_orders::order(&state, &request, &order_id).await?;
    let sync_source = match synced {
        Synced::Printer => "lulu",
        Synced::Stored => "local_snapshot",
    };
    Ok(Json(OrderView::of(&order, sync_source)))
}

pub async fn approve(
    State(state): State<AppState>,
    AdminRequest(request): AdminRequest,
    PathParam(order_id): PathParam,
) -> Result<Json<OrderView>, ApiError> {
    let order = print_orders::approve_order(&state, &request, &order_id).await?;
    Ok(Json(OrderView::of(&order, "local")))
}

#[derive(Serialize)]
pub struct WebhookAnswer {
    status: &'static str,
}

/// Lulu's `PRINT_JOB_STATUS_CHANGED`, signed with `Lulu-HMAC-SHA256` over the raw body (401
/// otherwise, nothing changed).
pub async fn lulu_webhook(
    State(state): State<AppState>,
    AnonymousRequest(request): AnonymousRequest,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookAnswer>, ApiError> {
    let signature = headers
        .get("lulu-hmac-sha256")
        .and_then(|value| value.to_str().ok());
    let applied = print_orders::apply_print_webhook(&state, &request, &body, signature).await?;
    Ok(Json(WebhookAnswer {
        status: if applied.is_some() {
            "applied"
        } else {
            "ignored"
        },
    }))
}
