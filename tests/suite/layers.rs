//! The HTTP layers: authentication runs before any handler by the route's access, so no
//! argument order lets an unauthenticated caller through or makes a user for them; and the
//! credits and admin functions serve every route without a blob store or a queue.

use crate::harness::{Answer, Backend, TestApp, new_user_key};
use crate::on_both_backends;
use http::Method;
use std::sync::Arc;
use storybook_core::catalogue::{Access, Family};
use storybook_core::domain::credential::CredentialKind;
use storybook_core::ports::NotGiven;
use storybook_http::{AppState, Endpoint as Route, endpoints};

/// The route's path with its parameters filled in.
fn path_of(route: &Route, key_id: &str, user_id: &str) -> String {
    route
        .path
        .replace("{key_id}", key_id)
        .replace("{user_id}", user_id)
        .replace("{book_id}", "bk_00000000000000000000000000")
        .replace("{job_id}", "bk_00000000000000000000000000")
}

fn method_of(route: &Route) -> Method {
    Method::from_bytes(route.method.as_bytes()).unwrap()
}

async fn an_unauthenticated_admin_call_makes_no_user(backend: Backend) {
    let app = TestApp::new(backend).await;
    let declared = endpoints(Family::ALL);
    let admin_routes: Vec<&Route> = declared
        .iter()
        .filter(|r| matches!(r.access, Access::AdminApiKey | Access::AdminForUser))
        .collect();
    assert!(admin_routes.len() > 10, "every admin route is checked");
    for route in admin_routes {
        let path = path_of(route, "key_x", "00");
        // No admin key at all, then one that is not a key: a user key rides along each time.
        for admin in [None, Some("sbk_live_not-a-key")] {
            let user_key = new_user_key();
            let mut headers = vec![("x-user-key", user_key.as_str())];
            if let Some(admin) = admin {
                headers.push(("x-admin-key", admin));
                headers.push(("authorization", admin));
            }
            let answer = app
                .call(method_of(route), &path, &headers, Some("{}"))
                .await;
            assert!(
                answer.status == 401 || answer.status == 403,
                "{} {path}: {} {}",
                route.method,
                answer.status,
                answer.body
            );
            let id = app.state.hasher.hash(CredentialKind::UserKey, &user_key);
            assert!(
                app.state.store.find_user(&id).await.unwrap().is_none(),
                "{} {path} made a user for an unauthenticated caller",
                route.method
            );
        }
    }
}
on_both_backends!(
    #[tokio::test]
    an_unauthenticated_admin_call_makes_no_user,
    an_unauthenticated_admin_call_makes_no_user
);

/// What the credits and admin functions run with on Lambda: the store, and neither a blob
/// store nor a queue.
fn store_only(app: &TestApp) -> AppState {
    let mut state = app.state.clone();
    state.blobs = Arc::new(NotGiven);
    state.queue = Arc::new(NotGiven);
    state
}

async fn credits_and_admin_routes_need_no_blobs_or_queue(backend: Backend) {
    let app = TestApp::new(backend).await;
    for family in [Family::Credits, Family::Admin] {
        assert!(!family.uses_blobs() && !family.uses_queue());
    }
    let router = storybook_http::app(store_only(&app), &[Family::Credits, Family::Admin]);
    let user_key = new_user_key();
    let bearer = format!("Bearer {}", app.admin_key);
    // The user exists and has a ledger; a key exists to read, change, rotate and revoke.
    assert_eq!(app.grant(&user_key, 5, "tx-layers-1").await.status, 200);
    let user_id = app.user_id(&user_key);
    let created = call(
        &router,
        Method::POST,
        "/v1/admin/api-keys",
        &[("authorization", &bearer)],
        Some(r#"{"name": "reports", "scopes": ["admin"]}"#),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let key_id = created.body["key_id"].as_str().unwrap().to_owned();
    let bodies = |route: &Route| match (route.method, route.path) {
        ("POST", "/v1/credits/add") => Some(r#"{"amount": 1, "transaction_id": "tx-layers-2"}"#),
        ("POST", "/v1/admin/api-keys") => Some(r#"{"name": "more", "scopes": ["admin"]}"#),
        ("PATCH", _) => Some(r#"{"name": "renamed"}"#),
        ("POST", "/v1/admin/users/{user_id}/credits") => {
            Some(r#"{"amount": 1, "reason": "layers"}"#)
        }
        ("PUT", "/v1/admin/kill-switch") => Some(r#"{"enabled": false}"#),
        ("POST", "/v1/credits/subscribe") => Some(r#"{"plan": "free"}"#),
        ("POST", "/v1/credits/admin/grant-subscription") => Some(r#"{"plan": "basic"}"#),
        ("POST", "/v1/iap/verify") => {
            Some(r#"{"platform": "apple", "product_id": "credit_pack_1", "transaction_id": "1"}"#)
        }
        _ => None,
    };
    // Revoking goes last: the other key routes need the key; a plan is given before it is
    // cancelled.
    let declared = endpoints(Family::ALL);
    let mut routes: Vec<&Route> = declared
        .iter()
        .filter(|r| matches!(r.family, Family::Credits | Family::Admin))
        .collect();
    routes.sort_by_key(|r| {
        (
            r.method == "DELETE",
            r.path.ends_with("cancel-subscription"),
        )
    });
    for route in routes {
        let path = path_of(route, &key_id, user_id.as_str());
        let headers: Vec<(&str, &str)> = match route.access {
            Access::User => vec![("x-user-key", &user_key)],
            Access::AdminForUser => {
                vec![("x-user-key", &user_key), ("x-admin-key", &app.admin_key)]
            }
            Access::AdminKey => vec![("x-admin-key", &app.admin_key)],
            Access::AdminApiKey => vec![("authorization", &bearer)],
            Access::Public | Access::Visitor => vec![],
        };
        let answer = call(&router, method_of(route), &path, &headers, bodies(route)).await;
        if route.path == "/v1/iap/verify" {
            // No store is configured here: refused as such, nothing else missing.
            assert_eq!(answer.status, 400, "{}", answer.body);
            assert_eq!(
                answer.body["error"]["details"]["reason"],
                "store_not_configured"
            );
            continue;
        }
        if route.path.starts_with("/v1/iap/webhook/") {
            // Nothing can verify a store's notification without a store.
            assert_eq!(answer.status, 401, "{}", answer.body);
            continue;
        }
        assert!(
            (200..300).contains(&answer.status),
            "{} {path}: {} {}",
            route.method,
            answer.status,
            answer.body
        );
    }
}
on_both_backends!(
    #[tokio::test]
    credits_and_admin_routes_need_no_blobs_or_queue,
    credits_and_admin_routes_need_no_blobs_or_queue
);

async fn call(
    router: &axum::Router,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Answer {
    use tower::ServiceExt;
    let mut request = http::Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if body.is_some() {
        request = request.header("content-type", "application/json");
    }
    let request = request
        .body(axum::body::Body::from(body.unwrap_or_default().to_owned()))
        .unwrap();
    Answer::from_response(router.clone().oneshot(request).await.unwrap()).await
}

/// The library, users and studio functions are given no queue (nor granted one): their routes
/// read, change and delete books, characters and accounts without it.
async fn library_users_and_studio_routes_need_no_queue(backend: Backend) {
    let app = TestApp::new(backend).await;
    assert!(
        Family::ALL
            .iter()
            .all(|f| f.uses_queue() == matches!(f, Family::Health | Family::Books))
    );
    let mut state = app.state.clone();
    state.queue = Arc::new(NotGiven);
    let router = storybook_http::app(state, &[Family::Library, Family::Users, Family::Studio]);
    let user = new_user_key();
    let book = crate::books::finished_book(&app, &user).await;
    let as_user = [("x-user-key", user.as_str())];
    for (method, path, body) in [
        (Method::GET, "/v1/library".to_owned(), None),
        (Method::GET, format!("/v1/books/{book}/pages/1/audio"), None),
        (
            Method::PATCH,
            format!("/v1/library/{book}"),
            Some(r#"{"title": "Mina at the sea"}"#),
        ),
        (Method::GET, "/v1/characters".to_owned(), None),
        (Method::DELETE, format!("/v1/library/{book}"), None),
        (Method::DELETE, "/v1/users/me".to_owned(), None),
    ] {
        let answer = call(&router, method.clone(), &path, &as_user, body).await;
        assert!(
            (200..300).contains(&answer.status),
            "{method} {path}: {} {}",
            answer.status,
            answer.body
        );
    }
}
on_both_backends!(
    #[tokio::test]
    library_users_and_studio_routes_need_no_queue,
    library_users_and_studio_routes_need_no_queue
);
