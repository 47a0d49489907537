//! User settings.

use super::*;

#[async_trait]
impl SettingsStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn find_settings(&self, user: &UserId) -> Result<Option<UserSettings>, StoreError> {
        self.get(user_pk(user), "SETTINGS")
            .await?
            .map(|item| Document::read(&text(&item, "doc")?))
            .transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn put_settings(&self, user: &UserId, settings: &UserSettings) -> Result<(), StoreError> {
        let doc = Document::write(settings);
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
