//! A parent's characters.

use super::*;

#[async_trait]
impl CharacterStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(character = %character.id.as_str()))]
    async fn put_character(&self, character: &Character) -> Result<bool, StoreError> {
        let (id, user) = (
            character.id.as_str().to_owned(),
            character.user.as_str().to_owned(),
        );
        let (at, doc) = (character.created_at.to_rfc3339(), character.write());
        self.run(move |c| {
            Ok(c.execute(
                "INSERT INTO characters (id, user_id, created_at, doc) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (id) DO NOTHING",
                params![id, user, at, doc],
            )? == 1)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(character = %character.id.as_str()))]
    async fn replace_character(&self, character: &Character) -> Result<bool, StoreError> {
        let (id, user) = (
            character.id.as_str().to_owned(),
            character.user.as_str().to_owned(),
        );
        let doc = character.write();
        self.run(move |c| {
            Ok(c.execute(
                "UPDATE characters SET doc = ?3 WHERE id = ?1 AND user_id = ?2",
                params![id, user, doc],
            )? == 1)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(character = %id.as_str()))]
    async fn find_character(
        &self,
        user: &UserId,
        id: &CharacterId,
    ) -> Result<Option<Character>, StoreError> {
        let (user, id) = (user.as_str().to_owned(), id.as_str().to_owned());
        self.run(move |c| {
            let doc: Option<String> = c
                .query_row(
                    "SELECT doc FROM characters WHERE id = ?1 AND user_id = ?2",
                    params![id, user],
                    |r| r.get(0),
                )
                .optional()?;
            doc.map(|doc| Character::read(&doc).map_err(anyhow::Error::from))
                .transpose()
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn characters_of(&self, user: &UserId) -> Result<Vec<Character>, StoreError> {
        let user = user.as_str().to_owned();
        self.run(move |c| {
            let docs: Vec<String> = c
                .prepare_cached(
                    "SELECT doc FROM characters WHERE user_id = ?1 ORDER BY created_at DESC, id DESC",
                )?
                .query_map([user], |r| r.get(0))?
                .collect::<Result<_, _>>()?;
            docs.iter()
                .map(|doc| Character::read(doc).map_err(anyhow::Error::from))
                .collect()
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(character = %id.as_str()))]
    async fn delete_character(&self, user: &UserId, id: &CharacterId) -> Result<bool, StoreError> {
        let (user, id) = (user.as_str().to_owned(), id.as_str().to_owned());
        self.run(move |c| {
            Ok(c.execute(
                "DELETE FROM characters WHERE id = ?1 AND user_id = ?2",
                params![id, user],
            )? == 1)
        })
        .await
    }
}
