//! A print order, kept as a document.

use crate::domain::book::BookId;
use crate::domain::credential::CredentialHash;
use crate::domain::print::{PrintOrder, PrintStatus, Quote, ShippingAddress};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct PrintOrderV1 {
    id: String,
    user: String,
    book_id: String,
    quantity: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    address: Option<ShippingAddress>,
    currency: String,
    unit_price: i64,
    shipping_fee: i64,
    total_price: i64,
    status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provider_order_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provider_total: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provider_currency: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tracking_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<&PrintOrder> for PrintOrderV1 {
    fn from(o: &PrintOrder) -> Self {
        PrintOrderV1 {
            id: o.id.clone(),
            user: o.user.as_str().to_owned(),
            book_id: o.book_id.as_str().to_owned(),
            quantity: o.quantity,
            address: o.address.clone(),
            currency: o.quote.currency.clone(),
            unit_price: o.quote.unit_price,
            shipping_fee: o.quote.shipping_fee,
            total_price: o.quote.total_price,
            status: o.status.as_str().to_owned(),
            provider_order_id: o.provider_order_id.clone(),
            provider_total: o.provider_total,
            provider_currency: o.provider_currency.clone(),
            tracking_number: o.tracking_number.clone(),
            idempotency_key: o.idempotency_key.clone(),
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

impl TryFrom<PrintOrderV1> for PrintOrder {
    type Error = crate::domain::Invalid;

    fn try_from(o: PrintOrderV1) -> Result<Self, Self::Error> {
        Ok(PrintOrder {
            id: o.id,
            user: CredentialHash::from_stored(o.user),
            book_id: BookId::parse(&o.book_id)?,
            quantity: o.quantity,
            address: o.address,
            quote: Quote {
                currency: o.currency,
                unit_price: o.unit_price,
                shipping_fee: o.shipping_fee,
                total_price: o.total_price,
            },
            status: PrintStatus::parse(&o.status)?,
            provider_order_id: o.provider_order_id,
            provider_total: o.provider_total,
            provider_currency: o.provider_currency,
            tracking_number: o.tracking_number,
            idempotency_key: o.idempotency_key,
            created_at: o.created_at,
            updated_at: o.updated_at,
        })
    }
}

version_one!(PrintOrder, "print_order", PrintOrderV1, checked);
