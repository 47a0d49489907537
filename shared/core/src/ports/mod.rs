//! The ports the domain talks through. Each has an `embedded` and an `aws` adapter
//! (the `storybook-embedded` and `storybook-aws` crates), and one contract test suite (`tests/suite/contract`) run against both.
//! The studio's one implementation is the providers' (`storybook-pipeline`).

pub mod blobs;
pub mod marketplace;
pub mod not_given;
pub mod print_orders;
pub mod printer;
pub mod profiles;
pub mod purchases;
pub mod queue;
pub mod shares;
pub mod store;
mod store_error;
pub mod studio;

pub use blobs::{BlobError, BlobFolder, BlobKey, BlobStore, BlobStream};
pub use marketplace::Marketplace;
pub use not_given::NotGiven;
pub use printer::Printer;
pub use queue::{QueueError, QueuedMessage, StepQueue};
pub use store::{CreateOutcome, LimitDecision, Store, StoreError, StoredBook};
pub use studio::{Studio, StudioError};
