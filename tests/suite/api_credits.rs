//! The credits operations through the router, on both backends.

use crate::harness::{Answer, Backend, TestApp, new_user_key, test_config};
use crate::on_both_backends;
use futures::future::join_all;
use http::Method;
use serde_json::Value;
use std::sync::Arc;
use storybook_core::config::{Config, Environment};
use storybook_core::domain::api_key::{ApiKeySecret, KeyEnvironment};
use storybook_core::domain::credits::{EntryKind, LedgerEntry, ledger_reconciles};

/// The whole ledger through `GET /v1/credits/transactions`, oldest first, as domain entries.
async fn ledger_over_http(app: &TestApp, user_key: &str) -> Vec<LedgerEntry> {
    let mut rows: Vec<Value> = Vec::new();
    loop {
        let page = app
            .get(
                &format!("/v1/credits/transactions?limit=100&offset={}", rows.len()),
                user_key,
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let items = page.body.as_array().unwrap().clone();
        let done = items.len() < 100;
        rows.extend(items);
        if done {
            break;
        }
    }
    rows.reverse();
    rows.iter()
        .map(|row| LedgerEntry {
            seq: row["id"].as_i64().unwrap(),
            delta: row["amount"].as_i64().unwrap(),
            balance_after: row["balance_after"].as_i64().unwrap(),
            kind: EntryKind::parse(row["transaction_type"].as_str().unwrap()).unwrap(),
            description: row["description"].as_str().map(str::to_owned),
            reference: None,
            created_at: chrono::DateTime::parse_from_rfc3339(row["created_at"].as_str().unwrap())
                .unwrap()
                .into(),
        })
        .collect()
}

async fn balance(app: &TestApp, user_key: &str) -> i64 {
    let answer = app.get("/v1/credits/balance", user_key).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["credits"].as_i64().unwrap()
}

async fn a_new_user_starts_with_three_credits_and_one_bonus(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = new_user_key();
    assert_eq!(balance(&app, &key).await, 3);
    // The same key in capitals is the same user.
    assert_eq!(balance(&app, &key.to_uppercase()).await, 3);
    let ledger = ledger_over_http(&app, &key).await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(
        (ledger[0].kind, ledger[0].delta, ledger[0].balance_after),
        (EntryKind::Bonus, 3, 3)
    );
    let status = app.get("/v1/credits/status", &key).await;
    assert_eq!(
        status.body["credits"],
        serde_json::json!({"credits": 3, "total_purchased": 0, "total_used": 0})
    );
    let check = app.get("/v1/credits/check?required=4", &key).await;
    assert_eq!(check.body["has_enough_credits"], false);
    let check = app.get("/v1/credits/check", &key).await;
    assert_eq!(
        (
            check.body["has_enough_credits"].as_bool(),
            check.body["required"].as_i64()
        ),
        (Some(true), Some(1))
    );
}
on_both_backends!(
    #[tokio::test]
    a_new_user_starts_with_three_credits_and_one_bonus,
    a_new_user_starts_with_three_credits_and_one_bonus
);

async fn a_grant_is_paid_once_per_transaction(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = new_user_key();
    let first = app.grant(&key, 5, "order-1").await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(first.body["status"], "success");
    assert_eq!(first.body["new_balance"], 8);
    let again = app.grant(&key, 5, "order-1").await;
    assert_eq!(again.body["status"], "already_processed");
    assert_eq!(again.body["new_balance"], 8);
    let status = app.get("/v1/credits/status", &key).await;
    assert_eq!(status.body["credits"]["total_purchased"], 5);
    let ledger = ledger_over_http(&app, &key).await;
    assert_eq!(
        ledger.iter().map(|e| e.kind).collect::<Vec<_>>(),
        vec![EntryKind::Bonus, EntryKind::Purchase]
    );
}
on_both_backends!(
    #[tokio::test]
    a_grant_is_paid_once_per_transaction,
    a_grant_is_paid_once_per_transaction
);

async fn fifty_concurrent_grants(backend: Backend) {
    let app = Arc::new(TestApp::new(backend).await);
    let key = new_user_key();
    assert_eq!(balance(&app, &key).await, 3);
    let same: Vec<Answer> = join_all((0..50).map(|_| {
        let (app, key) = (app.clone(), key.clone());
        tokio::spawn(async move { app.grant(&key, 4, "same-order").await })
    }))
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    assert!(same.iter().all(|a| a.status == 200));
    assert_eq!(
        same.iter()
            .filter(|a| a.body["status"] == "success")
            .count(),
        1
    );
    assert_eq!(balance(&app, &key).await, 7);

    let different = join_all((0..50).map(|i| {
        let (app, key) = (app.clone(), key.clone());
        tokio::spawn(async move { app.grant(&key, 2, &format!("order-{i}")).await })
    }))
    .await;
    assert!(
        different
            .iter()
            .all(|a| a.as_ref().unwrap().body["status"] == "success")
    );
    let credits = balance(&app, &key).await;
    assert_eq!(credits, 7 + 100);
    let ledger = ledger_over_http(&app, &key).await;
    assert_eq!(ledger.len(), 52);
    assert!(
        ledger_reconciles(credits, &ledger),
        "the balance is the sum of the ledger"
    );
}
on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    fifty_concurrent_grants,
    fifty_concurrent_grants
);

async fn concurrent_first_requests_make_one_user(backend: Backend) {
    let app = Arc::new(TestApp::new(backend).await);
    let key = new_user_key();
    let answers = join_all((0..20).map(|_| {
        let (app, key) = (app.clone(), key.clone());
        tokio::spawn(async move { app.get("/v1/credits/balance", &key).await })
    }))
    .await;
    assert!(
        answers
            .iter()
            .all(|a| a.as_ref().unwrap().body["credits"] == 3)
    );
    assert_eq!(ledger_over_http(&app, &key).await.len(), 1, "one bonus");
}
on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    concurrent_first_requests_make_one_user,
    concurrent_first_requests_make_one_user
);

async fn refusals_of_a_grant(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = new_user_key();
    let admin = app.admin_key.clone();
    let post = |headers: Vec<(&'static str, String)>, body: &'static str| {
        let app = &app;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.call(Method::POST, "/v1/credits/add", &headers, Some(body))
                .await
        }
    };
    let both = || vec![("x-user-key", key.clone()), ("x-admin-key", admin.clone())];

    let cases: Vec<(Answer, u16, &str)> = vec![
        (
            post(both(), r#"{"amount": 0, "transaction_id": "t1"}"#).await,
            400,
            "VALIDATION_ERROR",
        ),
        (
            post(both(), r#"{"amount": -3, "transaction_id": "t1"}"#).await,
            400,
            "VALIDATION_ERROR",
        ),
        (
            post(both(), r#"{"amount": 2}"#).await,
            400,
            "VALIDATION_ERROR",
        ),
        (
            post(both(), r#"{"amount": 2, "transaction_id": null}"#).await,
            400,
            "VALIDATION_ERROR",
        ),
        (
            post(both(), r#"{"amount": 2, "transaction_id": "  "}"#).await,
            400,
            "VALIDATION_ERROR",
        ),
        (
            post(both(), r#"{"amount": 2000000, "transaction_id": "t1"}"#).await,
            400,
            "VALIDATION_ERROR",
        ),
        (
            post(both(), r#"{"amount": 2, "transaction_id": "t1""#).await,
            422,
            "VALIDATION_ERROR",
        ),
        (
            post(both(), r#"{"amount": "2", "transaction_id": "t1"}"#).await,
            422,
            "VALIDATION_ERROR",
        ),
        (
            post(both(), r#"{"amount": 2.5, "transaction_id": "t1"}"#).await,
            422,
            "VALIDATION_ERROR",
        ),
        (
            post(both(), r#"{"transaction_id": "t1"}"#).await,
            422,
            "VALIDATION_ERROR",
        ),
        (
            post(
                both(),
                r#"{"amount": 2, "transaction_id": "t1", "bonus": true}"#,
            )
            .await,
            422,
            "VALIDATION_ERROR",
        ),
        (post(both(), r#"[1, 2]"#).await, 422, "VALIDATION_ERROR"),
        (post(both(), "").await, 422, "VALIDATION_ERROR"),
        (
            post(
                vec![("x-user-key", key.clone())],
                r#"{"amount": 2, "transaction_id": "t1"}"#,
            )
            .await,
            403,
            "FORBIDDEN",
        ),
        (
            post(
                vec![
                    ("x-user-key", key.clone()),
                    ("x-admin-key", "letmein".into()),
                ],
                r#"{"amount": 2, "transaction_id": "t1"}"#,
            )
            .await,
            403,
            "FORBIDDEN",
        ),
        (
            post(
                vec![
                    ("x-user-key", key.clone()),
                    (
                        "x-admin-key",
                        ApiKeySecret::generate(KeyEnvironment::Live).expose().into(),
                    ),
                ],
                r#"{"amount": 2, "transaction_id": "t1"}"#,
            )
            .await,
            403,
            "FORBIDDEN",
        ),
        (
            post(
                vec![("x-admin-key", admin.clone())],
                r#"{"amount": 2, "transaction_id": "t1"}"#,
            )
            .await,
            422,
            "VALIDATION_ERROR",
        ),
        (
            post(
                vec![
                    ("x-admin-key", admin.clone()),
                    ("x-user-key", "12345".into()),
                ],
                r#"{"amount": 2, "transaction_id": "t1"}"#,
            )
            .await,
            400,
            "BAD_REQUEST",
        ),
    ];
    for (i, (answer, status, code)) in cases.iter().enumerate() {
        assert_eq!(answer.status, *status, "case {i}: {}", answer.body);
        assert_eq!(answer.code(), *code, "case {i}");
    }
    // Schema problems name where they are.
    let unknown = &cases[10].0;
    assert_eq!(
        unknown.body["detail"][0]["loc"],
        serde_json::json!(["body", "bonus"])
    );
    assert_eq!(unknown.body["detail"][0]["type"], "extra_forbidden");
    assert_eq!(unknown.body["error"]["details"], unknown.body["detail"]);
    let missing = &cases[9].0;
    assert_eq!(
        missing.body["detail"][0]["loc"],
        serde_json::json!(["body", "amount"])
    );
    assert_eq!(missing.body["detail"][0]["type"], "missing");
    assert_eq!(cases[6].0.body["detail"][0]["type"], "json_invalid");
    // Nothing was granted by any of them.
    assert_eq!(balance(&app, &key).await, 3);
}
on_both_backends!(
    #[tokio::test]
    refusals_of_a_grant,
    refusals_of_a_grant
);

#[tokio::test]
async fn a_test_key_is_refused_in_production() {
    let config = Config {
        environment: Environment::Prod,
        ..test_config()
    };
    let app = TestApp::with_config(Backend::Embedded, config).await;
    let test_key = ApiKeySecret::generate(KeyEnvironment::Test);
    storybook_core::bootstrap::store_admin_key(&app.state, &test_key, "test")
        .await
        .unwrap();
    let body = r#"{"amount": 2, "transaction_id": "t1"}"#;
    let user = new_user_key();
    let answer = app
        .call(
            Method::POST,
            "/v1/credits/add",
            &[("x-user-key", &user), ("x-admin-key", test_key.expose())],
            Some(body),
        )
        .await;
    assert_eq!((answer.status, answer.code()), (403, "FORBIDDEN"));
    // The live key of the same app still works.
    assert_eq!(app.grant(&user, 2, "t1").await.body["status"], "success");
}

#[tokio::test]
async fn account_creation_is_limited_per_client_ip() {
    let config = Config {
        account_creations_per_ip_per_hour: 2,
        ..test_config()
    };
    let app = TestApp::with_config(Backend::Embedded, config).await;
    let (first, second) = (new_user_key(), new_user_key());
    assert_eq!(app.get("/v1/credits/balance", &first).await.status, 200);
    assert_eq!(app.get("/v1/credits/balance", &second).await.status, 200);
    let third = app.get("/v1/credits/balance", &new_user_key()).await;
    assert_eq!((third.status, third.code()), (429, "RATE_LIMIT_EXCEEDED"));
    let retry_after: u64 = third.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry_after));
    assert_eq!(third.body["error"]["details"]["retry_after"], retry_after);
    // Existing users are not affected.
    assert_eq!(app.get("/v1/credits/balance", &first).await.status, 200);
}

async fn ledger_paging_and_bad_queries(backend: Backend) {
    let app = TestApp::new(backend).await;
    let key = new_user_key();
    for i in 0..3 {
        app.grant(&key, 1, &format!("p-{i}-{key}")).await;
    }
    let page = app.get("/v1/credits/transactions?limit=2", &key).await;
    let amounts: Vec<i64> = page
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["balance_after"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, vec![6, 5]);
    let rest = app
        .get("/v1/credits/transactions?limit=2&offset=2", &key)
        .await;
    assert_eq!(rest.body.as_array().unwrap().len(), 2);
    for bad in [
        "limit=0",
        "limit=101",
        "limit=abc",
        "offset=-1",
        "limit=1.5",
    ] {
        let answer = app
            .get(&format!("/v1/credits/transactions?{bad}"), &key)
            .await;
        assert_eq!(
            (answer.status, answer.code()),
            (422, "VALIDATION_ERROR"),
            "{bad}: {}",
            answer.body
        );
        assert_eq!(answer.body["detail"][0]["loc"][0], "query", "{bad}");
    }
    let answer = app.get("/v1/credits/check?required=-1", &key).await;
    assert_eq!(answer.status, 422);
}
on_both_backends!(
    #[tokio::test]
    ledger_paging_and_bad_queries,
    ledger_paging_and_bad_queries
);
