//! A page's narration, while the book is made or afterwards (recorded then in the book's own
//! document).

use super::*;

impl Pipeline {
    #[tracing::instrument(skip(self, id))]
    pub(super) async fn narrate(&self, id: &BookId, page: u8) -> Result<(), StepError> {
        let Some(stored) = self.store.find_book(id).await? else {
            return Ok(());
        };
        let book = stored.book;
        let Some(current) = book.pages.iter().find(|p| p.number == page) else {
            return Ok(());
        };
        // A finished book's page narrated afterwards (the book was made without narration).
        let after_the_fact = book.state == JobState::Done && current.revised;
        // A page a request is reading aloud on demand is that request's to narrate.
        if !(book.in_production() || after_the_fact)
            || current.audio_state != AudioState::Pending
            || current.read_aloud_since.is_some()
        {
            return self.assemble_when_ready(&book).await;
        }
        let request = SpeechRequest {
            text: current.text.clone(),
            language: book.request.language,
            age: book.request.target_age,
        };
        let providers = &self.providers;
        let speech = self
            .provider_call(
                id,
                Step::Narrate { page },
                &providers.names.speech,
                providers.narrator.narrate(&request),
            )
            .await?
            .map_err(|e| StepError::provider(FailureCode::Unknown, e))?;
        let key = audio_key(id, page, speech.format);
        self.blobs.put(&key, stream_of(speech.audio)).await?;
        if after_the_fact {
            return self.record_late_audio(id, page, Some(key)).await;
        }
        self.record_asset(
            id,
            page,
            Asset::Audio(Some(key.as_str().to_owned()), AudioState::Available),
            None,
        )
        .await
    }
    /// Whether page `page` of the book is narrated after the book was made.
    pub(super) async fn narrated_after_the_fact(
        &self,
        id: &BookId,
        page: u8,
    ) -> Result<bool, StepError> {
        Ok(self.store.find_book(id).await?.is_some_and(|stored| {
            stored.book.state == JobState::Done
                && stored
                    .book
                    .pages
                    .iter()
                    .any(|p| p.number == page && p.revised)
        }))
    }

    /// Records a finished book's late narration in the book's own document (its page assets
    /// are past): the audio, or that it is missing. A page no longer waiting keeps what it has.
    pub(super) async fn record_late_audio(
        &self,
        id: &BookId,
        page: u8,
        key: Option<BlobKey>,
    ) -> Result<(), StepError> {
        let landed = update_book(&*self.store, self.clock.now(), id, |book| {
            match book.pages.iter_mut().find(|p| p.number == page) {
                Some(current) if current.audio_state == AudioState::Pending => {
                    current.audio_key = key.as_ref().map(|k| k.as_str().to_owned());
                    current.audio_state = match key {
                        Some(_) => AudioState::Available,
                        None => AudioState::Missing,
                    };
                    Change::Write
                }
                _ => Change::Unchanged,
            }
        })
        .await?;
        if !matches!(landed, Some((_, true)))
            && let Some(key) = key
        {
            let kept = landed.is_some_and(|(book, _)| {
                book.pages
                    .iter()
                    .any(|p| p.audio_key.as_deref() == Some(key.as_str()))
            });
            if !kept {
                self.blobs.delete(&key).await?;
            }
        }
        Ok(())
    }
}
