//! A Lambda function's start: settings, the SDK's configuration and the secrets this function is
//! given (by id: `*_SECRET_ID`, read from Secrets Manager), then only the clients it uses. Clients
//! are made on first use (see [`LazyClient`]) and reused by every request.

#[allow(unused_imports)]
use crate::sdk::LazyClient;

/// What every function reads before it builds its clients.
#[cfg(feature = "secrets")]
pub struct Start {
    pub sdk: aws_config::SdkConfig,
    pub config: storybook_core::config::Config,
    pub resources: storybook_core::config::AwsResources,
    pub secrets: crate::secrets::Secrets,
    pub hasher: storybook_core::domain::credential::CredentialHasher,
}

/// Reads the settings, the SDK configuration and the secrets.
#[cfg(feature = "secrets")]
pub async fn start() -> anyhow::Result<Start> {
    use crate::secrets::{SecretIds, Secrets};
    use storybook_core::config::{AwsResources, Config, pepper_from_env};
    storybook_core::metrics::init();
    let config = Config::from_env()?;
    let resources = AwsResources::from_env()?;
    let sdk = crate::sdk::sdk_config().await;
    // A Secrets Manager client only where there are secrets to read.
    let ids = SecretIds::from_env();
    let secrets = if ids == SecretIds::default() {
        Secrets::default()
    } else {
        Secrets::load(&aws_sdk_secretsmanager::Client::new(&sdk), &ids).await?
    };
    tracing::info!(?secrets, "secrets read");
    // `KEY_PEPPER` itself only where no secret is configured (`sam local`, `cargo lambda`).
    let pepper = match secrets.pepper.clone() {
        Some(pepper) => pepper,
        None => pepper_from_env()?
            .ok_or_else(|| anyhow::anyhow!("KEY_PEPPER_SECRET_ID (or KEY_PEPPER) must be set"))?,
    };
    Ok(Start {
        sdk,
        config,
        resources,
        secrets,
        hasher: storybook_core::domain::credential::CredentialHasher::new(pepper),
    })
}

#[cfg(all(feature = "secrets", feature = "dynamodb"))]
impl Start {
    pub fn store(&self) -> crate::DynamoStore {
        crate::DynamoStore::new(
            LazyClient::from_config(&self.sdk, aws_sdk_dynamodb::Client::new),
            &self.resources.table,
        )
    }

    /// The application over the store alone, for functions given no blob store and no queue
    /// (credits, admin).
    pub fn app_over_store(self) -> storybook_core::app::App {
        use std::sync::Arc;
        use storybook_core::ports::NotGiven;
        storybook_core::app::App::new(
            Arc::new(self.store()),
            Arc::new(NotGiven),
            Arc::new(NotGiven),
            self.hasher,
            self.config,
        )
    }

    /// What an API function serving `family` runs over, and the first admin key it stores
    /// before serving: the store, and the blob store and the queue where the family uses them.
    /// A family that uses one, built without this crate's feature for it (`s3`, `sqs`), is
    /// refused at start.
    pub fn for_family(
        self,
        family: storybook_core::catalogue::Family,
    ) -> anyhow::Result<(storybook_core::app::App, Option<String>)> {
        let first_admin_key = self.secrets.bootstrap_admin_key.clone();
        match (family.uses_blobs(), family.uses_queue()) {
            (false, false) => Ok((self.app_over_store(), first_admin_key)),
            #[cfg(feature = "s3")]
            (true, false) => Ok((self.app_over_store_and_blobs(), first_admin_key)),
            #[cfg(all(feature = "s3", feature = "sqs"))]
            (true, true) => Ok((self.app(), first_admin_key)),
            #[allow(unreachable_patterns)]
            _ => anyhow::bail!(
                "{family:?} uses blob storage or the step queue: build storybook-aws with s3 (and sqs)"
            ),
        }
    }

    /// The application over the store and blob storage, with no queue (library, users, studio).
    #[cfg(feature = "s3")]
    pub fn app_over_store_and_blobs(self) -> storybook_core::app::App {
        use std::sync::Arc;
        use storybook_core::ports::NotGiven;
        let blobs = crate::S3Blobs::new(
            LazyClient::from_config(&self.sdk, crate::sdk::s3_client),
            &self.resources.bucket,
        );
        storybook_core::app::App::new(
            Arc::new(self.store()),
            Arc::new(blobs),
            Arc::new(NotGiven),
            self.hasher,
            self.config,
        )
    }

    /// The application over DynamoDB, S3 and SQS.
    #[cfg(all(feature = "s3", feature = "sqs"))]
    pub fn app(self) -> storybook_core::app::App {
        use std::sync::Arc;
        let (store, blobs, queue) = adapters(&self.sdk, &self.resources);
        storybook_core::app::App::new(
            Arc::new(store),
            Arc::new(blobs),
            Arc::new(queue),
            self.hasher,
            self.config,
        )
    }
}

/// The three adapters over one SDK configuration and one set of resources.
#[cfg(all(feature = "dynamodb", feature = "s3", feature = "sqs"))]
pub fn adapters(
    sdk: &aws_config::SdkConfig,
    resources: &storybook_core::config::AwsResources,
) -> (crate::DynamoStore, crate::S3Blobs, crate::SqsQueue) {
    (
        crate::DynamoStore::new(
            LazyClient::from_config(sdk, aws_sdk_dynamodb::Client::new),
            &resources.table,
        ),
        crate::S3Blobs::new(
            LazyClient::from_config(sdk, crate::sdk::s3_client),
            &resources.bucket,
        ),
        crate::SqsQueue::new(
            LazyClient::from_config(sdk, aws_sdk_sqs::Client::new),
            &resources.step_queue_url,
            &resources.step_dead_letter_url,
        ),
    )
}
