//! The story step: the parent's words moderated, the story written (held to its checks, no
//! markup) and moderated, recorded once, then the pictures and narration started.

use super::*;

impl Pipeline {
    #[tracing::instrument(skip_all)]
    pub(super) async fn write_story(&self, id: &BookId) -> Result<(), StepError> {
        let Some(stored) = self.store.find_book(id).await? else {
            return Ok(());
        };
        let book = stored.book;
        if !book.in_production() {
            return Ok(());
        }
        if book.title.is_none() {
            let request = &book.request;
            // Every word the parent wrote that reaches a prompt, before anything is paid for:
            // their characters' sheets too (moderated again here whenever they were stored, so
            // a sheet passed by older rules is judged by today's) and the series' title and hint.
            if let Verdict::Refused(reason) = self.moderate(id, &request.parent_words()).await? {
                fail_book(
                    &*self.store,
                    self.clock.now(),
                    id,
                    FailureCode::SafetyInput,
                    Some(&reason),
                )
                .await?;
                return Ok(());
            }
            let mut story = None;
            for stricter in [false, true] {
                let brief = StoryBrief {
                    request: request.clone(),
                    stricter,
                };
                let providers = &self.providers;
                let written = self
                    .provider_call(
                        id,
                        Step::Story,
                        &providers.names.story,
                        providers.writer.write(&brief),
                    )
                    .await?;
                let candidate = match written {
                    Ok(written) => written,
                    // The model's own refusal, twice (the writer asks again once).
                    Err(ProviderError::Refused(_)) if stricter => break,
                    Err(ProviderError::Refused(_)) => continue,
                    Err(error) => {
                        return Err(StepError::provider(provider_code(&error, true), error));
                    }
                };
                if candidate.pages.len() != usize::from(request.page_count.get())
                    || candidate.pages.iter().any(|p| p.text.trim().is_empty())
                {
                    return Err(StepError::retry(
                        FailureCode::LlmJsonInvalid,
                        anyhow::anyhow!("the story does not have one text per page"),
                    ));
                }
                // Whichever writer wrote it: a story with markup is asked for again, and a book
                // never gets one (refused, not stripped: a model that writes tags is not trusted
                // with the words around them either).
                if let Some(place) = crate::providers::story::markup_in(&candidate) {
                    return Err(StepError::retry(
                        FailureCode::LlmJsonInvalid,
                        anyhow::anyhow!("{place} of the story holds markup"),
                    ));
                }
                let whole = std::iter::once(candidate.title.as_str())
                    .chain(candidate.pages.iter().map(|p| p.text.as_str()))
                    .collect::<Vec<_>>()
                    .join("\n");
                match self.moderate(id, &whole).await? {
                    Verdict::Allowed => {
                        story = Some(candidate);
                        break;
                    }
                    Verdict::Refused(reason) => {
                        tracing::info!(stricter, %reason, "story refused by moderation");
                    }
                }
            }
            let Some(story) = story else {
                fail_book(
                    &*self.store,
                    self.clock.now(),
                    id,
                    FailureCode::SafetyOutput,
                    None,
                )
                .await?;
                return Ok(());
            };
            let written = update_book(&*self.store, self.clock.now(), id, |book| {
                if book.record_story(&story) {
                    Change::Write
                } else {
                    Change::Unchanged
                }
            })
            .await?;
            if !matches!(written, Some((ref book, _)) if book.in_production() && book.title.is_some())
            {
                return Ok(());
            }
        }
        // Also on a redelivery after the story was recorded: the crash may have come before these.
        let Some(stored) = self.store.find_book(id).await? else {
            return self.drop_orphan(id, None).await;
        };
        let book = stored.book;
        if !book.in_production() {
            return Ok(());
        }
        if book.reference_done {
            self.enqueue_pictures(&book).await?;
        } else {
            self.enqueue(id, Step::Reference).await?;
        }
        for page in &book.pages {
            if page.audio_state == AudioState::Pending {
                self.enqueue(id, Step::Narrate { page: page.number })
                    .await?;
            }
        }
        Ok(())
    }

    pub(super) async fn enqueue_pictures(&self, book: &Book) -> Result<(), StepError> {
        for page in &book.pages {
            if page.image_state == ImageState::Pending {
                self.enqueue(&book.id, Step::Illustrate { page: page.number })
                    .await?;
            }
        }
        Ok(())
    }
}
