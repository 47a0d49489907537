//! Lambda: the pages of shared books, `/share/{token}` and their pictures.

use storybook_core::catalogue::Family;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    storybook_core::telemetry::init();
    let (app, first_admin_key) = storybook_aws::state::start()
        .await
        .and_then(|start| start.for_family(Family::Share))
        .map_err(|e| format!("{e:#}"))?;
    storybook_http::lambda::serve(app, first_admin_key.as_deref(), Family::Share).await
}
