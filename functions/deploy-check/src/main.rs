//! Lambda: CodeDeploy's PreTraffic hook; smoke-tests a release's new versions before traffic:
//! the health, credits and books functions' new versions are invoked directly, and the verdict
//! reported.

use aws_lambda_events::event::codedeploy::CodeDeployLifecycleEvent;
use lambda_runtime::{Error, LambdaEvent, service_fn};
use std::sync::Arc;
use storybook_aws::deploy::{CodeDeployReporter, LambdaVersions, pre_traffic};

#[tokio::main]
async fn main() -> Result<(), Error> {
    storybook_core::telemetry::init();
    let config = storybook_aws::sdk_config().await;
    let target = Arc::new(
        LambdaVersions::from_env(aws_sdk_lambda::Client::new(&config))
            .map_err(|e| format!("{e:#}"))?,
    );
    let reporter = Arc::new(CodeDeployReporter(aws_sdk_codedeploy::Client::new(&config)));
    let checks = Arc::new(storybook_http::smoke::checks());
    lambda_runtime::run(service_fn(
        move |event: LambdaEvent<CodeDeployLifecycleEvent>| {
            let (checks, target, reporter) = (checks.clone(), target.clone(), reporter.clone());
            async move {
                let verdict = pre_traffic(event.payload, &checks, &*target, &*reporter)
                    .await
                    .map_err(|e| Error::from(format!("{e:#}")))?;
                Ok::<_, Error>(serde_json::json!({ "status": verdict.status() }))
            }
        },
    ))
    .await
}
