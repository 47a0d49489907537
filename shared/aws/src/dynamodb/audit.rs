//! The audit log, one partition per day.

use super::*;

pub(super) fn audit_day_pk(day: chrono::NaiveDate) -> String {
    format!("AUDIT#{}", day.format("%Y-%m-%d"))
}

#[async_trait]
impl AuditStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn append_audit(&self, e: &AuditEntry) -> Result<(), StoreError> {
        let expires = (e.at
            + chrono::Duration::days(storybook_core::domain::audit::RETENTION_DAYS))
        .timestamp();
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(audit_day_pk(e.at.date_naive())))
            .item("sk", s(&e.id))
            .item("at", s(e.at.to_rfc3339()))
            .item("event", s(e.event.as_str()))
            .item("client_ip", s(&e.client_ip))
            .item("route", s(&e.route))
            .item("expires_at", n(expires));
        if let Some(credential) = &e.credential {
            put = put.item("credential", s(credential));
        }
        if let Some(detail) = &e.detail {
            put = put.item("detail", s(detail));
        }
        put.send()
            .await
            .map_err(|e| StoreError::Unavailable(describe(e)))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn audit_log(
        &self,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        // One partition a day; walk back day by day from the cursor's day (or today).
        let now = self.clock.now();
        let start_day = before
            .and_then(|id| chrono::NaiveDate::parse_from_str(id.get(..8)?, "%Y%m%d").ok())
            .unwrap_or_else(|| now.date_naive());
        let mut entries = Vec::new();
        for back in 0..=storybook_core::domain::audit::RETENTION_DAYS {
            let day = start_day - chrono::Duration::days(back);
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(audit_day_pk(day)))
                .scan_index_forward(false)
                .limit((limit as usize - entries.len()) as i32);
            query = match before {
                Some(id) => query
                    .key_condition_expression("pk = :pk AND sk < :before")
                    .expression_attribute_values(":before", s(id)),
                None => query.key_condition_expression("pk = :pk"),
            };
            let answer = query
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(describe(e)))?;
            for item in answer.items.unwrap_or_default() {
                if num(&item, "expires_at")? < now.timestamp() {
                    continue;
                }
                let event = AuditEvent::parse(&text(&item, "event")?)
                    .ok_or_else(|| StoreError::Corrupt("audit event".into()))?;
                entries.push(AuditEntry {
                    id: text(&item, "sk")?,
                    at: time(&item, "at")?,
                    event,
                    credential: optional_text(&item, "credential"),
                    client_ip: text(&item, "client_ip")?,
                    route: text(&item, "route")?,
                    detail: optional_text(&item, "detail"),
                });
            }
            if entries.len() >= limit as usize {
                break;
            }
        }
        Ok(entries)
    }
}
