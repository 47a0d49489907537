//! The AWS adapters: DynamoDB (single table, see `dynamodb.rs` for the access patterns), SQS and
//! S3, through the AWS SDK for Rust. Clients are built once per process and reused.

pub mod deploy;
mod dynamodb;
pub mod provision;
pub mod restore;
mod s3;
pub mod secrets;
mod sqs;

pub use dynamodb::DynamoStore;
pub use s3::S3Blobs;
pub use sqs::SqsQueue;

use crate::config::AwsResources;

use aws_config::{BehaviorVersion, SdkConfig};

/// The SDK's shared configuration from the environment (region, credentials and, for
/// `moto_server` or other emulators, `AWS_ENDPOINT_URL`).
pub async fn sdk_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest()).load().await
}

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
fn describe<E: std::error::Error + Send + Sync + 'static>(error: E) -> anyhow::Error {
    anyhow::anyhow!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&error))
}

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
