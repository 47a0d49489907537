//! Lambda: the budget guard, invoked by the spend hard-limit alarm; turns the kill switch on.

use aws_lambda_events::event::cloudwatch_alarms::CloudWatchMetricAlarm;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::sync::Arc;
use storybook_aws::events::OnSpendAlarm;
use storybook_core::clock::Clock;
use storybook_core::spend::SpendGuard;

#[tokio::main]
async fn main() -> Result<(), Error> {
    storybook_core::telemetry::init();
    let start = storybook_aws::state::start()
        .await
        .map_err(|e| format!("{e:#}"))?;
    let guard = SpendGuard::over(Arc::new(start.store()), &start.config, Clock::system());
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<CloudWatchMetricAlarm>| {
            let guard = guard.clone();
            async move {
                let switched = guard
                    .on_spend_alarm(&event.payload)
                    .await
                    .map_err(|e| Error::from(format!("{e:#}")))?;
                Ok::<_, Error>(serde_json::json!({ "switched_off": switched }))
            }
        },
    ))
    .await
}
