//! The composition root of every API Lambda function: AWS adapters from the environment, the
//! family's routes, `lambda_http`.

use crate::adapters::aws::{DynamoStore, S3Blobs, SqsQueue, s3_client, sdk_config};
use crate::config::{AwsResources, Settings, pepper_from_env};
use crate::domain::credential::CredentialHasher;
use crate::http::{AppState, Family, app};
use std::sync::Arc;

/// Builds the state once per cold start: clients are created here and reused by every request.
pub async fn aws_state() -> anyhow::Result<AppState> {
    let settings = Settings::from_env()?;
    let resources = AwsResources::from_env()?;
    let pepper = pepper_from_env()?.ok_or_else(|| anyhow::anyhow!("KEY_PEPPER must be set"))?;
    let config = sdk_config().await;
    let state = AppState {
        store: Arc::new(DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&config),
            resources.table,
        )),
        blobs: Arc::new(S3Blobs::new(s3_client(&config), resources.bucket)),
        queue: Arc::new(SqsQueue::new(
            aws_sdk_sqs::Client::new(&config),
            resources.step_queue_url,
            resources.step_dead_letter_url,
        )),
        hasher: CredentialHasher::new(pepper),
        settings: Arc::new(settings),
    };
    Ok(state)
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
