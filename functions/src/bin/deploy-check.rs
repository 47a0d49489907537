//! Lambda: CodeDeploy's PreTraffic hook; smoke-tests a release's new versions before traffic.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::lambda::serve_deploy_check().await
}
