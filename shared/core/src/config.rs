//! The deployment's configuration, from the environment (a user's own settings are
//! `domain::settings`, the providers' `ProviderSettings`). Every variable is listed, with its default, in
//! `docs/configuration.md`; [`Config::from_lookup`] is the one place that reads them.

use crate::domain::Invalid;
use crate::domain::credential::Pepper;
use crate::domain::purchase::Catalogue;
use crate::domain::spend::{Microdollars, PriceTable, SpendLimits, WhenStopped};
pub mod providers;

pub use providers::{Lookup, ProviderNames};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Local,
    Dev,
    Prod,
}

impl Environment {
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Local => "local",
            Environment::Dev => "dev",
            Environment::Prod => "prod",
        }
    }
}

/// The deployment's configuration: what the HTTP API needs, whatever runs it.
#[derive(Debug, Clone)]
pub struct Config {
    pub environment: Environment,
    /// Credits a new user starts with (one `bonus` ledger entry).
    pub opening_credits: i64,
    /// New users one client IP may create per hour.
    pub account_creations_per_ip_per_hour: u32,
    /// How long signed asset URLs work.
    pub signed_url_ttl: Duration,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Largest photo or drawing accepted (the file itself; its request may be a little larger).
    pub upload_max_bytes: usize,
    /// Most pixels an uploaded picture may declare: a larger one is refused before it is
    /// decoded (a decompression bomb).
    pub upload_max_pixels: u64,
    /// Most characters one user keeps (`CHARACTERS_PER_USER`).
    pub characters_per_user: usize,
    /// Credits a book costs: a flat price, and per page-count range where configured.
    pub book_price: i64,
    pub book_prices_by_pages: Vec<PagePrice>,
    /// Credits for regenerating one page and for narrating a finished book, priced apart from
    /// books (free by default). Published in the capabilities; charged by their routes.
    pub page_regeneration_price: i64,
    pub book_audio_price: i64,
    /// Whether books are narrated (the app's request has no switch for it).
    pub narration: bool,
    pub limits: Limits,
    /// Origins browsers may call the API from (CORS); empty: none.
    pub cors_origins: Vec<String>,
    /// How long a rotated API key keeps working beside its replacement.
    pub rotation_grace: Duration,
    /// How long an unfinished book may go without progress before the sweep fails and refunds
    /// it: longer than the app's 10 minutes of polling.
    pub stuck_book_after: Duration,
    /// Which providers serve each capability (names only: the keys stay with the worker).
    pub providers: ProviderNames,
    /// The daily provider-spend alert and hard limit, and what a stopped step does.
    pub spend: SpendLimits,
    /// What each provider call costs.
    pub prices: Arc<PriceTable>,
    /// What the stores sell (`IAP_PRODUCTS`).
    pub products: Arc<Catalogue>,
    /// Printed copies' prices per region (`POD_PRICES`).
    pub print_prices: Arc<crate::domain::print::PrintPrices>,
    /// Print orders one user may have open at once (`POD_OPEN_ORDERS_PER_USER`).
    pub print_orders_open_per_user: u32,
    /// New print orders go to the printer at once, without an operator's approval
    /// (`POD_AUTO_SUBMIT`): only for an app that takes payment before ordering.
    pub print_auto_submit: bool,
    /// The origin share links point at (`SHARE_BASE_URL`; local mode: its public address).
    pub share_base_url: Option<String>,
}

/// Request limits: per caller and route class per minute, books per local day and unfinished,
/// failed authentications per client IP per minute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub generation_per_minute: u32,
    pub writes_per_minute: u32,
    pub reads_per_minute: u32,
    /// When the store cannot count, reads go through (generation and writes never do).
    pub reads_fail_open: bool,
    pub books_per_day: u32,
    pub unfinished_books: u32,
    pub auth_failures_per_minute: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            generation_per_minute: 10,
            writes_per_minute: 50,
            reads_per_minute: 100,
            reads_fail_open: true,
            books_per_day: 20,
            unfinished_books: 10,
            auth_failures_per_minute: 5,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            environment: Environment::Local,
            opening_credits: 3,
            account_creations_per_ip_per_hour: 20,
            signed_url_ttl: Duration::from_secs(900),
            // A book request may carry a 5 MB reference image in base64.
            max_body_bytes: 6 * 1024 * 1024,
            upload_max_bytes: 10 * 1024 * 1024,
            upload_max_pixels: 40_000_000,
            characters_per_user: 50,
            book_price: 1,
            book_prices_by_pages: Vec::new(),
            page_regeneration_price: 0,
            book_audio_price: 0,
            narration: true,
            limits: Limits::default(),
            cors_origins: Vec::new(),
            rotation_grace: Duration::from_secs(24 * 3600),
            stuck_book_after: Duration::from_secs(15 * 60),
            providers: ProviderNames::offline(),
            spend: SpendLimits::default(),
            prices: Arc::new(PriceTable::default()),
            products: Arc::new(Catalogue::default()),
            print_prices: Default::default(),
            print_orders_open_per_user: 3,
            print_auto_submit: false,
            share_base_url: None,
        }
    }
}

/// A price for books of `min..=max` pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PagePrice {
    pub min: u8,
    pub max: u8,
    pub credits: i64,
}

/// A price in credits: 0 or more.
fn price(lookup: Lookup, name: &str, default: i64) -> Result<i64, Invalid> {
    match parsed(lookup, name, default)? {
        credits if credits >= 0 => Ok(credits),
        _ => Err(Invalid::new(format!("{name} must be 0 or more"))),
    }
}

/// `4-8:1,9-12:2`: page ranges and their prices.
fn parse_page_prices(raw: &str) -> Result<Vec<PagePrice>, Invalid> {
    let refuse = || Invalid::new("BOOK_PRICE_BY_PAGES must look like 4-8:1,9-12:2");
    raw.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (range, credits) = part.split_once(':').ok_or_else(refuse)?;
            let (min, max) = range.split_once('-').ok_or_else(refuse)?;
            let price = PagePrice {
                min: min.trim().parse().map_err(|_| refuse())?,
                max: max.trim().parse().map_err(|_| refuse())?,
                credits: credits.trim().parse().map_err(|_| refuse())?,
            };
            if price.min > price.max || price.credits < 0 {
                return Err(refuse());
            }
            Ok(price)
        })
        .collect()
}

impl Config {
    /// What a book of `pages` pages costs: the first configured range that holds it, else the
    /// flat price.
    pub fn book_price(&self, pages: u8) -> i64 {
        self.book_prices_by_pages
            .iter()
            .find(|p| (p.min..=p.max).contains(&pages))
            .map_or(self.book_price, |p| p.credits)
    }
}

/// Local mode's own settings, beside [`Config`].
#[derive(Debug, Clone)]
pub struct LocalSettings {
    pub port: u16,
    pub data_dir: PathBuf,
    /// The origin signed blob URLs point at (what the app can reach).
    pub public_base_url: String,
}

/// Where the AWS functions find their resources.
#[derive(Debug, Clone)]
pub struct AwsResources {
    pub table: String,
    pub bucket: String,
    pub step_queue_url: String,
    pub step_dead_letter_url: String,
}

fn parsed<T: std::str::FromStr>(lookup: Lookup, name: &str, default: T) -> Result<T, Invalid> {
    match lookup(name) {
        None => Ok(default),
        Some(raw) if raw.trim().is_empty() => Ok(default),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|_| Invalid::new(format!("{name} has an unusable value"))),
    }
}

fn required(lookup: Lookup, name: &str) -> Result<String, Invalid> {
    lookup(name)
        .filter(|v| !v.trim().is_empty())
        .ok_or_else(|| Invalid::new(format!("{name} must be set")))
}

impl Config {
    pub fn from_env() -> Result<Self, Invalid> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: Lookup) -> Result<Self, Invalid> {
        let defaults = Config::default();
        let environment = match lookup("APP_ENV").as_deref().map(str::trim) {
            None | Some("") | Some("local") => Environment::Local,
            Some("dev") => Environment::Dev,
            Some("prod") => Environment::Prod,
            Some(_) => return Err(Invalid::new("APP_ENV must be local, dev or prod")),
        };
        let opening_credits = parsed(lookup, "OPENING_CREDITS", defaults.opening_credits)?;
        if !(0..=1000).contains(&opening_credits) {
            return Err(Invalid::new("OPENING_CREDITS must be between 0 and 1000"));
        }
        Ok(Config {
            environment,
            opening_credits,
            account_creations_per_ip_per_hour: parsed(
                lookup,
                "ACCOUNT_CREATIONS_PER_IP_PER_HOUR",
                defaults.account_creations_per_ip_per_hour,
            )?,
            signed_url_ttl: Duration::from_secs(parsed(
                lookup,
                "SIGNED_URL_TTL_SECONDS",
                defaults.signed_url_ttl.as_secs(),
            )?),
            max_body_bytes: parsed(lookup, "MAX_BODY_BYTES", defaults.max_body_bytes)?,
            upload_max_bytes: parsed(lookup, "UPLOAD_MAX_BYTES", defaults.upload_max_bytes)?,
            upload_max_pixels: parsed(lookup, "UPLOAD_MAX_PIXELS", defaults.upload_max_pixels)?,
            characters_per_user: parsed(
                lookup,
                "CHARACTERS_PER_USER",
                defaults.characters_per_user,
            )?,
            book_price: price(lookup, "BOOK_PRICE_CREDITS", defaults.book_price)?,
            book_prices_by_pages: lookup("BOOK_PRICE_BY_PAGES")
                .map(|raw| parse_page_prices(&raw))
                .transpose()?
                .unwrap_or_default(),
            page_regeneration_price: price(
                lookup,
                "PAGE_REGENERATION_PRICE_CREDITS",
                defaults.page_regeneration_price,
            )?,
            book_audio_price: price(
                lookup,
                "BOOK_AUDIO_PRICE_CREDITS",
                defaults.book_audio_price,
            )?,
            narration: parsed(lookup, "NARRATION", defaults.narration)?,
            limits: Limits {
                generation_per_minute: parsed(
                    lookup,
                    "RATE_LIMIT_GENERATION_PER_MINUTE",
                    defaults.limits.generation_per_minute,
                )?,
                writes_per_minute: parsed(
                    lookup,
                    "RATE_LIMIT_WRITES_PER_MINUTE",
                    defaults.limits.writes_per_minute,
                )?,
                reads_per_minute: parsed(
                    lookup,
                    "RATE_LIMIT_READS_PER_MINUTE",
                    defaults.limits.reads_per_minute,
                )?,
                reads_fail_open: parsed(
                    lookup,
                    "RATE_LIMIT_READS_FAIL_OPEN",
                    defaults.limits.reads_fail_open,
                )?,
                books_per_day: parsed(lookup, "BOOKS_PER_DAY", defaults.limits.books_per_day)?,
                unfinished_books: parsed(
                    lookup,
                    "UNFINISHED_BOOKS",
                    defaults.limits.unfinished_books,
                )?,
                auth_failures_per_minute: parsed(
                    lookup,
                    "AUTH_FAILURES_PER_MINUTE",
                    defaults.limits.auth_failures_per_minute,
                )?,
            },
            cors_origins: lookup("CORS_ALLOWED_ORIGINS")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(str::to_owned)
                .collect(),
            rotation_grace: Duration::from_secs(parsed(
                lookup,
                "KEY_ROTATION_GRACE_SECONDS",
                defaults.rotation_grace.as_secs(),
            )?),
            stuck_book_after: match parsed(
                lookup,
                "STUCK_BOOK_AFTER_SECONDS",
                defaults.stuck_book_after.as_secs(),
            )? {
                seconds if seconds >= 60 => Duration::from_secs(seconds),
                _ => return Err(Invalid::new("STUCK_BOOK_AFTER_SECONDS must be 60 or more")),
            },
            providers: ProviderNames::from_lookup(lookup)?,
            spend: spend_limits(lookup, defaults.spend)?,
            prices: Arc::new(
                match lookup("PRICE_TABLE").filter(|raw| !raw.trim().is_empty()) {
                    Some(raw) => PriceTable::with_overrides(&raw)?,
                    None => PriceTable::default(),
                },
            ),
            products: Arc::new(
                match lookup("IAP_PRODUCTS").filter(|raw| !raw.trim().is_empty()) {
                    Some(raw) => Catalogue::parse(&raw)?,
                    None => Catalogue::default(),
                },
            ),
            print_prices: Arc::new(
                match lookup("POD_PRICES").filter(|raw| !raw.trim().is_empty()) {
                    Some(raw) => crate::domain::print::PrintPrices::parse(&raw)?,
                    None => Default::default(),
                },
            ),
            print_orders_open_per_user: parsed(lookup, "POD_OPEN_ORDERS_PER_USER", 3)?,
            print_auto_submit: parsed(lookup, "POD_AUTO_SUBMIT", false)?,
            share_base_url: lookup("SHARE_BASE_URL").filter(|v| !v.trim().is_empty()),
        })
    }
}

/// `SPEND_ALERT_USD`, `SPEND_LIMIT_USD` (dollars per UTC day) and `WHEN_GENERATION_STOPPED`.
fn spend_limits(lookup: Lookup, defaults: SpendLimits) -> Result<SpendLimits, Invalid> {
    let dollars = |name: &str, default: Microdollars| -> Result<Microdollars, Invalid> {
        Microdollars::from_usd(parsed(lookup, name, default.usd())?)
            .map_err(|_| Invalid::new(format!("{name} must be 0 or more dollars")))
    };
    let limits = SpendLimits {
        alert: dollars("SPEND_ALERT_USD", defaults.alert)?,
        hard_limit: dollars("SPEND_LIMIT_USD", defaults.hard_limit)?,
        when_stopped: match lookup("WHEN_GENERATION_STOPPED") {
            Some(raw) if !raw.trim().is_empty() => WhenStopped::parse(raw.trim())?,
            _ => defaults.when_stopped,
        },
    };
    if limits.alert > limits.hard_limit {
        return Err(Invalid::new(
            "SPEND_ALERT_USD must not be above SPEND_LIMIT_USD",
        ));
    }
    Ok(limits)
}

impl LocalSettings {
    pub fn from_env() -> Result<Self, Invalid> {
        Self::from_lookup(&|name| std::env::var(name).ok())
    }

    pub fn from_lookup(lookup: Lookup) -> Result<Self, Invalid> {
        let port = parsed(lookup, "PORT", 3000u16)?;
        let data_dir = PathBuf::from(
            lookup("DATA_DIR")
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| "./data".into()),
        );
        let public_base_url = lookup("PUBLIC_BASE_URL")
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| format!("http://127.0.0.1:{port}"));
        Ok(Self {
            port,
            data_dir,
            public_base_url,
        })
    }
}

impl AwsResources {
    pub fn from_env() -> Result<Self, Invalid> {
        let lookup: Lookup = &|name| std::env::var(name).ok();
        Ok(Self {
            table: required(lookup, "TABLE_NAME")?,
            bucket: required(lookup, "BUCKET_NAME")?,
            step_queue_url: required(lookup, "STEP_QUEUE_URL")?,
            step_dead_letter_url: required(lookup, "STEP_DLQ_URL")?,
        })
    }
}

/// The pepper from `KEY_PEPPER` (at least 32 bytes), if set.
pub fn pepper_from_env() -> Result<Option<Pepper>, Invalid> {
    match std::env::var("KEY_PEPPER") {
        Ok(value) if !value.is_empty() => Pepper::new(value.into_bytes()).map(Some),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, Invalid> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(&move |name| map.get(name).cloned())
    }

    #[test]
    fn defaults_and_overrides() {
        let s = config(&[]).unwrap();
        assert_eq!(s.opening_credits, 3);
        assert_eq!(s.environment, Environment::Local);
        let s = config(&[("OPENING_CREDITS", "5"), ("APP_ENV", "prod")]).unwrap();
        assert_eq!(s.opening_credits, 5);
        assert_eq!(s.environment, Environment::Prod);
    }

    #[test]
    fn prices_by_page_count() {
        let s = config(&[
            ("BOOK_PRICE_BY_PAGES", "4-8:1, 9-12:2"),
            ("BOOK_PRICE_CREDITS", "3"),
        ])
        .unwrap();
        assert_eq!(
            (
                s.book_price(4),
                s.book_price(8),
                s.book_price(9),
                s.book_price(12)
            ),
            (1, 1, 2, 2)
        );
        let flat = config(&[]).unwrap();
        assert_eq!((flat.book_price(4), flat.book_price(12)), (1, 1));
        for bad in ["4-8", "8-4:1", "4-8:-1", "a-b:1"] {
            assert!(config(&[("BOOK_PRICE_BY_PAGES", bad)]).is_err(), "{bad}");
        }
        assert_eq!(
            (flat.page_regeneration_price, flat.book_audio_price),
            (0, 0)
        );
        let extras = config(&[
            ("PAGE_REGENERATION_PRICE_CREDITS", "1"),
            ("BOOK_AUDIO_PRICE_CREDITS", "2"),
        ])
        .unwrap();
        assert_eq!(
            (extras.page_regeneration_price, extras.book_audio_price),
            (1, 2)
        );
        let error = config(&[("BOOK_AUDIO_PRICE_CREDITS", "-1")]).unwrap_err();
        assert!(error.0.contains("BOOK_AUDIO_PRICE_CREDITS"));
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        let error = config(&[("OPENING_CREDITS", "many")]).unwrap_err();
        assert!(error.0.contains("OPENING_CREDITS"));
        assert!(config(&[("APP_ENV", "staging")]).is_err());
        assert!(config(&[("OPENING_CREDITS", "-1")]).is_err());
    }

    #[test]
    fn spend_limits_in_dollars() {
        let s = config(&[]).unwrap();
        assert_eq!(
            (s.spend.alert, s.spend.hard_limit, s.spend.when_stopped),
            (
                Microdollars(100_000_000),
                Microdollars(500_000_000),
                WhenStopped::Wait
            )
        );
        let s = config(&[
            ("SPEND_ALERT_USD", "0.5"),
            ("SPEND_LIMIT_USD", "2"),
            ("WHEN_GENERATION_STOPPED", "fail"),
        ])
        .unwrap();
        assert_eq!(
            (s.spend.alert, s.spend.hard_limit, s.spend.when_stopped),
            (
                Microdollars(500_000),
                Microdollars(2_000_000),
                WhenStopped::Fail
            )
        );
        for bad in [
            ("SPEND_LIMIT_USD", "-1"),
            ("SPEND_ALERT_USD", "600"),
            ("WHEN_GENERATION_STOPPED", "pause"),
            ("PRICE_TABLE", "{"),
        ] {
            assert!(config(&[bad]).is_err(), "{bad:?}");
        }
    }
}
