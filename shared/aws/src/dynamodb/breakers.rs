//! Circuit breakers, one item per provider, version-guarded.

use super::*;

#[async_trait]
impl BreakerStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(provider = %provider))]
    async fn breaker(&self, provider: &str) -> Result<(BreakerRecord, u64), StoreError> {
        match self.get(format!("BREAKER#{provider}"), "BREAKER").await? {
            Some(item) => {
                let record = Document::read(&text(&item, "doc")?)?;
                Ok((record, num(&item, "version")? as u64))
            }
            None => Ok((BreakerRecord::default(), 0)),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(provider = %provider))]
    async fn put_breaker(
        &self,
        provider: &str,
        record: &BreakerRecord,
        expected: u64,
    ) -> Result<bool, StoreError> {
        let doc = Document::write(record);
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("BREAKER#{provider}")))
            .item("sk", s("BREAKER"))
            .item("doc", s(doc))
            .item("version", n(expected as i64 + 1));
        let put = if expected == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("version = :expected")
                .expression_attribute_values(":expected", n(expected as i64))
        };
        conditionally_written(put.send().await)
    }
}
