//! A finished book's page made again: the feedback moderated, the text written again (and
//! moderated), the picture drawn again with the book's reference and seed, under the page's next
//! version; the PDF re-assembled; then the page lands as one change, and the previous version's
//! files go. Until then the book reads as it was. Refused or failed for good, the page stays as it
//! was and the charge is given back.

use super::{Drawn, Pipeline, StepError, artwork, pdf};
use crate::providers::{PageBrief, PictureKind, Verdict};
use storybook_core::book_files::{page_version_key, pdf_key};
use storybook_core::book_records::{Change, end_regeneration, update_book};
use storybook_core::domain::book::{AudioState, Book, BookId, ImageState, Page, Step};
use storybook_core::domain::failure::FailureCode;
use storybook_core::domain::markup::contains_markup;
use storybook_core::ports::BlobKey;
use storybook_core::ports::blobs::stream_of;

impl Pipeline {
    #[tracing::instrument(skip(self, id))]
    pub(super) async fn regenerate(&self, id: &BookId, number: u8) -> Result<(), StepError> {
        let Some(stored) = self.store.find_book(id).await? else {
            return Ok(());
        };
        let book = stored.book;
        let Some(page) = book.pages.iter().find(|p| p.number == number).cloned() else {
            return Ok(());
        };
        // Landed or given up already: a redelivered message does nothing.
        let Some(asked) = page.regeneration.clone() else {
            return Ok(());
        };
        let step = Step::Regenerate { page: number };
        if let Some(feedback) = &asked.feedback
            && let Verdict::Refused(reason) = self.moderate(id, feedback).await?
        {
            tracing::info!(page = number, %reason, "regeneration feedback refused");
            return self.give_up_regeneration(id, number).await;
        }
        let mut next = page.clone();
        if asked.mode.text() {
            let brief = PageBrief {
                request: book.request.clone(),
                title: book.title.clone().unwrap_or_default(),
                pages: book.story_pages().map(|p| p.text.clone()).collect(),
                page: number,
                feedback: asked.feedback.clone(),
                version: page.version + 1,
            };
            let providers = &self.providers;
            let rewritten = self
                .provider_call(
                    id,
                    step,
                    &providers.names.story,
                    providers.writer.rewrite_page(&brief),
                )
                .await?
                .map_err(|e| StepError::provider(FailureCode::LlmJsonInvalid, e))?;
            if contains_markup(&rewritten.text) || contains_markup(&rewritten.scene) {
                tracing::info!(page = number, "rewritten page holds markup");
                return self.give_up_regeneration(id, number).await;
            }
            if let Verdict::Refused(reason) = self.moderate(id, &rewritten.text).await? {
                tracing::info!(page = number, %reason, "rewritten page refused");
                return self.give_up_regeneration(id, number).await;
            }
            next.text = rewritten.text.chars().take(800).collect();
            next.scene = rewritten.scene.chars().take(600).collect();
            // The narration read the old text: it is made again on demand.
            if next.audio_state == AudioState::Available {
                next.audio_state = AudioState::Missing;
            }
            next.audio_key = None;
        }
        let mut drawn = None;
        if asked.mode.image() {
            let reference = match &book.reference_key {
                Some(key) => {
                    let key = BlobKey::parse(key)
                        .map_err(|e| StepError::retry(FailureCode::ImageFailed, e))?;
                    self.blobs.get(&key).await?
                }
                None => None,
            };
            let mut prompt =
                artwork::prompt(&book, PictureKind::Page, Some(&next)).with_reference(reference);
            if let Some(feedback) = &asked.feedback {
                prompt
                    .prompt
                    .push_str(&format!(" The parent asks: {feedback}."));
            }
            let version = page.version + 1;
            match self
                .draw(&book, step, &prompt, |ext| {
                    page_version_key(id, number, version, ext)
                })
                .await?
            {
                Drawn::Stored(key) => {
                    next.image_key = Some(key.as_str().to_owned());
                    next.image_state = ImageState::Generated;
                    drawn = Some(key);
                }
                Drawn::Refused => return self.give_up_regeneration(id, number).await,
            }
        }
        next.version = page.version + 1;
        next.revised = true;
        next.regeneration = None;
        self.land(&book, page, next, drawn).await
    }

    /// Lands the new version: the PDF of the book with it first, then the page in one change
    /// (only over the version it was made from), then the previous version's files.
    async fn land(
        &self,
        book: &Book,
        before: Page,
        next: Page,
        drawn: Option<BlobKey>,
    ) -> Result<(), StepError> {
        let id = &book.id;
        let with_page = |book: &Book| {
            let mut book = book.clone();
            if let Some(slot) = book.pages.iter_mut().find(|p| p.number == next.number) {
                *slot = next.clone();
            }
            book.warnings
                .retain(|w| w.page_number != next.number || drawn.is_none());
            book
        };
        let assembled = with_page(book);
        self.put_pdf(&assembled).await?;
        let landed = update_book(&*self.store, self.clock.now(), id, |current| {
            let Some(page) = current.pages.iter_mut().find(|p| p.number == next.number) else {
                return Change::Unchanged;
            };
            if page.version != before.version || page.regeneration != before.regeneration {
                return Change::Unchanged;
            }
            *current = with_page(current);
            Change::Write
        })
        .await?;
        match landed {
            Some((current, true)) => {
                // Another page changed meanwhile: the PDF is made again with both.
                if current.pages != assembled.pages {
                    self.put_pdf(&current).await?;
                }
                let old = [
                    (before.image_key, next.image_key.as_ref()),
                    (before.audio_key, next.audio_key.as_ref()),
                ];
                for (old, new) in old {
                    if let Some(old) = old.filter(|old| Some(old) != new)
                        && let Ok(key) = BlobKey::parse(&old)
                    {
                        self.blobs.delete(&key).await?;
                    }
                }
                Ok(())
            }
            // The book is gone (deleted, its user erased): what this one stored goes, the PDF
            // too (the deletion may have passed before it was stored).
            None => {
                if let Some(key) = drawn {
                    self.blobs.delete(&key).await?;
                }
                self.blobs.delete(&pdf_key(id)).await?;
                Ok(())
            }
            // Landed by an earlier delivery: what this one drew goes.
            Some((_, false)) => {
                if let Some(key) = drawn {
                    let kept = self.store.find_book(id).await?.is_some_and(|stored| {
                        stored
                            .book
                            .pages
                            .iter()
                            .any(|p| p.image_key.as_deref() == Some(key.as_str()))
                    });
                    if !kept {
                        self.blobs.delete(&key).await?;
                    }
                }
                Ok(())
            }
        }
    }

    /// Stores the book's PDF; when the book is gone by then (its deletion passed while the PDF
    /// was made), the PDF goes again: nothing outlives a deletion.
    async fn put_pdf(&self, book: &Book) -> Result<(), StepError> {
        let document = pdf::render(book, &*self.blobs)
            .await
            .map_err(|e| StepError::retry(FailureCode::Unknown, e))?;
        let key = pdf_key(&book.id);
        self.blobs.put(&key, stream_of(document)).await?;
        if self.store.find_book(&book.id).await?.is_none() {
            self.blobs.delete(&key).await?;
        }
        Ok(())
    }

    /// The page stays as it was, and the charge is given back.
    pub(super) async fn give_up_regeneration(
        &self,
        id: &BookId,
        number: u8,
    ) -> Result<(), StepError> {
        end_regeneration(&*self.store, self.clock.now(), id, number).await?;
        Ok(())
    }
}
