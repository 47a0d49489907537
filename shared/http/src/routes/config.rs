//! `GET /v1/config/capabilities`: what this deployment can do, for the app's UI gating.

use crate::catalogue::serves;
use crate::config::ProviderNames;
use crate::domain::book::PageCount;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::Serialize;

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
    let settings = &state.settings;
    Json(Capabilities {
        environment: settings.environment.as_str(),
        version: env!("CARGO_PKG_VERSION"),
        features: Features {
            book_generation: serves("POST", "/v1/books"),
            library: serves("GET", "/v1/library"),
            pdf_export: serves("GET", "/v1/books/{book_id}/pdf"),
            narration: serves("POST", "/v1/books/{book_id}/audio"),
            page_regeneration: serves("POST", "/v1/books/{job_id}/pages/{page_number}/regenerate"),
            series: serves("POST", "/v1/books/series"),
            characters: serves("POST", "/v1/characters"),
            character_from_photo: serves("POST", "/v1/characters/from-photo"),
            streaks: serves("POST", "/v1/streak/read"),
            settings: serves("GET", "/v1/settings"),
            account_deletion: serves("DELETE", "/v1/users/me"),
            credits: serves("GET", "/v1/credits/balance"),
        },
        credits: OpeningCredits {
            opening_credits: settings.opening_credits,
        },
        prices: Prices {
            book_by_pages: (PageCount::MIN..=PageCount::MAX)
                .map(|pages| BookPrice {
                    pages,
                    credits: settings.book_price(pages),
                })
                .collect(),
            page_regeneration: settings.page_regeneration_price,
            book_audio: settings.book_audio_price,
        },
        languages: ["ko", "en"],
        providers: settings.providers.clone(),
    })
}
