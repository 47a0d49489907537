//! Lambda: `/v1/credits/*` and `/v1/iap/*`. The stores' settings come as the providers' keys do
//! (the secret `PROVIDER_KEYS_SECRET_ID`, or the environment); with none, purchases are refused
//! as `store_not_configured`.

use std::sync::Arc;
use storybook_core::catalogue::Family;
use storybook_stores::Stores;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    storybook_core::telemetry::init();
    let start = storybook_aws::state::start()
        .await
        .map_err(|e| format!("{e:#}"))?;
    let stores = Stores::from_lookup(&start.secrets.provider_lookup(), start.config.environment)
        .map_err(|e| format!("{e:#}"))?;
    let (app, first_admin_key) = start
        .for_family(Family::Credits)
        .map_err(|e| format!("{e:#}"))?;
    let app = app.with_marketplace(Arc::new(stores));
    storybook_http::lambda::serve(app, first_admin_key.as_deref(), Family::Credits).await
}
