//! Limit counters, one item per counter and window, expiring by TTL.

use super::*;

/// One counter's item for one window.
pub(super) fn limit_pk(counter: &str, window: Window) -> String {
    format!("LIMIT#{counter}#{}", window.start.timestamp())
}

#[async_trait]
impl LimitStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn peek(&self, counter: &str, window: Window) -> Result<u32, StoreError> {
        match self.get(limit_pk(counter, window), "LIMIT").await? {
            Some(item) if num(&item, "expires_at")? >= self.clock.now().timestamp() => {
                Ok(u32::try_from(num(&item, "count")?).unwrap_or(u32::MAX))
            }
            _ => Ok(0),
        }
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn give_back(&self, counter: &str, window: Window) -> Result<(), StoreError> {
        let given = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(limit_pk(counter, window)))
            .key("sk", s("LIMIT"))
            .update_expression("ADD #count :minus")
            .condition_expression("#count > :zero")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":minus", n(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match given {
            Ok(_) => Ok(()),
            // Nothing left to give back.
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(())
            }
            Err(e) => Err(StoreError::Unavailable(describe(e))),
        }
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn take(
        &self,
        counter: &str,
        limit: u32,
        window: Window,
    ) -> Result<LimitDecision, StoreError> {
        let answer = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(limit_pk(counter, window)))
            .key("sk", s("LIMIT"))
            .update_expression("ADD #count :one SET expires_at = :expires")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expires", n(window.end.timestamp()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe(e)))?;
        let count = num(&answer.attributes.unwrap_or_default(), "count")?;
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        Ok(LimitDecision {
            allowed: count <= limit,
            limit,
            remaining: limit.saturating_sub(count),
            reset_after: window.reset_after(),
        })
    }
}
