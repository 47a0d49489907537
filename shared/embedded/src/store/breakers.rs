//! Circuit breakers, one row per provider, version-guarded.

use super::*;

#[async_trait]
impl BreakerStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(provider = %provider))]
    async fn breaker(&self, provider: &str) -> Result<(BreakerRecord, u64), StoreError> {
        let provider = provider.to_owned();
        self.run(move |c| {
            let row: Option<(String, i64)> = c
                .query_row(
                    "SELECT doc, version FROM breakers WHERE provider = ?1",
                    params![provider],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            Ok(match row {
                Some((doc, version)) => (BreakerRecord::read(&doc)?, version as u64),
                None => (BreakerRecord::default(), 0),
            })
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(provider = %provider))]
    async fn put_breaker(
        &self,
        provider: &str,
        record: &BreakerRecord,
        expected: u64,
    ) -> Result<bool, StoreError> {
        let provider = provider.to_owned();
        let doc = Document::write(record);
        self.run(move |c| {
            let changed = if expected == 0 {
                c.execute(
                    "INSERT INTO breakers (provider, doc, version) VALUES (?1, ?2, 1) ON CONFLICT (provider) DO NOTHING",
                    params![provider, doc],
                )?
            } else {
                c.execute(
                    "UPDATE breakers SET doc = ?2, version = version + 1 WHERE provider = ?1 AND version = ?3",
                    params![provider, doc, expected as i64],
                )?
            };
            Ok(changed == 1)
        })
        .await
    }
}
