//! Printed copies of a finished book: the prices per region, the shipping address (personal
//! data: kept with the order only, erased with the user) and the order's life. Nothing goes to
//! the printer unpaid: the app has no payment step, so a new order waits for an operator.

use super::Invalid;
use super::book::BookId;
use super::user::UserId;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;

/// What one region pays, in the currency's minor units (cents; won and yen have none).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RegionPrice {
    pub currency: String,
    pub unit_price: i64,
    pub shipping_fee: i64,
}

/// The regions printed books ship to and their prices (`POD_PRICES`, JSON: a country code to
/// `{currency, unit_price, shipping_fee}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintPrices(BTreeMap<String, RegionPrice>);

impl Default for PrintPrices {
    /// The app contract's: KR 18000 + 3000 KRW, US 20 + 5 USD, JP 2500 + 500 JPY.
    fn default() -> Self {
        let region = |currency: &str, unit_price, shipping_fee| RegionPrice {
            currency: currency.into(),
            unit_price,
            shipping_fee,
        };
        Self(BTreeMap::from([
            ("JP".into(), region("JPY", 2500, 500)),
            ("KR".into(), region("KRW", 18000, 3000)),
            ("US".into(), region("USD", 2000, 500)),
        ]))
    }
}

impl PrintPrices {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let regions: BTreeMap<String, RegionPrice> = serde_json::from_str(raw)
            .map_err(|e| Invalid::new(format!("POD_PRICES is not a map of regions: {e}")))?;
        if regions.is_empty() {
            return Err(Invalid::new("POD_PRICES names no region"));
        }
        for (country, price) in &regions {
            let code_like =
                |s: &str, len| s.len() == len && s.chars().all(|c| c.is_ascii_uppercase());
            if !code_like(country, 2) || !code_like(&price.currency, 3) {
                return Err(Invalid::new(format!(
                    "POD_PRICES: {country:?} must be a country code, its currency a currency code"
                )));
            }
            if price.unit_price <= 0 || price.shipping_fee < 0 {
                return Err(Invalid::new(format!("POD_PRICES: {country}'s prices")));
            }
        }
        Ok(Self(regions))
    }

    /// The countries shipped to, in order.
    pub fn countries(&self) -> Vec<String> {
        self.0.keys().cloned().collect()
    }

    /// What `quantity` copies shipped to `country` cost: one shipping fee per order.
    pub fn quote(&self, country: &str, quantity: u32) -> Result<Quote, PrintRefusal> {
        let country = country.trim().to_ascii_uppercase();
        if !(1..=MAX_COPIES).contains(&quantity) {
            return Err(PrintRefusal::Quantity);
        }
        let price = self
            .0
            .get(&country)
            .ok_or_else(|| PrintRefusal::RegionUnsupported {
                country: country.clone(),
                supported: self.countries(),
            })?;
        Ok(Quote {
            currency: price.currency.clone(),
            unit_price: price.unit_price,
            shipping_fee: price.shipping_fee,
            total_price: price.unit_price * i64::from(quantity) + price.shipping_fee,
        })
    }
}

/// The most copies one order prints.
pub const MAX_COPIES: u32 = 10;

/// A price for an order, in minor units.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quote {
    pub currency: String,
    pub unit_price: i64,
    pub shipping_fee: i64,
    pub total_price: i64,
}

/// How many minor units a currency's major unit has: the app shows whole won, yen and dollars.
pub fn minor_units_per_major(currency: &str) -> i64 {
    match currency {
        "KRW" | "JPY" | "VND" | "CLP" | "ISK" => 1,
        _ => 100,
    }
}

/// Why an order is refused: the app contract's 400s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrintRefusal {
    #[error("quantity must be between 1 and {MAX_COPIES}")]
    Quantity,
    #[error("Printed books do not ship to {country}")]
    RegionUnsupported {
        country: String,
        supported: Vec<String>,
    },
    #[error("The shipping address needs: {}", .0.join(", "))]
    Required(Vec<&'static str>),
    #[error("{0}")]
    Address(&'static str),
    #[error("The book is not finished yet")]
    BookNotFinished,
    #[error("Too many print orders are waiting; try again once one has shipped")]
    TooManyOpen { limit: u32 },
}

/// Where the copies go. Personal data: never logged (its `Debug` shows the country alone).
#[derive(Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct ShippingAddress {
    pub name: String,
    pub line1: String,
    #[serde(default)]
    pub line2: Option<String>,
    #[serde(default)]
    pub city: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    pub postal_code: String,
    pub country: String,
    #[serde(default)]
    pub phone: Option<String>,
}

impl std::fmt::Debug for ShippingAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShippingAddress")
            .field("country", &self.country)
            .finish_non_exhaustive()
    }
}

impl ShippingAddress {
    /// The address trimmed and checked as the printer needs it: name, street, city and postal
    /// code given, a two-letter country, a state in the countries whose post needs one.
    pub fn checked(self) -> Result<Self, PrintRefusal> {
        let trim = |s: String| s.trim().to_owned();
        let optional = |s: Option<String>| s.map(trim).filter(|s| !s.is_empty());
        let address = ShippingAddress {
            name: trim(self.name),
            line1: trim(self.line1),
            line2: optional(self.line2),
            city: optional(self.city),
            state: optional(self.state),
            postal_code: trim(self.postal_code),
            country: self.country.trim().to_ascii_uppercase(),
            phone: optional(self.phone),
        };
        let mut required = Vec::new();
        for (name, value) in [
            ("name", address.name.as_str()),
            ("line1", address.line1.as_str()),
            ("city", address.city.as_deref().unwrap_or_default()),
            ("postal_code", address.postal_code.as_str()),
            ("country", address.country.as_str()),
        ] {
            if value.is_empty() {
                required.push(name);
            }
        }
        if !required.is_empty() {
            return Err(PrintRefusal::Required(required));
        }
        if address.country.len() != 2 || !address.country.chars().all(|c| c.is_ascii_uppercase()) {
            return Err(PrintRefusal::Address("country must be two letters"));
        }
        if matches!(address.country.as_str(), "US" | "CA") && address.state.is_none() {
            return Err(PrintRefusal::Required(vec!["state"]));
        }
        Ok(address)
    }
}

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrintStatus {
    /// Saved, waiting for an operator's approval (the app took no payment).
    PendingReview,
    /// Approved; the printer has not been given it yet.
    Approved,
    /// Being sent to the printer: claimed by one request, so that no other sends it too.
    Submitting,
    /// At the printer: its job made, being paid, printed.
    InProduction,
    Shipped,
    Rejected,
    Cancelled,
}

impl PrintStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PrintStatus::PendingReview => "pending_review",
            PrintStatus::Approved => "approved",
            PrintStatus::Submitting => "submitting",
            PrintStatus::InProduction => "in_production",
            PrintStatus::Shipped => "shipped",
            PrintStatus::Rejected => "rejected",
            PrintStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Ok(match raw {
            "pending_review" => PrintStatus::PendingReview,
            "approved" => PrintStatus::Approved,
            "submitting" => PrintStatus::Submitting,
            "in_production" => PrintStatus::InProduction,
            "shipped" => PrintStatus::Shipped,
            "rejected" => PrintStatus::Rejected,
            "cancelled" => PrintStatus::Cancelled,
            other => return Err(Invalid::new(format!("unknown print status {other:?}"))),
        })
    }

    /// Whether the order still counts against its user's open orders (and needs its address).
    pub fn is_open(self) -> bool {
        !matches!(
            self,
            PrintStatus::Shipped | PrintStatus::Rejected | PrintStatus::Cancelled
        )
    }
}

/// An order for printed copies of one book.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrintOrder {
    /// `pod_<YYYYMMDD>_<8 hex>`.
    pub id: String,
    pub user: UserId,
    pub book_id: BookId,
    pub quantity: u32,
    /// Gone once the order no longer needs it (shipped, rejected, cancelled) and with its user.
    pub address: Option<ShippingAddress>,
    pub quote: Quote,
    pub status: PrintStatus,
    /// The printer's id of its job and what it charged us (minor units), once submitted.
    pub provider_order_id: Option<String>,
    pub provider_total: Option<i64>,
    pub provider_currency: Option<String>,
    pub tracking_number: Option<String>,
    /// The app's `X-Idempotency-Key`: the same key answers the same order.
    pub idempotency_key: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PrintOrder {
    /// A new order's id: its day and 32 random bits.
    pub fn new_id(now: DateTime<Utc>) -> String {
        let random = uuid::Uuid::new_v4().simple().to_string();
        format!("pod_{}_{}", now.format("%Y%m%d"), &random[..8])
    }

    /// Whether `raw` can be an order id (anything else is not looked up).
    pub fn is_id(raw: &str) -> bool {
        raw.len() <= 40
            && raw.starts_with("pod_")
            && raw[4..]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
    }

    /// The order in `status` at `now`; an order that has ended forgets its address.
    pub fn moved_to(&self, status: PrintStatus, now: DateTime<Utc>) -> Self {
        PrintOrder {
            status,
            address: self.address.clone().filter(|_| status.is_open()),
            updated_at: now,
            ..self.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_are_the_contracts() {
        let prices = PrintPrices::default();
        let us = prices.quote("us", 1).unwrap();
        assert_eq!(
            (us.unit_price, us.shipping_fee, us.total_price),
            (2000, 500, 2500)
        );
        assert_eq!(prices.quote("KR", 2).unwrap().total_price, 39000);
        assert_eq!(prices.quote("KR", 0), Err(PrintRefusal::Quantity));
        assert_eq!(prices.quote("KR", 11), Err(PrintRefusal::Quantity));
        assert_eq!(
            prices.quote("FR", 1),
            Err(PrintRefusal::RegionUnsupported {
                country: "FR".into(),
                supported: vec!["JP".into(), "KR".into(), "US".into()]
            })
        );
    }

    #[test]
    fn prices_are_checked() {
        assert!(
            PrintPrices::parse(r#"{"GB":{"currency":"GBP","unit_price":1800,"shipping_fee":400}}"#)
                .is_ok()
        );
        for bad in [
            "{}",
            "[]",
            r#"{"gb":{"currency":"GBP","unit_price":1800,"shipping_fee":400}}"#,
            r#"{"GB":{"currency":"GBP","unit_price":0,"shipping_fee":400}}"#,
        ] {
            assert!(PrintPrices::parse(bad).is_err(), "{bad}");
        }
    }

    fn address(country: &str, state: Option<&str>) -> ShippingAddress {
        ShippingAddress {
            name: " Grandma Kim ".into(),
            line1: "1 Main St".into(),
            line2: Some("  ".into()),
            city: Some("Springfield".into()),
            state: state.map(Into::into),
            postal_code: "12345".into(),
            country: country.into(),
            phone: None,
        }
    }

    #[test]
    fn addresses_are_trimmed_and_checked() {
        let checked = address("kr", None).checked().unwrap();
        assert_eq!(
            (checked.name.as_str(), checked.country.as_str()),
            ("Grandma Kim", "KR")
        );
        assert_eq!(checked.line2, None);
        assert_eq!(
            address("US", None).checked(),
            Err(PrintRefusal::Required(vec!["state"]))
        );
        assert!(address("US", Some("IL")).checked().is_ok());
        assert_eq!(
            address("K1", None).checked(),
            Err(PrintRefusal::Address("country must be two letters"))
        );
        let blank = ShippingAddress {
            name: " ".into(),
            city: None,
            ..address("KR", None)
        };
        assert_eq!(
            blank.checked(),
            Err(PrintRefusal::Required(vec!["name", "city"]))
        );
        assert!(
            !format!("{:?}", address("KR", None)).contains("Main"),
            "never logged"
        );
    }

    #[test]
    fn an_ended_order_forgets_its_address() {
        let now = Utc::now();
        let order = PrintOrder {
            id: PrintOrder::new_id(now),
            user: crate::domain::credential::CredentialHash::from_stored("u".into()),
            book_id: BookId::generate(),
            quantity: 1,
            address: Some(address("KR", None)),
            quote: PrintPrices::default().quote("KR", 1).unwrap(),
            status: PrintStatus::PendingReview,
            provider_order_id: None,
            provider_total: None,
            provider_currency: None,
            tracking_number: None,
            idempotency_key: None,
            created_at: now,
            updated_at: now,
        };
        assert!(PrintOrder::is_id(&order.id));
        assert!(order.moved_to(PrintStatus::Approved, now).address.is_some());
        assert!(order.moved_to(PrintStatus::Rejected, now).address.is_none());
    }
}
