//! The queue of generation steps: at-least-once delivery, a visibility timeout, and dead letters
//! after [`MAX_RECEIVES`] receives (as an SQS redrive policy does).

use crate::domain::book::{BookId, Step};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A message received this many times without being deleted goes to the dead letters.
pub const MAX_RECEIVES: u32 = 5;

/// The longest a new message can be delayed (SQS's `DelaySeconds`, 15 minutes).
pub const MAX_DELAY: Duration = Duration::from_secs(900);

/// The longest a delivery can be postponed (SQS's limit on a message's visibility, 12 hours).
pub const MAX_POSTPONE: Duration = Duration::from_secs(12 * 3600);

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable")]
    Unavailable(#[source] anyhow::Error),
}

impl QueueError {
    pub fn unavailable(error: impl Into<anyhow::Error>) -> Self {
        Self::Unavailable(error.into())
    }
}

/// A queue message: one step of one book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepMessage {
    pub book_id: BookId,
    #[serde(flatten)]
    pub step: Step,
    /// Since when the step has been sent again to wait for an open circuit (each time a new
    /// message, whose deliveries start again): bounded, so that a provider that stays down ends
    /// the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deferred_since: Option<DateTime<Utc>>,
}

impl StepMessage {
    pub fn new(book_id: BookId, step: Step) -> Self {
        Self {
            book_id,
            step,
            deferred_since: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    pub id: String,
    /// Deletes this delivery; a later delivery of the same message has another.
    pub receipt: String,
    pub body: String,
    /// How many times the message has been received, this delivery included.
    pub receive_count: u32,
}

#[async_trait]
pub trait StepQueue: Send + Sync {
    /// Enqueues a body; answers the message id.
    async fn send(&self, body: &str) -> Result<String, QueueError> {
        self.send_delayed(body, Duration::ZERO).await
    }

    /// Enqueues a body that becomes visible after `delay` (at most [`MAX_DELAY`]), as a new
    /// message: its receive count starts again.
    async fn send_delayed(&self, body: &str, delay: Duration) -> Result<String, QueueError>;

    /// Up to `max` visible messages, hidden from other receivers for `visibility`.
    async fn receive(
        &self,
        max: u32,
        visibility: Duration,
    ) -> Result<Vec<QueuedMessage>, QueueError>;

    /// Acknowledges a delivery: the message is done and will not come back.
    async fn delete(&self, receipt: &str) -> Result<(), QueueError>;

    /// Waits until a message may have been sent, at most `up_to`: a queue that can tell wakes
    /// its consumer as soon as something is sent; others just wait (SQS is polled by the event
    /// source, never by this).
    async fn until_sent(&self, up_to: Duration) {
        tokio::time::sleep(up_to).await;
    }

    /// Hides a delivery until `delay` has passed (SQS's `ChangeMessageVisibility`): the step comes
    /// back after the wait a provider asked for, without sleeping through it.
    async fn postpone(&self, receipt: &str, delay: Duration) -> Result<(), QueueError>;

    /// Messages moved to the dead letters, oldest first (they stay there).
    async fn dead_letters(&self, max: u32) -> Result<Vec<QueuedMessage>, QueueError>;

    async fn ping(&self) -> Result<(), QueueError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_messages_round_trip() {
        let message = StepMessage::new(BookId::generate(), Step::Illustrate { page: 3 });
        let json = serde_json::to_string(&message).unwrap();
        assert!(
            json.contains(r#""step":"illustrate""#) && json.contains(r#""page":3"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<StepMessage>(&json).unwrap(), message);
        assert_eq!(Step::Narrate { page: 12 }.key(), "narrate-12");
    }
}
