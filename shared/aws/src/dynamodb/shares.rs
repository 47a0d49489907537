//! Share links. A link is `SHARE#{token hash}` / `SHARE` (whose book, made in which share
//! generation, until when; DynamoDB's TTL removes it a day after it expires), noted in its
//! user's partition (`SHARENOTE#{token hash}`) so that erasure finds it. A book's share
//! generation is `USER#{user hash}` / `SHAREGEN#{book id}`, moved by one atomic ADD.

use super::*;
use storybook_core::domain::share::Share;
use storybook_core::ports::shares::ShareStore;

pub(super) const NOTE_PREFIX: &str = "SHARENOTE#";
pub(super) const SHARE: &str = "SHARE";

pub(super) fn share_pk(token_hash: &str) -> String {
    format!("SHARE#{token_hash}")
}

fn generation_sk(book: &BookId) -> String {
    format!("SHAREGEN#{}", book.as_str())
}

impl DynamoStore {
    async fn generation_of(&self, user: &UserId, book: &BookId) -> Result<u64, StoreError> {
        match self.get(user_pk(user), &generation_sk(book)).await? {
            Some(item) => Ok(num(&item, "generation")? as u64),
            None => Ok(0),
        }
    }
}

#[async_trait]
impl ShareStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn share_generation(&self, user: &UserId, book: &BookId) -> Result<u64, StoreError> {
        self.generation_of(user, book).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %share.user.truncated()))]
    async fn put_share(&self, share: &Share) -> Result<(), StoreError> {
        let expires = (share.expires_at + chrono::Duration::days(1)).timestamp();
        let link = Put::builder()
            .table_name(&self.table)
            .item("pk", s(share_pk(&share.token_hash)))
            .item("sk", s(SHARE))
            .item("user", s(share.user.as_str()))
            .item("book_id", s(share.book.as_str()))
            .item("generation", n(share.generation as i64))
            .item("created_at", s(share.created_at.to_rfc3339()))
            .item("ends_at", s(share.expires_at.to_rfc3339()))
            .item("expires_at", n(expires))
            .build()
            .map_err(StoreError::unavailable)?;
        let note = Put::builder()
            .table_name(&self.table)
            .item("pk", s(user_pk(&share.user)))
            .item("sk", s(format!("{NOTE_PREFIX}{}", share.token_hash)))
            .item("expires_at", n(expires))
            .build()
            .map_err(StoreError::unavailable)?;
        let items = vec![
            TransactWriteItem::builder().put(link).build(),
            TransactWriteItem::builder().put(note).build(),
        ];
        until_settled(|| self.transact(items.clone())).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn find_share(&self, token_hash: &str) -> Result<Option<(Share, u64)>, StoreError> {
        let Some(item) = self.get(share_pk(token_hash), SHARE).await? else {
            return Ok(None);
        };
        let share = Share {
            token_hash: token_hash.to_owned(),
            user: UserId::from_stored(text(&item, "user")?),
            book: BookId::parse(&text(&item, "book_id")?).map_err(|e| StoreError::Corrupt(e.0))?,
            generation: num(&item, "generation")? as u64,
            created_at: time(&item, "created_at")?,
            expires_at: time(&item, "ends_at")?,
        };
        let current = self.generation_of(&share.user, &share.book).await?;
        Ok(Some((share, current)))
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn revoke_shares(&self, user: &UserId, book: &BookId) -> Result<(), StoreError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(user_pk(user)))
            .key("sk", s(generation_sk(book)))
            .update_expression("ADD generation :one")
            .expression_attribute_values(":one", n(1))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe(e)))?;
        Ok(())
    }
}
