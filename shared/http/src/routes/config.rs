//! `GET /v1/config/capabilities`: what this deployment can do, for the app's UI gating.

use crate::endpoints::{Endpoint, Feature};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::Serialize;
use storybook_core::catalogue::Family;
use storybook_core::config::ProviderNames;
use storybook_core::domain::book::PageCount;

/// The routes this file serves.
pub(crate) fn endpoints() -> Vec<Endpoint> {
    vec![Endpoint::get(Family::Health, "/v1/config/capabilities", capabilities).public()]
}

#[derive(Serialize)]
pub struct Capabilities {
    environment: &'static str,
    version: &'static str,
    features: Features,
    credits: OpeningCredits,
    prices: Prices,
    languages: [&'static str; 2],
    /// Which providers make books here ("offline" where no key is configured).
    providers: ProviderNames,
}

/// Each feature is on exactly when its route is served, so the answer cannot drift from the
/// build.
#[derive(Serialize)]
struct Features {
    book_generation: bool,
    library: bool,
    pdf_export: bool,
    narration: bool,
    page_regeneration: bool,
    series: bool,
    characters: bool,
    character_from_photo: bool,
    streaks: bool,
    settings: bool,
    account_deletion: bool,
    credits: bool,
    /// Store purchases are redeemed here (from each store only where it is configured).
    purchases: bool,
}

#[derive(Serialize)]
struct OpeningCredits {
    opening_credits: i64,
}

#[derive(Serialize)]
struct Prices {
    book_by_pages: Vec<BookPrice>,
    page_regeneration: i64,
    book_audio: i64,
}

#[derive(Serialize)]
struct BookPrice {
    pages: u8,
    credits: i64,
}

pub async fn capabilities(State(state): State<AppState>) -> Json<Capabilities> {
    let config = &state.config;
    Json(Capabilities {
        environment: config.environment.as_str(),
        version: env!("CARGO_PKG_VERSION"),
        features: Features {
            book_generation: Feature::BookGeneration.served(),
            library: Feature::Library.served(),
            pdf_export: Feature::PdfExport.served(),
            narration: Feature::Narration.served(),
            page_regeneration: Feature::PageRegeneration.served(),
            series: Feature::Series.served(),
            characters: Feature::Characters.served(),
            character_from_photo: Feature::CharacterFromPhoto.served(),
            streaks: Feature::Streaks.served(),
            settings: Feature::Settings.served(),
            account_deletion: Feature::AccountDeletion.served(),
            credits: Feature::Credits.served(),
            purchases: Feature::Purchases.served(),
        },
        credits: OpeningCredits {
            opening_credits: config.opening_credits,
        },
        prices: Prices {
            book_by_pages: (PageCount::MIN..=PageCount::MAX)
                .map(|pages| BookPrice {
                    pages,
                    credits: config.book_price(pages),
                })
                .collect(),
            page_regeneration: config.page_regeneration_price,
            book_audio: config.book_audio_price,
        },
        languages: ["ko", "en"],
        providers: config.providers.clone(),
    })
}
