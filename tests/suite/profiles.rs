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

/// A call of `user`'s, scoped to `profile` when one is given.
async fn scoped(
    app: &TestApp,
    method: Method,
    path: &str,
    user: &str,
    profile: Option<&str>,
    body: Option<Value>,
) -> Answer {
    let mut headers = vec![("x-user-key", user), ("content-type", "application/json")];
    if let Some(profile) = profile {
        headers.push(("x-profile-id", profile));
    }
    let body = body.map(|b| b.to_string());
    app.call(method, path, &headers, body.as_deref()).await
}

fn ids_of(library: &Answer) -> Vec<String> {
    let mut ids: Vec<String> = library.body["books"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", library.body))
        .iter()
        .map(|b| b["book_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// The contract's scope table route by route: a book made under profile A is refused to B's
/// header and to an unknown profile, seen by A and by the whole account; the library, the
/// streak and the sessions are the profile's; a deleted profile's books stay account-wide.
async fn x_profile_id_scopes_books_library_and_streaks(backend: Backend) {
    use crate::harness::BookAsk;
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    let a = create(&app, &user, json!({"name": "A"})).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = create(&app, &user, json!({"name": "B"})).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ask = BookAsk::korean(4).json();
    let start = |profile: Option<&'static str>, key: &'static str| {
        let (app, user, ask) = (&app, user.clone(), ask.clone());
        async move {
            let mut headers = vec![("x-idempotency-key", key)];
            headers.extend(profile.map(|p| ("x-profile-id", p)));
            app.post_json("/v1/books", &user, &ask, &headers).await
        }
    };
    let a_static: &'static str = Box::leak(a.clone().into_boxed_str());
    let b_static: &'static str = Box::leak(b.clone().into_boxed_str());
    // Writes under a profile not the account's, or a malformed header, are refused.
    let foreign = start(Some("profile_20260101_deadbeef"), "k-foreign").await;
    assert_eq!(foreign.status, 400, "{}", foreign.body);
    assert_eq!(foreign.body["error"]["code"], "VALIDATION_ERROR");
    let malformed = start(Some("not a profile!"), "k-bad").await;
    assert_eq!(malformed.status, 400, "{}", malformed.body);
    assert_eq!(malformed.body["error"]["code"], "BAD_REQUEST");

    let of_a = start(Some(a_static), "k-a").await;
    assert_eq!(of_a.status, 200, "{}", of_a.body);
    let of_a = of_a.body["job_id"].as_str().unwrap().to_owned();
    let of_all = start(None, "k-all").await;
    let of_all = of_all.body["job_id"].as_str().unwrap().to_owned();
    // The key's book answers only under its own profile.
    let replay = start(Some(b_static), "k-a").await;
    assert_eq!(replay.status, 403, "{}", replay.body);

    let worker = app.start_worker();
    for job in [&of_a, &of_all] {
        let done = crate::books::poll(&app, &user, job, crate::books::PATIENCE).await;
        assert_eq!(done.body["status"], "done", "{}", done.body);
    }
    worker.abort();

    let status = |job: &str, profile: Option<&str>| {
        let (path, profile) = (format!("/v1/books/{job}"), profile.map(str::to_owned));
        let (app, user) = (&app, user.clone());
        async move { scoped(app, Method::GET, &path, &user, profile.as_deref(), None).await }
    };
    assert_eq!(status(&of_a, Some(&a)).await.status, 200);
    assert_eq!(status(&of_a, None).await.status, 200, "the whole account");
    let refused = status(&of_a, Some(&b)).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.body["error"]["code"], "FORBIDDEN");
    assert_eq!(
        status(&of_all, Some(&a)).await.status,
        403,
        "an account-wide book is no profile's"
    );
    for path in [
        format!("/v1/books/{of_a}/detail"),
        format!("/v1/books/{of_a}/pdf"),
        format!("/v1/books/{of_a}/pages/1/audio"),
    ] {
        let answer = scoped(&app, Method::GET, &path, &user, Some(&b), None).await;
        assert_eq!(answer.status, 403, "{path}: {}", answer.body);
        let answer = scoped(&app, Method::GET, &path, &user, Some(&a), None).await;
        assert_ne!(answer.status, 403, "{path}: {}", answer.body);
    }
    let regenerate = scoped(
        &app,
        Method::POST,
        &format!("/v1/books/{of_a}/pages/1/regenerate"),
        &user,
        Some(&b),
        Some(json!({"mode": "image"})),
    )
    .await;
    assert_eq!(regenerate.status, 403, "{}", regenerate.body);

    let library = |profile: Option<String>| {
        let (app, user) = (&app, user.clone());
        async move {
            scoped(
                app,
                Method::GET,
                "/v1/library",
                &user,
                profile.as_deref(),
                None,
            )
            .await
        }
    };
    let mut both = vec![of_a.clone(), of_all.clone()];
    both.sort();
    assert_eq!(ids_of(&library(None).await), both);
    assert_eq!(ids_of(&library(Some(a.clone())).await), vec![of_a.clone()]);
    assert_eq!(
        ids_of(&library(Some(b.clone())).await),
        Vec::<String>::new()
    );
    let rename = scoped(
        &app,
        Method::PATCH,
        &format!("/v1/library/{of_a}"),
        &user,
        Some(&b),
        Some(json!({"title": "Mine now"})),
    )
    .await;
    assert_eq!(rename.status, 403, "{}", rename.body);
    let delete = scoped(
        &app,
        Method::DELETE,
        &format!("/v1/library/{of_a}"),
        &user,
        Some(&b),
        None,
    )
    .await;
    assert_eq!(delete.status, 403, "{}", delete.body);

    // A read under A moves A's streak and the account's, not B's.
    let read = scoped(
        &app,
        Method::POST,
        "/v1/streak/read",
        &user,
        Some(&a),
        Some(json!({"book_id": of_all, "reading_time": 120, "completed": true})),
    )
    .await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body["current_streak"], 1);
    let info = |profile: Option<String>| {
        let (app, user) = (&app, user.clone());
        async move {
            let answer = scoped(
                app,
                Method::GET,
                "/v1/streak/info",
                &user,
                profile.as_deref(),
                None,
            )
            .await;
            assert_eq!(answer.status, 200, "{}", answer.body);
            answer.body
        }
    };
    assert_eq!(info(Some(a.clone())).await["current_streak"], 1);
    assert_eq!(info(Some(b.clone())).await["current_streak"], 0);
    assert_eq!(info(None).await["current_streak"], 1);
    let history = |profile: Option<String>| {
        let (app, user) = (&app, user.clone());
        async move {
            let answer = scoped(
                app,
                Method::GET,
                "/v1/streak/history?days=7",
                &user,
                profile.as_deref(),
                None,
            )
            .await;
            answer.body["total_sessions"].as_u64().unwrap()
        }
    };
    assert_eq!(history(Some(a.clone())).await, 1);
    assert_eq!(history(Some(b.clone())).await, 0);
    assert_eq!(history(None).await, 1);

    // A deleted profile's book stays in the whole account's library.
    let deleted = scoped(
        &app,
        Method::DELETE,
        &format!("/v1/profiles/{a}"),
        &user,
        None,
        None,
    )
    .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(ids_of(&library(None).await), both);
    assert_eq!(
        library(Some(a.clone())).await.status,
        400,
        "no longer the account's"
    );
}
on_both_backends!(
    #[tokio::test]
    profile_scope,
    x_profile_id_scopes_books_library_and_streaks
);
