//! Generation as queue steps: write the story (moderated before and after); then the hero's
//! reference picture and one narrate step per page in parallel; once the reference exists, one
//! illustrate step per page and the cover, each passing it; then assemble the PDF; then done.
//! Every step is idempotent by (book, step, page): its result is recorded only if the book still
//! waits for it, so a redelivered message does nothing twice and pays for nothing twice.

pub mod artwork;
pub mod pdf;
mod regeneration;
pub mod worker;

pub use crate::book_files::{
    audio_key, blob_keys, character_reference_key, enqueue_step, image_key, image_key_as, pdf_key,
    reference_key,
};
use crate::book_records::{Change, fail_book, update_book};
use crate::domain::book::{
    AudioState, Book, BookId, GenerationWarning, ImageState, JobState, Page, PageAsset,
    RecordedAsset, Step, StepMessage, WarningCode,
};
use crate::domain::character::Character;
use crate::domain::failure::FailureCode;
use crate::domain::spend::{Stopped, WhenStopped};
use crate::metrics::{self, Unit};
use crate::ports::blobs::stream_of;
use crate::ports::store::Settlement;
use crate::ports::{BlobKey, BlobStore, StepQueue, Store};
use crate::providers::offline::placeholder_png;
use crate::providers::{
    Metered, PictureKind, ProviderError, Providers, SpeechRequest, StoryBrief, Verdict,
};
use crate::spend::SpendGuard;
use std::sync::Arc;
use std::time::Duration;
use storybook_core::clock::Clock;

/// Why a step did not finish.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Worth another delivery (a provider hiccup, the store or queue unreachable).
    #[error("retry later: {source}")]
    Retry {
        /// The seed `ErrorCode` the book fails with if this was its last chance.
        code: FailureCode,
        /// How long the provider asked us to wait, when longer than is slept in process: the
        /// message comes back after it (its visibility is set to the wait).
        wait: Option<Duration>,
        #[source]
        source: anyhow::Error,
    },
    /// Every provider the step needs is skipped while its circuit is open: the step comes back
    /// after `wait` as a new message, without spending one of its deliveries (an outage longer
    /// than the stuck-book period is ended by the sweep, which fails and refunds the book).
    #[error("deferred while a provider's circuit is open")]
    Deferred {
        wait: Duration,
        /// The message to send again (its count of deferrals moved on).
        again: String,
        /// The seed `ErrorCode` the book fails with if the step ends up failing for good.
        code: FailureCode,
    },
    /// Generation is stopped (the kill switch, today's hard limit) and books wait: the step
    /// comes back after `wait` as a new message, without spending a delivery or the circuit's
    /// patience.
    #[error("paused while generation is stopped")]
    Paused { wait: Duration },
    /// Generation is stopped and books fail: the book was failed and refunded; nothing is left
    /// to do.
    #[error("the book was stopped")]
    Halted,
    /// The message is not a step we know; it goes to the dead letters.
    #[error("not a step message: {0}")]
    Undecodable(String),
}

impl StepError {
    fn retry(code: FailureCode, source: impl Into<anyhow::Error>) -> Self {
        StepError::Retry {
            code,
            wait: None,
            source: source.into(),
        }
    }

    /// A provider failure, with the wait it asked for.
    fn provider(code: FailureCode, error: ProviderError) -> Self {
        if let ProviderError::CircuitOpen { for_at_least } = error {
            return StepError::Deferred {
                wait: for_at_least,
                again: String::new(),
                code,
            };
        }
        StepError::Retry {
            code,
            wait: error.retry_after(),
            source: error.into(),
        }
    }
}

impl From<crate::ports::StoreError> for StepError {
    fn from(error: crate::ports::StoreError) -> Self {
        StepError::retry(FailureCode::DbWriteFailed, error)
    }
}

impl From<crate::ports::QueueError> for StepError {
    fn from(error: crate::ports::QueueError) -> Self {
        StepError::retry(FailureCode::QueueFailed, error)
    }
}

impl From<crate::ports::BlobError> for StepError {
    fn from(error: crate::ports::BlobError) -> Self {
        StepError::retry(FailureCode::StorageUploadFailed, error)
    }
}

/// The seed `ErrorCode` of a provider failure in a story or picture step.
fn provider_code(error: &ProviderError, text: bool) -> FailureCode {
    match (error, text) {
        (ProviderError::Timeout, true) => FailureCode::LlmTimeout,
        (ProviderError::Malformed(_), true) => FailureCode::LlmJsonInvalid,
        (ProviderError::Refused(_), true) => FailureCode::SafetyOutput,
        (_, true) => FailureCode::Unknown,
        (ProviderError::Timeout, false) => FailureCode::ImageTimeout,
        (ProviderError::RateLimited { .. }, false) => FailureCode::ImageRateLimit,
        (_, false) => FailureCode::ImageFailed,
    }
}

/// How long a step that failed once waits before it comes back.
pub const FIRST_RETRY: Duration = Duration::from_secs(2);

/// How long a step waits for an open circuit (sent again after each cooldown) before it fails as
/// usual and spends its deliveries: well within the stuck-book period.
pub const CIRCUIT_PATIENCE: Duration = Duration::from_secs(5 * 60);

/// How often a step waiting for the kill switch to go off looks again.
const STOPPED_RECHECK: Duration = Duration::from_secs(60);

/// The step runner: the same code on Lambda (SQS events) and in local mode (the SQLite queue).
pub struct Pipeline {
    pub store: Arc<dyn Store>,
    pub blobs: Arc<dyn BlobStore>,
    pub queue: Arc<dyn StepQueue>,
    pub providers: Providers,
    /// How long a failed step waits before it comes back (doubling each time).
    pub first_retry: Duration,
    /// How long a step waits for an open circuit before it fails as usual.
    pub circuit_patience: Duration,
    /// Prices every provider call and stops generation at the hard limit or the kill switch.
    pub spend: SpendGuard,
    /// The app's time, for books' progress and spend records.
    pub clock: Clock,
}

impl Pipeline {
    /// The step runner over `state`'s ports, with production's waits.
    pub fn new(state: &crate::app::App, providers: Providers) -> Self {
        Self {
            store: state.store.clone(),
            blobs: state.blobs.clone(),
            queue: state.queue.clone(),
            providers,
            first_retry: FIRST_RETRY,
            circuit_patience: CIRCUIT_PATIENCE,
            spend: SpendGuard::new(state),
            clock: state.clock.clone(),
        }
    }

    pub async fn enqueue(&self, book: &BookId, step: Step) -> Result<(), crate::ports::QueueError> {
        enqueue_step(&*self.queue, book, step).await
    }

    /// Runs the step a queue message carries. `last_attempt` is true on the delivery after which
    /// the queue would give up: a failure then ends the step for good (the book fails and is
    /// refunded, or a page is delivered without its asset) instead of asking for a retry.
    pub async fn handle(&self, body: &str, last_attempt: bool) -> Result<(), StepError> {
        let message: StepMessage =
            serde_json::from_str(body).map_err(|e| StepError::Undecodable(e.to_string()))?;
        let outcome = match self.run(&message).await {
            // Waiting for an open circuit, for at most `circuit_patience`; then an ordinary
            // failure, which spends the step's deliveries.
            Err(StepError::Deferred { wait, code, .. })
                if message.deferred_since.is_some_and(|since| {
                    (self.clock.now() - since).to_std().unwrap_or_default() >= self.circuit_patience
                }) =>
            {
                Err(StepError::Retry {
                    code,
                    wait: Some(wait),
                    source: anyhow::anyhow!("a provider's circuit stayed open"),
                })
            }
            Err(StepError::Deferred { wait, code, .. }) => {
                let again = StepMessage {
                    deferred_since: message.deferred_since.or(Some(self.clock.now())),
                    ..message.clone()
                };
                Err(StepError::Deferred {
                    wait,
                    again: serde_json::to_string(&again).expect("step messages serialise"),
                    code,
                })
            }
            Err(StepError::Halted) => Ok(()),
            other => other,
        };
        match outcome {
            Ok(()) => Ok(()),
            Err(StepError::Retry { code, source, .. }) if last_attempt => {
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
            Step::Reference => self.draw_reference(id).await,
            Step::Illustrate { page } => self.illustrate(id, page).await,
            Step::Narrate { page } => self.narrate(id, page).await,
            Step::Assemble => self.assemble(id).await,
            Step::Regenerate { page } => self.regenerate(id, page).await,
        }
    }

    /// The end of a step that will not be retried: pictures and narration fall back to a
    /// placeholder or nothing (the book can still be delivered), the reference to none (pages are
    /// drawn from the sheet alone); story and assembly fail the book.
    async fn give_up(&self, message: &StepMessage, code: FailureCode) -> Result<(), StepError> {
        let id = &message.book_id;
        match message.step {
            Step::Illustrate { page } => {
                let warning = GenerationWarning {
                    code: WarningCode::ImageMissing,
                    page_number: page,
                };
                self.place_placeholder(id, page, warning).await
            }
            Step::Regenerate { page } => self.give_up_regeneration(id, page).await,
            Step::Narrate { page } if self.narrated_after_the_fact(id, page).await? => {
                self.record_late_audio(id, page, None).await
            }
            Step::Narrate { page } => {
                let warning = GenerationWarning {
                    code: WarningCode::AudioMissing,
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
            Step::Reference => self.record_reference(id, None).await,
            Step::Story | Step::Assemble => {
                fail_book(&*self.store, self.clock.now(), id, code, None).await?;
                Ok(())
            }
        }
    }

    async fn place_placeholder(
        &self,
        id: &BookId,
        page: u8,
        warning: GenerationWarning,
    ) -> Result<(), StepError> {
        let key = image_key(id, page);
        self.blobs.put(&key, stream_of(placeholder_png())).await?;
        self.record_asset(
            id,
            page,
            Asset::Image(key.as_str().to_owned(), ImageState::Missing),
            Some(warning),
        )
        .await
    }

    /// Stops a step before its provider call while generation is stopped: it waits (comes back
    /// later) or its book fails and is refunded, by configuration.
    async fn before_call(&self, id: &BookId) -> Result<(), StepError> {
        let Some(stopped) = self.spend.stopped().await? else {
            return Ok(());
        };
        tracing::warn!(book = id.as_str(), reason = ?stopped, "provider call not made: generation is stopped");
        match self.spend.limits.when_stopped {
            WhenStopped::Wait => Err(StepError::Paused {
                wait: match stopped {
                    Stopped::Switched { .. } => STOPPED_RECHECK,
                    Stopped::OverBudget { retry_after, .. } => {
                        Duration::from_secs(retry_after).min(STOPPED_RECHECK * 5)
                    }
                },
            }),
            WhenStopped::Fail => {
                fail_book(
                    &*self.store,
                    self.clock.now(),
                    id,
                    FailureCode::GenerationStopped,
                    None,
                )
                .await?;
                Err(StepError::Halted)
            }
        }
    }

    /// One provider call of `step`, made only while generation may go on, timed, and metered:
    /// its cost is added to today's spend and the book's. `provider` names who serves it, for
    /// the failure metric (the usage names who answered).
    async fn provider_call<T>(
        &self,
        id: &BookId,
        step: Step,
        provider: &str,
        call: impl std::future::Future<Output = Result<Metered<T>, ProviderError>>,
    ) -> Result<Result<T, ProviderError>, StepError> {
        self.before_call(id).await?;
        let started = std::time::Instant::now();
        let outcome = call.await;
        let millis = started.elapsed().as_secs_f64() * 1000.0;
        match outcome {
            Ok(made) => {
                metrics::emit(
                    &[
                        (metrics::PROVIDER_CALLS, 1.0, Unit::Count),
                        (metrics::PROVIDER_LATENCY, millis, Unit::Milliseconds),
                    ],
                    &[("Provider", &made.usage.provider)],
                );
                // A call made is paid for: a store that cannot count it now loses the count
                // (logged with the usage, to be reconciled), not the step's work.
                if let Err(error) = self.spend.record(id, &step.key(), &made.usage).await {
                    tracing::error!(book = id.as_str(), step = %step.key(), usage = ?made.usage, error = format!("{error:#}"), "provider spend not recorded");
                }
                Ok(Ok(made.value))
            }
            Err(error) => {
                if !matches!(error, ProviderError::CircuitOpen { .. }) {
                    metrics::emit(
                        &[(metrics::PROVIDER_FAILURES, 1.0, Unit::Count)],
                        &[("Provider", provider)],
                    );
                }
                Ok(Err(error))
            }
        }
    }

    /// Moderates `text`; a provider failure is worth a retry.
    async fn moderate(&self, id: &BookId, text: &str) -> Result<Verdict, StepError> {
        let providers = &self.providers;
        self.provider_call(
            id,
            Step::Story,
            &providers.names.moderation,
            providers.moderator.check(text),
        )
        .await?
        .map_err(|e| StepError::provider(FailureCode::Unknown, e))
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
                        tracing::info!(book = id.as_str(), stricter, %reason, "story refused by moderation");
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
            let narration = request.narration;
            let hero = request.hero().to_owned();
            let written = update_book(&*self.store, self.clock.now(), id, |book| {
                if book.title.is_some() || !book.in_production() {
                    return Change::Unchanged;
                }
                let cover = Page::new(
                    0,
                    String::new(),
                    story.cover_scene.clone(),
                    vec![hero.clone()],
                );
                let pages = story.pages.iter().enumerate().map(|(i, page)| Page {
                    audio_state: if narration {
                        AudioState::Pending
                    } else {
                        AudioState::NotRequested
                    },
                    ..Page::new(
                        i as u8 + 1,
                        page.text.chars().take(800).collect(),
                        page.scene.chars().take(600).collect(),
                        page.characters.clone(),
                    )
                });
                book.pages = std::iter::once(cover).chain(pages).collect();
                book.title = Some(story.title.chars().take(80).collect());
                // The parent's own characters replace the story's sheets of the same name; then
                // the hero's sheet first: it is the one the reference picture is drawn from.
                let given = &request.characters;
                let mut sheets = given.clone();
                sheets.extend(
                    story
                        .characters
                        .iter()
                        .filter(|sheet| !given.iter().any(|g| g.name == sheet.name))
                        .cloned(),
                );
                if let Some(at) = sheets.iter().position(|c| c.name == hero) {
                    sheets.swap(0, at);
                }
                book.characters = sheets;
                book.cover_scene = story.cover_scene.clone();
                let count = story.pages.len() as u32;
                // Pictures and the cover, the reference, and narration.
                book.total_assets = count + 2 + if narration { count } else { 0 };
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

    async fn enqueue_pictures(&self, book: &Book) -> Result<(), StepError> {
        for page in &book.pages {
            if page.image_state == ImageState::Pending {
                self.enqueue(&book.id, Step::Illustrate { page: page.number })
                    .await?;
            }
        }
        Ok(())
    }

    /// The hero's reference picture, made once per book.
    async fn draw_reference(&self, id: &BookId) -> Result<(), StepError> {
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
    async fn characters_reference(
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
    async fn keep_for_character(
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
    async fn record_reference(&self, id: &BookId, key: Option<BlobKey>) -> Result<(), StepError> {
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

    /// Draws one picture and stores it under `key_for(extension)`; a provider's safety refusal
    /// is drawn again once with a safer prompt.
    async fn draw(
        &self,
        book: &Book,
        step: Step,
        prompt: &crate::providers::ImagePrompt,
        key_for: impl Fn(&str) -> BlobKey,
    ) -> Result<Drawn, StepError> {
        let mut attempt = prompt.clone();
        for safer in [false, true] {
            if safer {
                attempt = artwork::safer(prompt);
            }
            let providers = &self.providers;
            let images = providers.names.images.join(",");
            match self
                .provider_call(
                    &book.id,
                    step,
                    &images,
                    providers.illustrator.illustrate(&attempt),
                )
                .await?
            {
                Ok(made) => {
                    let from_picture = book.request.from_picture;
                    let fetcher = &self.providers.fetcher;
                    let key =
                        artwork::store(&*self.blobs, fetcher, made, from_picture, key_for).await?;
                    return Ok(Drawn::Stored(key));
                }
                Err(ProviderError::Refused(reason)) => {
                    tracing::info!(book = book.id.as_str(), safer, %reason, "picture refused by the provider's safety system");
                }
                Err(error) => return Err(StepError::provider(provider_code(&error, false), error)),
            }
        }
        Ok(Drawn::Refused)
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
        let reference = match &book.reference_key {
            Some(key) => {
                let key = BlobKey::parse(key)
                    .map_err(|e| StepError::retry(FailureCode::ImageFailed, e))?;
                self.blobs.get(&key).await?
            }
            None => None,
        };
        let kind = if page == 0 {
            PictureKind::Cover
        } else {
            PictureKind::Page
        };
        let prompt = artwork::prompt(&book, kind, Some(current)).with_reference(reference);
        match self
            .draw(&book, Step::Illustrate { page }, &prompt, |ext| {
                image_key_as(id, page, ext)
            })
            .await?
        {
            Drawn::Stored(key) => {
                self.record_asset(
                    id,
                    page,
                    Asset::Image(key.as_str().to_owned(), ImageState::Generated),
                    None,
                )
                .await
            }
            Drawn::Refused => {
                let warning = GenerationWarning {
                    code: WarningCode::ImageRefused,
                    page_number: page,
                };
                self.place_placeholder(id, page, warning).await
            }
        }
    }

    async fn narrate(&self, id: &BookId, page: u8) -> Result<(), StepError> {
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
    async fn narrated_after_the_fact(&self, id: &BookId, page: u8) -> Result<bool, StepError> {
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
    async fn record_late_audio(
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

    /// Records one asset of one page, once (apart from the book document: parallel steps never
    /// contend), and starts assembly when it was the last one.
    async fn record_asset(
        &self,
        id: &BookId,
        page: u8,
        asset: Asset,
        warning: Option<GenerationWarning>,
    ) -> Result<(), StepError> {
        let asset = match asset {
            Asset::Image(key, state) => PageAsset::Image {
                key,
                state,
                warning,
            },
            Asset::Audio(key, state) => PageAsset::Audio {
                key,
                state,
                warning,
            },
        };
        let stored_key = match &asset {
            PageAsset::Image { key, .. } => Some(key.clone()),
            PageAsset::Audio { key, .. } => key.clone(),
        };
        let recorded = RecordedAsset {
            page,
            asset,
            at: self.clock.now(),
        };
        self.store.record_page_asset(id, &recorded).await?;
        // Recorded now or by an earlier delivery: either way the last one starts assembly.
        match self.store.find_book(id).await? {
            Some(stored) => self.assemble_when_ready(&stored.book).await,
            None => self.drop_orphan(id, stored_key.as_deref()).await,
        }
    }

    /// A step whose book was deleted (its user erased) while it ran removes what it stored: the
    /// erasure may have swept the book's files before this step wrote its own.
    async fn drop_orphan(&self, id: &BookId, key: Option<&str>) -> Result<(), StepError> {
        if let Some(key) = key.and_then(|k| BlobKey::parse(k).ok()) {
            self.blobs.delete(&key).await?;
        }
        tracing::info!(
            book = id.as_str(),
            "book deleted while a step ran; what it left removed"
        );
        // What this step's provider call cost stays in the day, under no book's name.
        self.store.anonymise_book_spend(id).await?;
        Ok(())
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
}

impl Pipeline {
    /// Counts a finished book into today's spend report (its whole cost), and its metrics.
    async fn count_finished(&self, book: &Book) {
        let now = self.spend.now();
        match self.spend.record_finished(&book.id).await {
            Ok(true) => {
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

enum Asset {
    Image(String, ImageState),
    Audio(Option<String>, AudioState),
}

/// How drawing a picture ended.
enum Drawn {
    Stored(BlobKey),
    /// The provider's safety system refused it, and the safer prompt too.
    Refused,
}
