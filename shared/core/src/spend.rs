//! The spend guard, shared by the API and the step worker: it prices each provider call from the
//! price table and adds it to today's spend and the book's cost (atomically, in the store), and
//! says whether generation may go on (the kill switch, the hard limit).

use crate::clock::Clock;
use crate::domain::book::BookId;
use crate::domain::spend::Usage;
use crate::domain::spend::{
    KillSwitch, Microdollars, PriceTable, SpendCharge, SpendLimits, Stopped, generation_stopped,
    spend_day,
};
use crate::metrics::{self, Unit};
use crate::ports::{Store, StoreError};
use std::sync::Arc;

/// Who the budget guard is, in the kill switch's record.
pub const BUDGET_GUARD: &str = "budget-guard";

/// The spend alarm as the budget guard reads it: which alarm, and whether it is firing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendAlarm {
    pub name: String,
    pub firing: bool,
}

#[derive(Clone)]
pub struct SpendGuard {
    store: Arc<dyn Store>,
    prices: Arc<PriceTable>,
    pub limits: SpendLimits,
    clock: Clock,
}

impl SpendGuard {
    pub fn new(app: &crate::app::App) -> Self {
        Self::over(app.store.clone(), &app.config, app.clock.clone())
    }

    /// The guard over `store` alone (the budget guard's function has no other port).
    pub fn over(store: Arc<dyn Store>, config: &crate::config::Config, clock: Clock) -> Self {
        Self {
            store,
            prices: config.prices.clone(),
            limits: config.spend,
            clock,
        }
    }

    /// What time it is for spend: the app's clock.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// Counts a finished book, with its whole cost, into today's spend report, once.
    pub async fn record_finished(&self, book: &BookId) -> Result<bool, StoreError> {
        let day = spend_day(self.clock.now()).0;
        self.store.record_finished_book(day, book).await
    }

    /// Why generation must not go on now, if it must not: two reads (the switch and today's
    /// total), made together. A store that cannot answer stops generation (fail closed).
    pub async fn stopped(&self) -> Result<Option<Stopped>, StoreError> {
        let now = self.clock.now();
        let (switch, spent) = tokio::try_join!(
            self.store.kill_switch(),
            self.store.spent_on(spend_day(now).0)
        )?;
        Ok(generation_stopped(
            switch.as_ref(),
            spent,
            &self.limits,
            now,
        ))
    }

    /// Prices one provider call and adds it to today's spend and to the book's cost. Crossing
    /// the alert threshold or the hard limit is logged (and counted as a metric) by the one call
    /// that crossed it. Answers the call's cost.
    pub async fn record(
        &self,
        book: &BookId,
        step: &str,
        usage: &Usage,
    ) -> Result<Microdollars, StoreError> {
        let cost = self.prices.price(&usage.consumption());
        let charge = SpendCharge {
            day: spend_day(self.clock.now()).0,
            book: book.clone(),
            cost,
        };
        let total = self.store.add_spend(&charge).await?;
        tracing::info!(
            book = book.as_str(),
            step,
            provider = usage.provider.as_str(),
            model = usage.model.as_str(),
            input_tokens = usage.input_tokens,
            output_tokens = usage.output_tokens,
            images = usage.images,
            image_size = usage.image_size.as_deref().unwrap_or_default(),
            image_quality = usage.image_quality.as_deref().unwrap_or_default(),
            characters_spoken = usage.characters_spoken,
            cost_usd = cost.usd(),
            spent_today_usd = total.usd(),
            "provider usage"
        );
        metrics::emit(
            &[(metrics::SPEND, cost.usd(), Unit::None)],
            &[("Provider", &usage.provider)],
        );
        metrics::emit(&[(metrics::SPEND_TODAY, total.usd(), Unit::None)], &[]);
        let before = Microdollars(total.0.saturating_sub(cost.0));
        if before < self.limits.alert && self.limits.alert <= total {
            tracing::warn!(
                spent_today_usd = total.usd(),
                alert_usd = self.limits.alert.usd(),
                "today's provider spend crossed the alert threshold"
            );
            metrics::count(metrics::SPEND_ALERT_CROSSED);
        }
        if before < self.limits.hard_limit && self.limits.hard_limit <= total {
            tracing::error!(
                spent_today_usd = total.usd(),
                hard_limit_usd = self.limits.hard_limit.usd(),
                "today's provider spend reached the hard limit: generation stops until the next UTC day"
            );
            metrics::count(metrics::SPEND_LIMIT_REACHED);
        }
        Ok(cost)
    }

    /// The budget guard: the hard-limit alarm went to ALARM, so the kill switch goes on (unless
    /// it is on already: an operator's reason is kept). Other states change nothing. Answers
    /// whether it switched.
    pub async fn on_alarm(&self, alarm: &SpendAlarm) -> Result<bool, StoreError> {
        if !alarm.firing {
            tracing::info!(
                alarm = alarm.name.as_str(),
                "alarm not firing: nothing to do"
            );
            return Ok(false);
        }
        if self.store.kill_switch().await?.is_some_and(|s| s.on) {
            return Ok(false);
        }
        self.switch(
            true,
            &format!(
                "today's provider spend reached the hard limit (alarm {})",
                alarm.name
            ),
            BUDGET_GUARD,
        )
        .await?;
        Ok(true)
    }

    /// Turns the kill switch on or off, as `by` (an API key id, or the budget guard).
    pub async fn switch(&self, on: bool, reason: &str, by: &str) -> Result<KillSwitch, StoreError> {
        let switch = KillSwitch {
            on,
            reason: reason.to_owned(),
            by: by.to_owned(),
            at: self.clock.now(),
        };
        self.store.put_kill_switch(&switch).await?;
        tracing::warn!(on, reason, by, "kill switch set");
        Ok(switch)
    }
}
