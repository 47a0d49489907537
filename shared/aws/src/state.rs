//! A Lambda function's start: settings, the SDK's configuration and the secrets this function is
//! given (by id: `*_SECRET_ID`, read from Secrets Manager), then only the clients it uses. Clients
//! are created once per cold start and reused by every request.

use crate::secrets::{SecretIds, Secrets};
use aws_config::SdkConfig;
use storybook_core::config::{AwsResources, Settings, pepper_from_env};
use storybook_core::domain::credential::CredentialHasher;

/// What every function reads before it builds its clients.
pub struct Start {
    pub config: SdkConfig,
    pub settings: Settings,
    pub resources: AwsResources,
    pub secrets: Secrets,
    pub hasher: CredentialHasher,
}

/// Reads the settings, the SDK configuration and the secrets.
pub async fn start() -> anyhow::Result<Start> {
    storybook_core::metrics::init();
    let settings = Settings::from_env()?;
    let resources = AwsResources::from_env()?;
    let config = crate::sdk_config().await;
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
    Ok(Start {
        config,
        settings,
        resources,
        secrets,
        hasher: CredentialHasher::new(pepper),
    })
}

impl Start {
    #[cfg(feature = "dynamodb")]
    pub fn store(&self) -> crate::DynamoStore {
        crate::DynamoStore::new(
            aws_sdk_dynamodb::Client::new(&self.config),
            &self.resources.table,
        )
    }

    /// The application over DynamoDB, S3 and SQS.
    #[cfg(all(feature = "dynamodb", feature = "s3", feature = "sqs"))]
    pub fn app(self) -> storybook_core::app::App {
        use std::sync::Arc;
        let (store, blobs, queue) = crate::adapters(&self.config, &self.resources);
        storybook_core::app::App::new(
            Arc::new(store),
            Arc::new(blobs),
            Arc::new(queue),
            self.hasher,
            self.settings,
        )
    }
}
