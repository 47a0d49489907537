//! Running steps from a queue: the local worker polls the embedded queue inside the server; on
//! Lambda the SQS event source delivers batches to [`sqs_batch`], which answers with the partial
//! batch failures (`ReportBatchItemFailures`). The stuck-book sweep runs here too: every minute
//! in local mode, on a schedule on Lambda.

use super::{Pipeline, StepError};
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures::future::join_all;
use std::sync::Arc;
use std::time::Duration;
use storybook_core::ports::queue::{MAX_RECEIVES, QueuedMessage};

/// How long a received step stays hidden from other receivers while it runs: longer than the
/// longest step (a picture: the provider's 90 s and its download), as on Lambda.
pub const VISIBILITY: Duration = Duration::from_secs(180);

/// When a failed step comes back: `first` after a first failure, twice as long after each next
/// one, at most five minutes (not after the whole visibility timeout, which is sized for the
/// longest step).
pub fn retry_backoff(first: Duration, receive_count: u32) -> Duration {
    let doubling = 2u32.saturating_pow(receive_count.saturating_sub(1).min(10));
    (first * doubling).min(Duration::from_secs(300))
}

/// What became of one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Delivery {
    /// Done (or done for good): delete it.
    Done,
    /// Let it come back after its visibility timeout (an undecodable message, on its way to the
    /// dead letters).
    Again,
    /// Let it come back after a wait: the provider's, or the backoff of a failed step.
    AgainAfter(Duration),
    /// Send this new message after a wait, and delete this delivery.
    Deferred(Duration, String),
}

impl Pipeline {
    /// Runs one delivered message and says what should become of it, in one span per message
    /// (its id, its book and step once decoded) that the step's provider calls inherit.
    #[tracing::instrument(skip(self, body), fields(book, step))]
    async fn handle_delivery(&self, message_id: &str, body: &str, receive_count: u32) -> Delivery {
        match self.handle(body, receive_count >= MAX_RECEIVES).await {
            Ok(()) => Delivery::Done,
            Err(StepError::Undecodable(reason)) => {
                tracing::error!(%reason, "undecodable step message left for the dead letters");
                Delivery::Again
            }
            Err(StepError::Deferred { wait, again, .. }) => Delivery::Deferred(wait, again),
            // Sent again as it is: no delivery spent, and no circuit's patience either.
            Err(StepError::Paused { wait }) => Delivery::Deferred(wait, body.to_owned()),
            Err(StepError::Halted) => Delivery::Done,
            // The provider's wait when it asked for one, but never less than the backoff.
            Err(StepError::Retry { wait, .. }) => Delivery::AgainAfter(
                retry_backoff(self.first_retry, receive_count).max(wait.unwrap_or_default()),
            ),
        }
    }

    /// Deletes or postpones a delivery as its outcome says; a failure here only means it comes
    /// back sooner (and is found already done, or tried again).
    async fn settle_delivery(&self, receipt: &str, delivery: Delivery) {
        let settled = match &delivery {
            Delivery::Done => self.queue.delete(receipt).await,
            Delivery::AgainAfter(wait) => self.queue.postpone(receipt, *wait).await,
            // Sent before the delivery is deleted: a failure between the two leaves a duplicate,
            // which the step's idempotence absorbs, never a lost step.
            Delivery::Deferred(wait, again) => match self.queue.send_delayed(again, *wait).await {
                Ok(_) => self.queue.delete(receipt).await,
                Err(error) => Err(error),
            },
            Delivery::Again => Ok(()),
        };
        if let Err(error) = settled {
            tracing::warn!(
                error = format!("{error:#}"),
                ?delivery,
                "settling a step delivery failed"
            );
        }
    }
}

/// How many steps the local worker runs at once.
pub const LOCAL_CONCURRENCY: usize = 32;

/// The local worker: keeps up to [`LOCAL_CONCURRENCY`] steps running, starting the next as soon as
/// one finishes (no batch waits for its slowest member), until the process ends. Steps are
/// deleted only after they are recorded.
pub async fn run_local(pipeline: Arc<Pipeline>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(LOCAL_CONCURRENCY));
    loop {
        // Wait for at least one free slot, then take as many messages as there are free slots.
        let first = slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        let free = slots.available_permits() as u32 + 1;
        let batch: Vec<QueuedMessage> = match pipeline.queue.receive(free.min(10), VISIBILITY).await
        {
            Ok(batch) => batch,
            Err(error) => {
                drop(first);
                tracing::warn!(error = format!("{error:#}"), "receiving steps failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if batch.is_empty() {
            drop(first);
            pipeline.queue.until_sent(IDLE_POLL).await;
            continue;
        }
        let mut first = Some(first);
        for message in batch {
            let slot = match first.take() {
                Some(slot) => slot,
                None => slots
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("the semaphore is never closed"),
            };
            let pipeline = pipeline.clone();
            tokio::spawn(async move {
                let delivery = pipeline
                    .handle_delivery(&message.id, &message.body, message.receive_count)
                    .await;
                pipeline.settle_delivery(&message.receipt, delivery).await;
                drop(slot);
            });
        }
    }
}

/// How long the local worker waits before looking at an empty queue again, unless the queue
/// wakes it earlier (messages sent for later, and postponed ones, are seen at the next look).
const IDLE_POLL: Duration = Duration::from_millis(50);

/// The Lambda worker's handler: every message of the batch runs concurrently; the ones that must
/// come back are named in the answer (postponed first, to their backoff or the provider's wait),
/// the others are deleted by the event source.
pub async fn sqs_batch(pipeline: &Pipeline, event: SqsEvent) -> SqsBatchResponse {
    let outcomes = join_all(event.records.iter().map(|record| async move {
        let receive_count = record
            .attributes
            .get("ApproximateReceiveCount")
            .and_then(|count| count.parse().ok())
            .unwrap_or(1);
        let body = record.body.as_deref().unwrap_or_default();
        let message_id = record.message_id.as_deref().unwrap_or_default();
        let mut delivery = pipeline
            .handle_delivery(message_id, body, receive_count)
            .await;
        if let Delivery::Deferred(wait, again) = &delivery {
            let wait = *wait;
            // Sent again as a new message: this delivery is then done (the event source deletes
            // it), or, when the send failed, retried after the wait.
            delivery = match pipeline.queue.send_delayed(again, wait).await {
                Ok(_) => Delivery::Done,
                Err(error) => {
                    tracing::warn!(error = format!("{error:#}"), "deferring a step failed");
                    Delivery::AgainAfter(wait)
                }
            };
        }
        let done = delivery == Delivery::Done;
        if let (Delivery::AgainAfter(_), Some(receipt)) = (&delivery, &record.receipt_handle) {
            pipeline.settle_delivery(receipt, delivery).await;
        }
        (record.message_id.clone().unwrap_or_default(), done)
    }))
    .await;
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = outcomes
        .into_iter()
        .filter(|(_, done)| !done)
        .map(|(id, _)| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}
