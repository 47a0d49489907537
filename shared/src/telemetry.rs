//! Structured JSON logs. Each request runs in a span carrying its request id, so every line
//! logged while serving it carries the id too. Secrets never reach a field: the types that hold
//! them print `***` (see `domain::credential`, `domain::user`, `domain::api_key`).

use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber once; later calls do nothing (tests call it freely).
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(true)
        .with_span_list(false)
        .flatten_event(true)
        .with_target(false)
        .try_init();
}
