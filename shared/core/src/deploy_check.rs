//! The release's smoke test, run by CodeDeploy's `PreTraffic` hook before any user reaches a new
//! version: health, an authenticated read and a dry-run book (checked like a real one, charging
//! and storing nothing). Its verdict is reported to CodeDeploy, which stops and rolls back the
//! release on `Failed`.
//!
//! Two ports keep the handler testable without AWS: [`SmokeTarget`] (what the requests go to:
//! the new function versions on Lambda, a running server in tests) and [`LifecycleReporter`]
//! (CodeDeploy).

use crate::catalogue::Family;
use async_trait::async_trait;

/// The device key of the smoke test's own user (the same user every release; it is never
/// charged: its only book request is a dry run).
pub const SMOKE_USER_KEY: &str = "5a0e5a0e-0000-4000-8000-00000000a11e";

/// One request of the smoke test, to the function serving `family`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmokeRequest {
    pub family: Family,
    pub method: &'static str,
    pub path: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmokeResponse {
    pub status: u16,
    pub body: String,
}

#[async_trait]
pub trait SmokeTarget: Send + Sync {
    async fn send(&self, request: &SmokeRequest) -> anyhow::Result<SmokeResponse>;
}

/// What the release is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Succeeded,
    /// Which check failed, and how.
    Failed(String),
}

impl Verdict {
    /// CodeDeploy's `LifecycleEventStatus`.
    pub fn status(&self) -> &'static str {
        match self {
            Verdict::Succeeded => "Succeeded",
            Verdict::Failed(_) => "Failed",
        }
    }
}

/// The release being checked: the deployment and its hook's execution, which the verdict
/// answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub id: String,
    pub hook_execution_id: String,
}

#[async_trait]
pub trait LifecycleReporter: Send + Sync {
    async fn report(&self, deployment: &Deployment, verdict: &Verdict) -> anyhow::Result<()>;
}

/// One check: what it asks and which statuses pass. The checks themselves are the API's
/// (`storybook_http::smoke::checks`), which knows its routes.
#[derive(Debug, Clone)]
pub struct SmokeCheck {
    pub request: SmokeRequest,
    pub passing: &'static [u16],
}

/// Runs every check against `target`; the first failure decides.
pub async fn smoke_test(target: &dyn SmokeTarget, checks: &[SmokeCheck]) -> Verdict {
    for SmokeCheck { request, passing } in checks {
        let what = format!("{} {}", request.method, request.path);
        match target.send(request).await {
            Ok(answer) if passing.contains(&answer.status) => {
                if answer.status == 429 || answer.status == 503 {
                    // Only the stopped-generation refusals pass, not any 429 or 503.
                    let code = serde_json::from_str::<serde_json::Value>(&answer.body)
                        .ok()
                        .and_then(|b| b["error"]["code"].as_str().map(str::to_owned));
                    if !matches!(
                        code.as_deref(),
                        Some("SERVICE_BUDGET_EXCEEDED" | "SERVICE_UNAVAILABLE")
                    ) {
                        return Verdict::Failed(format!("{what} answered {}", answer.status));
                    }
                }
                tracing::info!(check = what, status = answer.status, "smoke check passed");
            }
            Ok(answer) => {
                return Verdict::Failed(format!("{what} answered {}", answer.status));
            }
            Err(error) => return Verdict::Failed(format!("{what} failed: {error:#}")),
        }
    }
    Verdict::Succeeded
}

/// The hook's work: runs the smoke test and reports its verdict for `deployment`.
pub async fn check_release(
    deployment: &Deployment,
    checks: &[SmokeCheck],
    target: &dyn SmokeTarget,
    reporter: &dyn LifecycleReporter,
) -> anyhow::Result<Verdict> {
    let verdict = smoke_test(target, checks).await;
    match &verdict {
        Verdict::Succeeded => {
            tracing::info!(deployment = deployment.id.as_str(), "smoke test passed")
        }
        Verdict::Failed(reason) => tracing::error!(
            deployment = deployment.id.as_str(),
            reason,
            "smoke test failed: the release is stopped"
        ),
    }
    reporter.report(deployment, &verdict).await?;
    Ok(verdict)
}
