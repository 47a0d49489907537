//! Lambda: the subscription reconcile, on a schedule. Store plans past their period end are
//! read again from their stores (a renewal whose notification never came pays once; a lapse
//! ends the plan). The stores' settings come as the credits function's do.

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::sync::Arc;
use storybook_aws::events::scheduled_reconcile;
use storybook_stores::Stores;

#[tokio::main]
async fn main() -> Result<(), Error> {
    storybook_core::telemetry::init();
    let start = storybook_aws::state::start()
        .await
        .map_err(|e| format!("{e:#}"))?;
    let stores = Stores::from_lookup(&start.secrets.provider_lookup(), start.config.environment)
        .map_err(|e| format!("{e:#}"))?;
    let app = Arc::new(start.app_over_store().with_marketplace(Arc::new(stores)));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<EventBridgeEvent>| {
        let app = app.clone();
        async move {
            scheduled_reconcile(&app, event.payload)
                .await
                .map_err(|e| Error::from(format!("{e:#}")))
        }
    }))
    .await
}
