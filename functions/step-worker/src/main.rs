//! Lambda: the generation steps (story, illustrate, narrate, assemble) from the step queue.
//! Providers' keys come from the secret `PROVIDER_KEYS_SECRET_ID` (or the environment), under
//! their own names (`OPENAI_API_KEY`, `REPLICATE_API_TOKEN`, `FAL_KEY`); with no key set, the
//! offline ones serve. Batches are answered with partial batch failures.

use aws_lambda_events::event::sqs::SqsEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::sync::Arc;
use storybook_pipeline::pipeline::Pipeline;
use storybook_pipeline::pipeline::worker::sqs_batch;
use storybook_pipeline::providers::settings::ProviderSettings;

#[tokio::main]
async fn main() -> Result<(), Error> {
    storybook_core::telemetry::init();
    let start = storybook_aws::state::start()
        .await
        .map_err(|e| format!("{e:#}"))?;
    let provider_settings = ProviderSettings::from_lookup(&start.secrets.provider_lookup())
        .map_err(|e| format!("{e}"))?;
    let app = start.app();
    let providers = provider_settings.build(app.store.clone(), app.clock.clone());
    tracing::info!(providers = ?providers.names, "step worker providers");
    let pipeline = Arc::new(Pipeline::new(&app, providers));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let pipeline = pipeline.clone();
        async move { Ok::<_, Error>(sqs_batch(&pipeline, event.payload).await) }
    }))
    .await
}
