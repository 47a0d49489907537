//! The AWS adapters, through the AWS SDK for Rust, a feature per service so that each function
//! links only the clients its IAM policy allows. Clients are built once per process and reused.
//!
//! Module map:
//! - `dynamodb` (feature `dynamodb`): the store, one table (see the module for its access
//!   patterns); [`restore`]: the restore drill's check of a restored table.
//! - `s3` (`s3`): blobs and presigned URLs. `sqs` (`sqs`): the step queue.
//! - [`secrets`] (`secrets`): the secrets a function is given, read from Secrets Manager.
//! - [`deploy`] (`deploy`): the release's smoke test against new Lambda versions, reported to
//!   CodeDeploy.
//! - [`provision`] (`dynamodb`, `s3`, `sqs`): creating the table, bucket and queues (tests, the
//!   restore drill).
//! - [`state`]: a Lambda function's application, built once per cold start.

#[cfg(feature = "deploy")]
pub mod deploy;
#[cfg(feature = "dynamodb")]
mod dynamodb;
#[cfg(all(feature = "dynamodb", feature = "s3", feature = "sqs"))]
pub mod provision;
#[cfg(feature = "dynamodb")]
pub mod restore;
#[cfg(feature = "s3")]
mod s3;
#[cfg(feature = "secrets")]
pub mod secrets;
#[cfg(feature = "sqs")]
mod sqs;
#[cfg(feature = "secrets")]
pub mod state;

#[cfg(feature = "dynamodb")]
pub use dynamodb::DynamoStore;
#[cfg(feature = "s3")]
pub use s3::S3Blobs;
#[cfg(feature = "sqs")]
pub use sqs::SqsQueue;

// The core's modules under the names the adapters use (`crate::domain`, `crate::ports`, ...).
#[cfg(all(feature = "dynamodb", feature = "s3", feature = "sqs"))]
use crate::config::AwsResources;
#[allow(unused_imports)]
use storybook_core::{catalogue, config, deploy_check, domain, metrics, ports};

use aws_config::{BehaviorVersion, SdkConfig};

/// The SDK's shared configuration from the environment (region, credentials and, for
/// `moto_server` or other emulators, `AWS_ENDPOINT_URL`).
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

#[cfg(feature = "s3")]
/// An S3 client; path-style addressing when an endpoint is overridden (emulators have no
/// per-bucket host names).
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let s3_config = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(config.endpoint_url().is_some())
        .build();
    aws_sdk_s3::Client::from_conf(s3_config)
}

/// SDK errors carry their whole chain in `DisplayErrorContext`; plain `Display` says only
/// "service error", which helps nobody reading a log.
#[cfg(any(
    feature = "dynamodb",
    feature = "s3",
    feature = "sqs",
    feature = "secrets",
    feature = "deploy"
))]
fn describe<E: std::error::Error + Send + Sync + 'static>(error: E) -> anyhow::Error {
    anyhow::anyhow!(
        "{}",
        aws_smithy_types::error::display::DisplayErrorContext(&error)
    )
}

#[cfg(all(feature = "dynamodb", feature = "s3", feature = "sqs"))]
/// The three adapters over one SDK configuration and one set of resources.
pub fn adapters(config: &SdkConfig, resources: &AwsResources) -> (DynamoStore, S3Blobs, SqsQueue) {
    (
        DynamoStore::new(aws_sdk_dynamodb::Client::new(config), &resources.table),
        S3Blobs::new(s3_client(config), &resources.bucket),
        SqsQueue::new(
            aws_sdk_sqs::Client::new(config),
            &resources.step_queue_url,
            &resources.step_dead_letter_url,
        ),
    )
}
