//! Local mode's adapters: one SQLite database (state and the step queue, so a restart resumes
//! unfinished work) and a folder of blob files.

mod blobs;
mod database;
mod queue;
mod spend;
mod store;

pub use blobs::{FolderBlobs, LOCAL_BLOB_PATH, LocalUrlSigner};
pub use database::Database;
pub use queue::SqliteQueue;
pub use store::SqliteStore;
