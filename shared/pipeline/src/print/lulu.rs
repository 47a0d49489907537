//! Lulu's Print API on its wire format: an OAuth2 client-credentials token (kept until shortly
//! before it expires, asked again on a 401), the cover's dimensions, the job's cost, the print
//! job, the job read back, and the webhook's HMAC.

use super::settings::LuluSettings;
use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use storybook_core::domain::print::{PrintOrder, PrintStatus, minor_units_per_major};
use storybook_core::ports::marketplace::Unverifiable;
use storybook_core::ports::printer::{PreparedJob, PrintJob, PrinterError};

/// The cheapest shipping level, unless configured.
pub(super) const DEFAULT_SHIPPING: &str = "MAIL";

/// A webhook's body: the job whose status changed.
pub(super) fn webhook_job(body: &[u8]) -> Result<PrintJob, Unverifiable> {
    let event: Value = serde_json::from_slice(body).map_err(|_| Unverifiable("not JSON".into()))?;
    if event["topic"] != "PRINT_JOB_STATUS_CHANGED" {
        return Err(Unverifiable(format!(
            "a webhook of topic {}",
            event["topic"]
        )));
    }
    job_of(&event["data"]).ok_or_else(|| Unverifiable("no print job in it".into()))
}

/// One Lulu call's outcome when it did not answer 2xx.
pub(super) enum Failed {
    /// The token was refused: ask for a new one and try once more.
    Unauthorized,
    /// 5xx, a timeout, an unreadable answer: worth another try, but the request may have been
    /// acted on.
    Busy(anyhow::Error),
    /// Not acted on (no token, no connection, 429): worth another try, and nothing was made.
    Unsent(anyhow::Error),
    /// Lulu refused what we sent (4xx): an operator must look.
    Refused(String),
}

impl From<Failed> for PrinterError {
    fn from(failed: Failed) -> Self {
        match failed {
            Failed::Unauthorized => {
                PrinterError::Unavailable(anyhow::anyhow!("Lulu refused our credentials"))
            }
            Failed::Busy(error) | Failed::Unsent(error) => PrinterError::Unavailable(error),
            Failed::Refused(reason) => PrinterError::Refused(reason),
        }
    }
}

pub(super) struct Lulu {
    pub(super) settings: LuluSettings,
    http: reqwest::Client,
    /// The access token and when to stop using it; held while one is asked for, so racing
    /// calls share one.
    token: tokio::sync::Mutex<Option<(String, DateTime<Utc>)>>,
}

#[derive(Deserialize)]
struct Token {
    access_token: String,
    #[serde(default = "an_hour")]
    expires_in: i64,
}

fn an_hour() -> i64 {
    3600
}

/// A number Lulu writes as a string (`"12.34"`) or a number.
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::String(raw) => raw.trim().parse().ok(),
        other => other.as_f64(),
    }
}

/// An amount in `currency`'s minor units.
fn minor(value: &Value, currency: &str) -> Option<i64> {
    number(value).map(|major| (major * minor_units_per_major(currency) as f64).round() as i64)
}

/// Lulu's job states in our words.
fn status_of(name: &str) -> PrintStatus {
    match name {
        "SHIPPED" => PrintStatus::Shipped,
        "REJECTED" => PrintStatus::Rejected,
        "CANCELED" | "CANCELLED" => PrintStatus::Cancelled,
        // CREATED, UNPAID, PAYMENT_IN_PROGRESS, PRODUCTION_DELAYED, PRODUCTION_READY,
        // IN_PRODUCTION: at the printer.
        _ => PrintStatus::InProduction,
    }
}

/// A print job as Lulu describes it (the API's answers and the webhook's `data`).
pub(super) fn job_of(job: &Value) -> Option<PrintJob> {
    let id = match &job["id"] {
        Value::Number(id) => id.to_string(),
        Value::String(id) => id.clone(),
        _ => return None,
    };
    let currency = job["costs"]["currency"].as_str().map(str::to_owned);
    Some(PrintJob {
        id,
        order_id: job["external_id"].as_str().map(str::to_owned),
        status: status_of(job["status"]["name"].as_str().unwrap_or_default()),
        tracking_number: job["line_items"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|line| line["tracking_id"].as_str().map(str::to_owned)),
        total: currency
            .as_deref()
            .and_then(|currency| minor(&job["costs"]["total_cost_incl_tax"], currency)),
        currency,
    })
}

/// The fields a Lulu error names (`shipping_address.postcode`, …), without their values.
fn refused_fields(text: &str) -> String {
    fn walk(value: &Value, at: &str, found: &mut Vec<String>) {
        if let Value::Object(fields) = value {
            for (name, inner) in fields {
                let here = if at.is_empty() {
                    name.clone()
                } else {
                    format!("{at}.{name}")
                };
                if inner.is_object() {
                    walk(inner, &here, found);
                } else {
                    found.push(here);
                }
            }
        }
    }
    let mut found = Vec::new();
    match serde_json::from_str::<Value>(text) {
        Ok(value) => walk(&value, "", &mut found),
        Err(_) => return "an answer that is not JSON".into(),
    }
    found.truncate(10);
    found.join(", ")
}

impl Lulu {
    pub(super) fn new(settings: LuluSettings) -> Self {
        let http = crate::providers::wire::builder()
            .timeout(std::time::Duration::from_secs(20))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("a client from fixed settings");
        Lulu {
            settings,
            http,
            token: tokio::sync::Mutex::new(None),
        }
    }

    fn shipping_level(&self) -> &str {
        self.settings
            .shipping_level
            .as_deref()
            .unwrap_or(DEFAULT_SHIPPING)
    }

    fn url(&self, path: &str) -> String {
        format!("{}/{path}", self.settings.api_url.trim_end_matches('/'))
    }

    /// A valid access token other than `refused` (one Lulu just answered 401 to).
    async fn token(&self, refused: Option<&str>) -> Result<String, Failed> {
        let mut held = self.token.lock().await;
        if let Some((token, until)) = held.as_ref()
            && *until > Utc::now()
            && Some(token.as_str()) != refused
        {
            return Ok(token.clone());
        }
        let answer = self
            .http
            .post(self.url("auth/realms/glasstree/protocol/openid-connect/token"))
            .basic_auth(
                &self.settings.client_key,
                Some(&self.settings.client_secret),
            )
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .map_err(|e| Failed::Unsent(e.without_url().into()))?;
        let status = answer.status();
        if !status.is_success() {
            return Err(if status.is_server_error() || status.as_u16() == 429 {
                Failed::Unsent(anyhow::anyhow!("Lulu's token endpoint answered {status}"))
            } else {
                Failed::Refused(format!("Lulu refused our client credentials ({status})"))
            });
        }
        let token: Token = answer.json().await.map_err(|e| {
            Failed::Unsent(anyhow::anyhow!("Lulu's token answer: {}", e.without_url()))
        })?;
        let until = Utc::now() + Duration::seconds((token.expires_in - 60).max(30));
        *held = Some((token.access_token.clone(), until));
        Ok(token.access_token)
    }

    /// One authenticated call; a refused token is replaced once.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, Failed> {
        let mut refused: Option<String> = None;
        for fresh in [false, true] {
            let token = self.token(refused.as_deref()).await?;
            let mut request = self
                .http
                .request(method.clone(), self.url(path))
                .bearer_auth(&token);
            if let Some(body) = body {
                request = request.json(body);
            }
            let answer = request.send().await.map_err(|e| {
                if e.is_connect() || e.is_builder() {
                    Failed::Unsent(e.without_url().into())
                } else {
                    Failed::Busy(e.without_url().into())
                }
            })?;
            let status = answer.status();
            let text = answer.text().await.unwrap_or_default();
            match status.as_u16() {
                200..=299 => {
                    return serde_json::from_str(&text).map_err(|e| {
                        Failed::Busy(anyhow::anyhow!("Lulu's answer to {path} is not JSON: {e}"))
                    });
                }
                401 if !fresh => {
                    refused = Some(token);
                    continue;
                }
                401 | 403 => return Err(Failed::Unauthorized),
                429 => {
                    return Err(Failed::Unsent(anyhow::anyhow!(
                        "Lulu answered {status} to {path}"
                    )));
                }
                500..=599 => {
                    return Err(Failed::Busy(anyhow::anyhow!(
                        "Lulu answered {status} to {path}"
                    )));
                }
                _ => {
                    // Which fields Lulu refused, not what they held: its answer may repeat
                    // the shipping address, which is never logged.
                    let fields = refused_fields(&text);
                    return Err(Failed::Refused(format!(
                        "{status} to {path}, about {fields}"
                    )));
                }
            }
        }
        Err(Failed::Unauthorized)
    }

    /// `POST /cover-dimensions/`: the one-piece cover's size in points for the page count.
    pub(super) async fn cover_dimensions(&self, pages: usize) -> Result<(f32, f32), Failed> {
        let body = json!({
            "pod_package_id": self.settings.package_id,
            "interior_page_count": pages,
            "unit": "pt",
        });
        let answer = self
            .call(reqwest::Method::POST, "cover-dimensions/", Some(&body))
            .await?;
        match (number(&answer["width"]), number(&answer["height"])) {
            (Some(width), Some(height)) if width > 0.0 && height > 0.0 => {
                Ok((width as f32, height as f32))
            }
            _ => Err(Failed::Busy(anyhow::anyhow!(
                "Lulu's cover dimensions: {answer}"
            ))),
        }
    }

    fn shipping_address(order: &PrintOrder) -> Result<Value, Failed> {
        let Some(address) = &order.address else {
            return Err(Failed::Refused("the order has no shipping address".into()));
        };
        Ok(json!({
            "name": address.name,
            "street1": address.line1,
            "street2": address.line2,
            "city": address.city,
            "state_code": address.state,
            "postcode": address.postal_code,
            "country_code": address.country,
            "phone_number": address.phone,
        }))
    }

    /// `POST /print-job-cost-calculations/`: what the job will cost us, tax and shipping
    /// included, in minor units of its currency.
    pub(super) async fn cost(
        &self,
        order: &PrintOrder,
        pages: usize,
    ) -> Result<(i64, String), Failed> {
        let body = json!({
            "line_items": [{
                "page_count": pages,
                "pod_package_id": self.settings.package_id,
                "quantity": order.quantity,
            }],
            "shipping_address": Self::shipping_address(order)?,
            "shipping_option": self.shipping_level(),
        });
        let answer = self
            .call(
                reqwest::Method::POST,
                "print-job-cost-calculations/",
                Some(&body),
            )
            .await?;
        let currency = answer["currency"].as_str().unwrap_or("USD").to_owned();
        let total = minor(&answer["total_cost_incl_tax"], &currency)
            .ok_or_else(|| Failed::Busy(anyhow::anyhow!("Lulu's cost has no total")))?;
        Ok((total, currency))
    }

    /// `POST /print-jobs/`: the job, its files fetched by Lulu from `interior` and `cover`.
    pub(super) async fn create_job(
        &self,
        order: &PrintOrder,
        prepared: &PreparedJob,
    ) -> Result<PrintJob, Failed> {
        let body = json!({
            "contact_email": self.settings.contact_email,
            "external_id": order.id,
            "shipping_level": self.shipping_level(),
            "shipping_address": Self::shipping_address(order)?,
            "line_items": [{
                "external_id": order.id,
                "title": prepared.title,
                "quantity": order.quantity,
                "printable_normalization": {
                    "pod_package_id": self.settings.package_id,
                    "cover": {"source_url": prepared.cover_url},
                    "interior": {"source_url": prepared.interior_url},
                },
            }],
        });
        let answer = self
            .call(reqwest::Method::POST, "print-jobs/", Some(&body))
            .await?;
        job_of(&answer).ok_or_else(|| Failed::Busy(anyhow::anyhow!("Lulu's job has no id")))
    }

    /// `GET /print-jobs/{id}/`.
    pub(super) async fn job(&self, id: &str) -> Result<PrintJob, Failed> {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return Err(Failed::Refused("not a Lulu job id".into()));
        }
        let answer = self
            .call(reqwest::Method::GET, &format!("print-jobs/{id}/"), None)
            .await?;
        job_of(&answer).ok_or_else(|| Failed::Busy(anyhow::anyhow!("Lulu's job has no id")))
    }

    /// Whether `signature` (`Lulu-HMAC-SHA256`, hex or base64) is HMAC-SHA256 of the raw body
    /// with our webhook secret; compared in constant time.
    pub(super) fn signed(&self, body: &[u8], signature: &str) -> bool {
        let Some(secret) = &self.settings.webhook_secret else {
            return false;
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(body);
        let expected = mac.finalize().into_bytes();
        use base64::Engine;
        let given = hex::decode(signature.trim()).ok().or_else(|| {
            base64::engine::general_purpose::STANDARD
                .decode(signature.trim())
                .ok()
        });
        given.is_some_and(|given| subtle::ConstantTimeEq::ct_eq(&given[..], &expected[..]).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_names_fields_never_their_values() {
        let answer =
            r#"{"shipping_address": {"postcode": ["62701 is not valid for IL"]}, "detail": "bad"}"#;
        let fields = refused_fields(answer);
        assert_eq!(fields, "detail, shipping_address.postcode");
        assert!(!fields.contains("62701"));
        assert_eq!(refused_fields("<html>"), "an answer that is not JSON");
    }

    #[test]
    fn jobs_are_read_as_lulu_writes_them() {
        let job = job_of(&json!({
            "id": 81231, "external_id": "pod_20261203_0a1b2c3d",
            "status": {"name": "SHIPPED"},
            "line_items": [{"tracking_id": "1Z999"}],
            "costs": {"total_cost_incl_tax": "23.71", "currency": "USD"},
        }))
        .unwrap();
        assert_eq!(job.id, "81231");
        assert_eq!(job.status, PrintStatus::Shipped);
        assert_eq!(job.tracking_number.as_deref(), Some("1Z999"));
        assert_eq!(
            (job.total, job.currency.as_deref()),
            (Some(2371), Some("USD"))
        );
        for (name, status) in [
            ("UNPAID", PrintStatus::InProduction),
            ("REJECTED", PrintStatus::Rejected),
            ("CANCELED", PrintStatus::Cancelled),
        ] {
            assert_eq!(status_of(name), status);
        }
    }
}
