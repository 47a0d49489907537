//! Plans: asked for by the app, given by an operator, cancelled where we may; opened with money
//! only by a purchase its store confirmed.

use super::app_store::{AppStore, subscription};
use super::{BOTH, app_asking, balance, verify};
use crate::harness::{Backend, TestApp, new_user_key, test_config};
use crate::on_both_backends;
use http::Method;
use serde_json::{Value, json};

async fn subscribe(app: &TestApp, user: &str, plan: &str) -> crate::harness::Answer {
    app.post_json("/v1/credits/subscribe", user, &json!({ "plan": plan }), &[])
        .await
}

async fn grant(app: &TestApp, user: &str, plan: &str) -> crate::harness::Answer {
    app.call(
        Method::POST,
        "/v1/credits/admin/grant-subscription",
        &[("x-user-key", user), ("x-admin-key", &app.admin_key)],
        Some(&json!({ "plan": plan }).to_string()),
    )
    .await
}

async fn cancel(app: &TestApp, user: &str) -> crate::harness::Answer {
    app.call(
        Method::POST,
        "/v1/credits/cancel-subscription",
        &[("x-user-key", user)],
        None,
    )
    .await
}

async fn an_operators_plan_pays_once_and_cancels_to_its_period_end(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    let status = app.get("/v1/credits/status", &user).await.body;
    assert_eq!(status["subscription"], Value::Null);
    let plans: Vec<&str> = status["available_plans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(plans, ["free", "basic", "premium"]);

    // Paid plans are bought in the stores, never opened by asking.
    let asked = subscribe(&app, &user, "premium").await;
    assert_eq!(asked.status, 403, "{}", asked.body);
    let unknown = subscribe(&app, &user, "platinum").await;
    assert_eq!(unknown.status, 400);
    assert_eq!(
        unknown.body["error"]["details"]["available_plans"],
        json!(["free", "basic", "premium"])
    );
    assert_eq!(
        subscribe(&app, &user, "free").await.body["status"],
        "success"
    );
    assert_eq!(cancel(&app, &user).await.status, 404);

    let granted = grant(&app, &user, " Premium ").await;
    assert_eq!(granted.status, 200, "{}", granted.body);
    assert_eq!(granted.body["plan"], "premium");
    assert_eq!(granted.body["status"], "active");
    assert_eq!(balance(&app, &user).await, 3 + 30);
    let ledger = app.get("/v1/credits/transactions", &user).await.body;
    assert_eq!(ledger[0]["transaction_type"], "subscription");

    let status = app.get("/v1/credits/status", &user).await.body;
    assert_eq!(status["subscription"]["plan"], "premium");
    assert_eq!(status["subscription"]["plan_name"], "Premium");
    assert_eq!(status["subscription"]["credits_per_month"], 30);
    let free = subscribe(&app, &user, "free").await;
    assert_eq!(free.status, 400);
    assert_eq!(free.body["error"]["code"], "ACTIVE_PAID_SUBSCRIPTION");
    assert_eq!(free.body["error"]["details"]["current_plan"], "premium");
    let same = subscribe(&app, &user, "premium").await;
    assert_eq!(same.body["status"], "already_subscribed", "{}", same.body);

    let cancelled = cancel(&app, &user).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "success");
    let status = app.get("/v1/credits/status", &user).await.body;
    assert_eq!(status["subscription"]["status"], "cancelled");
    assert_eq!(
        balance(&app, &user).await,
        33,
        "cancelling takes nothing back"
    );

    // Only a paid plan, only with an admin key.
    assert_eq!(grant(&app, &user, "free").await.status, 400);
    let without_key = app
        .call(
            Method::POST,
            "/v1/credits/admin/grant-subscription",
            &[("x-user-key", &user)],
            Some(r#"{"plan": "basic"}"#),
        )
        .await;
    assert!(
        matches!(without_key.status, 401 | 403),
        "{}",
        without_key.body
    );
    let audit = app
        .call(
            Method::GET,
            "/v1/admin/audit-log",
            &[("authorization", &format!("Bearer {}", app.admin_key))],
            None,
        )
        .await;
    assert!(
        audit.body.to_string().contains("subscription_granted"),
        "{}",
        audit.body
    );
}
on_both_backends!(
    #[tokio::test]
    operator_plan,
    an_operators_plan_pays_once_and_cancels_to_its_period_end
);

#[tokio::test]
async fn a_plan_the_app_store_bills_is_cancelled_there() {
    let store = AppStore::start().await;
    let app = app_asking(Backend::Embedded, test_config(), store.settings(BOTH)).await;
    let user = new_user_key();
    store.sells(&subscription(
        "8000000001",
        "8000000001",
        "subscription_premium",
        30,
    ));
    let bought = verify(&app, &user, "subscription_premium", "8000000001").await;
    assert_eq!(bought.body["status"], "verified", "{}", bought.body);
    let cancelled = cancel(&app, &user).await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "cancel_in_store");
    assert_eq!(
        cancelled.body["manage_url"],
        "https://apps.apple.com/account/subscriptions"
    );
    let status = app.get("/v1/credits/status", &user).await.body;
    assert_eq!(
        status["subscription"]["status"], "active",
        "the store decides"
    );
    // An operator does not replace what a store bills.
    assert_eq!(grant(&app, &user, "basic").await.status, 409);
    // A second store plan of the same kind gives nothing while the first runs.
    store.sells(&subscription(
        "8000000002",
        "8000000002",
        "subscription_premium",
        30,
    ));
    let second = verify(&app, &user, "subscription_premium", "8000000002").await;
    assert_eq!(
        second.body["status"], "already_subscribed",
        "{}",
        second.body
    );
    assert_eq!(balance(&app, &user).await, 3 + 30);
    // An ended period is on record and opens nothing.
    let other = new_user_key();
    store.sells(&subscription(
        "8000000003",
        "8000000003",
        "subscription_basic",
        -1,
    ));
    let ended = verify(&app, &other, "subscription_basic", "8000000003").await;
    assert_eq!(ended.body["status"], "verified", "{}", ended.body);
    assert_eq!(balance(&app, &other).await, 3);
    assert_eq!(
        app.get("/v1/credits/status", &other).await.body["subscription"],
        Value::Null
    );
}
