//! What the App Store tells us after a purchase, as Apple signs it: renewals paid once,
//! refunds taken back from whoever was paid, ends and grace periods, each notification once.

use super::app_store::{AppStore, Chain, ChainFlaws, renewal_in_grace, subscription, transaction};
use super::{BOTH, app_asking, balance, verify};
use crate::harness::{Answer, Backend, TestApp, new_user_key, test_config};
use crate::on_both_backends;
use http::Method;
use serde_json::Value;

async fn notify(app: &TestApp, body: &str) -> Answer {
    app.call(Method::POST, "/v1/iap/webhook/apple", &[], Some(body))
        .await
}

async fn plan_of(app: &TestApp, user: &str) -> Value {
    app.get("/v1/credits/status", user).await.body["subscription"].clone()
}

async fn renewals_pay_once_and_refunds_take_back_from_the_payee(backend: Backend) {
    let store = AppStore::start().await;
    let app = app_asking(backend, test_config(), store.settings(BOTH)).await;
    let (buyer, new_phone) = (new_user_key(), new_user_key());

    // A pack, restored on a second device, then refunded: taken from the account it paid.
    store.sells(&transaction("9100000001", "credit_pack_5", "Production"));
    verify(&app, &buyer, "credit_pack_5", "9100000001").await;
    let restored = verify(&app, &new_phone, "credit_pack_5", "9100000001").await;
    assert_eq!(restored.body["status"], "restored");
    let mut refunded = transaction("9100000001", "credit_pack_5", "Production");
    refunded["revocationDate"] = chrono::Utc::now().timestamp_millis().into();
    let refund = store.chain.notification("REFUND", &refunded, None);
    let answer = notify(&app, &refund).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["event"], "refunded");
    assert_eq!(
        balance(&app, &buyer).await,
        3,
        "the pack's credits went back"
    );
    assert_eq!(
        balance(&app, &new_phone).await,
        3,
        "the restoring device was paid nothing"
    );
    // The same notification again, and a second one about the same refund: nothing more.
    assert_eq!(notify(&app, &refund).await.body["status"], "duplicate");
    let again = store.chain.notification("REFUND", &refunded, None);
    assert_eq!(notify(&app, &again).await.body["status"], "applied");
    assert_eq!(balance(&app, &buyer).await, 3);
    let ledger = app.get("/v1/credits/transactions", &buyer).await.body;
    assert_eq!(ledger[0]["transaction_type"], "clawback");
    assert_eq!(ledger[0]["amount"], -5);

    // Apple reversed the refund: the credits come back once, not counted as bought again.
    let reversed = store.chain.notification("REFUND_REVERSED", &refunded, None);
    assert_eq!(
        notify(&app, &reversed).await.body["event"],
        "refund_reversed"
    );
    let twice = store.chain.notification("REFUND_REVERSED", &refunded, None);
    notify(&app, &twice).await;
    assert_eq!(balance(&app, &buyer).await, 3 + 5);
    let status = app.get("/v1/credits/status", &buyer).await.body;
    assert_eq!(status["credits"]["total_purchased"], 5);
    let ledger = app.get("/v1/credits/transactions", &buyer).await.body;
    assert_eq!(ledger[0]["transaction_type"], "refund");
    assert_eq!(ledger[0]["amount"], 5);
    // Refunded again afterwards: taken back again, once.
    let again = store.chain.notification("REFUND", &refunded, None);
    notify(&app, &again).await;
    assert_eq!(balance(&app, &buyer).await, 3);

    // A plan, renewed by the store: the holder is paid once per renewal.
    let first = subscription("9200000001", "9200000001", "subscription_basic", 30);
    store.sells(&first);
    verify(&app, &buyer, "subscription_basic", "9200000001").await;
    assert_eq!(balance(&app, &buyer).await, 3 + 10);
    let renewal = subscription("9200000002", "9200000001", "subscription_basic", 60);
    let renewed = store.chain.notification("DID_RENEW", &renewal, None);
    assert_eq!(notify(&app, &renewed).await.body["event"], "paid");
    assert_eq!(balance(&app, &buyer).await, 3 + 20);
    let twice = store.chain.notification("DID_RENEW", &renewal, None);
    notify(&app, &twice).await;
    assert_eq!(
        balance(&app, &buyer).await,
        3 + 20,
        "one renewal, one payment"
    );
    let plan = plan_of(&app, &buyer).await;
    assert_eq!(plan["status"], "active");

    // A late expiry of the first period ends nothing paid for later.
    let late = store.chain.notification("EXPIRED", &first, None);
    notify(&app, &late).await;
    assert_eq!(plan_of(&app, &buyer).await["status"], "active");

    // The renewal refunded: its credits back, the plan over.
    let mut renewal_refunded = renewal.clone();
    renewal_refunded["revocationDate"] = chrono::Utc::now().timestamp_millis().into();
    let refund = store.chain.notification("REFUND", &renewal_refunded, None);
    notify(&app, &refund).await;
    assert_eq!(balance(&app, &buyer).await, 3 + 10);
    assert_eq!(plan_of(&app, &buyer).await, Value::Null);
}
on_both_backends!(
    #[tokio::test]
    renewals_and_refunds,
    renewals_pay_once_and_refunds_take_back_from_the_payee
);

async fn a_refund_after_the_credits_were_spent_takes_what_is_left(backend: Backend) {
    let store = AppStore::start().await;
    let app = app_asking(backend, test_config(), store.settings(BOTH)).await;
    let user = new_user_key();
    store.sells(&transaction("9300000001", "credit_pack_10", "Production"));
    verify(&app, &user, "credit_pack_10", "9300000001").await;
    // Spent down to 4 through an operator's deduction (as books would).
    let id = app.user_id(&user);
    let adjust = app
        .call(
            Method::POST,
            &format!("/v1/admin/users/{}/credits", id.as_str()),
            &[("authorization", &format!("Bearer {}", app.admin_key))],
            Some(r#"{"amount": -9, "reason": "spent on books"}"#),
        )
        .await;
    assert!(adjust.status < 300, "{}", adjust.body);
    assert_eq!(balance(&app, &user).await, 4);
    let mut refunded = transaction("9300000001", "credit_pack_10", "Production");
    refunded["revocationDate"] = chrono::Utc::now().timestamp_millis().into();
    notify(&app, &store.chain.notification("REFUND", &refunded, None)).await;
    assert_eq!(balance(&app, &user).await, 0, "never below zero");
    let ledger = app.get("/v1/credits/transactions", &user).await.body;
    assert_eq!(ledger[0]["amount"], -4);
    let description = ledger[0]["description"].as_str().unwrap();
    assert!(
        description.contains("6 credits already spent"),
        "{description}"
    );
}
on_both_backends!(
    #[tokio::test]
    refund_shortfall,
    a_refund_after_the_credits_were_spent_takes_what_is_left
);

#[tokio::test]
async fn a_late_grace_expiry_ends_nothing_a_recovery_paid() {
    let store = AppStore::start().await;
    let app = app_asking(Backend::Embedded, test_config(), store.settings(BOTH)).await;
    let user = new_user_key();
    let bought = subscription("9500000001", "9500000001", "subscription_basic", 1);
    store.sells(&bought);
    verify(&app, &user, "subscription_basic", "9500000001").await;
    let grace = renewal_in_grace("9500000001", "subscription_basic", 16);
    let retry = store
        .chain
        .notification("DID_FAIL_TO_RENEW", &bought, Some(&grace));
    notify(&app, &retry).await;
    // Billing recovered: a new period, paid.
    let recovered = subscription("9500000002", "9500000001", "subscription_basic", 31);
    let renewed = store.chain.notification("DID_RENEW", &recovered, None);
    assert_eq!(notify(&app, &renewed).await.body["event"], "paid");
    // Apple's retry of the grace period's end, arriving after: the paid plan stays.
    let late = store
        .chain
        .notification("GRACE_PERIOD_EXPIRED", &bought, Some(&grace));
    assert_eq!(notify(&app, &late).await.body["event"], "ended");
    assert_eq!(plan_of(&app, &user).await["status"], "active");
}

#[tokio::test]
async fn grace_then_expiry_and_only_apples_signature_counts() {
    let store = AppStore::start().await;
    let app = app_asking(Backend::Embedded, test_config(), store.settings(BOTH)).await;
    let user = new_user_key();
    let bought = subscription("9400000001", "9400000001", "subscription_premium", 1);
    store.sells(&bought);
    verify(&app, &user, "subscription_premium", "9400000001").await;
    let before = plan_of(&app, &user).await["current_period_end"].clone();

    // Billing failed: the plan lasts through the grace period.
    let grace = renewal_in_grace("9400000001", "subscription_premium", 16);
    let retry = store
        .chain
        .notification("DID_FAIL_TO_RENEW", &bought, Some(&grace));
    assert_eq!(notify(&app, &retry).await.body["event"], "billing_retry");
    let after = plan_of(&app, &user).await["current_period_end"].clone();
    assert!(after.as_str() > before.as_str(), "{before} -> {after}");

    // A forgery and a chain to another root change nothing.
    let mut ended = bought.clone();
    ended["expiresDate"] = (chrono::Utc::now() + chrono::Duration::days(30))
        .timestamp_millis()
        .into();
    let forged_body = serde_json::json!({ "signedPayload": store.chain.forge(&serde_json::json!({
        "notificationType": "EXPIRED", "notificationUUID": "f-1", "version": "2.0",
        "signedDate": chrono::Utc::now().timestamp_millis(),
        "data": {"appAppleId": super::app_store::APP_APPLE_ID, "bundleId": super::app_store::BUNDLE,
                 "environment": "Production", "signedTransactionInfo": store.chain.sign(&ended)}
    }))})
    .to_string();
    let forged = notify(&app, &forged_body).await;
    assert_eq!(forged.status, 401, "{}", forged.body);
    assert_eq!(forged.body["error"]["code"], "UNAUTHORIZED");
    let stranger = Chain::new(ChainFlaws::default());
    let foreign = notify(&app, &stranger.notification("EXPIRED", &ended, None)).await;
    assert_eq!(foreign.status, 401);
    assert_eq!(notify(&app, "{\"signedPayload\": 5}").await.status, 401);
    assert_eq!(plan_of(&app, &user).await["status"], "active");

    // The grace is over: the plan extended into it ends, though its paid period (a day) was
    // shorter than the grace (sixteen).
    let over = store
        .chain
        .notification("GRACE_PERIOD_EXPIRED", &bought, Some(&grace));
    assert_eq!(notify(&app, &over).await.body["event"], "ended");
    assert_eq!(plan_of(&app, &user).await, Value::Null);

    // A test notification is answered, nothing else.
    let test = store.chain.notification("TEST", &bought, None);
    assert_eq!(notify(&app, &test).await.body["event"], "test");
}

#[tokio::test]
async fn without_a_configured_store_no_notification_counts() {
    let store = AppStore::start().await;
    let app = TestApp::new(Backend::Embedded).await;
    let body = store.chain.notification(
        "TEST",
        &transaction("1", "credit_pack_1", "Production"),
        None,
    );
    assert_eq!(notify(&app, &body).await.status, 401);
}

async fn report(app: &TestApp, platform: &str, token: &str, id: &str, status: &str) -> Answer {
    let body = serde_json::json!({"transaction_id": id, "status": status, "payload": null});
    app.call(
        Method::POST,
        &format!("/v1/iap/webhook/{platform}"),
        &[("x-webhook-token", token)],
        Some(&body.to_string()),
    )
    .await
}

async fn a_bridges_report_needs_the_shared_token(backend: Backend) {
    let store = AppStore::start().await;
    let app = app_asking(backend, test_config(), store.settings(BOTH)).await;
    let user = new_user_key();
    store.sells(&subscription(
        "9500000001",
        "9500000001",
        "subscription_basic",
        30,
    ));
    verify(&app, &user, "subscription_basic", "9500000001").await;
    assert_eq!(balance(&app, &user).await, 13);

    for token in ["", "a-webhook-secret-of-at-least-32-characterz"] {
        let refused = report(&app, "apple", token, "9500000001", "refunded").await;
        assert_eq!(refused.status, 401, "{}", refused.body);
    }
    assert_eq!(balance(&app, &user).await, 13);

    let secret = super::WEBHOOK_SECRET;
    let cancelled = report(&app, "apple", secret, "9500000001", "cancelled").await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(plan_of(&app, &user).await["status"], "cancelled");
    report(&app, "apple", secret, "9500000001", "active").await;
    assert_eq!(plan_of(&app, &user).await["status"], "active");
    report(&app, "apple", secret, "9500000001", "refunded").await;
    assert_eq!(
        balance(&app, &user).await,
        3,
        "the plan's credits went back"
    );
    assert_eq!(plan_of(&app, &user).await, Value::Null);
    // Ended is ended: a later `active` does not bring it back, a second refund takes nothing.
    report(&app, "apple", secret, "9500000001", "active").await;
    report(&app, "apple", secret, "9500000001", "refunded").await;
    assert_eq!(plan_of(&app, &user).await, Value::Null);
    assert_eq!(balance(&app, &user).await, 3);
    // A payment no one redeemed here: accepted, nothing to change.
    let unknown = report(&app, "google", secret, "GPA.0000-0000", "refunded").await;
    assert_eq!(unknown.status, 200, "{}", unknown.body);
    let malformed = report(&app, "apple", secret, "9500000001", "paused").await;
    assert_eq!(malformed.status, 401);
}
on_both_backends!(
    #[tokio::test]
    bridge_reports,
    a_bridges_report_needs_the_shared_token
);
