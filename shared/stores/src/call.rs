//! One call to a store: its outcome, and how a busy store is asked again.

use backon::{ExponentialBuilder, Retryable};
use std::time::Duration;
use storybook_core::domain::purchase::PurchaseRefusal;
use storybook_core::ports::marketplace::{StoreAnswer, StorePurchase, StoreUnavailable};

/// A store call that did not answer: worth another try (429, 5xx) or not.
#[derive(Debug)]
pub enum StoreCall {
    Retry(anyhow::Error),
    Unavailable(anyhow::Error),
}

/// How long one store request may take: the app waits on `/v1/iap/verify`.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A store's busy answers are tried again a few times, briefly: the parent is waiting.
pub(crate) async fn with_retries<F, Fut>(call: F) -> StoreAnswer
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Result<StorePurchase, PurchaseRefusal>, StoreCall>>,
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
    .map_err(|e| match e {
        StoreCall::Retry(e) | StoreCall::Unavailable(e) => StoreUnavailable(e),
    })
}
