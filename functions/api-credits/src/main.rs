//! Lambda: `/v1/credits/*`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    storybook_core::telemetry::init();
    let start = storybook_aws::state::start()
        .await
        .map_err(|e| format!("{e:#}"))?;
    let first_admin_key = start.secrets.bootstrap_admin_key.clone();
    // No blob store and no queue: nothing these routes do needs them.
    let app = start.app_over_store();
    storybook_http::lambda::serve(
        app,
        first_admin_key.as_deref(),
        storybook_core::catalogue::Family::Credits,
    )
    .await
}
