//! Lambda's events for the scheduled functions (an EventBridge schedule, a CloudWatch alarm),
//! read into the core's words: the core never sees an AWS type.

use aws_lambda_events::event::cloudwatch_alarms::{
    CloudWatchAlarmStateValue, CloudWatchMetricAlarm,
};
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use std::time::Duration;
use storybook_core::app::App;
use storybook_core::clock::Clock;
use storybook_core::ports::{Store, StoreError};
use storybook_core::spend::{SpendAlarm, SpendGuard};
use storybook_core::usecases::Refusal;

/// The sweep function's handler: a scheduled event, swept as of the time it fired.
pub async fn scheduled_sweep(
    store: &dyn Store,
    clock: &Clock,
    stuck_after: Duration,
    event: EventBridgeEvent,
) -> Result<serde_json::Value, StoreError> {
    storybook_core::book_records::scheduled_sweep(store, clock, stuck_after, event.time).await
}

/// The reconcile function's handler: store plans past their period end read again from their
/// stores, as of the time the schedule fired.
pub async fn scheduled_reconcile(
    app: &App,
    event: EventBridgeEvent,
) -> Result<serde_json::Value, Refusal> {
    let now = event.time.unwrap_or_else(|| app.clock.now());
    let reconciled =
        storybook_core::usecases::store_events::reconcile_subscriptions(app, now).await?;
    Ok(serde_json::json!(reconciled))
}

/// The budget guard's handler, on the spend guard: the hard-limit alarm's event.
#[async_trait::async_trait]
pub trait OnSpendAlarm {
    /// Whether the alarm switched generation off.
    async fn on_spend_alarm(&self, alarm: &CloudWatchMetricAlarm) -> Result<bool, StoreError>;
}

#[async_trait::async_trait]
impl OnSpendAlarm for SpendGuard {
    async fn on_spend_alarm(&self, alarm: &CloudWatchMetricAlarm) -> Result<bool, StoreError> {
        let alarm = SpendAlarm {
            name: alarm.alarm_data.alarm_name.clone(),
            firing: alarm
                .alarm_data
                .state
                .as_ref()
                .is_some_and(|s| s.value == CloudWatchAlarmStateValue::Alarm),
        };
        self.on_alarm(&alarm).await
    }
}
