//! Generation as queue steps: write the story; then one illustrate step per page and the cover,
//! and one narrate step per page when asked, all in parallel; then assemble the PDF; then done.
//! Every step is idempotent by (book, step): its result is recorded only if the book still waits
//! for it, so a redelivered message does nothing twice.

pub mod pdf;
pub mod record;
pub mod worker;

use crate::domain::book::{
    AudioState, Book, BookId, GenerationWarning, ImageState, JobState, Page, Step, StepMessage,
};
use crate::ports::blobs::stream_of;
use crate::ports::store::Settlement;
use crate::ports::{BlobKey, BlobStore, StepQueue, Store};
use crate::providers::offline::placeholder_png;
use crate::providers::{
    CharacterReference, ImagePrompt, ProviderError, Providers, Verdict, seed_of,
};
use record::{Change, fail_book, update_book};
use std::sync::Arc;

/// Why a step did not finish.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Worth another delivery (a provider hiccup, the store or queue unreachable).
    #[error("retry later: {source}")]
    Retry {
        /// The seed `ErrorCode` the book fails with if this was its last chance.
        code: &'static str,
        #[source]
        source: anyhow::Error,
    },
    /// The message is not a step we know; it goes to the dead letters.
    #[error("not a step message: {0}")]
    Undecodable(String),
}

impl StepError {
    fn retry(code: &'static str, source: impl Into<anyhow::Error>) -> Self {
        StepError::Retry {
            code,
            source: source.into(),
        }
    }
}

impl From<crate::ports::StoreError> for StepError {
    fn from(error: crate::ports::StoreError) -> Self {
        StepError::retry("DB_WRITE_FAILED", error)
    }
}

impl From<crate::ports::QueueError> for StepError {
    fn from(error: crate::ports::QueueError) -> Self {
        StepError::retry("QUEUE_FAILED", error)
    }
}

impl From<crate::ports::BlobError> for StepError {
    fn from(error: crate::ports::BlobError) -> Self {
        StepError::retry("STORAGE_UPLOAD_FAILED", error)
    }
}

/// The seed `ErrorCode` of a provider failure in a story or picture step.
fn provider_code(error: &ProviderError, text: bool) -> &'static str {
    match (error, text) {
        (ProviderError::Timeout, true) => "LLM_TIMEOUT",
        (ProviderError::Malformed(_), true) => "LLM_JSON_INVALID",
        (_, true) => "UNKNOWN",
        (ProviderError::Timeout, false) => "IMAGE_TIMEOUT",
        (ProviderError::RateLimited, false) => "IMAGE_RATE_LIMIT",
        (_, false) => "IMAGE_FAILED",
    }
}

/// Where a page's assets live in blob storage.
pub fn image_key(book: &BookId, page: u8) -> BlobKey {
    BlobKey::parse(&format!("books/{}/page-{page:02}.png", book.as_str())).expect("a valid key")
}

pub fn audio_key(book: &BookId, page: u8) -> BlobKey {
    BlobKey::parse(&format!("books/{}/page-{page:02}.wav", book.as_str())).expect("a valid key")
}

pub fn pdf_key(book: &BookId) -> BlobKey {
    BlobKey::parse(&format!("books/{}/book.pdf", book.as_str())).expect("a valid key")
}

/// Every blob a book may have, for deletion.
pub fn blob_keys(book: &Book) -> Vec<BlobKey> {
    let mut keys: Vec<BlobKey> = (0..=book.request.page_count.get())
        .flat_map(|page| [image_key(&book.id, page), audio_key(&book.id, page)])
        .collect();
    keys.push(pdf_key(&book.id));
    keys
}

/// Enqueues one step of one book.
pub async fn enqueue_step(
    queue: &dyn StepQueue,
    book: &BookId,
    step: Step,
) -> Result<(), crate::ports::QueueError> {
    let message = StepMessage {
        book_id: book.clone(),
        step,
    };
    queue
        .send(&serde_json::to_string(&message).expect("step messages serialise"))
        .await
        .map(|_| ())
}

/// The step runner: the same code on Lambda (SQS events) and in local mode (the SQLite queue).
pub struct Pipeline {
    pub store: Arc<dyn Store>,
    pub blobs: Arc<dyn BlobStore>,
    pub queue: Arc<dyn StepQueue>,
    pub providers: Providers,
}

impl Pipeline {
    pub async fn enqueue(&self, book: &BookId, step: Step) -> Result<(), crate::ports::QueueError> {
        enqueue_step(&*self.queue, book, step).await
    }

    /// Runs the step a queue message carries. `last_attempt` is true on the delivery after which
    /// the queue would give up: a failure then ends the step for good (the book fails and is
    /// refunded, or a page is delivered without its asset) instead of asking for a retry.
    pub async fn handle(&self, body: &str, last_attempt: bool) -> Result<(), StepError> {
        let message: StepMessage =
            serde_json::from_str(body).map_err(|e| StepError::Undecodable(e.to_string()))?;
        match self.run(&message).await {
            Ok(()) => Ok(()),
            Err(StepError::Retry { code, source }) if last_attempt => {
                tracing::warn!(book = message.book_id.as_str(), step = %message.step.key(), error = format!("{source:#}"), "step failed for good");
                self.give_up(&message, code).await
            }
            Err(error) => {
                tracing::info!(book = message.book_id.as_str(), step = %message.step.key(), error = %error, "step will be retried");
                Err(error)
            }
        }
    }

    async fn run(&self, message: &StepMessage) -> Result<(), StepError> {
        let id = &message.book_id;
        match message.step {
            Step::Story => self.write_story(id).await,
            Step::Illustrate { page } => self.illustrate(id, page).await,
            Step::Narrate { page } => self.narrate(id, page).await,
            Step::Assemble => self.assemble(id).await,
        }
    }

    /// The end of a step that will not be retried: pictures and narration fall back to a
    /// placeholder or nothing (the book can still be delivered); story and assembly fail the book.
    async fn give_up(&self, message: &StepMessage, code: &'static str) -> Result<(), StepError> {
        let id = &message.book_id;
        match message.step {
            Step::Illustrate { page } => {
                let key = image_key(id, page);
                self.blobs.put(&key, stream_of(placeholder_png())).await?;
                let warning = GenerationWarning {
                    code: "IMAGE_MISSING".into(),
                    message: "This picture could not be drawn; a placeholder is shown.".into(),
                    asset: "image".into(),
                    page_number: page,
                };
                self.record_asset(
                    id,
                    page,
                    Asset::Image(key.as_str().to_owned(), ImageState::Missing),
                    Some(warning),
                )
                .await
            }
            Step::Narrate { page } => {
                let warning = GenerationWarning {
                    code: "AUDIO_MISSING".into(),
                    message: "The narration of this page could not be made.".into(),
                    asset: "audio".into(),
                    page_number: page,
                };
                self.record_asset(
                    id,
                    page,
                    Asset::Audio(None, AudioState::Missing),
                    Some(warning),
                )
                .await
            }
            Step::Story | Step::Assemble => {
                fail_book(&*self.store, id, code, None).await?;
                Ok(())
            }
        }
    }

    async fn write_story(&self, id: &BookId) -> Result<(), StepError> {
        let Some(stored) = self.store.find_book(id).await? else {
            return Ok(());
        };
        let book = stored.book;
        if !book.in_production() {
            return Ok(());
        }
        if book.title.is_none() {
            let request = &book.request;
            let asked = format!("{} {}", request.topic.as_str(), request.hero());
            if let Verdict::Refused(reason) = self
                .providers
                .moderator
                .check(&asked)
                .await
                .map_err(|e| StepError::retry("UNKNOWN", e))?
            {
                fail_book(&*self.store, id, "SAFETY_INPUT", Some(&reason)).await?;
                return Ok(());
            }
            let story = self
                .providers
                .writer
                .write(request)
                .await
                .map_err(|e| StepError::retry(provider_code(&e, true), e))?;
            if story.pages.len() != usize::from(request.page_count.get())
                || story.pages.iter().any(|p| p.trim().is_empty())
            {
                return Err(StepError::retry(
                    "LLM_JSON_INVALID",
                    anyhow::anyhow!("the story does not have one text per page"),
                ));
            }
            let whole = format!("{}\n{}", story.title, story.pages.join("\n"));
            if let Verdict::Refused(_) = self
                .providers
                .moderator
                .check(&whole)
                .await
                .map_err(|e| StepError::retry("UNKNOWN", e))?
            {
                fail_book(&*self.store, id, "SAFETY_OUTPUT", None).await?;
                return Ok(());
            }
            let narration = request.narration;
            let written = update_book(&*self.store, id, |book| {
                if book.title.is_some() || !book.in_production() {
                    return Change::Unchanged;
                }
                let cover = Page {
                    number: 0,
                    text: String::new(),
                    image_key: None,
                    image_state: ImageState::Pending,
                    audio_key: None,
                    audio_state: AudioState::NotRequested,
                };
                let pages = story.pages.iter().enumerate().map(|(i, text)| Page {
                    number: i as u8 + 1,
                    text: text.chars().take(800).collect(),
                    image_key: None,
                    image_state: ImageState::Pending,
                    audio_key: None,
                    audio_state: if narration {
                        AudioState::Pending
                    } else {
                        AudioState::NotRequested
                    },
                });
                book.pages = std::iter::once(cover).chain(pages).collect();
                book.title = Some(story.title.chars().take(80).collect());
                let count = story.pages.len() as u32;
                book.total_assets = count + 1 + if narration { count } else { 0 };
                book.pending_assets = book.total_assets;
                // A swept book stays failed while its steps go on.
                if book.state == JobState::Queued {
                    book.state = JobState::Running;
                }
                Change::Write
            })
            .await?;
            if !matches!(written, Some((ref book, _)) if book.in_production() && book.title.is_some())
            {
                return Ok(());
            }
        }
        // Also on a redelivery after the story was recorded: the crash may have come before these.
        let Some(stored) = self.store.find_book(id).await? else {
            return Ok(());
        };
        if !stored.book.in_production() {
            return Ok(());
        }
        for page in &stored.book.pages {
            if page.image_state == ImageState::Pending {
                self.enqueue(id, Step::Illustrate { page: page.number })
                    .await?;
            }
            if page.audio_state == AudioState::Pending {
                self.enqueue(id, Step::Narrate { page: page.number })
                    .await?;
            }
        }
        Ok(())
    }

    fn image_prompt(book: &Book, page: u8) -> ImagePrompt {
        let request = &book.request;
        let text = match page {
            0 => book.title.clone().unwrap_or_default(),
            n => book
                .pages
                .iter()
                .find(|p| p.number == n)
                .map(|p| p.text.clone())
                .unwrap_or_default(),
        };
        let mut negative = vec!["scary", "violent", "text", "watermark"];
        negative.extend(request.forbidden_elements.iter().map(String::as_str));
        let appearance = request.character_appearance.clone();
        ImagePrompt {
            prompt: format!(
                "{} illustration for a children's book: {text}",
                request.style.as_str()
            ),
            negative_prompt: negative.join(", "),
            style: request.style,
            seed: seed_of(&format!("{}#{page}", book.id.as_str())),
            reference: CharacterReference {
                name: request.hero().to_owned(),
                seed: seed_of(&format!(
                    "{}|{}",
                    request.hero(),
                    appearance.as_deref().unwrap_or_default()
                )),
                description: appearance,
            },
            cover: page == 0,
        }
    }

    async fn illustrate(&self, id: &BookId, page: u8) -> Result<(), StepError> {
        let Some(stored) = self.store.find_book(id).await? else {
            return Ok(());
        };
        let book = stored.book;
        let Some(current) = book.pages.iter().find(|p| p.number == page) else {
            return Ok(());
        };
        if !book.in_production() || current.image_state != ImageState::Pending {
            return self.assemble_when_ready(&book).await;
        }
        let png = self
            .providers
            .illustrator
            .illustrate(&Self::image_prompt(&book, page))
            .await
            .map_err(|e| StepError::retry(provider_code(&e, false), e))?;
        let key = image_key(id, page);
        self.blobs.put(&key, stream_of(png)).await?;
        self.record_asset(
            id,
            page,
            Asset::Image(key.as_str().to_owned(), ImageState::Generated),
            None,
        )
        .await
    }

    async fn narrate(&self, id: &BookId, page: u8) -> Result<(), StepError> {
        let Some(stored) = self.store.find_book(id).await? else {
            return Ok(());
        };
        let book = stored.book;
        let Some(current) = book.pages.iter().find(|p| p.number == page) else {
            return Ok(());
        };
        if !book.in_production() || current.audio_state != AudioState::Pending {
            return self.assemble_when_ready(&book).await;
        }
        let wav = self
            .providers
            .narrator
            .narrate(&current.text, book.request.language)
            .await
            .map_err(|e| StepError::retry("UNKNOWN", e))?;
        let key = audio_key(id, page);
        self.blobs.put(&key, stream_of(wav)).await?;
        self.record_asset(
            id,
            page,
            Asset::Audio(Some(key.as_str().to_owned()), AudioState::Available),
            None,
        )
        .await
    }

    /// Records one asset of one page, once, and starts assembly when it was the last one.
    async fn record_asset(
        &self,
        id: &BookId,
        page: u8,
        asset: Asset,
        warning: Option<GenerationWarning>,
    ) -> Result<(), StepError> {
        let updated = update_book(&*self.store, id, |book| {
            if !book.in_production() {
                return Change::Unchanged;
            }
            let Some(target) = book.pages.iter_mut().find(|p| p.number == page) else {
                return Change::Unchanged;
            };
            match &asset {
                Asset::Image(key, state) => {
                    if target.image_state != ImageState::Pending {
                        return Change::Unchanged;
                    }
                    target.image_key = Some(key.clone());
                    target.image_state = *state;
                }
                Asset::Audio(key, state) => {
                    if target.audio_state != AudioState::Pending {
                        return Change::Unchanged;
                    }
                    target.audio_key = key.clone();
                    target.audio_state = *state;
                }
            }
            book.pending_assets = book.pending_assets.saturating_sub(1);
            book.warnings.extend(warning.clone());
            Change::Write
        })
        .await?;
        match updated {
            Some((book, _)) => self.assemble_when_ready(&book).await,
            None => Ok(()),
        }
    }

    async fn assemble_when_ready(&self, book: &Book) -> Result<(), StepError> {
        if book.in_production() && book.title.is_some() && book.pending_assets == 0 {
            self.enqueue(&book.id, Step::Assemble).await?;
        }
        Ok(())
    }

    async fn assemble(&self, id: &BookId) -> Result<(), StepError> {
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
            fail_book(&*self.store, id, "IMAGE_FAILED", None).await?;
            return Ok(());
        }
        let document = pdf::render(&book, &*self.blobs)
            .await
            .map_err(|e| StepError::retry("UNKNOWN", e))?;
        let key = pdf_key(id);
        self.blobs.put(&key, stream_of(document)).await?;
        let finished = update_book(&*self.store, id, |book| {
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
}

enum Asset {
    Image(String, ImageState),
    Audio(Option<String>, AudioState),
}
