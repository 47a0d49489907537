//! Whether this deployment can serve: each dependency asked at once, with a time limit.

use crate::app::App;
use std::time::Duration;

/// Each dependency by name, and whether it answered within three seconds.
#[tracing::instrument(skip_all)]
pub async fn readiness(app: &App) -> [(&'static str, bool); 3] {
    let limit = Duration::from_secs(3);
    let (store, queue, blobs) = tokio::join!(
        tokio::time::timeout(limit, app.store.ping()),
        tokio::time::timeout(limit, app.queue.ping()),
        tokio::time::timeout(limit, app.blobs.ping()),
    );
    [
        ("store", matches!(store, Ok(Ok(())))),
        ("queue", matches!(queue, Ok(Ok(())))),
        ("blobs", matches!(blobs, Ok(Ok(())))),
    ]
}
