//! Accounts and security: device keys, the API key refusals (each by name, on both backends),
//! rate limits, brute force, rotation, the audit log, erasure, edges.

use crate::harness::{Answer, Backend, TestApp, new_user_key, test_settings};
use crate::on_both_backends;
use http::Method;
use serde_json::{Value, json};
use std::time::Duration;
use storybook_core::config::{Environment, Limits, Settings};
use storybook_core::domain::api_key::{ApiKeySecret, KeyEnvironment};
use storybook_core::domain::credential::CredentialKind;

const KEYS: &str = "/v1/admin/api-keys";

async fn with_key(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<&str>,
) -> Answer {
    app.call(
        method,
        path,
        &[("authorization", &format!("Bearer {key}"))],
        body,
    )
    .await
}

/// Makes a key through the API; answers (key id, secret).
async fn make_key(app: &TestApp, body: Value) -> (String, String) {
    let answer = with_key(
        app,
        Method::POST,
        KEYS,
        &app.admin_key,
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    (
        answer.body["key_id"].as_str().unwrap().to_owned(),
        answer.body["key"].as_str().unwrap().to_owned(),
    )
}

async fn audit_events(app: &TestApp) -> Vec<String> {
    app.state
        .store
        .audit_log(200, None)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event.as_str().to_owned())
        .collect()
}

fn refused(answer: &Answer, status: u16, code: &str) {
    assert_eq!(
        (answer.status, answer.code()),
        (status, code),
        "{}",
        answer.body
    );
}

// Device keys: decided from the header alone, before any store read.

#[tokio::test]
async fn device_key_missing_is_422_and_malformed_is_400_without_a_store_read() {
    let router = storybook_http::app(
        crate::api_edges::unreachable_aws_state().await,
        storybook_http::Family::ALL,
    );
    let call = |headers: Vec<(&'static str, &'static str)>| {
        let router = router.clone();
        async move {
            use tower::ServiceExt;
            let mut request = http::Request::builder().uri("/v1/credits/balance");
            for (k, v) in headers {
                request = request.header(k, v);
            }
            Answer::from_response(
                router
                    .oneshot(request.body(axum::body::Body::empty()).unwrap())
                    .await
                    .unwrap(),
            )
            .await
        }
    };
    refused(&call(vec![]).await, 422, "VALIDATION_ERROR");
    refused(
        &call(vec![("x-user-key", "not-a-uuid")]).await,
        400,
        "BAD_REQUEST",
    );
    // The same store answers 503 to a well-formed key: the two above never asked it.
    refused(
        &call(vec![("x-user-key", "0b6f4a52-43f1-4f8e-9d1e-6a0d8c7a1f00")]).await,
        503,
        "SERVICE_UNAVAILABLE",
    );
}

// API keys, each refusal by name, with its audit entry.

async fn api_key_missing_is_401(backend: Backend) {
    let app = TestApp::new(backend).await;
    refused(
        &app.call(Method::GET, KEYS, &[], None).await,
        401,
        "UNAUTHORIZED",
    );
    assert!(audit_events(&app).await.contains(&"missing_key".to_owned()));
}
on_both_backends!(
    #[tokio::test]
    api_key_missing_is_401,
    api_key_missing_is_401
);

#[tokio::test]
async fn api_key_bad_format_is_401_without_a_store_read() {
    let router = storybook_http::app(
        crate::api_edges::unreachable_aws_state().await,
        storybook_http::Family::ALL,
    );
    use tower::ServiceExt;
    for key in [
        "letmein",
        "sbk_live_short",
        "Bearer",
        "sbk_prod_0000000000000000000000000000000000000000000",
    ] {
        let request = http::Request::builder()
            .uri(KEYS)
            .header("authorization", format!("Bearer {key}"))
            .body(axum::body::Body::empty())
            .unwrap();
        let answer = Answer::from_response(router.clone().oneshot(request).await.unwrap()).await;
        refused(&answer, 401, "UNAUTHORIZED");
    }
}

async fn api_key_bad_format_is_audited(backend: Backend) {
    let app = TestApp::new(backend).await;
    refused(
        &app.call(Method::GET, KEYS, &[("x-api-key", "sbk_live_nope")], None)
            .await,
        401,
        "UNAUTHORIZED",
    );
    assert!(audit_events(&app).await.contains(&"bad_format".to_owned()));
}
on_both_backends!(
    #[tokio::test]
    api_key_bad_format_is_audited,
    api_key_bad_format_is_audited
);

async fn api_key_unknown_is_401(backend: Backend) {
    let app = TestApp::new(backend).await;
    let stranger = ApiKeySecret::generate(KeyEnvironment::Live);
    refused(
        &with_key(&app, Method::GET, KEYS, stranger.expose(), None).await,
        401,
        "UNAUTHORIZED",
    );
    let entries = app.state.store.audit_log(10, None).await.unwrap();
    let entry = entries
        .iter()
        .find(|e| e.event.as_str() == "unknown_key")
        .expect("audited");
    let truncated = entry.credential.clone().unwrap();
    assert!(
        truncated.len() <= 12 && !stranger.expose().contains(&truncated),
        "a truncated hash, not the key"
    );
    assert_eq!(entry.route, "GET /v1/admin/api-keys");
}
on_both_backends!(
    #[tokio::test]
    api_key_unknown_is_401,
    api_key_unknown_is_401
);

async fn api_key_revoked_is_401(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (id, secret) = make_key(&app, json!({"name": "reports", "scopes": ["admin"]})).await;
    assert_eq!(
        with_key(&app, Method::GET, KEYS, &secret, None)
            .await
            .status,
        200
    );
    let revoked = with_key(
        &app,
        Method::DELETE,
        &format!("{KEYS}/{id}"),
        &app.admin_key,
        None,
    )
    .await;
    assert_eq!(revoked.body["status"], "revoked");
    refused(
        &with_key(&app, Method::GET, KEYS, &secret, None).await,
        401,
        "UNAUTHORIZED",
    );
    let events = audit_events(&app).await;
    assert!(
        events.contains(&"revoked_key".to_owned()) && events.contains(&"key_revoked".to_owned())
    );
}
on_both_backends!(
    #[tokio::test]
    api_key_revoked_is_401,
    api_key_revoked_is_401
);

async fn api_key_expired_is_401(backend: Backend) {
    let app = TestApp::new(backend).await;
    let soon = (chrono::Utc::now() + chrono::Duration::seconds(1)).to_rfc3339();
    let (_, secret) = make_key(
        &app,
        json!({"name": "brief", "scopes": ["admin"], "expires_at": soon}),
    )
    .await;
    assert_eq!(
        with_key(&app, Method::GET, KEYS, &secret, None)
            .await
            .status,
        200
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    refused(
        &with_key(&app, Method::GET, KEYS, &secret, None).await,
        401,
        "UNAUTHORIZED",
    );
    assert!(audit_events(&app).await.contains(&"expired_key".to_owned()));
    let past =
        json!({"name": "x", "scopes": ["read"], "expires_at": "2001-01-01T00:00:00Z"}).to_string();
    refused(
        &with_key(&app, Method::POST, KEYS, &app.admin_key, Some(&past)).await,
        422,
        "VALIDATION_ERROR",
    );
}
on_both_backends!(
    #[tokio::test]
    api_key_expired_is_401,
    api_key_expired_is_401
);

async fn api_key_from_a_wrong_ip_is_403(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, secret) = make_key(
        &app,
        json!({"name": "office", "scopes": ["admin"], "allowed_ips": ["203.0.113.0/24"]}),
    )
    .await;
    let bearer = format!("Bearer {secret}");
    let headers = [("authorization", bearer.as_str())];
    assert_eq!(
        app.call_from(Some("203.0.113.77"), Method::GET, KEYS, &headers, None)
            .await
            .status,
        200
    );
    refused(
        &app.call_from(Some("198.51.100.1"), Method::GET, KEYS, &headers, None)
            .await,
        403,
        "FORBIDDEN",
    );
    assert!(audit_events(&app).await.contains(&"ip_refused".to_owned()));
    let bad = json!({"name": "x", "scopes": ["read"], "allowed_ips": ["999.1.1.1"]}).to_string();
    refused(
        &with_key(&app, Method::POST, KEYS, &app.admin_key, Some(&bad)).await,
        422,
        "VALIDATION_ERROR",
    );
}
on_both_backends!(
    #[tokio::test]
    api_key_from_a_wrong_ip_is_403,
    api_key_from_a_wrong_ip_is_403
);

async fn api_key_with_a_wrong_scope_is_403(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (_, reader) = make_key(&app, json!({"name": "reader", "scopes": ["read"]})).await;
    refused(
        &with_key(&app, Method::GET, KEYS, &reader, None).await,
        403,
        "FORBIDDEN",
    );
    // On the app's admin header, a key without the admin scope is 403 as the app expects.
    let user = new_user_key();
    let body = r#"{"amount": 1, "transaction_id": "scope-test"}"#;
    let answer = app
        .call(
            Method::POST,
            "/v1/credits/add",
            &[("x-user-key", &user), ("x-admin-key", &reader)],
            Some(body),
        )
        .await;
    refused(&answer, 403, "FORBIDDEN");
    assert!(
        audit_events(&app)
            .await
            .contains(&"scope_refused".to_owned())
    );
}
on_both_backends!(
    #[tokio::test]
    api_key_with_a_wrong_scope_is_403,
    api_key_with_a_wrong_scope_is_403
);

async fn a_test_key_in_production_is_401_and_a_security_violation(backend: Backend) {
    let settings = Settings {
        environment: Environment::Prod,
        ..test_settings()
    };
    let app = TestApp::with_settings(backend, settings).await;
    let test_key = ApiKeySecret::generate(KeyEnvironment::Test);
    storybook_core::bootstrap::store_admin_key(&app.state, &test_key, "test")
        .await
        .unwrap();
    refused(
        &with_key(&app, Method::GET, KEYS, test_key.expose(), None).await,
        401,
        "UNAUTHORIZED",
    );
    assert!(
        audit_events(&app)
            .await
            .contains(&"security_violation".to_owned())
    );
}
on_both_backends!(
    #[tokio::test]
    a_test_key_in_production_is_401_and_a_security_violation,
    a_test_key_in_production_is_401_and_a_security_violation
);

fn strict(limits: Limits) -> Settings {
    Settings {
        limits,
        ..test_settings()
    }
}

async fn rate_limits_answer_429_with_retry_after(backend: Backend) {
    let limits = Limits {
        reads_per_minute: 3,
        ..test_settings().limits
    };
    let app = TestApp::with_settings(backend, strict(limits)).await;
    let user = new_user_key();
    for remaining in [2, 1, 0] {
        let answer = app.get("/v1/credits/balance", &user).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.headers["ratelimit-limit"], "3");
        assert_eq!(
            answer.headers["x-ratelimit-remaining"],
            remaining.to_string().as_str()
        );
    }
    let limited = app.get("/v1/credits/balance", &user).await;
    refused(&limited, 429, "RATE_LIMIT_EXCEEDED");
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(limited.headers["x-ratelimit-remaining"], "0");
    // Another user, and another class of route, have their own counts.
    assert_eq!(
        app.get("/v1/credits/balance", &new_user_key()).await.status,
        200
    );
}
on_both_backends!(
    #[tokio::test]
    rate_limits_answer_429_with_retry_after,
    rate_limits_answer_429_with_retry_after
);

async fn api_keys_are_rate_limited_too(backend: Backend) {
    let limits = Limits {
        reads_per_minute: 2,
        ..test_settings().limits
    };
    let app = TestApp::with_settings(backend, strict(limits)).await;
    assert_eq!(
        with_key(&app, Method::GET, KEYS, &app.admin_key, None)
            .await
            .status,
        200
    );
    assert_eq!(
        with_key(&app, Method::GET, KEYS, &app.admin_key, None)
            .await
            .status,
        200
    );
    refused(
        &with_key(&app, Method::GET, KEYS, &app.admin_key, None).await,
        429,
        "RATE_LIMIT_EXCEEDED",
    );
}
on_both_backends!(
    #[tokio::test]
    api_keys_are_rate_limited_too,
    api_keys_are_rate_limited_too
);

async fn brute_force_from_one_ip_is_limited(backend: Backend) {
    let limits = Limits {
        auth_failures_per_minute: 5,
        ..test_settings().limits
    };
    let app = TestApp::with_settings(backend, strict(limits)).await;
    let app = &app;
    let guess = |ip: &'static str| {
        let key = format!(
            "Bearer {}",
            ApiKeySecret::generate(KeyEnvironment::Live).expose()
        );
        async move {
            app.call_from(
                Some(ip),
                Method::GET,
                KEYS,
                &[("authorization", &key)],
                None,
            )
            .await
        }
    };
    for _ in 0..5 {
        refused(&guess("192.0.2.50").await, 401, "UNAUTHORIZED");
    }
    refused(&guess("192.0.2.50").await, 429, "RATE_LIMIT_EXCEEDED");
    // Even the right key is refused from there for now; another address is not affected.
    let admin = format!("Bearer {}", app.admin_key);
    let right = app
        .call_from(
            Some("192.0.2.50"),
            Method::GET,
            KEYS,
            &[("authorization", &admin)],
            None,
        )
        .await;
    refused(&right, 429, "RATE_LIMIT_EXCEEDED");
    assert_eq!(
        app.call_from(
            Some("192.0.2.51"),
            Method::GET,
            KEYS,
            &[("authorization", &admin)],
            None
        )
        .await
        .status,
        200
    );
    assert!(audit_events(app).await.contains(&"rate_limited".to_owned()));
}
on_both_backends!(
    #[tokio::test]
    brute_force_from_one_ip_is_limited,
    brute_force_from_one_ip_is_limited
);

async fn rotation_keeps_the_old_key_for_the_grace_period(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (id, old) = make_key(&app, json!({"name": "server", "scopes": ["admin"]})).await;
    let rotated = with_key(
        &app,
        Method::POST,
        &format!("{KEYS}/{id}/rotate"),
        &app.admin_key,
        Some(r#"{"grace_period_seconds": 1}"#),
    )
    .await;
    assert_eq!(rotated.status, 201, "{}", rotated.body);
    let new = rotated.body["key"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(
        rotated.body["previous_key"]["rotated_to"],
        rotated.body["key_id"]
    );
    assert_eq!(
        with_key(&app, Method::GET, KEYS, &old, None).await.status,
        200,
        "the old key works in the grace period"
    );
    assert_eq!(
        with_key(&app, Method::GET, KEYS, &new, None).await.status,
        200
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    refused(
        &with_key(&app, Method::GET, KEYS, &old, None).await,
        401,
        "UNAUTHORIZED",
    );
    assert_eq!(
        with_key(&app, Method::GET, KEYS, &new, None).await.status,
        200
    );
    // A rotated key is not rotated twice.
    refused(
        &with_key(
            &app,
            Method::POST,
            &format!("{KEYS}/{id}/rotate"),
            &app.admin_key,
            None,
        )
        .await,
        409,
        "CONFLICT",
    );
    assert!(audit_events(&app).await.contains(&"key_rotated".to_owned()));
}
on_both_backends!(
    #[tokio::test]
    rotation_keeps_the_old_key_for_the_grace_period,
    rotation_keeps_the_old_key_for_the_grace_period
);

async fn the_key_lifecycle_and_its_usage(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (id, secret) = make_key(
        &app,
        json!({"name": "ops", "scopes": ["admin", "read"], "environment": "live"}),
    )
    .await;
    let got = with_key(
        &app,
        Method::GET,
        &format!("{KEYS}/{id}"),
        &app.admin_key,
        None,
    )
    .await;
    assert_eq!(got.body["name"], "ops");
    assert!(
        got.body.get("key").is_none(),
        "the secret is shown once only"
    );
    assert!(!got.body.to_string().contains(&secret));
    let listed = with_key(&app, Method::GET, KEYS, &app.admin_key, None).await;
    assert!(
        listed.body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["key_id"] == id.as_str())
    );
    assert!(!listed.body.to_string().contains(&secret));
    let patched = with_key(
        &app,
        Method::PATCH,
        &format!("{KEYS}/{id}"),
        &app.admin_key,
        Some(r#"{"name": "ops-2", "allowed_ips": ["10.0.0.0/8"], "expires_at": null}"#),
    )
    .await;
    assert_eq!(
        (
            patched.body["name"].as_str(),
            patched.body["allowed_ips"][0].as_str()
        ),
        (Some("ops-2"), Some("10.0.0.0/8"))
    );
    for _ in 0..2 {
        app.call_from(
            Some("10.1.1.1"),
            Method::GET,
            KEYS,
            &[("x-api-key", &secret)],
            None,
        )
        .await;
    }
    app.call_from(
        Some("10.1.1.1"),
        Method::GET,
        "/v1/admin/audit-log",
        &[("x-api-key", &secret)],
        None,
    )
    .await;
    let usage = with_key(
        &app,
        Method::GET,
        &format!("{KEYS}/{id}/usage"),
        &app.admin_key,
        None,
    )
    .await;
    assert_eq!(usage.body["days"][0]["requests"], 3, "{}", usage.body);
    assert_eq!(usage.body["days"][0]["routes"]["GET /v1/admin/api-keys"], 2);
    assert!(usage.body["last_used_at"].is_string());
    refused(
        &with_key(
            &app,
            Method::GET,
            &format!("{KEYS}/key_nothere"),
            &app.admin_key,
            None,
        )
        .await,
        404,
        "NOT_FOUND",
    );
    // Two entries so far (created, updated): a page of one, then the older one.
    let audit = with_key(
        &app,
        Method::GET,
        "/v1/admin/audit-log?limit=1",
        &app.admin_key,
        None,
    )
    .await;
    assert_eq!(audit.body["entries"][0]["event"], "key_updated");
    let next = audit.body["next_before"].as_str().unwrap();
    let older = with_key(
        &app,
        Method::GET,
        &format!("/v1/admin/audit-log?limit=1&before={next}"),
        &app.admin_key,
        None,
    )
    .await;
    assert_eq!(older.body["entries"][0]["event"], "key_created");
    assert!(older.body["entries"][0]["id"].as_str().unwrap() < next);
    let events = audit_events(&app).await;
    assert!(
        events.contains(&"key_created".to_owned()) && events.contains(&"key_updated".to_owned())
    );
}
on_both_backends!(
    #[tokio::test]
    the_key_lifecycle_and_its_usage,
    the_key_lifecycle_and_its_usage
);

async fn admins_grant_and_deduct_credits_with_a_reason(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    app.get("/v1/credits/balance", &user).await;
    let user_id = app.user_id(&user).as_str().to_owned();
    let path = format!("/v1/admin/users/{user_id}/credits");
    let grant = with_key(
        &app,
        Method::POST,
        &path,
        &app.admin_key,
        Some(r#"{"amount": 5, "reason": "apology for an outage"}"#),
    )
    .await;
    assert_eq!(
        (grant.status, grant.body["new_balance"].as_i64()),
        (200, Some(8)),
        "{}",
        grant.body
    );
    let deduct = with_key(
        &app,
        Method::POST,
        &path,
        &app.admin_key,
        Some(r#"{"amount": -6, "reason": "chargeback"}"#),
    )
    .await;
    assert_eq!(deduct.body["new_balance"], 2);
    let too_much = with_key(
        &app,
        Method::POST,
        &path,
        &app.admin_key,
        Some(r#"{"amount": -3, "reason": "chargeback"}"#),
    )
    .await;
    refused(&too_much, 402, "PAYMENT_REQUIRED");
    refused(
        &with_key(
            &app,
            Method::POST,
            &path,
            &app.admin_key,
            Some(r#"{"amount": 0, "reason": "x"}"#),
        )
        .await,
        400,
        "VALIDATION_ERROR",
    );
    refused(
        &with_key(
            &app,
            Method::POST,
            &path,
            &app.admin_key,
            Some(r#"{"amount": 1, "reason": ""}"#),
        )
        .await,
        400,
        "VALIDATION_ERROR",
    );
    let unknown = format!("/v1/admin/users/{}/credits", "0".repeat(64));
    refused(
        &with_key(
            &app,
            Method::POST,
            &unknown,
            &app.admin_key,
            Some(r#"{"amount": 1, "reason": "x"}"#),
        )
        .await,
        404,
        "NOT_FOUND",
    );
    let through_app = app.grant(&user, 1, &format!("app-{user}")).await;
    assert_eq!(through_app.body["status"], "success");
    let ledger = app.get("/v1/credits/transactions", &user).await;
    let descriptions: Vec<&str> = ledger
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["description"].as_str())
        .collect();
    assert!(
        descriptions.contains(&"admin: chargeback")
            && descriptions.contains(&"admin: apology for an outage")
    );
    let check = with_key(
        &app,
        Method::GET,
        &format!("/v1/admin/users/{user_id}/reconciliation"),
        &app.admin_key,
        None,
    )
    .await;
    assert_eq!(check.body["reconciled"], true, "{}", check.body);
    assert_eq!(check.body["balance"], check.body["ledger_sum"]);
    let granted = app
        .state
        .store
        .audit_log(50, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.as_str() == "credits_granted")
        .count();
    assert_eq!(
        granted, 3,
        "two admin adjustments and one grant through /v1/credits/add"
    );
}
on_both_backends!(
    #[tokio::test]
    admins_grant_and_deduct_credits_with_a_reason,
    admins_grant_and_deduct_credits_with_a_reason
);

async fn erasure_removes_a_users_books_and_keeps_the_ledger_anonymised(backend: Backend) {
    let app = TestApp::new(backend).await;
    let _worker = app.start_worker();
    let user = new_user_key();
    let job = crate::books::start_book(&app, &user).await;
    let done = crate::books::poll(&app, &user, &job, crate::books::PATIENCE).await;
    assert_eq!(done.body["status"], "done");
    let picture = done.body["result"]["pages"][0]["image_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let erased = app
        .call(
            Method::DELETE,
            "/v1/users/me",
            &[("x-user-key", &user)],
            None,
        )
        .await;
    assert_eq!(erased.status, 200, "{}", erased.body);
    assert_eq!(erased.body["deleted"]["books"], 1);
    assert_eq!(erased.body["kept_anonymised"]["ledger_entries"], 2);
    assert!(
        reqwest::get(&picture)
            .await
            .unwrap()
            .status()
            .is_client_error(),
        "the pictures are gone"
    );
    assert!(audit_events(&app).await.contains(&"user_erased".to_owned()));
    // The same key starts afresh: new credits, empty library, no trace of the book.
    assert_eq!(
        app.get("/v1/credits/balance", &user).await.body["credits"],
        3
    );
    assert_eq!(app.get("/v1/library", &user).await.body["total"], 0);
    assert_eq!(
        app.get(&format!("/v1/books/{job}"), &user).await.status,
        404
    );
    assert_eq!(
        app.get("/v1/credits/transactions", &user)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    erasure_removes_a_users_books_and_keeps_the_ledger_anonymised,
    erasure_removes_a_users_books_and_keeps_the_ledger_anonymised
);

async fn daily_and_unfinished_book_caps(backend: Backend) {
    let limits = Limits {
        books_per_day: 2,
        unfinished_books: 100,
        ..test_settings().limits
    };
    let app = TestApp::with_settings(backend, strict(limits)).await;
    let user = new_user_key();
    for _ in 0..2 {
        assert_eq!(
            app.post_json("/v1/books", &user, &crate::books::korean_book(4), &[])
                .await
                .status,
            200
        );
    }
    let third = app
        .post_json("/v1/books", &user, &crate::books::korean_book(4), &[])
        .await;
    refused(&third, 429, "DAILY_LIMIT_EXCEEDED");
    let retry: u64 = third.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=86_400).contains(&retry));

    let limits = Limits {
        unfinished_books: 2,
        ..test_settings().limits
    };
    let app = TestApp::with_settings(backend, strict(limits)).await;
    let (busy, other) = (new_user_key(), new_user_key());
    for _ in 0..2 {
        assert_eq!(
            app.post_json("/v1/books", &busy, &crate::books::korean_book(4), &[])
                .await
                .status,
            200
        );
    }
    refused(
        &app.post_json("/v1/books", &busy, &crate::books::korean_book(4), &[])
            .await,
        429,
        "TOO_MANY_PENDING_JOBS",
    );
    assert_eq!(
        app.post_json("/v1/books", &other, &crate::books::korean_book(4), &[])
            .await
            .status,
        200,
        "others unaffected"
    );
}
on_both_backends!(
    #[tokio::test]
    daily_and_unfinished_book_caps,
    daily_and_unfinished_book_caps
);

#[tokio::test]
async fn without_its_counters_the_store_fails_generation_closed_and_reads_open() {
    let app = TestApp::new(Backend::Embedded).await;
    let user = new_user_key();
    assert_eq!(app.get("/v1/credits/balance", &user).await.status, 200);
    // Break only the counters, in the real database file.
    let path = app.data_dir.as_ref().unwrap().join("storybook.sqlite3");
    rusqlite::Connection::open(path)
        .unwrap()
        .execute_batch("DROP TABLE limit_counters")
        .unwrap();
    assert_eq!(
        app.get("/v1/credits/balance", &user).await.status,
        200,
        "reads fail open"
    );
    let create = app
        .post_json("/v1/books", &user, &crate::books::korean_book(4), &[])
        .await;
    refused(&create, 503, "SERVICE_UNAVAILABLE");
    assert_eq!(
        app.get("/v1/credits/balance", &user).await.body["credits"],
        3,
        "nothing charged"
    );
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let settings = Settings {
        cors_origins: vec!["https://app.example".into()],
        ..test_settings()
    };
    let app = TestApp::with_settings(Backend::Embedded, settings).await;
    let user = new_user_key();
    for answer in [
        app.call(Method::GET, "/health", &[], None).await,
        app.get("/v1/credits/balance", &user).await,
        app.call(Method::GET, "/v1/nowhere", &[], None).await,
    ] {
        for header in [
            "strict-transport-security",
            "x-content-type-options",
            "x-frame-options",
            "content-security-policy",
            "referrer-policy",
        ] {
            assert!(answer.headers.contains_key(header), "{header} missing");
        }
        assert_eq!(answer.headers["x-frame-options"], "DENY");
    }
    assert_eq!(
        app.get("/v1/credits/balance", &user).await.headers["cache-control"],
        "no-store"
    );
    let preflight = app
        .call(
            Method::OPTIONS,
            "/v1/credits/balance",
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "x-user-key"),
            ],
            None,
        )
        .await;
    assert_eq!(
        preflight.headers["access-control-allow-origin"],
        "https://app.example"
    );
    let foreign = app
        .call(
            Method::GET,
            "/health",
            &[("origin", "https://evil.example")],
            None,
        )
        .await;
    assert!(!foreign.headers.contains_key("access-control-allow-origin"));
}

#[tokio::test]
async fn deeply_nested_json_is_refused() {
    let app = TestApp::new(Backend::Embedded).await;
    let body = format!(
        r#"{{"topic": "x", "target_age": "5-7", "style": "cartoon", "character": {}{}}}"#,
        "[".repeat(100),
        "]".repeat(100)
    );
    let answer = app
        .call(
            Method::POST,
            "/v1/books",
            &[("x-user-key", &new_user_key())],
            Some(&body),
        )
        .await;
    refused(&answer, 422, "VALIDATION_ERROR");
}

#[tokio::test]
async fn injection_shaped_input_is_refused_or_stored_inert() {
    let app = TestApp::new(Backend::Embedded).await;
    let user = new_user_key();
    let long_unicode = "공룡 🦖 ".repeat(20);
    let inert = [
        "'; DROP TABLE users; --",
        r#"{"$gt": ""} OR 1=1"#,
        "../../../../etc/passwd",
        long_unicode.trim(),
    ];
    for topic in inert {
        let answer = app
            .post_json(
                "/v1/books",
                &user,
                &json!({"topic": topic, "target_age": "5-7", "style": "cartoon"}),
                &[],
            )
            .await;
        if answer.status == 402 {
            break;
        }
        assert_eq!(answer.status, 200, "{topic}: {}", answer.body);
        let id =
            storybook_core::domain::book::BookId::parse(answer.body["job_id"].as_str().unwrap())
                .unwrap();
        let stored = app.state.store.find_book(&id).await.unwrap().unwrap().book;
        assert_eq!(stored.request.topic.as_str(), topic, "stored as sent");
    }
    assert_eq!(
        app.get("/v1/credits/balance", &user).await.status,
        200,
        "the tables are all there"
    );
    for topic in [
        "<script>alert(1)</script>",
        "javascript:alert(1)",
        "<img onerror=alert(1)>",
        &"가".repeat(5000),
    ] {
        let answer = app
            .post_json(
                "/v1/books",
                &user,
                &json!({"topic": topic, "target_age": "5-7", "style": "cartoon"}),
                &[],
            )
            .await;
        refused(&answer, 422, "VALIDATION_ERROR");
    }
    let nosql = app
        .post_json(
            "/v1/books",
            &user,
            &json!({"topic": {"$ne": null}, "target_age": "5-7", "style": "cartoon"}),
            &[],
        )
        .await;
    refused(&nosql, 422, "VALIDATION_ERROR");
    for path in [
        "/v1/books/..%2F..%2Fetc%2Fpasswd",
        "/v1/library/%00",
        "/v1/admin/api-keys/..%2F",
    ] {
        let answer = app
            .call(
                Method::GET,
                path,
                &[
                    ("x-user-key", &user),
                    ("authorization", &format!("Bearer {}", app.admin_key)),
                ],
                None,
            )
            .await;
        assert!(
            matches!(answer.status, 404 | 405),
            "{path}: {}",
            answer.status
        );
    }
    let smuggled = app
        .call(
            Method::GET,
            "/health",
            &[("x-request-id", "abc%0d%0aSet-Cookie:x=1")],
            None,
        )
        .await;
    assert_ne!(smuggled.headers["x-request-id"], "abc%0d%0aSet-Cookie:x=1");
}

#[tokio::test]
async fn no_log_line_carries_a_credential() {
    let app = TestApp::new(Backend::Embedded).await;
    let user = new_user_key();
    let unknown = ApiKeySecret::generate(KeyEnvironment::Live);
    let _worker = app.start_worker();
    app.post_json(
        "/v1/books",
        &user,
        &crate::books::korean_book(4),
        &[("x-request-id", "log-check")],
    )
    .await;
    with_key(&app, Method::GET, KEYS, unknown.expose(), None).await;
    with_key(&app, Method::GET, KEYS, &app.admin_key, None).await;
    app.call(
        Method::GET,
        "/v1/credits/balance",
        &[("x-user-key", "malformed-key-value")],
        None,
    )
    .await;
    let (_, made) = make_key(&app, json!({"name": "logged?", "scopes": ["read"]})).await;
    tracing::info!(probe = %made, "a careless line");
    let logs = String::from_utf8_lossy(&crate::harness::LOGS.lock().unwrap()).into_owned();
    assert!(
        logs.contains("log-check"),
        "the requests were logged, with their request id"
    );
    for secret in [
        user.as_str(),
        unknown.expose(),
        app.admin_key.as_str(),
        made.as_str(),
    ] {
        assert!(!logs.contains(secret), "a credential reached the log");
    }
    assert!(
        logs.contains("sbk_live_***"),
        "the careless line was masked"
    );
}

/// After erasure no lasting item of the DynamoDB table holds the user's keyed hash anywhere: not
/// the profile, books, settings, streak, readings or indexes, nor the once-only grant markers.
#[tokio::test]
async fn erasure_leaves_no_trace_of_the_user_in_dynamodb() {
    let config = crate::harness::moto_config().await;
    let resources = storybook_aws::provision::provision(&config, &crate::harness::unique_prefix())
        .await
        .unwrap();
    let state = crate::harness::state_over(&config, &resources, test_settings());
    let router = storybook_http::app(state.clone(), storybook_http::Family::ALL);
    let user = new_user_key();
    let hash = state.hasher.hash(CredentialKind::UserKey, &user);
    let call =
        |method: Method, path: &str, headers: Vec<(&'static str, String)>, body: Option<Value>| {
            let router = router.clone();
            let mut request = http::Request::builder().method(method).uri(path);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let request = request
                .header("content-type", "application/json")
                .body(axum::body::Body::from(
                    body.map(|b| b.to_string()).unwrap_or_default(),
                ))
                .unwrap();
            async move {
                use tower::ServiceExt;
                Answer::from_response(router.oneshot(request).await.unwrap()).await
            }
        };
    let admin = ApiKeySecret::generate(KeyEnvironment::Live);
    storybook_core::bootstrap::store_admin_key(&state, &admin, "tests")
        .await
        .unwrap();
    let me = || vec![("x-user-key", user.clone())];
    let mut with_admin = me();
    with_admin.push(("x-admin-key", admin.expose().to_owned()));
    let granted = call(
        Method::POST,
        "/v1/credits/add",
        with_admin,
        Some(json!({"amount": 2, "transaction_id": format!("erase-{user}")})),
    )
    .await;
    assert_eq!(granted.status, 200, "{}", granted.body);
    let book = call(
        Method::POST,
        "/v1/books",
        me(),
        Some(crate::books::korean_book(4)),
    )
    .await;
    let job = book.body["job_id"].as_str().unwrap().to_owned();
    // Only a finished book counts as reading: made here by a worker over this state.
    let pipeline = std::sync::Arc::new(storybook_pipeline::pipeline::Pipeline {
        first_retry: std::time::Duration::from_millis(20),
        ..storybook_pipeline::pipeline::Pipeline::new(
            &state,
            storybook_pipeline::providers::Providers::offline(),
        )
    });
    let worker = tokio::spawn(storybook_pipeline::pipeline::worker::run_local(pipeline));
    let id = storybook_core::domain::book::BookId::parse(&job).unwrap();
    for _ in 0..600 {
        if state
            .store
            .find_book(&id)
            .await
            .unwrap()
            .unwrap()
            .book
            .is_readable()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    worker.abort();
    call(
        Method::PATCH,
        "/v1/settings",
        me(),
        Some(json!({"timezone": "Europe/Berlin"})),
    )
    .await;
    let read = call(
        Method::POST,
        "/v1/streak/read",
        me(),
        Some(json!({"book_id": job})),
    )
    .await;
    assert_eq!(read.status, 200, "{}", read.body);
    let erased = call(Method::DELETE, "/v1/users/me", me(), None).await;
    assert_eq!(erased.status, 200, "{}", erased.body);

    let client = aws_sdk_dynamodb::Client::new(&config);
    let items = client
        .scan()
        .table_name(&resources.table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    assert!(!items.is_empty(), "the anonymised ledger stays");
    for item in &items {
        let text = format!("{item:?}");
        // Rate-limit counters count by caller and expire with their window (a day at most).
        if text.contains("S(\"LIMIT#") {
            continue;
        }
        assert!(
            !text.contains(hash.as_str()),
            "an item still names the user: {text}"
        );
        assert!(
            !text.contains(&job),
            "an item still names the erased book: {text}"
        );
    }
}

/// Concurrent guesses from one address: the failed-authentication count is taken before each
/// lookup, atomically, so 50 bad keys at once reach the lookup no more than the limit allows
/// (before, 42 of 50 did); a good key's concurrent requests are not refused for it.
async fn concurrent_guesses_never_pass_the_failed_authentication_limit(backend: Backend) {
    let settings = Settings {
        limits: Limits {
            auth_failures_per_minute: 5,
            ..test_settings().limits
        },
        ..test_settings()
    };
    let app = std::sync::Arc::new(TestApp::with_settings(backend, settings).await);
    let limit = app.state.settings.limits.auth_failures_per_minute;
    let guesses = futures::future::join_all((0..50).map(|_| {
        let app = app.clone();
        tokio::spawn(async move {
            let guess = ApiKeySecret::generate(KeyEnvironment::Live);
            let bearer = format!("Bearer {}", guess.expose());
            app.call_from(
                Some("198.51.100.7"),
                Method::GET,
                KEYS,
                &[("authorization", &bearer)],
                None,
            )
            .await
            .status
        })
    }))
    .await;
    let statuses: Vec<u16> = guesses.into_iter().map(|s| s.unwrap()).collect();
    assert!(
        statuses.iter().all(|s| matches!(s, 401 | 429)),
        "{statuses:?}"
    );
    let looked_up = audit_events(&app)
        .await
        .iter()
        .filter(|e| *e == "unknown_key")
        .count();
    assert!(
        looked_up as u32 <= limit,
        "{looked_up} guesses reached the lookup; the limit is {limit}"
    );
    // A good key from another address, 20 requests at once: none refused for the count.
    let bearer = format!("Bearer {}", app.admin_key);
    let first = app
        .call_from(
            Some("198.51.100.8"),
            Method::GET,
            KEYS,
            &[("authorization", &bearer)],
            None,
        )
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    let good = futures::future::join_all((0..20).map(|_| {
        let (app, bearer) = (app.clone(), bearer.clone());
        tokio::spawn(async move {
            app.call_from(
                Some("198.51.100.8"),
                Method::GET,
                KEYS,
                &[("authorization", &bearer)],
                None,
            )
            .await
            .status
        })
    }))
    .await;
    assert!(good.into_iter().all(|s| s.unwrap() == 200));
}
on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    concurrent_guesses_never_pass_the_failed_authentication_limit,
    concurrent_guesses_never_pass_the_failed_authentication_limit
);
