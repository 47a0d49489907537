//! Every real provider runs behind its circuit breaker ([`Guarded`]), shared by every worker
//! through the store; pictures go through an ordered fallback chain ([`IllustratorChain`]): a
//! provider that fails (or whose breaker is open) hands the picture to the next one.

use super::{
    Artwork, CharacterDesigner, DesignBrief, Illustrator, ImagePrompt, Metered, Moderator,
    Narrator, PageBrief, ProviderError, Speech, SpeechRequest, StoryBrief, StoryPage, StoryWriter,
    Verdict, WrittenStory,
};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use storybook_core::clock::Clock;
use storybook_core::domain::breaker::{Admission, BreakerPolicy};
use storybook_core::domain::character::Sheet;
use storybook_core::ports::store::BreakerStore;

/// The breakers of every provider, in the store.
#[derive(Clone)]
pub struct Breakers {
    store: Arc<dyn BreakerStore>,
    policy: BreakerPolicy,
    clock: Clock,
}

/// How many times a breaker change is tried against concurrent writers before it is given up
/// (the breaker then lags one event behind, which is harmless).
const WRITE_TRIES: usize = 8;

/// Failures that say something about the provider, not about our request.
fn counts_against_provider(error: &ProviderError) -> bool {
    !matches!(error, ProviderError::CircuitOpen { .. })
        && (error.is_retryable() || matches!(error, ProviderError::Malformed(_)))
}

/// The shortest wait a skipped call reports, so that a step is not back at once.
const MIN_WAIT: Duration = Duration::from_millis(10);

impl Breakers {
    pub fn new(store: Arc<dyn BreakerStore>, policy: BreakerPolicy, clock: Clock) -> Self {
        Self {
            store,
            policy,
            clock,
        }
    }

    /// Whether `provider` may be called now (`Ok`, saying whether its breaker holds anything a
    /// success must clear), or how long its circuit stays open. A store that cannot answer lets
    /// the call through: the breaker saves money and time, it does not guard correctness.
    async fn admit(&self, provider: &str) -> Result<bool, Duration> {
        for _ in 0..WRITE_TRIES {
            let (record, version) = match self.store.breaker(provider).await {
                Ok(found) => found,
                Err(error) => {
                    tracing::warn!(provider, error = %error, "breaker unreadable; calling anyway");
                    return Ok(true);
                }
            };
            let now = self.clock.now();
            match record.admit(&self.policy, now) {
                Admission::Closed => return Ok(record.after_success().is_some()),
                Admission::Skip => {
                    // Until the cooldown ends; while another caller probes, a cooldown more
                    // (the probe's outcome is known well before its own timeout).
                    let wait = match record.open_until {
                        Some(until) if until > now => until - now,
                        _ => self.policy.cooldown,
                    };
                    return Err(wait.to_std().unwrap_or_default().max(MIN_WAIT));
                }
                Admission::Probe(probing) => {
                    match self.store.put_breaker(provider, &probing, version).await {
                        Ok(true) => {
                            tracing::info!(provider, "circuit half-open: probing the provider");
                            return Ok(true);
                        }
                        Ok(false) => continue,
                        Err(_) => return Ok(true),
                    }
                }
            }
        }
        Err(MIN_WAIT)
    }

    async fn record(&self, provider: &str, failure: Option<&ProviderError>) {
        for _ in 0..WRITE_TRIES {
            let Ok((record, version)) = self.store.breaker(provider).await else {
                return;
            };
            let (next, opened) = match failure {
                None => match record.after_success() {
                    Some(closed) => (closed, false),
                    None => return,
                },
                Some(_) => {
                    let after = record.after_failure(&self.policy, self.clock.now());
                    (after.record, after.opened)
                }
            };
            match self.store.put_breaker(provider, &next, version).await {
                Ok(true) => {
                    if opened {
                        tracing::warn!(provider, failures = next.failures, error = %failure.expect("a failure opens"), "circuit opened: provider skipped for its cooldown");
                    } else if failure.is_none() && record.is_open() {
                        tracing::info!(provider, "circuit closed: provider serving again");
                    }
                    return;
                }
                Ok(false) => continue,
                Err(_) => return,
            }
        }
    }

    /// Calls `call` unless the breaker of `provider` is open, and records how it went.
    pub async fn call<T, Fut>(
        &self,
        provider: &str,
        call: impl FnOnce() -> Fut,
    ) -> Result<T, ProviderError>
    where
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let marked = match self.admit(provider).await {
            Ok(marked) => marked,
            Err(wait) => return Err(ProviderError::CircuitOpen { for_at_least: wait }),
        };
        let result = call().await;
        match &result {
            Err(error) if counts_against_provider(error) => {
                self.record(provider, Some(error)).await
            }
            // An answer, even a refusal of our request, shows the provider is up; a clean
            // breaker stays as it is without another read (the common case: one read a call).
            _ if marked => self.record(provider, None).await,
            _ => {}
        }
        result
    }
}

/// A provider behind its breaker.
pub struct Guarded<P: ?Sized> {
    pub name: String,
    pub breakers: Breakers,
    pub inner: Arc<P>,
}

#[async_trait]
impl StoryWriter for Guarded<dyn StoryWriter> {
    async fn write(&self, brief: &StoryBrief) -> Result<Metered<WrittenStory>, ProviderError> {
        self.breakers
            .call(&self.name, || self.inner.write(brief))
            .await
    }

    async fn rewrite_page(&self, brief: &PageBrief) -> Result<Metered<StoryPage>, ProviderError> {
        self.breakers
            .call(&self.name, || self.inner.rewrite_page(brief))
            .await
    }
}

#[async_trait]
impl Moderator for Guarded<dyn Moderator> {
    async fn check(&self, text: &str) -> Result<Metered<Verdict>, ProviderError> {
        self.breakers
            .call(&self.name, || self.inner.check(text))
            .await
    }
}

#[async_trait]
impl Narrator for Guarded<dyn Narrator> {
    async fn narrate(&self, request: &SpeechRequest) -> Result<Metered<Speech>, ProviderError> {
        self.breakers
            .call(&self.name, || self.inner.narrate(request))
            .await
    }
}

#[async_trait]
impl CharacterDesigner for Guarded<dyn CharacterDesigner> {
    async fn design(&self, brief: &DesignBrief) -> Result<Metered<Sheet>, ProviderError> {
        self.breakers
            .call(&self.name, || self.inner.design(brief))
            .await
    }
}

/// Illustrators tried in order, each behind its breaker. A safety refusal is not handed on (it
/// is about the picture, not the provider); any other failure is.
pub struct IllustratorChain {
    pub links: Vec<Guarded<dyn Illustrator>>,
}

#[async_trait]
impl Illustrator for IllustratorChain {
    async fn illustrate(&self, prompt: &ImagePrompt) -> Result<Metered<Artwork>, ProviderError> {
        let mut last = ProviderError::Unavailable("no illustrator is configured".into());
        // When every link is skipped, the step waits for the first circuit to half-open.
        let mut soonest: Option<Duration> = None;
        for link in &self.links {
            match link
                .breakers
                .call(&link.name, || link.inner.illustrate(prompt))
                .await
            {
                Ok(artwork) => return Ok(artwork),
                Err(refused @ ProviderError::Refused(_)) => return Err(refused),
                Err(ProviderError::CircuitOpen { for_at_least }) => {
                    soonest = Some(soonest.map_or(for_at_least, |s| s.min(for_at_least)));
                }
                Err(error) => {
                    tracing::info!(provider = link.name.as_str(), error = %error, "illustrator failed; trying the next");
                    last = error;
                }
            }
        }
        match soonest {
            Some(for_at_least) if last.retry_after().is_none() => {
                // Every link that was called failed too: come back when a circuit half-opens.
                Err(ProviderError::CircuitOpen { for_at_least })
            }
            _ => Err(last),
        }
    }
}
