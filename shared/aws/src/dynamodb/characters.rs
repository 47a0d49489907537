//! A parent's characters: `CHARACTER#<id>` items in the user's partition (a user has few; the
//! list is sorted by creation here). Erasing the user deletes the partition, these with it.

use super::*;

fn character_sk(id: &CharacterId) -> String {
    format!("CHARACTER#{}", id.as_str())
}

impl DynamoStore {
    /// Writes the character if `condition` holds on its item; false when it does not.
    async fn put_character_if(
        &self,
        character: &Character,
        condition: &str,
    ) -> Result<bool, StoreError> {
        let written = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(user_pk(&character.user)))
            .item("sk", s(character_sk(&character.id)))
            .item("doc", s(character.write()))
            .condition_expression(condition)
            .send()
            .await;
        conditionally_written(written)
    }
}

#[async_trait]
impl CharacterStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(character = %character.id.as_str()))]
    async fn put_character(&self, character: &Character) -> Result<bool, StoreError> {
        self.put_character_if(character, "attribute_not_exists(pk)")
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(character = %character.id.as_str()))]
    async fn replace_character(&self, character: &Character) -> Result<bool, StoreError> {
        self.put_character_if(character, "attribute_exists(pk)")
            .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(character = %id.as_str()))]
    async fn find_character(
        &self,
        user: &UserId,
        id: &CharacterId,
    ) -> Result<Option<Character>, StoreError> {
        self.get(user_pk(user), &character_sk(id))
            .await?
            .map(|item| Character::read(&text(&item, "doc")?))
            .transpose()
    }

    #[tracing::instrument(level = "debug", skip_all, fields(user = %user.truncated()))]
    async fn characters_of(&self, user: &UserId) -> Result<Vec<Character>, StoreError> {
        let mut characters = self
            .query_all(user_pk(user), "CHARACTER#", false)
            .await?
            .iter()
            .map(|item| Character::read(&text(item, "doc")?))
            .collect::<Result<Vec<_>, _>>()?;
        characters.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        Ok(characters)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(character = %id.as_str()))]
    async fn delete_character(&self, user: &UserId, id: &CharacterId) -> Result<bool, StoreError> {
        let deleted = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(user_pk(user)))
            .key("sk", s(character_sk(id)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe(e)))?;
        Ok(deleted.attributes().is_some_and(|old| !old.is_empty()))
    }
}
