//! Lambda: `/v1/library` and `/v1/library/{book_id}`.

use storybook_core::catalogue::Family;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    storybook_core::telemetry::init();
    let (app, first_admin_key) = storybook_aws::state::start()
        .await
        .and_then(|start| start.for_family(Family::Library))
        .map_err(|e| format!("{e:#}"))?;
    storybook_http::lambda::serve(app, first_admin_key.as_deref(), Family::Library).await
}
