//! The composition root of every API Lambda function: AWS adapters from the environment, the
//! family's routes, `lambda_http`.

use crate::adapters::aws::secrets::{SecretIds, Secrets};
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

/// Builds the state once per cold start: clients are created here and reused by every request,
/// and the secrets this function is given (by id: `*_SECRET_ID`) are read from Secrets Manager.
pub async fn aws_state() -> anyhow::Result<(AppState, Secrets)> {
    crate::metrics::init();
    let settings = Settings::from_env()?;
    let resources = AwsResources::from_env()?;
    let config = sdk_config().await;
    let secrets = Secrets::load(
        &aws_sdk_secretsmanager::Client::new(&config),
        &SecretIds::from_env(),
    )
    .await?;
    tracing::info!(?secrets, "secrets read");
    // `KEY_PEPPER` itself only where no secret is configured (`sam local`, `cargo lambda`).
    let pepper = match secrets.pepper.clone() {
        Some(pepper) => pepper,
        None => pepper_from_env()?
            .ok_or_else(|| anyhow::anyhow!("KEY_PEPPER_SECRET_ID (or KEY_PEPPER) must be set"))?,
    };
    let (store, blobs, queue) = adapters(&config, &resources);
    let state = AppState::new(
        Arc::new(store),
        Arc::new(blobs),
        Arc::new(queue),
        CredentialHasher::new(pepper),
        settings,
    );
    Ok((state, secrets))
}

/// Runs one API function: the routes of `family` behind `lambda_http`. A function given the
/// first admin key stores it before serving, so the key works from the first request after a
/// deploy.
pub async fn serve_api(family: Family) -> Result<(), lambda_http::Error> {
    crate::telemetry::init();
    let (state, secrets) = aws_state().await.map_err(|e| format!("{e:#}"))?;
    if let Some(key) = &secrets.bootstrap_admin_key {
        crate::bootstrap::seed_admin_key(&*state.store, &state.hasher, Some(key))
            .await
            .map_err(|e| format!("{e:#}"))?;
    }
    lambda_http::run(app(state, &[family])).await
}

/// Runs the step worker: SQS batches of generation steps, answered with partial batch failures.
/// Providers' keys come from the secret `PROVIDER_KEYS_SECRET_ID` (or the environment), under
/// their own names (`OPENAI_API_KEY`, `REPLICATE_API_TOKEN`, `FAL_KEY`); with no key set, the
/// offline ones serve.
pub async fn serve_steps() -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init();
    let (state, secrets) = aws_state().await.map_err(|e| format!("{e:#}"))?;
    let providers = ProviderSettings::from_lookup(&secrets.provider_lookup())
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
    let (state, _) = aws_state().await.map_err(|e| format!("{e:#}"))?;
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

/// Runs the budget guard: the spend hard-limit alarm invokes it, and it turns the kill switch on.
pub async fn serve_budget_guard() -> Result<(), lambda_runtime::Error> {
    use aws_lambda_events::event::cloudwatch_alarms::CloudWatchMetricAlarm;
    crate::telemetry::init();
    let (state, _) = aws_state().await.map_err(|e| format!("{e:#}"))?;
    let guard = crate::spend::SpendGuard::new(&state);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<CloudWatchMetricAlarm>| {
            let guard = guard.clone();
            async move {
                let switched = guard
                    .on_spend_alarm(&event.payload)
                    .await
                    .map_err(|e| lambda_runtime::Error::from(format!("{e:#}")))?;
                Ok::<_, lambda_runtime::Error>(serde_json::json!({ "switched_off": switched }))
            }
        },
    ))
    .await
}

/// Runs the release's smoke test as CodeDeploy's `PreTraffic` hook: the new versions of the
/// health, credits and books functions are invoked directly, and the verdict reported.
pub async fn serve_deploy_check() -> Result<(), lambda_runtime::Error> {
    use crate::adapters::aws::deploy::{CodeDeployReporter, LambdaVersions};
    use aws_lambda_events::event::codedeploy::CodeDeployLifecycleEvent;
    crate::telemetry::init();
    let config = sdk_config().await;
    let target = Arc::new(
        LambdaVersions::from_env(aws_sdk_lambda::Client::new(&config))
            .map_err(|e| format!("{e:#}"))?,
    );
    let reporter = Arc::new(CodeDeployReporter(aws_sdk_codedeploy::Client::new(&config)));
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<CodeDeployLifecycleEvent>| {
            let (target, reporter) = (target.clone(), reporter.clone());
            async move {
                let verdict = crate::deploy_check::pre_traffic(event.payload, &*target, &*reporter)
                    .await
                    .map_err(|e| lambda_runtime::Error::from(format!("{e:#}")))?;
                Ok::<_, lambda_runtime::Error>(serde_json::json!({ "status": verdict.status() }))
            }
        },
    ))
    .await
}
