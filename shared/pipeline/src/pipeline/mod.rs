//! Generation as queue steps: write the story (moderated before and after); then the hero's
//! reference picture and one narrate step per page in parallel; once the reference exists, one
//! illustrate step per page and the cover, each passing it; then assemble the PDF; then done.
//! Every step is idempotent by (book, step, page): its result is recorded only if the book still
//! waits for it, so a redelivered message does nothing twice and pays for nothing twice.

pub mod artwork;
mod assemble;
mod illustrate;
mod narrate;
pub mod pdf;
mod reference;
mod regenerate;
mod story;
pub mod worker;

use crate::providers::offline::placeholder_png;
use crate::providers::{
    Metered, PictureKind, ProviderError, Providers, SpeechRequest, StoryBrief, Verdict,
};
use std::sync::Arc;
use std::time::Duration;
pub(crate) use storybook_core::book_files::{
    audio_key, character_reference_key, enqueue_step, image_key, image_key_as, pdf_key,
    reference_key,
};
use storybook_core::book_records::{Change, fail_book, update_book};
use storybook_core::clock::Clock;
use storybook_core::domain::book::{
    AudioState, Book, BookId, GenerationWarning, ImageState, JobState, PageAsset, RecordedAsset,
    Step, WarningCode,
};
use storybook_core::domain::character::Character;
use storybook_core::domain::failure::FailureCode;
use storybook_core::domain::spend::{Stopped, WhenStopped};
use storybook_core::metrics::{self, Unit};
use storybook_core::ports::blobs::stream_of;
use storybook_core::ports::queue::StepMessage;
use storybook_core::ports::store::Settlement;
use storybook_core::ports::{BlobKey, BlobStore, StepQueue, Store};
use storybook_core::spend::SpendGuard;

/// Why a step did not finish.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// Worth another delivery (a provider hiccup, the store or queue unreachable).
    #[error("retry later: {source}")]
    Retry {
        /// The app contract's `ErrorCode` the book fails with if this was its last chance.
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
        /// The app contract's `ErrorCode` the book fails with if the step ends up failing for good.
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

impl From<storybook_core::ports::StoreError> for StepError {
    fn from(error: storybook_core::ports::StoreError) -> Self {
        StepError::retry(FailureCode::DbWriteFailed, error)
    }
}

impl From<storybook_core::ports::QueueError> for StepError {
    fn from(error: storybook_core::ports::QueueError) -> Self {
        StepError::retry(FailureCode::QueueFailed, error)
    }
}

impl From<storybook_core::ports::BlobError> for StepError {
    fn from(error: storybook_core::ports::BlobError) -> Self {
        StepError::retry(FailureCode::StorageUploadFailed, error)
    }
}

/// The app contract's `ErrorCode` of a provider failure in a story or picture step.
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
    pub fn new(state: &storybook_core::app::App, providers: Providers) -> Self {
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

    pub async fn enqueue(
        &self,
        book: &BookId,
        step: Step,
    ) -> Result<(), storybook_core::ports::QueueError> {
        enqueue_step(&*self.queue, book, step).await
    }

    /// Runs the step a queue message carries. `last_attempt` is true on the delivery after which
    /// the queue would give up: a failure then ends the step for good (the book fails and is
    /// refunded, or a page is delivered without its asset) instead of asking for a retry.
    pub async fn handle(&self, body: &str, last_attempt: bool) -> Result<(), StepError> {
        let message: StepMessage =
            serde_json::from_str(body).map_err(|e| StepError::Undecodable(e.to_string()))?;
        // The delivery's span (see `handle_delivery`) names the book and step from here on.
        let span = tracing::Span::current();
        span.record("book", message.book_id.as_str());
        span.record("step", message.step.key());
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
                tracing::warn!(error = format!("{source:#}"), "step failed for good");
                self.give_up(&message, code).await
            }
            Err(error) => {
                tracing::info!(error = %error, "step will be retried");
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
