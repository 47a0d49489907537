//! Share links (the shares table, by token hash) and each book's share generation
//! (share_generations), which a revoke moves.

use super::*;
use storybook_core::domain::share::Share;
use storybook_core::ports::shares::ShareStore;

fn generation(connection: &Connection, user: &str, book: &str) -> anyhow::Result<u64> {
    let generation: Option<i64> = connection
        .query_row(
            "SELECT generation FROM share_generations WHERE user_id = ?1 AND book_id = ?2",
            [user, book],
            |r| r.get(0),
        )
        .optional()?;
    Ok(generation.unwrap_or(0) as u64)
}

#[async_trait]
impl ShareStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn share_generation(&self, user: &UserId, book: &BookId) -> Result<u64, StoreError> {
        let (user, book) = (user.as_str().to_owned(), book.as_str().to_owned());
        self.run(move |c| generation(c, &user, &book)).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %share.user.truncated()))]
    async fn put_share(&self, share: &Share) -> Result<(), StoreError> {
        let share = share.clone();
        self.run(move |c| {
            c.execute(
                "INSERT INTO shares (token_hash, user_id, book_id, generation, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    share.token_hash,
                    share.user.as_str(),
                    share.book.as_str(),
                    share.generation as i64,
                    share.created_at.to_rfc3339(),
                    share.expires_at.to_rfc3339(),
                ],
            )?;
            Ok(())
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn find_share(&self, token_hash: &str) -> Result<Option<(Share, u64)>, StoreError> {
        let token_hash = token_hash.to_owned();
        self.run(move |c| {
            type Row = (String, String, i64, String, String, Option<i64>);
            let row: Option<Row> = c
                .query_row(
                    "SELECT s.user_id, s.book_id, s.generation, s.created_at, s.expires_at, g.generation
                     FROM shares s LEFT JOIN share_generations g
                       ON g.user_id = s.user_id AND g.book_id = s.book_id
                     WHERE s.token_hash = ?1",
                    [&token_hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
                )
                .optional()?;
            let Some((user, book, made_in, created_at, expires_at, current)) = row else {
                return Ok(None);
            };
            let share = Share {
                token_hash,
                user: UserId::from_stored(user),
                book: BookId::parse(&book).map_err(|e| StoreError::Corrupt(e.0))?,
                generation: made_in as u64,
                created_at: time(created_at)?,
                expires_at: time(expires_at)?,
            };
            Ok(Some((share, current.unwrap_or(0) as u64)))
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn revoke_shares(&self, user: &UserId, book: &BookId) -> Result<(), StoreError> {
        let (user, book) = (user.as_str().to_owned(), book.as_str().to_owned());
        self.run(move |c| {
            c.execute(
                "INSERT INTO share_generations (user_id, book_id, generation) VALUES (?1, ?2, 1)
                 ON CONFLICT (user_id, book_id) DO UPDATE SET generation = generation + 1",
                [&user, &book],
            )?;
            Ok(())
        })
        .await
    }
}
