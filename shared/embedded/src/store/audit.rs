//! The audit log.

use super::*;

#[async_trait]
impl AuditStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        let e = entry.clone();
        self.run(move |c| {
            let expires = (e.at + chrono::Duration::days(storybook_core::domain::audit::RETENTION_DAYS)).timestamp();
            c.execute(
                "INSERT INTO audit_log (id, at, event, credential, client_ip, route, detail, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![e.id, e.at.to_rfc3339(), e.event.as_str(), e.credential, e.client_ip, e.route, e.detail, expires],
            )?;
            Ok(())
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn audit_log(
        &self,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let before = before.map(str::to_owned).unwrap_or_else(|| "~".into());
        let now = self.clock.now().timestamp();
        self.run(move |c| {
            let rows: Vec<[Option<String>; 7]> = c
                .prepare_cached(
                    "SELECT id, at, event, credential, client_ip, route, detail FROM audit_log
                     WHERE id < ?1 AND expires_at > ?2 ORDER BY id DESC LIMIT ?3",
                )?
                .query_map(params![before, now, limit], |r| {
                    let mut values: [Option<String>; 7] = Default::default();
                    for (i, value) in values.iter_mut().enumerate() {
                        *value = r.get(i)?;
                    }
                    Ok(values)
                })?
                .collect::<Result<_, _>>()?;
            rows.into_iter()
                .map(|[id, at, event, credential, client_ip, route, detail]| {
                    let event = event
                        .as_deref()
                        .and_then(AuditEvent::parse)
                        .ok_or_else(|| StoreError::Corrupt("audit event".into()))?;
                    Ok(AuditEntry {
                        id: id.unwrap_or_default(),
                        at: time(at.unwrap_or_default())?,
                        event,
                        credential,
                        client_ip: client_ip.unwrap_or_default(),
                        route: route.unwrap_or_default(),
                        detail,
                    })
                })
                .collect()
        })
        .await
    }
}
