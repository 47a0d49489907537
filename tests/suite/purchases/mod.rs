//! The app's money: purchases confirmed with the App Store (a store of the test's own, signing
//! as Apple signs), redeemed once forever, and the plans they open.

mod app_store;
mod google_play;
mod notifications;
mod plans;
mod reconcile;

use crate::harness::{Answer, Backend, TestApp, new_user_key, test_config};
use crate::on_both_backends;
use app_store::{AppStore, Chain, ChainFlaws, subscription, transaction};
use futures::future::join_all;
use serde_json::{Value, json};
use std::sync::Arc;
use storybook_core::config::Config;
use storybook_core::domain::purchase::StoreEnvironment;
use storybook_stores::Stores;
use storybook_stores::settings::{AppleSettings, StoreSettings};

/// The bridge's shared `X-Webhook-Token` in these tests.
const WEBHOOK_SECRET: &str = "a-webhook-secret-of-at-least-32-characters";

const BOTH: &[StoreEnvironment] = &[StoreEnvironment::Production, StoreEnvironment::Sandbox];

/// The app over `backend` asking the App Store `settings` describe.
async fn app_asking(backend: Backend, config: Config, settings: AppleSettings) -> TestApp {
    let stores = StoreSettings {
        apple: Some(settings),
        ..stores()
    };
    app_with_stores(backend, config, stores).await
}

/// No store, the bridge's secret set.
fn stores() -> StoreSettings {
    StoreSettings {
        apple: None,
        google: None,
        webhook_secret: Some(WEBHOOK_SECRET.into()),
    }
}

async fn app_with_stores(backend: Backend, config: Config, settings: StoreSettings) -> TestApp {
    let stores = Stores::new(settings).unwrap();
    TestApp::with_marketplace(backend, config, Arc::new(stores)).await
}

async fn verify(app: &TestApp, user: &str, product: &str, transaction_id: &str) -> Answer {
    let body = json!({
        "platform": "apple",
        "product_id": product,
        "transaction_id": transaction_id,
        "receipt_data": "TUlJVGtRWUpLb1pJaHZjTkFRY0NvSUlUZ2pDQ0U=",
        "is_subscription": false,
    });
    app.post_json("/v1/iap/verify", user, &body, &[]).await
}

async fn balance(app: &TestApp, user: &str) -> i64 {
    app.get("/v1/credits/balance", user).await.body["credits"]
        .as_i64()
        .unwrap()
}

fn reason(answer: &Answer) -> String {
    answer.body["error"]["details"]["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

async fn a_credit_pack_is_paid_once_and_asked_for_once(backend: Backend) {
    let store = AppStore::start().await;
    let app = app_asking(backend, test_config(), store.settings(BOTH)).await;
    let user = new_user_key();
    store.sells(&transaction("2000000101", "credit_pack_5", "Production"));
    let first = verify(&app, &user, "credit_pack_5", "2000000101").await;
    assert_eq!(first.status, 200, "{}", first.body);
    let answer = first.body;
    assert_eq!(answer["status"], "verified");
    assert_eq!(answer["credits_added"], 5);
    assert_eq!(answer["plan"], Value::Null);
    assert_eq!(answer["verification_source"], "apple_store");
    assert_eq!(balance(&app, &user).await, 3 + 5);
    let ledger = app.get("/v1/credits/transactions", &user).await.body;
    assert_eq!(ledger[0]["transaction_type"], "purchase");
    assert_eq!(ledger[0]["amount"], 5);

    // The app's retry (it finishes the store transaction only after a 2xx): no store call.
    let again = verify(&app, &user, "credit_pack_5", "2000000101").await;
    assert_eq!(again.body["status"], "already_processed");
    assert_eq!(again.body["credits_added"], 0);
    assert_eq!(store.times_asked("2000000101"), 1);
    assert_eq!(balance(&app, &user).await, 8);
}
on_both_backends!(
    #[tokio::test]
    pack_once,
    a_credit_pack_is_paid_once_and_asked_for_once
);

async fn twenty_racing_redemptions_from_two_accounts_grant_once(backend: Backend) {
    let store = AppStore::start().await;
    let app = Arc::new(app_asking(backend, test_config(), store.settings(BOTH)).await);
    store.sells(&transaction("2000000202", "credit_pack_10", "Production"));
    let users = [new_user_key(), new_user_key()];
    for user in &users {
        balance(&app, user).await;
    }
    let answers = join_all((0..20).map(|i| {
        let (app, user) = (app.clone(), users[i % 2].clone());
        tokio::spawn(async move { verify(&app, &user, "credit_pack_10", "2000000202").await })
    }))
    .await;
    let mut verified = 0;
    for answer in answers {
        let answer = answer.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        let status = answer.body["status"].as_str().unwrap().to_owned();
        assert!(
            ["verified", "already_processed", "restored"].contains(&status.as_str()),
            "{status}"
        );
        verified += usize::from(status == "verified");
    }
    assert_eq!(verified, 1);
    let total = balance(&app, &users[0]).await + balance(&app, &users[1]).await;
    assert_eq!(total, 3 + 3 + 10, "one pack paid out, to one account");
}
on_both_backends!(
    #[tokio::test]
    race,
    twenty_racing_redemptions_from_two_accounts_grant_once
);

async fn an_erased_account_leaves_its_purchases_redeemed(backend: Backend) {
    let store = AppStore::start().await;
    let app = app_asking(backend, test_config(), store.settings(BOTH)).await;
    store.sells(&transaction("2000000303", "credit_pack_5", "Production"));
    let first = new_user_key();
    assert_eq!(
        verify(&app, &first, "credit_pack_5", "2000000303")
            .await
            .body["status"],
        "verified"
    );
    store.sells(&subscription(
        "2000000304",
        "2000000304",
        "subscription_basic",
        30,
    ));
    verify(&app, &first, "subscription_basic", "2000000304").await;
    let id = app.user_id(&first);
    let erased = app.erase(&first).await;
    // Nothing stored names the erased account any more: not its claims, not its plan's holder
    // (only the minute's rate-limit counter, which expires by itself).
    let left: Vec<String> = app
        .records_holding(id.as_str())
        .await
        .into_iter()
        .filter(|record| !record.contains("rate:"))
        .collect();
    assert_eq!(left, Vec::<String>::new());
    assert!(erased.status < 300, "{}", erased.body);
    // The same device key makes a new account; the same purchase gives nothing again.
    let again = verify(&app, &first, "credit_pack_5", "2000000303").await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["status"], "already_processed");
    assert_eq!(balance(&app, &first).await, 3);
    let other = new_user_key();
    let other_try = verify(&app, &other, "credit_pack_5", "2000000303").await;
    assert_eq!(other_try.body["status"], "already_processed");
    assert_eq!(balance(&app, &other).await, 3);
}
on_both_backends!(
    #[tokio::test]
    erased,
    an_erased_account_leaves_its_purchases_redeemed
);

async fn a_restored_subscription_moves_without_paying_again(backend: Backend) {
    let store = AppStore::start().await;
    let app = app_asking(backend, test_config(), store.settings(BOTH)).await;
    store.sells(&subscription(
        "2000000404",
        "2000000404",
        "subscription_basic",
        30,
    ));
    let (old_phone, new_phone) = (new_user_key(), new_user_key());
    let bought = verify(&app, &old_phone, "subscription_basic", "2000000404").await;
    assert_eq!(bought.body["status"], "verified", "{}", bought.body);
    assert_eq!(
        bought.body["credits_added"], 0,
        "a plan's credits come as its own entry"
    );
    assert_eq!(bought.body["plan"], "basic");
    assert_eq!(balance(&app, &old_phone).await, 3 + 10);
    let status = app.get("/v1/credits/status", &old_phone).await.body;
    assert_eq!(status["subscription"]["plan"], "basic");
    assert_eq!(status["subscription"]["status"], "active");

    let restored = verify(&app, &new_phone, "subscription_basic", "2000000404").await;
    assert_eq!(restored.body["status"], "restored", "{}", restored.body);
    assert_eq!(balance(&app, &new_phone).await, 3, "no credits paid again");
    let moved = app.get("/v1/credits/status", &new_phone).await.body;
    assert_eq!(moved["subscription"]["plan"], "basic");
    let left = app.get("/v1/credits/status", &old_phone).await.body;
    assert_eq!(left["subscription"], Value::Null, "the plan moved away");
    assert_eq!(
        balance(&app, &old_phone).await,
        13,
        "credits already given stay"
    );

    // The next period's transaction pays the holder once.
    store.sells(&subscription(
        "2000000405",
        "2000000404",
        "subscription_basic",
        60,
    ));
    let renewed = verify(&app, &new_phone, "subscription_basic", "2000000405").await;
    assert_eq!(renewed.body["status"], "verified");
    assert_eq!(balance(&app, &new_phone).await, 3 + 10);
    let again = verify(&app, &new_phone, "subscription_basic", "2000000405").await;
    assert_eq!(again.body["status"], "already_processed");
    assert_eq!(balance(&app, &new_phone).await, 13);
}
on_both_backends!(
    #[tokio::test]
    restore,
    a_restored_subscription_moves_without_paying_again
);

/// Refusals that need no store state beyond one answer: each checked on one backend.
#[tokio::test]
async fn only_what_apple_signed_for_this_app_counts() {
    let store = AppStore::start().await;
    let app = app_asking(Backend::Embedded, test_config(), store.settings(BOTH)).await;
    let user = new_user_key();

    // Signed by another key than the chain's leaf.
    let payload = transaction("3000000001", "credit_pack_1", "Production");
    store.answer(
        "prod",
        "3000000001",
        app_store::Answer::Signed(store.chain.forge(&payload)),
    );
    let forged = verify(&app, &user, "credit_pack_1", "3000000001").await;
    assert_eq!(
        (forged.status, reason(&forged)),
        (400, "unverified".into()),
        "{}",
        forged.body
    );

    // For another app.
    let mut other_app = transaction("3000000002", "credit_pack_1", "Production");
    other_app["bundleId"] = json!("com.example.other");
    store.sells(&other_app);
    let answer = verify(&app, &user, "credit_pack_1", "3000000002").await;
    assert_eq!(reason(&answer), "unverified", "{}", answer.body);

    // Bought, but another product than the app claims.
    store.sells(&transaction("3000000003", "credit_pack_1", "Production"));
    let answer = verify(&app, &user, "credit_pack_10", "3000000003").await;
    assert_eq!(reason(&answer), "product_mismatch", "{}", answer.body);

    // Refunded already.
    let mut refunded = transaction("3000000004", "credit_pack_5", "Production");
    refunded["revocationDate"] = json!(chrono::Utc::now().timestamp_millis());
    refunded["revocationReason"] = json!(0);
    store.sells(&refunded);
    let answer = verify(&app, &user, "credit_pack_5", "3000000004").await;
    assert_eq!(reason(&answer), "not_paid", "{}", answer.body);

    // Unknown to both environments.
    let answer = verify(&app, &user, "credit_pack_5", "3000000005").await;
    assert_eq!(reason(&answer), "not_found", "{}", answer.body);
    assert_eq!(
        store.times_asked("3000000005"),
        2,
        "production, then the sandbox"
    );

    // Unsigned environments never count.
    let xcode = transaction("3000000006", "credit_pack_1", "Xcode");
    store.answer(
        "prod",
        "3000000006",
        app_store::Answer::Signed(store.chain.sign(&xcode)),
    );
    let answer = verify(&app, &user, "credit_pack_1", "3000000006").await;
    assert_eq!(reason(&answer), "unverified", "{}", answer.body);

    assert_eq!(balance(&app, &user).await, 3, "nothing was given");
}

#[tokio::test]
async fn a_chain_to_another_root_or_without_apples_markers_is_refused() {
    for (flaws, trusted_other_root) in [
        (ChainFlaws::default(), true),
        (
            ChainFlaws {
                leaf_expired: true,
                ..Default::default()
            },
            false,
        ),
        (
            ChainFlaws {
                intermediate_unmarked: true,
                ..Default::default()
            },
            false,
        ),
    ] {
        let store = AppStore::with_chain(Chain::new(flaws)).await;
        let settings = if trusted_other_root {
            store.settings_trusting(Chain::new(ChainFlaws::default()).root_der, BOTH)
        } else {
            store.settings(BOTH)
        };
        let app = app_asking(Backend::Embedded, test_config(), settings).await;
        let user = new_user_key();
        store.sells(&transaction("4000000001", "credit_pack_1", "Production"));
        let answer = verify(&app, &user, "credit_pack_1", "4000000001").await;
        assert_eq!(
            (answer.status, reason(&answer)),
            (400, "unverified".to_owned()),
            "{}",
            answer.body
        );
    }
}

#[tokio::test]
async fn sandbox_purchases_count_only_where_configured() {
    let store = AppStore::start().await;
    store.sells(&transaction("5000000001", "credit_pack_1", "Sandbox"));
    let production_only = app_asking(
        Backend::Embedded,
        test_config(),
        store.settings(&[StoreEnvironment::Production]),
    )
    .await;
    let user = new_user_key();
    let answer = verify(&production_only, &user, "credit_pack_1", "5000000001").await;
    assert_eq!(reason(&answer), "sandbox_not_allowed", "{}", answer.body);

    let with_sandbox = app_asking(Backend::Embedded, test_config(), store.settings(BOTH)).await;
    let answer = verify(&with_sandbox, &user, "credit_pack_1", "5000000001").await;
    assert_eq!(answer.body["status"], "verified", "{}", answer.body);
}

#[tokio::test]
async fn a_busy_app_store_is_asked_again_then_answered_as_unavailable() {
    let store = AppStore::start().await;
    let app = app_asking(Backend::Embedded, test_config(), store.settings(BOTH)).await;
    let user = new_user_key();
    store.answer(
        "prod",
        "6000000001",
        app_store::Answer::Status(503, json!({})),
    );
    let answer = verify(&app, &user, "credit_pack_1", "6000000001").await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(answer.code(), "SERVICE_UNAVAILABLE");
    assert_eq!(
        store.times_asked("6000000001"),
        3,
        "asked, then twice again"
    );
    // A malformed answer is the store's fault too, never a grant.
    store.answer(
        "prod",
        "6000000002",
        app_store::Answer::Status(200, json!({"nope": 1})),
    );
    let answer = verify(&app, &user, "credit_pack_1", "6000000002").await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    assert_eq!(balance(&app, &user).await, 3);
}

#[tokio::test]
async fn requests_the_app_store_cannot_answer_are_refused_first() {
    let app = TestApp::new(Backend::Embedded).await;
    let user = new_user_key();
    // No store configured: refused, never trusted.
    let answer = verify(&app, &user, "credit_pack_1", "7000000001").await;
    assert_eq!(
        (answer.status, reason(&answer)),
        (400, "store_not_configured".into())
    );
    let unknown = verify(&app, &user, "credit_pack_99", "7000000001").await;
    assert_eq!(reason(&unknown), "unknown_product");
    assert_eq!(
        unknown.body["error"]["details"]["supported"][0],
        "credit_pack_1"
    );
    let blank = verify(&app, &user, "credit_pack_1", "   ").await;
    assert_eq!(blank.status, 400);
    assert_eq!(blank.body["detail"], "transaction_id는 공백일 수 없습니다.");
    let google = app
        .post_json(
            "/v1/iap/verify",
            &user,
            &json!({"platform": "google", "product_id": "credit_pack_1", "transaction_id": "GPA.1"}),
            &[],
        )
        .await;
    assert_eq!(google.status, 400, "{}", google.body);
    let wrong_platform = app
        .post_json(
            "/v1/iap/verify",
            &user,
            &json!({"platform": "amazon", "product_id": "credit_pack_1", "transaction_id": "1"}),
            &[],
        )
        .await;
    assert_eq!(wrong_platform.status, 422);
    let too_long = verify(&app, &user, "credit_pack_1", &"9".repeat(201)).await;
    assert_eq!(too_long.status, 422);
}
