//! Limit counters, one row per counter and window.

use super::*;

#[async_trait]
impl LimitStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn peek(&self, counter: &str, window: Window) -> Result<u32, StoreError> {
        let counter = counter.to_owned();
        self.run(move |c| {
            let count: Option<u32> = c
                .query_row(
                    "SELECT count FROM limit_counters WHERE counter = ?1 AND window_start = ?2",
                    params![counter, window.start.timestamp()],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(count.unwrap_or(0))
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn give_back(&self, counter: &str, window: Window) -> Result<(), StoreError> {
        let counter = counter.to_owned();
        self.run(move |c| {
            c.execute(
                "UPDATE limit_counters SET count = count - 1
                 WHERE counter = ?1 AND window_start = ?2 AND count > 0",
                params![counter, window.start.timestamp()],
            )?;
            Ok(())
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn take(
        &self,
        counter: &str,
        limit: u32,
        window: Window,
    ) -> Result<LimitDecision, StoreError> {
        let counter = counter.to_owned();
        let now = self.clock.now().timestamp();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // Old windows are dead weight; sweeping them here keeps the table small without a job.
            tx.execute("DELETE FROM limit_counters WHERE expires_at < ?1", [now])?;
            let count: u32 = tx.query_row(
                "INSERT INTO limit_counters (counter, window_start, count, expires_at) VALUES (?1, ?2, 1, ?3)
                 ON CONFLICT (counter, window_start) DO UPDATE SET count = count + 1
                 RETURNING count",
                params![counter, window.start.timestamp(), window.end.timestamp()],
                |r| r.get(0),
            )?;
            tx.commit()?;
            Ok(LimitDecision {
                allowed: count <= limit,
                limit,
                remaining: limit.saturating_sub(count),
                reset_after: window.reset_after(),
            })
        })
        .await
    }
}
