//! Adapters implementing the ports: `embedded` (SQLite and a local folder, for local mode and
//! tests) and `aws` (DynamoDB, SQS, S3), side by side.

#[cfg(feature = "aws")]
pub mod aws;
pub mod embedded;
