use crate::database::Database;
use async_trait::async_trait;
use rusqlite::{Connection, TransactionBehavior, params};
use std::sync::Arc;
use std::time::Duration;
use storybook_core::ports::queue::{MAX_RECEIVES, QueueError, QueuedMessage, StepQueue};

/// The step queue in the same SQLite database as the state: durable, so unfinished work survives
/// a restart, with SQS's delivery rules (visibility timeout, dead letters past [`MAX_RECEIVES`]).
#[derive(Clone)]
pub struct SqliteQueue {
    db: Database,
    /// Wakes the local worker when a message is sent for now, so that a book's next stage
    /// starts at once rather than at the worker's next look.
    sent: Arc<tokio::sync::Notify>,
}

impl SqliteQueue {
    pub fn new(db: Database) -> Self {
        Self {
            db,
            sent: Arc::new(tokio::sync::Notify::new()),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    ) -> Result<T, QueueError> {
        self.db.run(work).await.map_err(QueueError::Unavailable)
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl SqliteQueue {
    /// Makes every message received by an earlier run of this process visible again at once.
    /// Local mode is the queue's only consumer, so at start-up nobody is still working on them.
    pub async fn release_in_flight(&self) -> Result<u64, QueueError> {
        self.run(|c| {
            Ok(c.execute(
                "UPDATE queue_messages SET visible_at_ms = ?1 WHERE dead = 0 AND visible_at_ms > ?1",
                [now_ms()],
            )? as u64)
        })
        .await
    }
}

#[async_trait]
impl StepQueue for SqliteQueue {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn send_delayed(&self, body: &str, delay: Duration) -> Result<String, QueueError> {
        let body = body.to_owned();
        let delay = delay
            .min(storybook_core::ports::queue::MAX_DELAY)
            .as_millis() as i64;
        let id = uuid::Uuid::new_v4().to_string();
        let message_id = id.clone();
        self.run(move |c| {
            c.execute(
                "INSERT INTO queue_messages (id, sent_order, body, visible_at_ms)
                 VALUES (?1, (SELECT COALESCE(MAX(sent_order), 0) + 1 FROM queue_messages), ?2, ?3)",
                params![id, body, now_ms() + delay],
            )?;
            Ok(())
        })
        .await?;
        if delay == 0 {
            // Stored for a worker not waiting yet: its next wait returns at once.
            self.sent.notify_one();
        }
        Ok(message_id)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn until_sent(&self, up_to: Duration) {
        let _ = tokio::time::timeout(up_to, self.sent.notified()).await;
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn receive(
        &self,
        max: u32,
        visibility: Duration,
    ) -> Result<Vec<QueuedMessage>, QueueError> {
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let now = now_ms();
            // Like a redrive policy: a message already received MAX_RECEIVES times moves to the
            // dead letters instead of being delivered again.
            tx.execute(
                "UPDATE queue_messages SET dead = 1, receipt = NULL
                 WHERE dead = 0 AND visible_at_ms <= ?1 AND receive_count >= ?2",
                params![now, MAX_RECEIVES],
            )?;
            let ready: Vec<(String, String, u32)> = tx
                .prepare_cached(
                    "SELECT id, body, receive_count FROM queue_messages
                     WHERE dead = 0 AND visible_at_ms <= ?1 ORDER BY sent_order LIMIT ?2",
                )?
                .query_map(params![now, max], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            let visible_at = now + visibility.as_millis() as i64;
            let mut delivered = Vec::with_capacity(ready.len());
            for (id, body, count) in ready {
                let receipt = uuid::Uuid::new_v4().to_string();
                tx.execute(
                    "UPDATE queue_messages SET receive_count = receive_count + 1, receipt = ?2, visible_at_ms = ?3
                     WHERE id = ?1",
                    params![id, receipt, visible_at],
                )?;
                delivered.push(QueuedMessage { id, receipt, body, receive_count: count + 1 });
            }
            tx.commit()?;
            Ok(delivered)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
        let receipt = receipt.to_owned();
        self.run(move |c| {
            c.execute("DELETE FROM queue_messages WHERE receipt = ?1", [receipt])?;
            Ok(())
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn postpone(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
        let receipt = receipt.to_owned();
        let delay = delay.min(storybook_core::ports::queue::MAX_POSTPONE);
        self.run(move |c| {
            c.execute(
                "UPDATE queue_messages SET visible_at_ms = ?2 WHERE receipt = ?1",
                params![receipt, now_ms() + delay.as_millis() as i64],
            )?;
            Ok(())
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn dead_letters(&self, max: u32) -> Result<Vec<QueuedMessage>, QueueError> {
        self.run(move |c| {
            let rows = c
                .prepare_cached(
                    "SELECT id, body, receive_count FROM queue_messages WHERE dead = 1 ORDER BY sent_order LIMIT ?1",
                )?
                .query_map([max], |r| {
                    Ok(QueuedMessage {
                        id: r.get(0)?,
                        receipt: String::new(),
                        body: r.get(1)?,
                        receive_count: r.get(2)?,
                    })
                })?
                .collect::<Result<_, _>>()?;
            Ok(rows)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn ping(&self) -> Result<(), QueueError> {
        self.run(|c| {
            Ok(
                c.query_row("SELECT COUNT(*) FROM queue_messages WHERE 0", [], |r| {
                    r.get::<_, i64>(0)
                })
                .map(|_| ())?,
            )
        })
        .await
    }
}
