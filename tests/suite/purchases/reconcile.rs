//! The scheduled reconcile: a store plan past its period end is read again from its store, for
//! a notification that never came. What the store signed decides: a renewal pays once, a grace
//! period extends the plan, a lapse ends it; a store that cannot be asked changes nothing.

use super::app_store::{AppStore, renewal_in_grace, subscription};
use super::google_play::{self, GooglePlay};
use super::{BOTH, app_asking, app_with_stores, balance, verify};
use crate::harness::{Backend, TestApp, new_user_key, test_config};
use crate::on_both_backends;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use chrono::{Duration, Utc};
use serde_json::{Value, json};
use storybook_aws::events::scheduled_reconcile;

/// The scheduled event (the fixture Lambda is given), fired `days` from now.
async fn reconcile_at(app: &TestApp, days: i64) -> Value {
    let mut event: EventBridgeEvent =
        serde_json::from_str(include_str!("../../fixtures/scheduled-event.json")).unwrap();
    event.time = Some(Utc::now() + Duration::days(days));
    scheduled_reconcile(&app.state.app, event).await.unwrap()
}

async fn plan_of(app: &TestApp, user: &str) -> Value {
    app.get("/v1/credits/status", user).await.body["subscription"].clone()
}

fn period_end(plan: &Value) -> chrono::DateTime<Utc> {
    plan["current_period_end"]
        .as_str()
        .and_then(|end| chrono::DateTime::parse_from_rfc3339(end).ok())
        .unwrap_or_else(|| panic!("no period end in {plan}"))
        .with_timezone(&Utc)
}

async fn app_store_plans_follow_what_apple_signed(backend: Backend) {
    let store = AppStore::start().await;
    let app = app_asking(backend, test_config(), store.settings(BOTH)).await;
    let user = new_user_key();
    let first = subscription("9300000001", "9300000001", "subscription_basic", 30);
    store.sells(&first);
    verify(&app, &user, "subscription_basic", "9300000001").await;
    assert_eq!(balance(&app, &user).await, 3 + 10);

    // Within its period: not read.
    assert_eq!(
        reconcile_at(&app, 29).await,
        json!({"read": 0, "unavailable": 0, "unknown": 0})
    );

    // Past it, the store down: nothing changes, and the plan is read again next time.
    store.answer(
        "prod",
        "subscriptions/9300000001",
        super::app_store::Answer::Status(503, json!({})),
    );
    assert_eq!(
        reconcile_at(&app, 31).await,
        json!({"read": 0, "unavailable": 1, "unknown": 0})
    );
    assert_eq!(balance(&app, &user).await, 13);

    // Renewed at the store, no notification came: the renewal pays once.
    let renewal = subscription("9300000002", "9300000001", "subscription_basic", 60);
    store.subscription_status(&renewal, None, 1);
    assert_eq!(
        reconcile_at(&app, 31).await,
        json!({"read": 1, "unavailable": 0, "unknown": 0})
    );
    assert_eq!(balance(&app, &user).await, 3 + 20);
    let plan = plan_of(&app, &user).await;
    assert_eq!(plan["status"], "active");
    assert!(
        period_end(&plan) > Utc::now() + Duration::days(59),
        "{plan}"
    );
    assert_eq!(reconcile_at(&app, 31).await["read"], 0, "no longer due");

    // Billing failed; Apple retries in a grace period: the plan lasts to its end, unpaid.
    let grace = renewal_in_grace("9300000001", "subscription_basic", 65);
    store.subscription_status(&renewal, Some(&grace), 4);
    assert_eq!(reconcile_at(&app, 61).await["read"], 1);
    let plan = plan_of(&app, &user).await;
    assert!(
        period_end(&plan) > Utc::now() + Duration::days(64),
        "{plan}"
    );
    assert_eq!(balance(&app, &user).await, 23);

    // Lapsed: Apple's unsigned status says active, what it signed says expired. The plan ends.
    store.subscription_status(&renewal, Some(&grace), 1);
    assert_eq!(reconcile_at(&app, 66).await["read"], 1);
    assert_eq!(plan_of(&app, &user).await, Value::Null);
    assert_eq!(balance(&app, &user).await, 23, "credits paid stay");
    assert_eq!(
        reconcile_at(&app, 66).await["read"],
        0,
        "an ended plan is not read"
    );
    assert_eq!(
        store.times_asked("subscriptions/9300000001"),
        3 + 3,
        "read only when due (the 503 three times: two retries)"
    );
}
on_both_backends!(
    #[tokio::test]
    app_store_reconcile,
    app_store_plans_follow_what_apple_signed
);

async fn google_play_plans_are_read_again_by_their_token(backend: Backend) {
    let play = GooglePlay::start().await;
    let app = app_with_stores(backend, test_config(), play.settings(BOTH)).await;
    let user = new_user_key();
    play.acknowledges("subscription_premium").await;
    let active = "SUBSCRIPTION_STATE_ACTIVE";
    play.knows(
        "subscriptionsv2",
        "tok-plan",
        google_play::subscription("GPA.3400-0000-0001", "subscription_premium", active, 30),
    )
    .await;
    let bought = google_play::verify(
        &app,
        &user,
        "subscription_premium",
        "GPA.3400-0000-0001",
        "tok-plan",
    )
    .await;
    assert_eq!(bought.body["status"], "verified", "{}", bought.body);
    assert_eq!(balance(&app, &user).await, 3 + 30);

    // Renewed (Google's renewal order is the first order with `..0`): paid once.
    play.knows(
        "subscriptionsv2",
        "tok-plan",
        google_play::subscription("GPA.3400-0000-0001..0", "subscription_premium", active, 60),
    )
    .await;
    assert_eq!(reconcile_at(&app, 31).await["read"], 1);
    assert_eq!(reconcile_at(&app, 31).await["read"], 0);
    assert_eq!(balance(&app, &user).await, 3 + 60);

    // On hold past its period: ended.
    play.knows(
        "subscriptionsv2",
        "tok-plan",
        google_play::subscription(
            "GPA.3400-0000-0001..0",
            "subscription_premium",
            "SUBSCRIPTION_STATE_ON_HOLD",
            60,
        ),
    )
    .await;
    assert_eq!(reconcile_at(&app, 62).await["read"], 1);
    assert_eq!(plan_of(&app, &user).await, Value::Null);
    assert_eq!(balance(&app, &user).await, 63);
}
on_both_backends!(
    #[tokio::test]
    google_play_reconcile,
    google_play_plans_are_read_again_by_their_token
);

#[tokio::test]
async fn a_plan_its_store_does_not_know_is_left_then_ended_after_a_month() {
    let store = AppStore::start().await;
    let app = app_asking(Backend::Embedded, test_config(), store.settings(BOTH)).await;
    let user = new_user_key();
    store.sells(&subscription(
        "9600000001",
        "9600000001",
        "subscription_basic",
        30,
    ));
    verify(&app, &user, "subscription_basic", "9600000001").await;
    // The App Store answers 4040005 for it (a store misconfigured would for every plan).
    assert_eq!(
        reconcile_at(&app, 31).await,
        json!({"read": 0, "unavailable": 0, "unknown": 1})
    );
    assert_eq!(
        reconcile_at(&app, 59).await["unknown"],
        1,
        "left while it may be ours"
    );
    assert_eq!(reconcile_at(&app, 61).await["read"], 1, "a month on, ended");
    assert_eq!(
        reconcile_at(&app, 61).await,
        json!({"read": 0, "unavailable": 0, "unknown": 0}),
        "and no longer due"
    );
    assert_eq!(balance(&app, &user).await, 13, "credits paid stay");
}
