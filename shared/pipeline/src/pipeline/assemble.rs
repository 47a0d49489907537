//! The last step: the PDF assembled once every asset is in, and the book finished (and counted).

use super::*;

impl Pipeline {
    pub(super) async fn assemble_when_ready(&self, book: &Book) -> Result<(), StepError> {
        if book.in_production() && book.title.is_some() && book.pending_assets == 0 {
            self.enqueue(&book.id, Step::Assemble).await?;
        }
        Ok(())
    }

    #[tracing::instrument(skip_all)]
    pub(super) async fn assemble(&self, id: &BookId) -> Result<(), StepError> {
        let Some(stored) = self.store.find_book(id).await? else {
            return Ok(());
        };
        let book = stored.book;
        if !book.in_production() || book.title.is_none() || book.pending_assets > 0 {
            return Ok(());
        }
        let pages = u32::from(book.request.page_count.get());
        let missing = book
            .story_pages()
            .filter(|p| p.image_state == ImageState::Missing)
            .count() as u32;
        if missing > (pages / 4).max(1) {
            fail_book(
                &*self.store,
                self.clock.now(),
                id,
                FailureCode::ImageFailed,
                None,
            )
            .await?;
            return Ok(());
        }
        let document = pdf::render(&book, &*self.blobs)
            .await
            .map_err(|e| StepError::retry(FailureCode::Unknown, e))?;
        let key = pdf_key(id);
        self.blobs.put(&key, stream_of(document)).await?;
        let finished = update_book(&*self.store, self.clock.now(), id, |book| {
            if !book.in_production() {
                return Change::Unchanged;
            }
            book.pdf_key = Some(key.as_str().to_owned());
            if book.swept_at.is_none() {
                book.state = JobState::Done;
                return Change::Write;
            }
            // Failed by the sweep, yet finished: it stays failed (the app was told) and is
            // readable, and a refund is taken back, once (the PDF marks it finished).
            if book.clawed_back() {
                return Change::WriteAndSettle(Settlement::Clawback);
            }
            Change::Write
        })
        .await?;
        if finished.is_none() {
            return self.drop_orphan(id, Some(key.as_str())).await;
        }
        if let Some((book, true)) = &finished
            && book.state == JobState::Done
        {
            self.count_finished(book).await;
        }
        if let Some((book, true)) = finished
            && book.clawed_back()
        {
            tracing::warn!(
                book = book.id.as_str(),
                "a swept book was finished after all; refund taken back"
            );
        }
        Ok(())
    }

    /// Counts a finished book into today's spend report (its whole cost), and its metrics.
    pub(super) async fn count_finished(&self, book: &Book) {
        let now = self.spend.now();
        match self.spend.record_finished(&book.id).await {
            Ok(true) => {
                storybook_core::book_records::count_outcome(&*self.store, true, now).await;
                let millis = (now - book.created_at).num_milliseconds().max(0) as f64;
                metrics::emit(
                    &[
                        (metrics::BOOKS_FINISHED, 1.0, Unit::Count),
                        (metrics::BOOK_LATENCY, millis, Unit::Milliseconds),
                    ],
                    &[],
                );
            }
            Ok(false) => {}
            Err(error) => {
                tracing::error!(
                    book = book.id.as_str(),
                    error = format!("{error:#}"),
                    "finished book not counted in the spend report"
                )
            }
        }
    }
}
