//! User settings.

use super::*;

#[async_trait]
impl SettingsStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn find_settings(&self, user: &UserId) -> Result<Option<UserSettings>, StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |c| {
            let doc: Option<String> = c
                .query_row("SELECT doc FROM settings WHERE user_id = ?1", [user], |r| {
                    r.get(0)
                })
                .optional()?;
            doc.map(|doc| UserSettings::read(&doc).map_err(anyhow::Error::from))
                .transpose()
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn put_settings(&self, user: &UserId, settings: &UserSettings) -> Result<(), StoreError> {
        let user = user.as_str().to_owned();
        let doc = Document::write(settings);
        self.run(move |c| {
            c.execute(
                "INSERT INTO settings (user_id, doc) VALUES (?1, ?2)
                 ON CONFLICT (user_id) DO UPDATE SET doc = excluded.doc",
                params![user, doc],
            )?;
            Ok(())
        })
        .await
    }
}
