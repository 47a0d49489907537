//! API keys: the key items, the index of keys by id, usage counts.

use super::*;

pub(super) fn api_key_pk(hash: &CredentialHash) -> String {
    format!("APIKEY#{}", hash.as_str())
}

/// The index of keys by id: one partition, small (operators' keys, not users').
pub(super) const KEY_INDEX_PK: &str = "APIKEYS";

impl DynamoStore {
    pub(super) fn api_key_put(
        &self,
        r: &ApiKeyRecord,
    ) -> aws_sdk_dynamodb::types::builders::PutBuilder {
        let list = |values: &[String]| {
            AttributeValue::L(values.iter().cloned().map(AttributeValue::S).collect())
        };
        let scopes: Vec<String> = r.scopes.iter().map(|s| s.as_str().to_owned()).collect();
        let mut put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(api_key_pk(&r.hash)))
            .item("sk", s("APIKEY"))
            .item("key_id", s(&r.key_id))
            .item("name", s(&r.name))
            .item("display_prefix", s(&r.display_prefix))
            .item("environment", s(r.environment.as_str()))
            .item("scopes", list(&scopes))
            .item("allowed_ips", list(&r.allowed_ips))
            .item("created_at", s(r.created_at.to_rfc3339()));
        if let Some(at) = r.expires_at {
            // Not the TTL attribute: an expired key must stay readable, to be refused as expired.
            put = put.item("expires_at_text", s(at.to_rfc3339()));
        }
        if let Some(at) = r.revoked_at {
            put = put.item("revoked_at", s(at.to_rfc3339()));
        }
        if let Some(next) = &r.rotated_to {
            put = put.item("rotated_to", s(next));
        }
        put
    }

    pub(super) fn parse_api_key(item: &Item) -> Result<ApiKeyRecord, StoreError> {
        let corrupt = |e: storybook_core::domain::Invalid| StoreError::Corrupt(e.0);
        let strings = |name: &str| -> Result<Vec<String>, StoreError> {
            match item.get(name) {
                None => Ok(Vec::new()),
                Some(AttributeValue::L(values)) => values
                    .iter()
                    .map(|v| match v {
                        AttributeValue::S(raw) => Ok(raw.clone()),
                        _ => Err(StoreError::Corrupt(format!("{name} holds a non-string"))),
                    })
                    .collect(),
                _ => Err(StoreError::Corrupt(format!("{name} is not a list"))),
            }
        };
        let hash = text(item, "pk")?;
        Ok(ApiKeyRecord {
            key_id: text(item, "key_id")?,
            name: text(item, "name")?,
            hash: CredentialHash::from_stored(hash.trim_start_matches("APIKEY#").to_owned()),
            display_prefix: text(item, "display_prefix")?,
            environment: KeyEnvironment::parse(&text(item, "environment")?).map_err(corrupt)?,
            scopes: strings("scopes")?
                .iter()
                .map(|s| Scope::parse(s))
                .collect::<Result<_, _>>()
                .map_err(corrupt)?,
            created_at: time(item, "created_at")?,
            expires_at: optional_time(item, "expires_at_text")?,
            revoked_at: optional_time(item, "revoked_at")?,
            allowed_ips: strings("allowed_ips")?,
            rotated_to: optional_text(item, "rotated_to"),
        })
    }
}

#[async_trait]
impl ApiKeyStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn put_api_key(&self, r: &ApiKeyRecord) -> Result<(), StoreError> {
        let record = self
            .api_key_put(r)
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(StoreError::unavailable)?;
        let index = Put::builder()
            .table_name(&self.table)
            .item("pk", s(KEY_INDEX_PK))
            .item("sk", s(format!("KEY#{}", r.key_id)))
            .item("hash", s(r.hash.as_str()))
            .item("created_at", s(r.created_at.to_rfc3339()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(StoreError::unavailable)?;
        // A key stored before (same hash) cancels the transaction: the first record stands.
        self.swap(vec![
            TransactWriteItem::builder().put(record).build(),
            TransactWriteItem::builder().put(index).build(),
        ])
        .await
        .map(|_| ())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn find_api_key(
        &self,
        hash: &CredentialHash,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.get(api_key_pk(hash), "APIKEY")
            .await?
            .as_ref()
            .map(Self::parse_api_key)
            .transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(key_id = %key_id))]
    async fn find_api_key_by_id(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let Some(index) = self
            .get(KEY_INDEX_PK.into(), &format!("KEY#{key_id}"))
            .await?
        else {
            return Ok(None);
        };
        self.find_api_key(&CredentialHash::from_stored(text(&index, "hash")?))
            .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let mut keys = Vec::new();
        for index in self.query_all(KEY_INDEX_PK.into(), "KEY#", false).await? {
            if let Some(key) = self
                .find_api_key(&CredentialHash::from_stored(text(&index, "hash")?))
                .await?
            {
                keys.push(key);
            }
        }
        keys.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.key_id.cmp(&a.key_id))
        });
        Ok(keys)
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn update_api_key(&self, r: &ApiKeyRecord) -> Result<(), StoreError> {
        let put = self
            .api_key_put(r)
            .build()
            .map_err(StoreError::unavailable)?;
        let answer = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(put.item))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match answer {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Err(StoreError::Missing("api key")),
            Err(e) => Err(StoreError::Unavailable(describe(e))),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(key_id = %key_id))]
    async fn record_key_use(
        &self,
        key_id: &str,
        route: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let expires = (at + chrono::Duration::days(storybook_core::domain::audit::RETENTION_DAYS))
            .timestamp();
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("USAGE#{key_id}")))
            .key("sk", s(format!("{}#{route}", at.format("%Y-%m-%d"))))
            .update_expression("ADD #count :one SET last_used_at = :at, expires_at = :expires")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":at", s(at.to_rfc3339()))
            .expression_attribute_values(":expires", n(expires))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe(e)))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(key_id = %key_id))]
    async fn key_usage(&self, key_id: &str) -> Result<Vec<KeyUsage>, StoreError> {
        let now = self.clock.now().timestamp();
        let mut usage = Vec::new();
        for item in self.query_all(format!("USAGE#{key_id}"), "", true).await? {
            if num(&item, "expires_at")? < now {
                continue;
            }
            let sk = text(&item, "sk")?;
            let (day, route) = sk
                .split_once('#')
                .ok_or_else(|| StoreError::Corrupt("usage key".into()))?;
            usage.push(KeyUsage {
                day: day.to_owned(),
                route: route.to_owned(),
                count: num(&item, "count")? as u64,
                last_used_at: time(&item, "last_used_at")?,
            });
        }
        // Newest day first, routes in order within a day.
        usage.sort_by(|a, b| b.day.cmp(&a.day).then_with(|| a.route.cmp(&b.route)));
        Ok(usage)
    }
}
