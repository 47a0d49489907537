//! The reference step: the hero's reference picture, drawn once per book (or the parent's
//! character's own, reused) and recorded.

use super::*;

impl Pipeline {
    /// The hero's reference picture, made once per book.
    #[tracing::instrument(skip_all)]
    pub(super) async fn draw_reference(&self, id: &BookId) -> Result<(), StepError> {
        let Some(stored) = self.store.find_book(id).await? else {
            return Ok(());
        };
        let book = stored.book;
        if !book.in_production() || book.title.is_none() {
            return Ok(());
        }
        if book.reference_done {
            return self.enqueue_pictures(&book).await;
        }
        // The hero is the parent's character with a reference picture of its own: the book
        // takes a copy of it, and no picture is drawn.
        let hero = match &book.request.hero_character {
            Some(character) => self.store.find_character(&book.user, character).await?,
            None => None,
        };
        if let Some(key) = self.characters_reference(&book, hero.as_ref()).await? {
            return self.record_reference(id, Some(key)).await;
        }
        let prompt = artwork::prompt(&book, PictureKind::Reference, None);
        let key = match self
            .draw(&book, Step::Reference, &prompt, |ext| {
                reference_key(id, ext)
            })
            .await?
        {
            Drawn::Stored(key) => Some(key),
            // Refused twice: the pages are drawn from the sheet alone.
            Drawn::Refused => None,
        };
        if let (Some(key), Some(hero)) = (&key, hero) {
            self.keep_for_character(hero, key).await?;
        }
        self.record_reference(id, key).await
    }

    /// A copy, among the book's files, of the reference picture of the character the hero is,
    /// when it has one.
    pub(super) async fn characters_reference(
        &self,
        book: &Book,
        hero: Option<&Character>,
    ) -> Result<Option<BlobKey>, StepError> {
        let Some(kept) = hero
            .and_then(|character| character.reference_key.as_deref())
            .and_then(|k| BlobKey::parse(k).ok())
        else {
            return Ok(None);
        };
        let Some(picture) = self.blobs.get(&kept).await? else {
            return Ok(None);
        };
        let key = reference_key(&book.id, kept.extension());
        self.blobs.put(&key, stream_of(picture)).await?;
        Ok(Some(key))
    }

    /// Keeps the reference just drawn as the hero's character's own, when it has none yet: every
    /// later book that names the character reuses it. A character deleted meanwhile keeps
    /// nothing.
    pub(super) async fn keep_for_character(
        &self,
        mut character: Character,
        drawn: &BlobKey,
    ) -> Result<(), StepError> {
        if character.reference_key.is_some() {
            return Ok(());
        }
        let Some(picture) = self.blobs.get(drawn).await? else {
            return Ok(());
        };
        let kept = character_reference_key(&character.id, drawn.extension());
        self.blobs.put(&kept, stream_of(picture)).await?;
        character.reference_key = Some(kept.as_str().to_owned());
        if !self.store.replace_character(&character).await? {
            self.blobs.delete(&kept).await?;
        }
        Ok(())
    }

    /// Records the reference (or that there is none), once, and starts the pictures.
    pub(super) async fn record_reference(
        &self,
        id: &BookId,
        key: Option<BlobKey>,
    ) -> Result<(), StepError> {
        let updated = update_book(&*self.store, self.clock.now(), id, |book| {
            if !book.in_production() || book.reference_done {
                return Change::Unchanged;
            }
            book.reference_done = true;
            book.reference_key = key.as_ref().map(|k| k.as_str().to_owned());
            book.pending_assets = book.pending_assets.saturating_sub(1);
            Change::Write
        })
        .await?;
        match updated {
            Some((book, _)) if book.in_production() => {
                self.enqueue_pictures(&book).await?;
                self.assemble_when_ready(&book).await
            }
            Some(_) => Ok(()),
            None => {
                self.drop_orphan(id, key.as_ref().map(BlobKey::as_str))
                    .await
            }
        }
    }
}
