//! A circuit breaker per provider, as one small record every worker shares through the store: a
//! Lambda process alone sees too few calls to judge a provider. After `threshold` failures in a
//! window the provider is skipped for a cooldown; then one caller probes, and its call decides.

use chrono::{DateTime, Utc};

/// The breaker's tuning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    pub threshold: u32,
    pub window: chrono::Duration,
    pub cooldown: chrono::Duration,
    /// How long a probe may take before another caller may probe.
    pub probe_timeout: chrono::Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        Self {
            threshold: 5,
            window: chrono::Duration::seconds(60),
            cooldown: chrono::Duration::seconds(30),
            probe_timeout: chrono::Duration::seconds(120),
        }
    }
}

/// One provider's breaker as stored. The default is closed with no failures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BreakerRecord {
    pub failures: u32,
    pub window_started: Option<DateTime<Utc>>,
    /// Open until then; after it, half-open (one probe).
    pub open_until: Option<DateTime<Utc>>,
    /// A probe is out until then.
    pub probe_until: Option<DateTime<Utc>>,
}

/// Whether a call may go to the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    Closed,
    /// Half-open: this caller probes, once it has stored this record.
    Probe(BreakerRecord),
    /// Open, or another caller is probing.
    Skip,
}

/// What a failure did to the breaker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AfterFailure {
    pub record: BreakerRecord,
    /// This failure opened it (log once).
    pub opened: bool,
}

impl BreakerRecord {
    pub fn admit(&self, policy: &BreakerPolicy, now: DateTime<Utc>) -> Admission {
        match self.open_until {
            None => Admission::Closed,
            Some(until) if now < until => Admission::Skip,
            Some(_) if self.probe_until.is_some_and(|p| now < p) => Admission::Skip,
            Some(_) => Admission::Probe(BreakerRecord {
                probe_until: Some(now + policy.probe_timeout),
                ..self.clone()
            }),
        }
    }

    /// After a success: closed again, if it was not (`None`: nothing to write).
    pub fn after_success(&self) -> Option<BreakerRecord> {
        (*self != BreakerRecord::default()).then(BreakerRecord::default)
    }

    pub fn after_failure(&self, policy: &BreakerPolicy, now: DateTime<Utc>) -> AfterFailure {
        if self.open_until.is_some() {
            // A failed probe (or a call admitted before it opened): open for another cooldown.
            return AfterFailure {
                record: BreakerRecord {
                    failures: self.failures.max(policy.threshold),
                    window_started: self.window_started,
                    open_until: Some(now + policy.cooldown),
                    probe_until: None,
                },
                opened: false,
            };
        }
        let fresh = self
            .window_started
            .is_none_or(|start| now - start > policy.window);
        let (failures, window_started) = if fresh {
            (1, now)
        } else {
            (self.failures + 1, self.window_started.unwrap_or(now))
        };
        let opened = failures >= policy.threshold;
        AfterFailure {
            record: BreakerRecord {
                failures,
                window_started: Some(window_started),
                open_until: opened.then(|| now + policy.cooldown),
                probe_until: None,
            },
            opened,
        }
    }

    pub fn is_open(&self) -> bool {
        self.open_until.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_then_one_probe_decides() {
        let policy = BreakerPolicy::default();
        let t0 = Utc::now();
        let mut record = BreakerRecord::default();
        for i in 0..policy.threshold {
            assert_eq!(record.admit(&policy, t0), Admission::Closed);
            let after = record.after_failure(&policy, t0);
            assert_eq!(after.opened, i + 1 == policy.threshold);
            record = after.record;
        }
        assert_eq!(record.admit(&policy, t0), Admission::Skip);
        let later = t0 + policy.cooldown;
        let Admission::Probe(probing) = record.admit(&policy, later) else {
            panic!("half-open after the cooldown")
        };
        assert_eq!(
            probing.admit(&policy, later),
            Admission::Skip,
            "one probe at a time"
        );
        let reopened = probing.after_failure(&policy, later);
        assert!(!reopened.opened && reopened.record.is_open());
        assert_eq!(reopened.record.admit(&policy, later), Admission::Skip);
        assert_eq!(probing.after_success(), Some(BreakerRecord::default()));
        assert_eq!(BreakerRecord::default().after_success(), None);
    }

    #[test]
    fn failures_outside_the_window_start_over() {
        let policy = BreakerPolicy::default();
        let t0 = Utc::now();
        let once = BreakerRecord::default().after_failure(&policy, t0).record;
        let much_later = once.after_failure(&policy, t0 + policy.window * 2).record;
        assert_eq!(much_later.failures, 1);
    }
}
