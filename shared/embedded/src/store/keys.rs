//! API keys and their usage counts.

use super::*;

pub(super) const KEY_COLUMNS: &str = "hash, key_id, name, display_prefix, environment, scopes, created_at, expires_at, \
                           revoked_at, allowed_ips, rotated_to";

pub(super) fn key_from_row(r: &rusqlite::Row) -> rusqlite::Result<[Option<String>; 11]> {
    let mut values: [Option<String>; 11] = Default::default();
    for (i, value) in values.iter_mut().enumerate() {
        *value = r.get(i)?;
    }
    Ok(values)
}

pub(super) fn key_record(values: [Option<String>; 11]) -> anyhow::Result<ApiKeyRecord> {
    let [
        hash,
        key_id,
        name,
        display_prefix,
        environment,
        scopes,
        created_at,
        expires_at,
        revoked_at,
        allowed_ips,
        rotated_to,
    ] = values;
    let corrupt = |e: storybook_core::domain::Invalid| StoreError::Corrupt(e.0);
    let required = |v: Option<String>| {
        v.ok_or_else(|| StoreError::Corrupt("an API key column is empty".into()))
    };
    let list = |v: Option<String>| -> Vec<String> {
        v.unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    Ok(ApiKeyRecord {
        key_id: required(key_id)?,
        name: required(name)?,
        hash: CredentialHash::from_stored(required(hash)?),
        display_prefix: required(display_prefix)?,
        environment: KeyEnvironment::parse(&required(environment)?).map_err(corrupt)?,
        scopes: list(scopes)
            .iter()
            .map(|s| Scope::parse(s))
            .collect::<Result<_, _>>()
            .map_err(corrupt)?,
        created_at: time(required(created_at)?)?,
        expires_at: expires_at.map(time).transpose()?,
        revoked_at: revoked_at.map(time).transpose()?,
        allowed_ips: list(allowed_ips),
        rotated_to,
    })
}

pub(super) fn key_params(r: &ApiKeyRecord) -> [Option<String>; 11] {
    let scopes: Vec<&str> = r.scopes.iter().map(|s| s.as_str()).collect();
    [
        Some(r.hash.as_str().to_owned()),
        Some(r.key_id.clone()),
        Some(r.name.clone()),
        Some(r.display_prefix.clone()),
        Some(r.environment.as_str().to_owned()),
        Some(scopes.join(",")),
        Some(r.created_at.to_rfc3339()),
        r.expires_at.map(|t| t.to_rfc3339()),
        r.revoked_at.map(|t| t.to_rfc3339()),
        Some(r.allowed_ips.join(",")),
        r.rotated_to.clone(),
    ]
}

impl SqliteStore {
    pub(super) async fn keys_where(
        &self,
        condition: &'static str,
        value: String,
    ) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.run(move |c| {
            let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE {condition} ORDER BY created_at DESC, key_id DESC");
            let rows: Vec<[Option<String>; 11]> =
                c.prepare_cached(&sql)?.query_map([value], key_from_row)?.collect::<Result<_, _>>()?;
            rows.into_iter().map(key_record).collect()
        })
        .await
    }
}

#[async_trait]
impl ApiKeyStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(key_id = %record.key_id))]
    async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        let values = key_params(record);
        self.run(move |c| {
            c.execute(
                &format!("INSERT INTO api_keys ({KEY_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
                          ON CONFLICT (hash) DO NOTHING"),
                rusqlite::params_from_iter(values),
            )?;
            Ok(())
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn find_api_key(
        &self,
        hash: &CredentialHash,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self
            .keys_where("hash = ?1", hash.as_str().to_owned())
            .await?
            .pop())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(key_id = %key_id))]
    async fn find_api_key_by_id(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        Ok(self
            .keys_where("key_id = ?1", key_id.to_owned())
            .await?
            .pop())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        self.keys_where("?1 = ?1", String::new()).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(key_id = %record.key_id))]
    async fn update_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        let values = key_params(record);
        self.run(move |c| {
            let changed = c.execute(
                "UPDATE api_keys SET key_id = ?2, name = ?3, display_prefix = ?4, environment = ?5, scopes = ?6,
                     created_at = ?7, expires_at = ?8, revoked_at = ?9, allowed_ips = ?10, rotated_to = ?11
                 WHERE hash = ?1",
                rusqlite::params_from_iter(values),
            )?;
            if changed == 0 {
                return Err(StoreError::Missing("api key").into());
            }
            Ok(())
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(key_id = %key_id))]
    async fn record_key_use(
        &self,
        key_id: &str,
        route: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (key_id, route) = (key_id.to_owned(), route.to_owned());
        self.run(move |c| {
            c.execute(
                "INSERT INTO key_usage (key_id, day, route, count, last_used_at) VALUES (?1, ?2, ?3, 1, ?4)
                 ON CONFLICT (key_id, day, route) DO UPDATE SET count = count + 1, last_used_at = excluded.last_used_at",
                params![key_id, at.format("%Y-%m-%d").to_string(), route, at.to_rfc3339()],
            )?;
            Ok(())
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(key_id = %key_id))]
    async fn key_usage(&self, key_id: &str) -> Result<Vec<KeyUsage>, StoreError> {
        let key_id = key_id.to_owned();
        let oldest = (self.clock.now()
            - chrono::Duration::days(storybook_core::domain::audit::RETENTION_DAYS))
        .format("%Y-%m-%d")
        .to_string();
        self.run(move |c| {
            let rows: Vec<(String, String, i64, String)> = c
                .prepare_cached(
                    "SELECT day, route, count, last_used_at FROM key_usage WHERE key_id = ?1 AND day >= ?2
                     ORDER BY day DESC, route",
                )?
                .query_map(params![key_id, oldest], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<_, _>>()?;
            rows.into_iter()
                .map(|(day, route, count, last)| Ok(KeyUsage { day, route, count: count as u64, last_used_at: time(last)? }))
                .collect()
        })
        .await
    }
}
