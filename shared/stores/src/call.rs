//! One call to a store: its outcome, and how a busy store is asked again.

use backon::{ExponentialBuilder, Retryable};
use std::time::Duration;
use storybook_core::ports::marketplace::StoreUnavailable;

/// A store call that did not answer: worth another try (429, 5xx) or not.
#[derive(Debug)]
pub enum StoreCall {
    Retry(anyhow::Error),
    Unavailable(anyhow::Error),
}

/// How long one store request may take: the app waits on `/v1/iap/verify`.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

impl StoreCall {
    pub(crate) fn unavailable(self) -> StoreUnavailable {
        match self {
            StoreCall::Retry(e) | StoreCall::Unavailable(e) => StoreUnavailable(e),
        }
    }
}

/// A store's busy answers are tried again a few times, briefly: the parent is waiting.
pub(crate) async fn with_retries<T, F, Fut>(call: F) -> Result<T, StoreUnavailable>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreCall>>,
{
    call.retry(
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(2))
            .with_max_times(2)
            .with_jitter(),
    )
    .when(|e: &StoreCall| matches!(e, StoreCall::Retry(_)))
    .await
    .map_err(StoreCall::unavailable)
}

/// The stores' HTTP client, made on the first store call: its TLS setup (the compiled-in roots
/// parsed) would otherwise cost every cold start of the credits function, most of whose
/// requests never reach a store.
#[derive(Clone, Default)]
pub(crate) struct Http(std::sync::Arc<std::sync::OnceLock<reqwest::Client>>);

impl Http {
    pub(crate) fn client(&self) -> &reqwest::Client {
        self.0.get_or_init(|| {
            webpki_root_certs::TLS_SERVER_ROOT_CERTS
                .iter()
                .filter_map(|root| reqwest::Certificate::from_der(root).ok())
                .fold(reqwest::Client::builder(), |builder, root| {
                    builder.add_root_certificate(root)
                })
                .timeout(REQUEST_TIMEOUT)
                .no_proxy()
                .build()
                .expect("a client from fixed settings")
        })
    }
}
