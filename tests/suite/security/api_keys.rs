//! Device keys decided from the header alone, and every API key refusal by name (missing, bad
//! format, unknown, revoked, expired, wrong IP, wrong scope, a test key in production), each
//! audited.

use super::*;

// Device keys: decided from the header alone, before any store read.

#[tokio::test]
async fn device_key_missing_is_422_and_malformed_is_400_without_a_store_read() {
    let router = storybook_http::app(
        crate::api_edges::unreachable_aws_state().await,
        storybook_core::catalogue::Family::ALL,
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
        storybook_core::catalogue::Family::ALL,
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
    let config = Config {
        environment: Environment::Prod,
        ..test_config()
    };
    let app = TestApp::with_config(backend, config).await;
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
