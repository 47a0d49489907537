//! Every route the API serves, each in its function family. The router is built from this list,
//! and a test checks that it, `template.yaml` and `openapi.json` name the same routes.

use super::AppState;
use super::routes::{
    admin, books, config, credits, health, library, settings, spend, streak, users,
};
use axum::routing::{MethodRouter, delete, get, patch, post, put};

/// A group of routes served by one Lambda function (its own IAM policy and throttling).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    Health,
    Credits,
    Books,
    Library,
    Users,
    Admin,
}

impl Family {
    pub const ALL: &'static [Family] = &[
        Family::Health,
        Family::Credits,
        Family::Books,
        Family::Library,
        Family::Users,
        Family::Admin,
    ];

    /// The binary in `functions/` that serves the family.
    pub fn function(self) -> &'static str {
        match self {
            Family::Health => "api-health",
            Family::Credits => "api-credits",
            Family::Books => "api-books",
            Family::Library => "api-library",
            Family::Users => "api-users",
            Family::Admin => "api-admin",
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
        endpoint(Users, "DELETE", "/v1/users/me", delete(users::erase_me)),
        endpoint(Users, "GET", "/v1/settings", get(settings::get)),
        endpoint(Users, "PATCH", "/v1/settings", patch(settings::patch)),
        endpoint(Users, "POST", "/v1/streak/read", post(streak::read)),
        endpoint(Users, "GET", "/v1/streak/info", get(streak::info)),
        endpoint(Users, "GET", "/v1/streak/calendar", get(streak::calendar)),
        endpoint(Users, "GET", "/v1/streak/history", get(streak::history)),
        endpoint(Admin, "POST", "/v1/admin/api-keys", post(admin::create_key)),
        endpoint(Admin, "GET", "/v1/admin/api-keys", get(admin::list_keys)),
        endpoint(
            Admin,
            "GET",
            "/v1/admin/api-keys/{key_id}",
            get(admin::get_key),
        ),
        endpoint(
            Admin,
            "PATCH",
            "/v1/admin/api-keys/{key_id}",
            patch(admin::update_key),
        ),
        endpoint(
            Admin,
            "DELETE",
            "/v1/admin/api-keys/{key_id}",
            delete(admin::revoke_key),
        ),
        endpoint(
            Admin,
            "POST",
            "/v1/admin/api-keys/{key_id}/rotate",
            post(admin::rotate_key),
        ),
        endpoint(
            Admin,
            "GET",
            "/v1/admin/api-keys/{key_id}/usage",
            get(admin::key_usage),
        ),
        endpoint(
            Admin,
            "POST",
            "/v1/admin/users/{user_id}/credits",
            post(admin::adjust_credits),
        ),
        endpoint(Admin, "GET", "/v1/admin/audit-log", get(admin::audit_log)),
        endpoint(
            Admin,
            "GET",
            "/v1/admin/users/{user_id}/reconciliation",
            get(admin::reconcile),
        ),
        endpoint(Admin, "GET", "/v1/admin/spend", get(spend::report)),
        endpoint(
            Admin,
            "PUT",
            "/v1/admin/kill-switch",
            put(spend::kill_switch),
        ),
    ]
}

/// True when the API serves `method path`; what the capabilities answer is derived from.
pub fn serves(method: &str, path: &str) -> bool {
    catalogue()
        .iter()
        .any(|e| e.method == method && e.path == path)
}
