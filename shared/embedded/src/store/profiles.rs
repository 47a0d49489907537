//! An account's child profiles: the profiles table, one row per account.

use super::*;
use storybook_core::documents::Document;
use storybook_core::domain::profile::Profiles;
use storybook_core::ports::profiles::{ProfileStore, StoredProfiles};

fn read_profiles(connection: &Connection, user: &str) -> anyhow::Result<StoredProfiles> {
    let row: Option<(String, i64)> = connection
        .query_row(
            "SELECT doc, version FROM profiles WHERE user_id = ?1",
            [user],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(match row {
        Some((doc, version)) => StoredProfiles {
            profiles: Profiles::read(&doc)?,
            version: version as u64,
        },
        None => StoredProfiles::default(),
    })
}

#[async_trait]
impl ProfileStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn profiles(&self, user: &UserId) -> Result<StoredProfiles, StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |c| read_profiles(c, &user)).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn replace_profiles(
        &self,
        user: &UserId,
        read: u64,
        profiles: &Profiles,
    ) -> Result<bool, StoreError> {
        let (user, doc) = (user.as_str().to_owned(), profiles.write());
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if read_profiles(&tx, &user)?.version != read {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO profiles (user_id, version, doc) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_id) DO UPDATE SET version = excluded.version, doc = excluded.doc",
                params![user, read as i64 + 1, doc],
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }
}
