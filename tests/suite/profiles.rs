//! A family's child profiles on both stores: the contract's fields and refusals, at most three
//! and exactly one default under twenty racing requests, another account's ids as 404, and
//! erasure taking them.

use crate::harness::{Answer, Backend, TestApp, new_user_key};
use crate::on_both_backends;
use futures::future::join_all;
use http::Method;
use serde_json::{Value, json};
use std::sync::Arc;

async fn create(app: &TestApp, user: &str, body: Value) -> Answer {
    app.post_json("/v1/profiles", user, &body, &[]).await
}

async fn listed(app: &TestApp, user: &str) -> Vec<Value> {
    let answer = app.get("/v1/profiles", user).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["profiles"].as_array().unwrap().clone()
}

async fn change(app: &TestApp, user: &str, id: &str, body: Value) -> Answer {
    app.call(
        Method::PATCH,
        &format!("/v1/profiles/{id}"),
        &[("x-user-key", user), ("content-type", "application/json")],
        Some(&body.to_string()),
    )
    .await
}

async fn profiles_keep_the_contracts_rules(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    assert_eq!(listed(&app, &user).await, Vec::<Value>::new());
    let mina = create(
        &app,
        &user,
        json!({"name": " Mina ", "age_band": "3-5", "birth_year": 2019, "birth_month": 3, "preferred_theme": "  "}),
    )
    .await;
    assert_eq!(mina.status, 200, "{}", mina.body);
    let mina = mina.body;
    assert!(mina["id"].as_str().unwrap().starts_with("profile_"));
    assert_eq!(mina["name"], "Mina");
    assert_eq!(
        mina["age_band"], "7-9",
        "derived from the birth month, the band sent ignored"
    );
    assert_eq!(mina["preferred_theme"], Value::Null, "blank is null");
    assert_eq!(mina["is_default"], true, "the first is the default");
    assert!(mina.get("created_at").is_none());

    let duplicate = create(&app, &user, json!({"name": "mina"})).await;
    assert_eq!(duplicate.status, 409, "{}", duplicate.body);
    let blank = create(&app, &user, json!({"name": "   "})).await;
    assert_eq!(blank.status, 400, "{}", blank.body);
    assert_eq!(blank.body["detail"], "이름은 공백일 수 없습니다.");
    for bad in [
        json!({"name": ""}),
        json!({"name": "x".repeat(41)}),
        json!({"name": "A", "age_band": "2-3"}),
        json!({"name": "A", "birth_year": 1999}),
        json!({"name": "A", "birth_month": 13}),
        json!({}),
    ] {
        assert_eq!(create(&app, &user, bad.clone()).await.status, 422, "{bad}");
    }

    let jun = create(&app, &user, json!({"name": "Jun", "is_default": true}))
        .await
        .body;
    assert_eq!(jun["age_band"], "5-7", "the default band");
    let ara = create(&app, &user, json!({"name": "Ara"})).await.body;
    let fourth = create(&app, &user, json!({"name": "Bo"})).await;
    assert_eq!(fourth.status, 400, "{}", fourth.body);
    let all = listed(&app, &user).await;
    let names: Vec<&str> = all.iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Mina", "Jun", "Ara"], "oldest first");
    let defaults: Vec<&str> = all
        .iter()
        .filter(|p| p["is_default"] == true)
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(defaults, ["Jun"]);
    assert!(all[0]["created_at"].is_string());

    // The default stays until another is made the default.
    let jun_id = jun["id"].as_str().unwrap();
    let refused = change(&app, &user, jun_id, json!({"is_default": false})).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    let ara_id = ara["id"].as_str().unwrap();
    let made = change(
        &app,
        &user,
        ara_id,
        json!({"is_default": true, "birth_year": 2022, "birth_month": 1}),
    )
    .await;
    assert_eq!(made.status, 200, "{}", made.body);
    assert_eq!(made.body["age_band"], "3-5");
    assert_eq!(
        listed(&app, &user)
            .await
            .iter()
            .filter(|p| p["is_default"] == true)
            .count(),
        1
    );

    // Another account's ids are 404, as is an id no one has.
    let stranger = new_user_key();
    assert_eq!(
        change(&app, &stranger, ara_id, json!({"name": "Mine"}))
            .await
            .status,
        404
    );
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/v1/profiles/{ara_id}"),
            &[("x-user-key", &stranger)],
            None,
        )
        .await;
    assert_eq!(deleted.status, 404);

    // Deleting the default makes the oldest left the default.
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/v1/profiles/{ara_id}"),
            &[("x-user-key", &user)],
            None,
        )
        .await;
    assert_eq!(
        deleted.body,
        json!({"status": "success", "profile_id": ara_id})
    );
    let left = listed(&app, &user).await;
    assert_eq!(left.len(), 2);
    assert_eq!(left[0]["is_default"], true);

    // Erasure takes them.
    let erased = app.erase(&user).await;
    assert!(erased.status < 300, "{}", erased.body);
    assert!(
        app.records_holding("Mina").await.is_empty(),
        "no profile is left"
    );
}
on_both_backends!(
    #[tokio::test]
    profile_rules,
    profiles_keep_the_contracts_rules
);

async fn twenty_racing_creations_make_three_profiles_and_one_default(backend: Backend) {
    let app = Arc::new(TestApp::new(backend).await);
    let user = new_user_key();
    listed(&app, &user).await;
    let answers = join_all((0..20).map(|i| {
        let (app, user) = (app.clone(), user.clone());
        tokio::spawn(async move {
            create(
                &app,
                &user,
                json!({"name": format!("Child {i}"), "is_default": i % 2 == 0}),
            )
            .await
        })
    }))
    .await;
    let made = answers
        .into_iter()
        .map(|answer| answer.unwrap())
        .filter(|answer| {
            assert!(
                matches!(answer.status, 200 | 400),
                "{} {}",
                answer.status,
                answer.body
            );
            answer.status == 200
        })
        .count();
    assert_eq!(made, 3);
    let all = listed(&app, &user).await;
    assert_eq!(all.len(), 3);
    assert_eq!(all.iter().filter(|p| p["is_default"] == true).count(), 1);
}
on_both_backends!(
    #[tokio::test]
    racing_profiles,
    twenty_racing_creations_make_three_profiles_and_one_default
);
