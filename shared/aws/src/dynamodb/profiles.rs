//! An account's child profiles: one item, `USER#{user hash}` / `PROFILES` (`doc`, `version`),
//! replaced on condition that its version is the one read; erased with the user's partition.

use super::*;
use storybook_core::domain::profile::Profiles;
use storybook_core::ports::profiles::{ProfileStore, StoredProfiles};

const PROFILES: &str = "PROFILES";

#[async_trait]
impl ProfileStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn profiles(&self, user: &UserId) -> Result<StoredProfiles, StoreError> {
        let Some(item) = self.get(user_pk(user), PROFILES).await? else {
            return Ok(StoredProfiles::default());
        };
        Ok(StoredProfiles {
            profiles: Profiles::read(&text(&item, "doc")?)?,
            version: num(&item, "version")? as u64,
        })
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn replace_profiles(
        &self,
        user: &UserId,
        read: u64,
        profiles: &Profiles,
    ) -> Result<bool, StoreError> {
        self.put_versioned(user_pk(user), PROFILES.into(), profiles.write(), read)
            .await
    }
}
