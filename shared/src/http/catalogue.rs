//! Every route the API serves, each in its function family. The router is built from this list,
//! and a test checks that it, `template.yaml` and `openapi.json` name the same routes.

use super::AppState;
use super::routes::{books, config, credits, health, library};
use axum::routing::{MethodRouter, delete, get, patch, post};

/// A group of routes served by one Lambda function (its own IAM policy and throttling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Health,
    Credits,
    Books,
    Library,
}

impl Family {
    pub const ALL: &'static [Family] = &[
        Family::Health,
        Family::Credits,
        Family::Books,
        Family::Library,
    ];

    /// The binary in `functions/` that serves the family.
    pub fn function(self) -> &'static str {
        match self {
            Family::Health => "api-health",
            Family::Credits => "api-credits",
            Family::Books => "api-books",
            Family::Library => "api-library",
        }
    }
}

pub struct Endpoint {
    pub family: Family,
    pub method: &'static str,
    pub path: &'static str,
    pub handler: MethodRouter<AppState>,
}

fn endpoint(
    family: Family,
    method: &'static str,
    path: &'static str,
    handler: MethodRouter<AppState>,
) -> Endpoint {
    Endpoint {
        family,
        method,
        path,
        handler,
    }
}

pub fn catalogue() -> Vec<Endpoint> {
    use Family::*;
    vec![
        endpoint(Health, "GET", "/health", get(health::health)),
        endpoint(Health, "GET", "/health/live", get(health::live)),
        endpoint(Health, "GET", "/health/ready", get(health::ready)),
        endpoint(
            Health,
            "GET",
            "/v1/config/capabilities",
            get(config::capabilities),
        ),
        endpoint(Credits, "GET", "/v1/credits/balance", get(credits::balance)),
        endpoint(Credits, "GET", "/v1/credits/status", get(credits::status)),
        endpoint(Credits, "GET", "/v1/credits/check", get(credits::check)),
        endpoint(
            Credits,
            "GET",
            "/v1/credits/transactions",
            get(credits::transactions),
        ),
        endpoint(Credits, "POST", "/v1/credits/add", post(credits::add)),
        endpoint(Books, "POST", "/v1/books", post(books::create)),
        endpoint(Books, "GET", "/v1/books/{job_id}", get(books::status)),
        endpoint(
            Books,
            "GET",
            "/v1/books/{book_id}/detail",
            get(books::detail),
        ),
        endpoint(Books, "GET", "/v1/books/{book_id}/pdf", get(books::pdf)),
        endpoint(Library, "GET", "/v1/library", get(library::list)),
        endpoint(
            Library,
            "PATCH",
            "/v1/library/{book_id}",
            patch(library::rename),
        ),
        endpoint(
            Library,
            "DELETE",
            "/v1/library/{book_id}",
            delete(library::delete),
        ),
    ]
}

/// True when the API serves `method path`; what the capabilities answer is derived from.
pub fn serves(method: &str, path: &str) -> bool {
    catalogue()
        .iter()
        .any(|e| e.method == method && e.path == path)
}
