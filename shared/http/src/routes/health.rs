use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// Static: the process answers.
pub async fn health() -> Json<Value> {
    Json(
        json!({"status": "healthy", "service": "ai-story-book", "version": env!("CARGO_PKG_VERSION")}),
    )
}

/// Static: the process is alive.
pub async fn live() -> Json<Value> {
    Json(json!({"status": "alive"}))
}

/// Ready when the store, the queue and blob storage all answer; 503 naming the ones that don't.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let limit = Duration::from_secs(3);
    let (store, queue, blobs) = tokio::join!(
        tokio::time::timeout(limit, state.store.ping()),
        tokio::time::timeout(limit, state.queue.ping()),
        tokio::time::timeout(limit, state.blobs.ping()),
    );
    let checks = [
        ("store", matches!(store, Ok(Ok(())))),
        ("queue", matches!(queue, Ok(Ok(())))),
        ("blobs", matches!(blobs, Ok(Ok(())))),
    ];
    let services: serde_json::Map<String, Value> = checks
        .iter()
        .map(|(name, ok)| {
            (
                name.to_string(),
                Value::from(if *ok { "ok" } else { "unavailable" }),
            )
        })
        .collect();
    let failing: Vec<&str> = checks
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(name, _)| *name)
        .collect();
    if failing.is_empty() {
        (
            StatusCode::OK,
            Json(json!({"status": "ready", "services": services})),
        )
    } else {
        tracing::warn!(?failing, "not ready");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "degraded", "services": services, "failing": failing})),
        )
    }
}
