//! The product's core: what a book, a credit, a key and a user are, the ports every adapter
//! implements, and the operations over them that need no HTTP and no provider.
//!
//! Module map:
//! - [`domain`]: the product's types (users, credentials, credits, API keys, books, spend),
//!   validated on parse.
//! - [`documents`]: what the stores keep, each stored document its own versioned type.
//! - [`ports`]: the traits storage, blobs and the step queue are reached through; adapters live
//!   in the `storybook-aws` and `storybook-embedded` crates.
//! - [`app`]: the ports, settings and clock that operations run over.
//! - [`usecases`]: one function per thing the product does (make a book, grant credits, rotate
//!   a key, erase a user, record a reading...), over the ports; the HTTP layer calls them.
//! - [`catalogue`]: the words routes are declared in (function family, access, rate-limit class).
//! - [`book_records`], [`book_files`]: changing a stored book safely (and the stuck-book sweep);
//!   where a book's files live and how its steps are queued.
//! - [`spend`]: the spend guard (prices, the daily limit, the kill switch).
//! - [`deploy_check`]: the release's smoke test, behind two ports.
//! - [`bootstrap`]: storing the first admin key.
//! - [`config`], [`telemetry`], [`metrics`], [`clock`]: settings from the environment, JSON
//!   logs, CloudWatch metrics in the embedded metric format, the time.
//!
//! Glossary: *the app's contract* is the OpenAPI document the mobile app is built against
//! (`contract/app-openapi.json`); *our* `openapi.json` is what this API serves, a superset. A
//! *family* is the group of routes one Lambda function serves. A *step* is one unit of a book's
//! generation, carried by one queue message. A book's *seed* is its random seed, fixed at
//! creation so that a retried step draws the same picture.

pub mod app;
pub mod book_files;
pub mod book_records;
pub mod bootstrap;
pub mod catalogue;
pub mod clock;
pub mod config;
pub mod deploy_check;
pub mod documents;
pub mod domain;
pub mod metrics;
pub mod ports;
pub mod spend;
pub mod telemetry;
pub mod usecases;
