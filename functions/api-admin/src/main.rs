//! Lambda: `/v1/admin/*` (API keys, usage, credits for a user, the audit log).

use storybook_core::catalogue::Family;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    storybook_core::telemetry::init();
    let (app, first_admin_key) = storybook_aws::state::start()
        .await
        .and_then(|start| start.for_family(Family::Admin))
        .map_err(|e| format!("{e:#}"))?;
    storybook_http::lambda::serve(app, first_admin_key.as_deref(), Family::Admin).await
}
