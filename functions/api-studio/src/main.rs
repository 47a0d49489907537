//! Lambda: the routes that call a provider while the parent waits: characters from a parent's
//! words, a child's photo or drawing; print orders and their printer (Lulu). Providers' and
//! Lulu's keys come as the step worker's do (the secret `PROVIDER_KEYS_SECRET_ID`, or the
//! environment); with no key set, the offline providers serve and no order is printed.

use std::sync::Arc;
use storybook_core::catalogue::Family;
use storybook_pipeline::print::{LuluPrinter, LuluSettings};
use storybook_pipeline::providers::settings::ProviderSettings;
use storybook_pipeline::studio::ProviderStudio;

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    storybook_core::telemetry::init();
    let start = storybook_aws::state::start()
        .await
        .map_err(|e| format!("{e:#}"))?;
    let (provider_settings, lulu) = {
        let lookup = start.secrets.provider_lookup();
        let providers = ProviderSettings::from_lookup(&lookup).map_err(|e| format!("{e}"))?;
        let lulu = LuluSettings::from_lookup(&lookup, start.config.environment)
            .map_err(|e| format!("{e}"))?;
        (providers, lulu)
    };
    let (app, first_admin_key) = start
        .for_family(Family::Studio)
        .map_err(|e| format!("{e:#}"))?;
    let providers = provider_settings.build(app.store.clone(), app.clock.clone());
    tracing::info!(providers = ?providers.names, "studio providers");
    let studio = Arc::new(ProviderStudio::new(&app, providers));
    let mut app = app.with_studio(studio);
    if let Some(lulu) = lulu {
        tracing::info!(?lulu, "printer");
        let printer = LuluPrinter::new(lulu, app.blobs.clone());
        app = app.with_printer(Arc::new(printer));
    }
    storybook_http::lambda::serve(app, first_admin_key.as_deref(), Family::Studio).await
}
