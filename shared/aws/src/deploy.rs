//! The release's smoke test on AWS: requests go to the new function versions themselves (Lambda
//! `Invoke` with an API Gateway v2 event, before the alias points at them), and the verdict goes
//! to CodeDeploy.

use crate::sdk::describe;
use async_trait::async_trait;
use aws_lambda_events::event::codedeploy::CodeDeployLifecycleEvent;
use serde_json::{Value, json};
use std::collections::HashMap;
use storybook_core::catalogue::Family;
use storybook_core::deploy_check::{
    Deployment, LifecycleReporter, SmokeCheck, SmokeRequest, SmokeResponse, SmokeTarget, Verdict,
    check_release,
};

/// The new versions (ARNs with their version number) of the functions the smoke test calls.
pub struct LambdaVersions {
    pub client: aws_sdk_lambda::Client,
    pub versions: HashMap<Family, String>,
}

impl LambdaVersions {
    /// `HEALTH_FUNCTION_VERSION`, `CREDITS_FUNCTION_VERSION`, `BOOKS_FUNCTION_VERSION`.
    pub fn from_env(client: aws_sdk_lambda::Client) -> anyhow::Result<Self> {
        let mut versions = HashMap::new();
        for (family, name) in [
            (Family::Health, "HEALTH_FUNCTION_VERSION"),
            (Family::Credits, "CREDITS_FUNCTION_VERSION"),
            (Family::Books, "BOOKS_FUNCTION_VERSION"),
        ] {
            let arn = std::env::var(name).map_err(|_| anyhow::anyhow!("{name} must be set"))?;
            versions.insert(family, arn);
        }
        Ok(Self { client, versions })
    }
}

/// The API Gateway v2 event API Gateway would send for `request`.
pub fn api_event(request: &SmokeRequest) -> Value {
    let now = chrono::Utc::now();
    let headers: serde_json::Map<String, Value> = request
        .headers
        .iter()
        .map(|(name, value)| ((*name).to_owned(), json!(value)))
        .collect();
    json!({
        "version": "2.0",
        "routeKey": format!("{} {}", request.method, request.path),
        "rawPath": request.path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "deploy-check",
            "apiId": "deploy-check",
            "domainName": "deploy-check.local",
            "domainPrefix": "deploy-check",
            "http": {
                "method": request.method,
                "path": request.path,
                "protocol": "HTTP/1.1",
                "sourceIp": "127.0.0.1",
                "userAgent": "deploy-check",
            },
            "requestId": uuid::Uuid::new_v4().to_string(),
            "routeKey": format!("{} {}", request.method, request.path),
            "stage": "$default",
            "time": now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            "timeEpoch": now.timestamp_millis(),
        },
        "body": request.body,
        "isBase64Encoded": false,
    })
}

#[async_trait]
impl SmokeTarget for LambdaVersions {
    async fn send(&self, request: &SmokeRequest) -> anyhow::Result<SmokeResponse> {
        let version = self
            .versions
            .get(&request.family)
            .ok_or_else(|| anyhow::anyhow!("no version of {:?} to call", request.family))?;
        let answer = self
            .client
            .invoke()
            .function_name(version)
            .payload(aws_sdk_lambda::primitives::Blob::new(
                api_event(request).to_string(),
            ))
            .send()
            .await
            .map_err(describe)?;
        if let Some(error) = answer.function_error {
            anyhow::bail!("{version} failed: {error}");
        }
        let payload = answer.payload.map(|p| p.into_inner()).unwrap_or_default();
        let response: Value = serde_json::from_slice(&payload)?;
        Ok(SmokeResponse {
            status: response["statusCode"].as_u64().unwrap_or(0) as u16,
            body: response["body"].as_str().unwrap_or_default().to_owned(),
        })
    }
}

/// The `PreTraffic` hook's handler: CodeDeploy's event, checked and answered by
/// [`check_release`].
pub async fn pre_traffic(
    event: CodeDeployLifecycleEvent,
    checks: &[SmokeCheck],
    target: &dyn SmokeTarget,
    reporter: &dyn LifecycleReporter,
) -> anyhow::Result<Verdict> {
    let deployment = Deployment {
        id: event.deployment_id,
        hook_execution_id: event.lifecycle_event_hook_execution_id,
    };
    check_release(&deployment, checks, target, reporter).await
}

/// Reports a hook's verdict to CodeDeploy (`PutLifecycleEventHookExecutionStatus`).
pub struct CodeDeployReporter(pub aws_sdk_codedeploy::Client);

#[async_trait]
impl LifecycleReporter for CodeDeployReporter {
    async fn report(&self, deployment: &Deployment, verdict: &Verdict) -> anyhow::Result<()> {
        self.0
            .put_lifecycle_event_hook_execution_status()
            .deployment_id(&deployment.id)
            .lifecycle_event_hook_execution_id(&deployment.hook_execution_id)
            .status(aws_sdk_codedeploy::types::LifecycleEventStatus::from(
                verdict.status(),
            ))
            .send()
            .await
            .map_err(describe)?;
        Ok(())
    }
}
