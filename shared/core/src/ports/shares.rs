//! Share links: found by their token's hash, revoked a book at a time by moving the book's share
//! generation (one write, so no link of the book outlives the revoke).

use super::store_error::StoreError;
use crate::domain::book::BookId;
use crate::domain::share::Share;
use crate::domain::user::UserId;
use async_trait::async_trait;

#[async_trait]
pub trait ShareStore: Send + Sync {
    /// The book's share generation: 0 until its links are first revoked.
    async fn share_generation(&self, user: &UserId, book: &BookId) -> Result<u64, StoreError>;

    /// Saves a new link.
    async fn put_share(&self, share: &Share) -> Result<(), StoreError>;

    /// The link with this token hash and its book's current share generation.
    async fn find_share(&self, token_hash: &str) -> Result<Option<(Share, u64)>, StoreError>;

    /// Ends every link of the user's book at once: the book's generation moves by one, atomically.
    async fn revoke_shares(&self, user: &UserId, book: &BookId) -> Result<(), StoreError>;
}
