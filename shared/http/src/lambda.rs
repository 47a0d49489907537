//! An API function on Lambda: its family's routes behind `lambda_http`.

use storybook_core::app::App;
use storybook_core::catalogue::Family;

/// Serves `family` over `app`. A function given the first admin key stores it before serving,
/// so the key works from the first request after a deploy.
pub async fn serve(
    app: App,
    first_admin_key: Option<&str>,
    family: Family,
) -> Result<(), lambda_http::Error> {
    if let Some(key) = first_admin_key {
        storybook_core::bootstrap::bootstrap_admin_key(&app, Some(key))
            .await
            .map_err(|e| format!("{e:#}"))?;
    }
    lambda_http::run(crate::app(crate::AppState::of(app), &[family])).await
}
