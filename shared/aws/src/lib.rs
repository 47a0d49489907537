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
//! - [`events`]: the scheduled functions' Lambda events, read into the core's words.

#[cfg(feature = "deploy")]
pub mod deploy;
#[cfg(feature = "dynamodb")]
mod dynamodb;
pub mod events;
#[cfg(all(feature = "dynamodb", feature = "s3", feature = "sqs"))]
pub mod provision;
#[cfg(feature = "dynamodb")]
pub mod restore;
#[cfg(feature = "s3")]
mod s3;
pub mod sdk;
#[cfg(feature = "secrets")]
pub mod secrets;
#[cfg(feature = "sqs")]
mod sqs;
pub mod state;

#[cfg(feature = "s3")]
pub use sdk::s3_client;
pub use sdk::sdk_config;
#[cfg(all(feature = "dynamodb", feature = "s3", feature = "sqs"))]
pub use state::adapters;

#[cfg(feature = "dynamodb")]
pub use dynamodb::DynamoStore;
#[cfg(feature = "s3")]
pub use s3::S3Blobs;
#[cfg(feature = "sqs")]
pub use sqs::SqsQueue;
