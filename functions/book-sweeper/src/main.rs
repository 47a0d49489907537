//! Lambda: the stuck-book sweep, on a schedule. Fails and refunds books that made no progress.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::sync::Arc;
use storybook_aws::events::scheduled_sweep;
use storybook_core::clock::Clock;

#[tokio::main]
async fn main() -> Result<(), Error> {
    storybook_core::telemetry::init();
    let start = storybook_aws::state::start()
        .await
        .map_err(|e| format!("{e:#}"))?;
    let store = Arc::new(start.store());
    let stuck_after = start.config.stuck_book_after;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<EventBridgeEvent>| {
        let store = store.clone();
        async move {
            scheduled_sweep(&*store, &Clock::system(), stuck_after, event.payload)
                .await
                .map_err(|e| Error::from(format!("{e:#}")))
        }
    }))
    .await
}
