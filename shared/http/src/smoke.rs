//! The release smoke test's requests (`storybook_core::deploy_check` runs them): health, an
//! authenticated read and a dry-run book, at the routes their handlers declare.

use crate::routes::{books, credits, health};
use storybook_core::catalogue::Family;
use storybook_core::deploy_check::{SMOKE_USER_KEY, SmokeCheck, SmokeRequest};

/// The checks, in order: each names what it asks and which statuses pass.
pub fn checks() -> Vec<SmokeCheck> {
    let user = || vec![("x-user-key", SMOKE_USER_KEY.to_owned())];
    vec![
        SmokeCheck {
            request: SmokeRequest {
                family: Family::Health,
                method: "GET",
                path: health::READY,
                headers: Vec::new(),
                body: None,
            },
            passing: &[200],
        },
        SmokeCheck {
            request: SmokeRequest {
                family: Family::Credits,
                method: "GET",
                path: credits::BALANCE,
                headers: user(),
                body: None,
            },
            passing: &[200],
        },
        SmokeCheck {
            request: SmokeRequest {
                family: Family::Books,
                method: "POST",
                path: books::BOOKS,
                headers: [
                    user(),
                    vec![
                        ("x-dry-run", "true".to_owned()),
                        ("content-type", "application/json".to_owned()),
                    ],
                ]
                .concat(),
                body: Some(
                    serde_json::json!({
                        "topic": "a smoke test before a release",
                        "target_age": "5-7",
                        "style": "watercolor",
                        "language": "en",
                        "page_count": 4,
                    })
                    .to_string(),
                ),
            },
            // 204: it would be made. A release that refuses books because generation is
            // stopped (the kill switch, today's hard limit) is behaving, not broken.
            passing: &[204, 429, 503],
        },
    ]
}
