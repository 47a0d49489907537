//! The time the API reads. Days, streaks and limits depend on it, so tests that cross midnight or
//! a daylight-saving change move a manual clock instead of waiting.

use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};

#[derive(Clone, Default)]
pub struct Clock {
    /// `None`: the system's time.
    manual: Option<Arc<Mutex<DateTime<Utc>>>>,
}

impl Clock {
    pub fn system() -> Self {
        Self::default()
    }

    /// A clock that stands at `at` until [`Clock::set`] moves it (every clone moves with it).
    pub fn manual(at: DateTime<Utc>) -> Self {
        Self {
            manual: Some(Arc::new(Mutex::new(at))),
        }
    }

    pub fn now(&self) -> DateTime<Utc> {
        match &self.manual {
            Some(at) => *at.lock().unwrap_or_else(|p| p.into_inner()),
            None => Utc::now(),
        }
    }

    /// Moves a manual clock; the system clock cannot be moved.
    pub fn set(&self, at: DateTime<Utc>) {
        let manual = self
            .manual
            .as_ref()
            .expect("only a manual clock can be set");
        *manual.lock().unwrap_or_else(|p| p.into_inner()) = at;
    }
}
