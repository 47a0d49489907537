//! Whether the process answers, is alive, and can serve.

use crate::endpoints::Endpoint;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use storybook_core::catalogue::{Access, Family};
use storybook_core::usecases::health::{self, readiness};

/// Readiness: the release smoke test asks it too.
pub(crate) const READY: &str = "/health/ready";

/// The routes this file serves.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::get(Family::Health, "/health", health).public(),
        Endpoint::get(Family::Health, "/health/live", live).public(),
        Endpoint::get(Family::Health, READY, ready).public(),
        Endpoint::get(Family::Health, "/health/detailed", detailed).access(Access::AdminKey),
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

/// What an operator sees (`X-Admin-Key`): each dependency, the providers configured, today's
/// spend against its limits, the kill switch, and the jobs. Always 200, `degraded` when any part
/// fails or generation is stopped; a part that cannot be read is null, never an error's text,
/// and no secret or key appears.
pub async fn detailed(State(state): State<AppState>) -> Json<Value> {
    let config = &state.config;
    let now = state.clock.now();
    let report = health::detailed(&state, now).await;
    let state_of = |ok: bool| if ok { "healthy" } else { "unhealthy" };
    let services: BTreeMap<&str, &str> = report
        .dependencies
        .iter()
        .map(|(name, ok)| (*name, state_of(*ok)))
        .collect();
    // Only local mode holds the providers' keys in this process; on Lambda the studio and the
    // worker read them from their secret and this function does not, so it names none.
    let providers = (config.environment.as_str() == "local").then_some(&config.providers);
    let limits = &config.spend;
    let mut warnings = Vec::new();
    if let Some(spent) = report.spent_today {
        if spent >= limits.hard_limit {
            warnings.push("spend_limit_reached");
        } else if spent >= limits.alert {
            warnings.push("spend_alert_crossed");
        }
    }
    let switch = report.kill_switch.as_ref().map(|switch| match switch {
        Some(switch) if switch.on => {
            json!({"on": true, "since": crate::routes::timestamp(switch.at)})
        }
        _ => json!({"on": false, "since": null}),
    });
    if matches!(&report.kill_switch, Some(Some(switch)) if switch.on) {
        warnings.push("kill_switch_on");
    }
    let jobs = report.jobs.map(|jobs| {
        let finished = jobs.done_last_hour + jobs.failed_last_hour;
        let success_rate = match finished {
            0 => 100.0,
            n => (1000.0 * jobs.done_last_hour as f64 / n as f64).round() / 10.0,
        };
        json!({
            "queued": jobs.queued,
            "running": jobs.running,
            "stuck": jobs.stuck,
            "completed_last_hour": jobs.done_last_hour,
            "failed_last_hour": jobs.failed_last_hour,
            "success_rate": success_rate,
        })
    });
    let healthy = report.dependencies.iter().all(|(_, ok)| *ok)
        && report.spent_today.is_some()
        && report.jobs.is_some()
        && switch.is_some()
        && !warnings.contains(&"kill_switch_on")
        && !warnings.contains(&"spend_limit_reached");
    Json(json!({
        "status": if healthy { "healthy" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "services": services,
        "providers": providers.map(|p| json!({
            "story": p.story,
            "moderation": p.moderation,
            "images": p.images,
            "speech": p.speech,
        })),
        "llm_provider": providers.map(|p| &p.story),
        "image_provider": providers.and_then(|p| p.images.first()),
        "cost_budget": "configured",
        "spend": {
            "today_usd": report.spent_today.map(|s| s.usd()),
            "alert_usd": limits.alert.usd(),
            "limit_usd": limits.hard_limit.usd(),
        },
        "kill_switch": switch,
        "warnings": warnings,
        "jobs": jobs,
        "config": {
            "rate_limit_requests": config.limits.reads_per_minute,
            "rate_limit_window": 60,
            "job_sla_seconds": config.stuck_book_after.as_secs(),
        },
    }))
}
