//! The daily story and the reading report on both stores, on a manual clock: the day's theme
//! and topic in the parent's own time zone (Seoul without one), today's story made a book and
//! found again (never another family's or another profile's), and the report's fields.

use crate::books::poll;
use crate::harness::{Answer, Backend, BookAsk, TestApp, new_user_key, test_config};
use crate::on_both_backends;
use http::Method;
use serde_json::{Value, json};
use storybook_core::clock::Clock;

async fn today(app: &TestApp, headers: &[(&str, &str)]) -> Value {
    let answer = app
        .call(Method::GET, "/v1/streak/today", headers, None)
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

async fn generate(app: &TestApp, user: &str, profile: Option<&str>) -> Answer {
    let mut headers = vec![];
    headers.extend(profile.map(|p| ("x-profile-id", p)));
    app.post_json(
        "/v1/streak/today/generate",
        user,
        &json!({"target_age": "5-7", "style": "watercolor"}),
        &headers,
    )
    .await
}

async fn todays_story_is_each_familys_own(backend: Backend) {
    // 03:00 UTC: noon of 2026-07-07 in Seoul (the 188th day), still 2026-07-06 in Los Angeles.
    let clock = Clock::manual("2026-07-07T03:00:00Z".parse().unwrap());
    let app = TestApp::with_clock(backend, test_config(), clock.clone()).await;
    let themes = app.call(Method::GET, "/v1/streak/themes", &[], None).await;
    assert_eq!(themes.status, 200);
    let themes = themes.body["themes"].as_array().unwrap().clone();
    assert_eq!(themes.len(), 7);
    assert!(
        themes
            .iter()
            .all(|t| t["topics"].as_array().unwrap().len() == 4)
    );

    let anyone = today(&app, &[]).await;
    assert_eq!(
        anyone["date"], "2026-07-06T15:00:00",
        "Seoul's midnight in UTC"
    );
    assert_eq!(anyone["theme"], "imagination");
    assert_eq!(anyone["theme_name"], "상상");
    assert_eq!(anyone["topic_id"], "imagination_0");
    assert_eq!(anyone["topic"], themes[6]["topics"][0]);
    assert_eq!(anyone["book_id"], Value::Null);
    assert_eq!(
        today(&app, &[("x-user-key", "not a key")]).await,
        anyone,
        "ignored"
    );

    let parent = new_user_key();
    let zone = app
        .call(
            Method::PATCH,
            "/v1/settings",
            &[("x-user-key", &parent)],
            Some(&json!({"timezone": "America/Los_Angeles"}).to_string()),
        )
        .await;
    assert_eq!(zone.status, 200, "{}", zone.body);
    let theirs = today(&app, &[("x-user-key", &parent)]).await;
    assert_eq!(
        theirs["date"], "2026-07-06T07:00:00",
        "Los Angeles' midnight in UTC"
    );
    assert_eq!(theirs["topic_id"], "growth_3", "the 187th day");

    // Made a book: charged as one, polled like one, then today's story's book.
    let profile = app
        .post_json("/v1/profiles", &parent, &json!({"name": "Mina"}), &[])
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = app.get("/v1/credits/balance", &parent).await.body["credits"]
        .as_i64()
        .unwrap();
    let made = generate(&app, &parent, Some(&profile)).await;
    assert_eq!(made.status, 200, "{}", made.body);
    assert_eq!(made.body["status"], "queued");
    let job = made.body["job_id"].as_str().unwrap().to_owned();
    let after = app.get("/v1/credits/balance", &parent).await.body["credits"]
        .as_i64()
        .unwrap();
    assert_eq!(
        before - after,
        app.state.config.book_price(8),
        "charged as a book"
    );
    let stored = app.book(&job).await;
    assert_eq!(stored.request.theme.as_deref(), Some("성장"));
    assert_eq!(
        stored.request.topic.as_str(),
        theirs["topic"].as_str().unwrap()
    );
    assert_eq!(stored.profile.as_deref(), Some(profile.as_str()));

    assert_eq!(
        today(&app, &[("x-user-key", &parent)]).await["book_id"],
        Value::Null,
        "not finished yet"
    );
    let worker = app.start_worker();
    let done = poll(&app, &parent, &job, crate::books::PATIENCE).await;
    worker.abort();
    assert_eq!(done.body["status"], "done", "{}", done.body);
    assert_eq!(
        today(&app, &[("x-user-key", &parent)]).await["book_id"],
        job
    );
    assert_eq!(
        today(&app, &[("x-user-key", &parent), ("x-profile-id", &profile)]).await["book_id"],
        job
    );
    assert_eq!(
        today(
            &app,
            &[("x-user-key", &parent), ("x-profile-id", "profile_other")]
        )
        .await["book_id"],
        Value::Null,
        "another profile's day"
    );
    let stranger = new_user_key();
    app.get("/v1/credits/balance", &stranger).await;
    assert_eq!(
        today(&app, &[("x-user-key", &stranger)]).await["book_id"],
        Value::Null
    );

    // The next local day has its own story and no book yet.
    clock.set("2026-07-07T08:00:00Z".parse().unwrap());
    let tomorrow = today(&app, &[("x-user-key", &parent)]).await;
    assert_eq!(tomorrow["topic_id"], "imagination_0");
    assert_eq!(tomorrow["book_id"], Value::Null);

    let foreign = generate(&app, &parent, Some("profile_20260101_deadbeef")).await;
    assert_eq!(foreign.status, 400, "{}", foreign.body);
    let bad = app
        .post_json(
            "/v1/streak/today/generate",
            &parent,
            &json!({"target_age": "9-99", "style": "watercolor"}),
            &[],
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
}
on_both_backends!(
    #[tokio::test]
    todays_story,
    todays_story_is_each_familys_own
);

async fn the_report_counts_the_periods_reading(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    let mut ask = BookAsk::korean(4).json();
    ask["theme"] = json!("모험");
    let made = app.post_json("/v1/books", &user, &ask, &[]).await;
    let job = made.body["job_id"].as_str().unwrap().to_owned();
    let worker = app.start_worker();
    let done = poll(&app, &user, &job, crate::books::PATIENCE).await;
    worker.abort();
    assert_eq!(done.body["status"], "done", "{}", done.body);
    let read = app
        .post_json(
            "/v1/streak/read",
            &user,
            &json!({"book_id": job, "reading_time": 600, "completed": true}),
            &[],
        )
        .await;
    assert_eq!(read.status, 200, "{}", read.body);
    let report = app.get("/v1/streak/report", &user).await;
    assert_eq!(report.status, 200, "{}", report.body);
    let report = report.body;
    assert_eq!(report["period"], "weekly");
    assert_eq!(report["period_days"], 7);
    assert!(report["total_reading_minutes"].as_u64().unwrap() >= 10);
    assert_eq!(report["preferred_theme"], "모험");
    assert_eq!(report["total_books_read"], 1);
    assert_eq!(report["total_sessions"], 1);
    assert_eq!(report["average_reading_minutes"], 10.0);
    assert_eq!(report["streak"]["current"], 1);
    assert_eq!(report["streak"]["read_today"], true);
    assert_eq!(report["learning_progress"]["completion_rate"], 100.0);
    let days = report["daily_breakdown"].as_array().unwrap();
    assert_eq!(days.len(), 7);
    assert_eq!(days[6]["date"], report["to_date"]);
    assert_eq!(days[6]["minutes"], 10);
    assert_eq!(days[0]["sessions"], 0);

    let monthly = app.get("/v1/streak/report?period=monthly", &user).await;
    assert_eq!(
        monthly.body["daily_breakdown"].as_array().unwrap().len(),
        30
    );
    assert_eq!(
        app.get("/v1/streak/report?period=yearly", &user)
            .await
            .status,
        422
    );
    // Another profile read nothing.
    let profile = app
        .post_json("/v1/profiles", &user, &json!({"name": "Jun"}), &[])
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let scoped = app
        .call(
            Method::GET,
            "/v1/streak/report",
            &[("x-user-key", &user), ("x-profile-id", &profile)],
            None,
        )
        .await;
    assert_eq!(scoped.body["total_sessions"], 0, "{}", scoped.body);
    assert_eq!(scoped.body["preferred_theme"], Value::Null);
}
on_both_backends!(
    #[tokio::test]
    reading_report,
    the_report_counts_the_periods_reading
);
