//! What every answer carries and every input meets: security headers, nested JSON,
//! injection-shaped input, and no credential in any log line.

use super::*;
use crate::harness::BookAsk;

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let config = Config {
        cors_origins: vec!["https://app.example".into()],
        ..test_config()
    };
    let app = TestApp::with_config(Backend::Embedded, config).await;
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
        &BookAsk::korean(4).json(),
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
