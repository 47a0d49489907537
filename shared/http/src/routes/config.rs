use crate::catalogue::serves;
use crate::domain::book::PageCount;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

/// What this deployment can do, for the app's UI gating. Each feature is on exactly when its
/// route is served, so the answer cannot drift from the build.
pub async fn capabilities(State(state): State<AppState>) -> Json<Value> {
    Json(json!({
        "environment": state.settings.environment.as_str(),
        "version": env!("CARGO_PKG_VERSION"),
        "features": {
            "book_generation": serves("POST", "/v1/books"),
            "library": serves("GET", "/v1/library"),
            "pdf_export": serves("GET", "/v1/books/{book_id}/pdf"),
            "narration": serves("POST", "/v1/books/{book_id}/audio"),
            "page_regeneration": serves("POST", "/v1/books/{job_id}/pages/{page_number}/regenerate"),
            "series": serves("POST", "/v1/books/series"),
            "characters": serves("POST", "/v1/characters"),
            "character_from_photo": serves("POST", "/v1/characters/from-photo"),
            "streaks": serves("POST", "/v1/streak/read"),
            "settings": serves("GET", "/v1/settings"),
            "account_deletion": serves("DELETE", "/v1/users/me"),
            "credits": serves("GET", "/v1/credits/balance"),
        },
        "credits": {"opening_credits": state.settings.opening_credits},
        "prices": {
            "book_by_pages": (PageCount::MIN..=PageCount::MAX)
                .map(|pages| json!({"pages": pages, "credits": state.settings.book_price(pages)}))
                .collect::<Vec<_>>(),
            "page_regeneration": state.settings.page_regeneration_price,
            "book_audio": state.settings.book_audio_price,
        },
        "languages": ["ko", "en"],
        // Which providers make books here ("offline" where no key is configured).
        "providers": state.settings.providers,
    }))
}
