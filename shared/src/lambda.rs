//! The composition root of every API Lambda function: AWS adapters from the environment, the
//! family's routes, `lambda_http`.

use crate::adapters::aws::{adapters, sdk_config};
use crate::config::{AwsResources, Settings, pepper_from_env};
use crate::domain::credential::CredentialHasher;
use crate::http::{AppState, Family, app};
use crate::pipeline::Pipeline;
use crate::pipeline::worker::{scheduled_sweep, sqs_batch};
use crate::providers::settings::ProviderSettings;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::SqsEvent;
use std::sync::Arc;

/// Builds the state once per cold start: clients are created here and reused by every request.
pub async fn aws_state() -> anyhow::Result<AppState> {
    let settings = Settings::from_env()?;
    let resources = AwsResources::from_env()?;
    let pepper = pepper_from_env()?.ok_or_else(|| anyhow::anyhow!("KEY_PEPPER must be set"))?;
    let config = sdk_config().await;
    let (store, blobs, queue) = adapters(&config, &resources);
    Ok(AppState::new(
        Arc::new(store),
        Arc::new(blobs),
        Arc::new(queue),
        CredentialHasher::new(pepper),
        settings,
    ))
}

/// Runs one API function: the routes of `family` behind `lambda_http`.
pub async fn serve_api(family: Family) -> Result<(), lambda_http::Error> {
    crate::telemetry::init();
    let state = aws_state().await.map_err(|e| format!("{e:#}"))?;
    if let Some(key) = std::env::var("BOOTSTRAP_ADMIN_KEY")
        .ok()
        .filter(|k| !k.is_empty())
    {
        crate::bootstrap::seed_admin_key(&*state.store, &state.hasher, Some(&key))
            .await
            .map_err(|e| format!("{e:#}"))?;
    }
    lambda_http::run(app(state, &[family])).await
}

/// Runs the step worker: SQS batches of generation steps, answered with partial batch failures.
/// Providers come from the environment (`OPENAI_API_KEY`, `REPLICATE_API_TOKEN`, `FAL_KEY`...);
/// with no key set, the offline ones serve.
pub async fn serve_steps() -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init();
    let state = aws_state().await.map_err(|e| format!("{e:#}"))?;
    let providers = ProviderSettings::from_env()
        .map_err(|e| format!("{e}"))?
        .build(state.store.clone(), state.clock.clone());
    tracing::info!(providers = ?providers.names, "step worker providers");
    let pipeline = Arc::new(Pipeline::new(&state, providers));
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<SqsEvent>| {
            let pipeline = pipeline.clone();
            async move { Ok::<_, lambda_runtime::Error>(sqs_batch(&pipeline, event.payload).await) }
        },
    ))
    .await
}

/// Runs the stuck-book sweep on its schedule (an EventBridge scheduled event).
pub async fn serve_sweeper() -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init();
    let state = aws_state().await.map_err(|e| format!("{e:#}"))?;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<EventBridgeEvent>| {
            let state = state.clone();
            async move {
                scheduled_sweep(
                    &*state.store,
                    state.settings.stuck_book_after,
                    event.payload,
                )
                .await
                .map_err(|e| lambda_runtime::Error::from(format!("{e:#}")))
            }
        },
    ))
    .await
}
