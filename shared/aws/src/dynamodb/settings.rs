//! User settings.

use super::*;

#[async_trait]
impl SettingsStore for DynamoStore {
    async fn find_settings(&self, user: &UserId) -> Result<Option<UserSettings>, StoreError> {
        self.get(user_pk(user), "SETTINGS")
            .await?
            .map(|item| {
                serde_json::from_str(&text(&item, "doc")?)
                    .map_err(|e| StoreError::Corrupt(format!("settings: {e}")))
            })
            .transpose()
    }

    async fn put_settings(&self, user: &UserId, settings: &UserSettings) -> Result<(), StoreError> {
        let doc = serde_json::to_string(settings).map_err(StoreError::unavailable)?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(user_pk(user)))
            .item("sk", s("SETTINGS"))
            .item("doc", s(doc))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe(e)))?;
        Ok(())
    }
}
