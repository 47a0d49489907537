//! Each catalogued route's handler. The route data (method, path, family, class) lives in
//! [`crate::catalogue`] (the core crate's), apart from the handlers, so reading it builds no handler.

use crate::catalogue::{Access, Family, ROUTES, Route};
use crate::routes::{
    admin, books, characters, config, consent, credits, health, library, pages, settings, spend,
    streak, studio, users,
};
use crate::state::AppState;
use axum::routing::{MethodRouter, delete, get, patch, post, put};

/// One route and its handler.
pub struct Endpoint {
    pub family: Family,
    pub access: Access,
    pub method: &'static str,
    pub path: &'static str,
    pub handler: MethodRouter<AppState>,
}

/// The handler of `route`; `None` for a route no handler serves (a test keeps there being none).
fn handler(route: &Route) -> Option<MethodRouter<AppState>> {
    Some(match (route.method, route.path) {
        ("GET", "/health") => get(health::health),
        ("GET", "/health/live") => get(health::live),
        ("GET", "/health/ready") => get(health::ready),
        ("GET", "/v1/config/capabilities") => get(config::capabilities),
        ("GET", "/v1/credits/balance") => get(credits::balance),
        ("GET", "/v1/credits/status") => get(credits::status),
        ("GET", "/v1/credits/check") => get(credits::check),
        ("GET", "/v1/credits/transactions") => get(credits::transactions),
        ("POST", "/v1/credits/add") => post(credits::add),
        ("POST", "/v1/books") => post(books::create),
        ("POST", "/v1/books/series") => post(books::create_series),
        ("GET", "/v1/books/{job_id}") => get(books::status),
        ("GET", "/v1/books/{book_id}/detail") => get(books::detail),
        ("GET", "/v1/books/{book_id}/pdf") => get(books::pdf),
        ("POST", "/v1/books/{job_id}/pages/{page_number}/regenerate") => post(pages::regenerate),
        ("POST", "/v1/books/{book_id}/audio") => post(pages::book_audio),
        ("GET", "/v1/books/{book_id}/pages/{page_number}/audio") => get(pages::page_audio),
        ("GET", "/v1/library") => get(library::list),
        ("PATCH", "/v1/library/{book_id}") => patch(library::rename),
        ("DELETE", "/v1/library/{book_id}") => delete(library::delete),
        ("POST", "/v1/characters") => post(characters::create),
        ("GET", "/v1/characters") => get(characters::list),
        ("GET", "/v1/characters/presets") => get(characters::presets),
        ("POST", "/v1/characters/from-preset") => post(characters::from_preset),
        ("POST", "/v1/characters/from-text") => post(studio::from_text),
        ("POST", "/v1/characters/from-photo") => post(studio::from_photo),
        ("POST", "/v1/characters/from-drawing") => post(studio::from_drawing),
        ("GET", "/v1/characters/{character_id}") => get(characters::get),
        ("DELETE", "/v1/characters/{character_id}") => delete(characters::delete),
        ("DELETE", "/v1/users/me") => delete(users::erase_me),
        ("GET", "/v1/settings") => get(settings::get),
        ("PATCH", "/v1/settings") => patch(settings::patch),
        ("GET", "/v1/consent") => get(consent::get),
        ("POST", "/v1/consent") => post(consent::grant),
        ("POST", "/v1/consent/revoke") => post(consent::revoke),
        ("POST", "/v1/streak/read") => post(streak::read),
        ("GET", "/v1/streak/info") => get(streak::info),
        ("GET", "/v1/streak/calendar") => get(streak::calendar),
        ("GET", "/v1/streak/history") => get(streak::history),
        ("POST", "/v1/admin/api-keys") => post(admin::create_key),
        ("GET", "/v1/admin/api-keys") => get(admin::list_keys),
        ("GET", "/v1/admin/api-keys/{key_id}") => get(admin::get_key),
        ("PATCH", "/v1/admin/api-keys/{key_id}") => patch(admin::update_key),
        ("DELETE", "/v1/admin/api-keys/{key_id}") => delete(admin::revoke_key),
        ("POST", "/v1/admin/api-keys/{key_id}/rotate") => post(admin::rotate_key),
        ("GET", "/v1/admin/api-keys/{key_id}/usage") => get(admin::key_usage),
        ("POST", "/v1/admin/users/{user_id}/credits") => post(admin::adjust_credits),
        ("GET", "/v1/admin/audit-log") => get(admin::audit_log),
        ("GET", "/v1/admin/users/{user_id}/reconciliation") => get(admin::reconcile),
        ("GET", "/v1/admin/spend") => get(spend::report),
        ("PUT", "/v1/admin/kill-switch") => put(spend::kill_switch),
        _ => return None,
    })
}

/// The routes of `families` with their handlers.
pub fn endpoints(families: &[Family]) -> Vec<Endpoint> {
    ROUTES
        .iter()
        .filter(|route| families.contains(&route.family))
        .map(|route| Endpoint {
            family: route.family,
            access: route.access,
            method: route.method,
            path: route.path,
            handler: handler(route).unwrap_or_else(|| {
                panic!(
                    "{} {} is catalogued without a handler",
                    route.method, route.path
                )
            }),
        })
        .collect()
}
