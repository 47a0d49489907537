//! The per-process first line of the rate limits: a keyed in-memory limiter per route class.

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use storybook_core::catalogue::RouteClass;
use storybook_core::config::Limits;
use storybook_core::usecases::access::VerifiedKeys;

/// The per-process first line: refuses what the store would refuse anyway, without a write.
pub struct LocalLimiter {
    classes: [DefaultKeyedRateLimiter<String>; 3],
    /// One audit entry per limited caller per minute is enough to see who was limited.
    audits: DefaultKeyedRateLimiter<String>,
    /// API keys (by keyed hash) this process verified in the last minute: their next requests
    /// need no slot of their address's failed-authentication count, so a client sending many
    /// requests at once with a good key is not refused while its first ones are checked.
    verified: Mutex<HashMap<String, Instant>>,
}

const VERIFIED_FOR: Duration = Duration::from_secs(60);

impl LocalLimiter {
    pub fn new(limits: &Limits) -> Self {
        let quota = |n: u32| Quota::per_minute(NonZeroU32::new(n.max(1)).expect("at least 1"));
        Self {
            classes: [
                RateLimiter::keyed(quota(limits.generation_per_minute)),
                RateLimiter::keyed(quota(limits.writes_per_minute)),
                RateLimiter::keyed(quota(limits.reads_per_minute)),
            ],
            audits: RateLimiter::keyed(quota(1)),
            verified: Mutex::default(),
        }
    }

    pub fn allows(&self, class: RouteClass, caller: &str) -> bool {
        let limiter = &self.classes[class as usize];
        // Forget idle callers now and then so the map stays small.
        if limiter.len() > 10_000 {
            limiter.retain_recent();
        }
        limiter.check_key(&caller.to_owned()).is_ok()
    }

    pub fn should_audit(&self, caller: &str) -> bool {
        if self.audits.len() > 10_000 {
            self.audits.retain_recent();
        }
        self.audits.check_key(&caller.to_owned()).is_ok()
    }
}

impl VerifiedKeys for LocalLimiter {
    /// Whether the key with `hash` was verified by this process within the last minute.
    fn recently_verified(&self, hash: &str) -> bool {
        let verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        verified
            .get(hash)
            .is_some_and(|at| at.elapsed() < VERIFIED_FOR)
    }

    fn mark_verified(&self, hash: &str) {
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        if verified.len() > 10_000 {
            verified.retain(|_, at| at.elapsed() < VERIFIED_FOR);
        }
        verified.insert(hash.to_owned(), Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_line_counts_per_caller_and_class() {
        let limiter = LocalLimiter::new(&Limits {
            generation_per_minute: 2,
            ..Limits::default()
        });
        assert!(
            limiter.allows(RouteClass::Generation, "a")
                && limiter.allows(RouteClass::Generation, "a")
        );
        assert!(!limiter.allows(RouteClass::Generation, "a"));
        assert!(limiter.allows(RouteClass::Generation, "b"));
        assert!(limiter.allows(RouteClass::Read, "a"));
    }
}
