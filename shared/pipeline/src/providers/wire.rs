//! What every real provider shares on the wire: one way to build the HTTP client, one
//! classification of failures, and retries with backoff and jitter that honour `Retry-After`.

use super::ProviderError;
use backon::{ExponentialBuilder, Retryable};
use base64::Engine;
use std::time::Duration;

/// A provider credential: never printed, not even by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiSecret(String);

impl ApiSecret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiSecret(***)")
    }
}

/// The builder every provider client starts from: rustls trusting the web PKI's roots compiled
/// into the binary (the ones the SDK's client trusts), no system proxy (a proxy would resolve
/// names itself and defeat the address checks of [`super::fetch`]).
pub fn builder() -> reqwest::ClientBuilder {
    webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .filter_map(|root| reqwest::Certificate::from_der(root).ok())
        .fold(reqwest::Client::builder(), |builder, root| {
            builder.add_root_certificate(root)
        })
        .no_proxy()
}

/// An HTTP client for provider APIs, one timeout per whole call.
pub fn client(timeout: Duration) -> reqwest::Client {
    builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        // Provider APIs answer where they are asked; a redirect is not followed blindly.
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a client from fixed settings")
}

/// A transport failure, classified: timeouts and connection failures are worth another try.
pub fn transport(error: reqwest::Error) -> ProviderError {
    if error.is_timeout() {
        ProviderError::Timeout
    } else if error.is_decode() {
        ProviderError::Malformed(error.without_url().to_string())
    } else {
        ProviderError::Unavailable(error.without_url().to_string())
    }
}

/// How long a 429 or 503 asks us to wait: `Retry-After` in seconds or as an HTTP date, or
/// `retry-after-ms` (OpenAI's).
pub fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = text("retry-after")?.trim();
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// The first 300 characters of an error body, for logs and failure messages.
fn excerpt(body: &str) -> String {
    body.chars().take(300).collect()
}

/// Words in an error body that mean the provider's own safety system refused.
const SAFETY_MARKERS: &[&str] = &[
    "moderation_blocked",
    "content_policy_violation",
    "safety system",
    "nsfw",
];

/// Passes a successful answer through; classifies any other status once, for every provider:
/// 429 rate limited (with its wait), 408 and 5xx unavailable, a safety refusal, other 4xx final.
pub async fn checked(response: reqwest::Response) -> Result<reqwest::Response, ProviderError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let wait = retry_after(response.headers());
    let body = response.text().await.unwrap_or_default();
    let detail = format!("{status}: {}", excerpt(&body));
    Err(match status.as_u16() {
        429 => ProviderError::RateLimited { retry_after: wait },
        408 | 500..=599 => ProviderError::Unavailable(detail),
        _ if SAFETY_MARKERS
            .iter()
            .any(|marker| body.to_lowercase().contains(marker)) =>
        {
            ProviderError::Refused(detail)
        }
        _ => ProviderError::Rejected(detail),
    })
}

/// A successful answer's body, read as it streams and refused as soon as it shows itself
/// larger than `cap` bytes (declared or counted): a provider answering without end costs at most
/// `cap` bytes of memory. Too large is [`ProviderError::Malformed`]: asking again would not help.
pub async fn capped_body(
    response: reqwest::Response,
    cap: u64,
    what: &str,
) -> Result<bytes::Bytes, ProviderError> {
    use futures::StreamExt;
    let too_large = || ProviderError::Malformed(format!("{what} larger than {cap} bytes"));
    if response.content_length().is_some_and(|length| length > cap) {
        return Err(too_large());
    }
    let mut body = bytes::BytesMut::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(transport)?;
        if (body.len() + chunk.len()) as u64 > cap {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Reads a JSON answer into `T`; a body that does not fit is [`ProviderError::Malformed`].
pub async fn json<T: serde::de::DeserializeOwned>(
    response: reqwest::Response,
) -> Result<T, ProviderError> {
    let body = response.bytes().await.map_err(transport)?;
    serde_json::from_slice(&body).map_err(|e| {
        ProviderError::Malformed(format!("{e}: {}", excerpt(&String::from_utf8_lossy(&body))))
    })
}

/// Whether `url` is on the same origin as `base`: our token is only ever sent there.
pub fn same_origin(url: &str, base: &str) -> bool {
    match (reqwest::Url::parse(url), reqwest::Url::parse(base)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

/// A picture's bytes as a data URI, the way both Replicate and fal take an input file.
pub fn data_uri(image: &[u8]) -> String {
    let kind = match image {
        [0x89, b'P', b'N', b'G', ..] => "image/png",
        [0xFF, 0xD8, ..] => "image/jpeg",
        _ => "image/webp",
    };
    format!(
        "data:{kind};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(image)
    )
}

/// The input that Replicate and fal image models share (the prompt, the negative prompt, the
/// book's seed in the 31 bits they take) with the provider's own `extra` fields, and the model to
/// run: the one that takes a reference picture, given it under `reference_field`, when the prompt
/// carries one and such a model is configured; else `model`.
pub fn hosted_image_input<'a>(
    prompt: &super::ImagePrompt,
    extra: serde_json::Value,
    model: &'a str,
    reference_model: Option<&'a str>,
    reference_field: &str,
) -> (&'a str, serde_json::Value) {
    let mut input = serde_json::json!({
        "prompt": prompt.prompt,
        "negative_prompt": prompt.negative_prompt,
        "seed": prompt.seed % (1 << 31),
    });
    if let (Some(fields), serde_json::Value::Object(extra)) = (input.as_object_mut(), extra) {
        fields.extend(extra);
    }
    match (&prompt.reference_image, reference_model) {
        (Some(image), Some(reference_model)) => {
            input[reference_field] = data_uri(image).into();
            (reference_model, input)
        }
        _ => (model, input),
    }
}

/// Waits `every` before the next poll of a running prediction, or answers a timeout when that
/// would pass `deadline`.
pub async fn before_next_poll(
    deadline: tokio::time::Instant,
    every: Duration,
) -> Result<(), ProviderError> {
    if tokio::time::Instant::now() + every > deadline {
        return Err(ProviderError::Timeout);
    }
    tokio::time::sleep(every).await;
    Ok(())
}

/// How a provider call is retried in process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first call.
    pub retries: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
    /// The longest wait slept inside a call: a longer `Retry-After` goes back to the caller, so
    /// that a Lambda step returns to the queue for the wait instead of sleeping billed time.
    pub max_inline_wait: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: 2,
            min_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(4),
            max_inline_wait: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// Calls `call` until it succeeds, fails for good, or the retries are spent: exponential
    /// backoff with jitter, or the provider's own `Retry-After` when it gave one.
    pub async fn run<T, F, Fut>(&self, call: F) -> Result<T, ProviderError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_jitter()
            .with_max_times(self.retries);
        let longest = self.max_inline_wait;
        call.retry(backoff)
            .sleep(tokio::time::sleep)
            .when(move |e: &ProviderError| {
                e.is_retryable() && e.retry_after().is_none_or(|wait| wait <= longest)
            })
            .adjust(|e: &ProviderError, planned| match e.retry_after() {
                Some(wait) => Some(wait),
                None => planned,
            })
            .notify(|e: &ProviderError, wait: Duration| {
                tracing::info!(error = %e, wait_ms = wait.as_millis() as u64, "provider call retried");
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::{HeaderMap, HeaderValue};

    #[test]
    fn retry_after_in_its_three_spellings() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert("retry-after-ms", HeaderValue::from_static("250"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(250)));
        let mut dated = HeaderMap::new();
        let at = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        dated.insert("retry-after", HeaderValue::from_str(&at).unwrap());
        let wait = retry_after(&dated).unwrap();
        assert!(
            wait <= Duration::from_secs(30) && wait >= Duration::from_secs(28),
            "{wait:?}"
        );
        dated.insert("retry-after", HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&dated), None);
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = ApiSecret::new("sk-very-secret");
        assert!(!format!("{secret:?}").contains("very"));
    }

    #[tokio::test]
    async fn a_long_wait_goes_back_to_the_caller() {
        let policy = RetryPolicy {
            retries: 3,
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            max_inline_wait: Duration::from_millis(50),
        };
        let calls = std::sync::atomic::AtomicU32::new(0);
        let result: Result<(), _> = policy
            .run(|| async {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Err(ProviderError::RateLimited {
                    retry_after: Some(Duration::from_secs(60)),
                })
            })
            .await;
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(
            result.unwrap_err().retry_after(),
            Some(Duration::from_secs(60))
        );
        let result: Result<(), _> = policy
            .run(|| async {
                calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Err(ProviderError::Rejected("400".into()))
            })
            .await;
        assert!(matches!(result, Err(ProviderError::Rejected(_))));
        assert_eq!(
            calls.load(std::sync::atomic::Ordering::SeqCst),
            2,
            "final errors are not retried"
        );
    }
}
