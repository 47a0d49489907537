//! Lambda: the routes that call a provider while the parent waits: characters from a parent's
//! words, a child's photo or drawing. Providers' keys come as the step worker's do (the secret
//! `PROVIDER_KEYS_SECRET_ID`, or the environment); with no key set, the offline ones serve.

use std::sync::Arc;
use storybook_core::catalogue::Family;
use storybook_pipeline::providers::settings::ProviderSettings;
use storybook_pipeline::studio::ProviderStudio;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    storybook_core::telemetry::init();
    let start = storybook_aws::state::start()
        .await
        .map_err(|e| format!("{e:#}"))?;
    let provider_settings = ProviderSettings::from_lookup(&start.secrets.provider_lookup())
        .map_err(|e| format!("{e}"))?;
    let (app, first_admin_key) = start
        .for_family(Family::Studio)
        .map_err(|e| format!("{e:#}"))?;
    let providers = provider_settings.build(app.store.clone(), app.clock.clone());
    tracing::info!(providers = ?providers.names, "studio providers");
    let studio = Arc::new(ProviderStudio::new(&app, providers));
    let app = app.with_studio(studio);
    storybook_http::lambda::serve(app, first_admin_key.as_deref(), Family::Studio).await
}
