//! A parent's consent records: `CONSENT#<granted at>` items in the user's partition, the latest
//! deciding. Erasing the user deletes the partition, these with it.

use super::*;

/// Sortable: RFC 3339 in UTC to the nanosecond, so the latest is the greatest.
fn consent_sk(at: DateTime<Utc>) -> String {
    format!(
        "CONSENT#{}",
        at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
    )
}

#[async_trait]
impl ConsentStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn latest_consent(&self, user: &UserId) -> Result<Option<Consent>, StoreError> {
        let answer = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(user_pk(user)))
            .expression_attribute_values(":prefix", s("CONSENT#"))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe(e)))?;
        answer
            .items()
            .first()
            .map(|item| Consent::read(&text(item, "doc")?))
            .transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn add_consent(&self, user: &UserId, consent: &Consent) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(user_pk(user)))
            .item("sk", s(consent_sk(consent.granted_at)))
            .item("doc", s(consent.write()))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe(e)))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn revoke_consent(
        &self,
        user: &UserId,
        granted_at: DateTime<Utc>,
        revoked_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let sk = consent_sk(granted_at);
        let Some(item) = self.get(user_pk(user), &sk).await? else {
            return Ok(false);
        };
        let stored = text(&item, "doc")?;
        let mut consent = Consent::read(&stored)?;
        if consent.revoked_at.is_some() {
            return Ok(false);
        }
        consent.revoked_at = Some(revoked_at);
        // Only over the record as read: a concurrent revocation writes once.
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(user_pk(user)))
            .item("sk", s(sk))
            .item("doc", s(consent.write()))
            .condition_expression("doc = :read")
            .expression_attribute_values(":read", s(stored))
            .send()
            .await;
        conditionally_written(written)
    }
}
