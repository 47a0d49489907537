//! An API key's life: made, listed, used and counted, rotated with a grace period, revoked.

use super::*;

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
