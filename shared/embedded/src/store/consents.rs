//! A parent's consent records.

use super::*;

/// Sortable: RFC 3339 in UTC to the nanosecond, so the latest is the greatest.
fn granted_key(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}

#[async_trait]
impl ConsentStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn latest_consent(&self, user: &UserId) -> Result<Option<Consent>, StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |c| {
            let doc: Option<String> = c
                .query_row(
                    "SELECT doc FROM consents WHERE user_id = ?1 ORDER BY granted_at DESC LIMIT 1",
                    [user],
                    |r| r.get(0),
                )
                .optional()?;
            doc.map(|doc| Consent::read(&doc).map_err(anyhow::Error::from))
                .transpose()
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn add_consent(&self, user: &UserId, consent: &Consent) -> Result<(), StoreError> {
        let user = user.as_str().to_owned();
        let (at, doc) = (granted_key(consent.granted_at), consent.write());
        self.run(move |c| {
            c.execute(
                "INSERT INTO consents (user_id, granted_at, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id, granted_at) DO UPDATE SET doc = excluded.doc",
                params![user, at, doc],
            )?;
            Ok(())
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn revoke_consent(
        &self,
        user: &UserId,
        granted_at: DateTime<Utc>,
        revoked_at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let user = user.as_str().to_owned();
        let at = granted_key(granted_at);
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let doc: Option<String> = tx
                .query_row(
                    "SELECT doc FROM consents WHERE user_id = ?1 AND granted_at = ?2",
                    params![user, at],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(mut consent) = doc.map(|doc| Consent::read(&doc)).transpose()? else {
                return Ok(false);
            };
            if consent.revoked_at.is_some() {
                return Ok(false);
            }
            consent.revoked_at = Some(revoked_at);
            tx.execute(
                "UPDATE consents SET doc = ?3 WHERE user_id = ?1 AND granted_at = ?2",
                params![user, at, consent.write()],
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }
}
