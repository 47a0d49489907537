//! Whether the process answers, is alive, and can serve.

use crate::endpoints::Endpoint;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use std::collections::BTreeMap;
use storybook_core::catalogue::Family;
use storybook_core::usecases::health::readiness;

/// Readiness: the release smoke test asks it too.
pub(crate) const READY: &str = "/health/ready";

/// The routes this file serves.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(Family::Health, "/health", health).public(),
        Endpoint::get(Family::Health, "/health/live", live).public(),
        Endpoint::get(Family::Health, READY, ready).public(),
    ]
}

#[derive(Serialize)]
pub struct Health {
    status: &'static str,
    service: &'static str,
    version: &'static str,
}

/// Static: the process answers.
pub async fn health() -> Json<Health> {
    Json(Health {
        status: "healthy",
        service: "ai-story-book",
        version: env!("CARGO_PKG_VERSION"),
    })
}

#[derive(Serialize)]
pub struct Alive {
    status: &'static str,
}

/// Static: the process is alive.
pub async fn live() -> Json<Alive> {
    Json(Alive { status: "alive" })
}

/// Each dependency's state, and which fail.
#[derive(Serialize)]
pub struct Readiness {
    status: &'static str,
    services: BTreeMap<&'static str, &'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failing: Vec<&'static str>,
}

/// Ready when the store, the queue and blob storage all answer; 503 naming the ones that don't.
pub async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let checks = readiness(&state).await;
    let services = checks
        .iter()
        .map(|&(name, ok)| (name, if ok { "ok" } else { "unavailable" }))
        .collect();
    let failing: Vec<&'static str> = checks
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|&(name, _)| name)
        .collect();
    if failing.is_empty() {
        let status = "ready";
        (
            StatusCode::OK,
            Json(Readiness {
                status,
                services,
                failing,
            }),
        )
    } else {
        tracing::warn!(?failing, "not ready");
        let status = "degraded";
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness {
                status,
                services,
                failing,
            }),
        )
    }
}
