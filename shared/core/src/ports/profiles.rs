//! An account's child profiles, read and replaced as one set.

use super::store_error::StoreError;
use crate::domain::profile::Profiles;
use crate::domain::user::UserId;
use async_trait::async_trait;

/// The set as stored and its version (0: none stored yet).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoredProfiles {
    pub profiles: Profiles,
    pub version: u64,
}

#[async_trait]
pub trait ProfileStore: Send + Sync {
    async fn profiles(&self, user: &UserId) -> Result<StoredProfiles, StoreError>;

    /// Stores `profiles` as version `read + 1` if the set is still at version `read`; false
    /// when another change came first (read again and decide again).
    async fn replace_profiles(
        &self,
        user: &UserId,
        read: u64,
        profiles: &Profiles,
    ) -> Result<bool, StoreError>;
}
