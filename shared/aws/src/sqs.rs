use crate::sdk::describe;
use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use std::time::Duration;
use storybook_core::ports::queue::{QueueError, QueuedMessage, StepQueue};

/// The step queue on SQS. Dead letters come from the queue's redrive policy (maxReceiveCount 5,
/// set in `template.yaml` and by [`super::provision`]).
#[derive(Clone)]
pub struct SqsQueue {
    client: crate::sdk::LazyClient<Client>,
    queue_url: String,
    dead_letter_url: String,
}

impl SqsQueue {
    pub fn new(
        client: impl Into<crate::sdk::LazyClient<Client>>,
        queue_url: impl Into<String>,
        dead_letter_url: impl Into<String>,
    ) -> Self {
        Self {
            client: client.into(),
            queue_url: queue_url.into(),
            dead_letter_url: dead_letter_url.into(),
        }
    }

    async fn receive_from(
        &self,
        url: &str,
        max: u32,
        visibility: Duration,
    ) -> Result<Vec<QueuedMessage>, QueueError> {
        let answer = self
            .client
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(max.clamp(1, 10) as i32)
            .visibility_timeout(visibility.as_secs() as i32)
            // Short polling: Lambda's event source polls for us in production, and tests run
            // against a single-threaded moto that a long poll would block.
            .wait_time_seconds(0)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .send()
            .await
            .map_err(|e| QueueError::Unavailable(describe(e)))?;
        Ok(answer
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(|m| QueuedMessage {
                receive_count: m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1),
                id: m.message_id.unwrap_or_default(),
                receipt: m.receipt_handle.unwrap_or_default(),
                body: m.body.unwrap_or_default(),
            })
            .collect())
    }
}

#[async_trait]
impl StepQueue for SqsQueue {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn send_delayed(&self, body: &str, delay: Duration) -> Result<String, QueueError> {
        let seconds = delay
            .min(storybook_core::ports::queue::MAX_DELAY)
            .as_secs_f64()
            .ceil() as i32;
        let answer = self
            .client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .delay_seconds(seconds)
            .send()
            .await
            .map_err(|e| QueueError::Unavailable(describe(e)))?;
        Ok(answer.message_id.unwrap_or_default())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn receive(
        &self,
        max: u32,
        visibility: Duration,
    ) -> Result<Vec<QueuedMessage>, QueueError> {
        self.receive_from(&self.queue_url, max, visibility).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(|e| QueueError::Unavailable(describe(e)))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn postpone(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        let seconds = delay
            .min(storybook_core::ports::queue::MAX_POSTPONE)
            .as_secs_f64()
            .ceil() as i32;
        self.client
            .change_message_visibility()
            .queue_url(&self.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(seconds)
            .send()
            .await
            .map_err(|e| QueueError::Unavailable(describe(e)))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn dead_letters(&self, max: u32) -> Result<Vec<QueuedMessage>, QueueError> {
        // A zero visibility timeout leaves them where they are for the next look.
        self.receive_from(&self.dead_letter_url, max, Duration::ZERO)
            .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn ping(&self) -> Result<(), QueueError> {
        self.client
            .get_queue_attributes()
            .queue_url(&self.queue_url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| QueueError::Unavailable(describe(e)))?;
        Ok(())
    }
}
