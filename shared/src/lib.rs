//! The library every AI Story Book function runs.
//!
//! - [`domain`]: the product's types (users, credentials, credits, API keys), validated on parse.
//! - [`ports`]: the traits storage, blobs and the step queue are reached through.
//! - [`adapters`]: `embedded` (SQLite, a folder) and `aws` (DynamoDB, S3, SQS) implementations.
//! - [`http`]: the one router of the HTTP API, run by `lambda_http` per function and whole by the
//!   local server, with its error envelope and extractors.
//! - [`config`], [`telemetry`], [`clock`]: settings from the environment, JSON logs, the time.
//! - [`local`], [`lambda`]: composition roots for local mode and for Lambda functions.
//! - [`spend`], [`metrics`]: the spend guard (prices, the daily limit, the kill switch) and
//!   CloudWatch metrics in the embedded metric format.

pub mod adapters;
pub mod bootstrap;
pub mod clock;
pub mod config;
pub mod deploy_check;
pub mod domain;
pub mod http;
#[cfg(feature = "aws")]
pub mod lambda;
pub mod local;
pub mod metrics;
pub mod pipeline;
pub mod ports;
pub mod providers;
pub mod spend;
pub mod telemetry;
