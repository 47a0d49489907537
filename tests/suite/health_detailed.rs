//! The operator's detailed health on both stores: admin key only, always 200, each dependency,
//! the jobs by state and the last hour's outcomes from their counters, stuck books, and
//! `degraded` while generation is stopped; no secret or error text in it.

use crate::harness::{Backend, BookAsk, TestApp, new_user_key, test_config};
use crate::on_both_backends;
use chrono::{Duration, Utc};
use http::Method;
use serde_json::Value;
use storybook_core::book_records::fail_book;
use storybook_core::clock::Clock;
use storybook_core::domain::book::BookId;
use storybook_core::domain::failure::FailureCode;

async fn detailed(app: &TestApp, admin_key: &str) -> (u16, Value) {
    let answer = app
        .call(
            Method::GET,
            "/health/detailed",
            &[("x-admin-key", admin_key)],
            None,
        )
        .await;
    (answer.status, answer.body)
}

async fn the_detailed_health_counts_jobs_for_an_admin(backend: Backend) {
    let now = Utc::now();
    let clock = Clock::manual(now);
    let app = TestApp::with_clock(backend, test_config(), clock.clone()).await;
    let user = new_user_key();
    for refused in [
        app.call(Method::GET, "/health/detailed", &[], None).await,
        app.call(
            Method::GET,
            "/health/detailed",
            &[("x-admin-key", "sbk_live_wrong")],
            None,
        )
        .await,
        app.call(
            Method::GET,
            "/health/detailed",
            &[("x-user-key", &user)],
            None,
        )
        .await,
    ] {
        assert_eq!(refused.status, 403, "{}", refused.body);
        assert_eq!(refused.code(), "FORBIDDEN");
    }

    let (status, body) = detailed(&app, &app.admin_key).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "healthy", "{body}");
    for service in ["store", "queue", "blobs"] {
        assert_eq!(body["services"][service], "healthy", "{body}");
    }
    assert_eq!(body["providers"]["story"], "offline");
    assert_eq!(body["jobs"]["queued"], 0);
    assert_eq!(body["jobs"]["success_rate"], 100.0, "no jobs");

    // Three books: one made to the end, one failed, one left waiting.
    let start = |key: &'static str| {
        let (app, user) = (&app, user.clone());
        async move {
            let made = app
                .post_json(
                    "/v1/books",
                    &user,
                    &BookAsk::korean(4).json(),
                    &[("x-idempotency-key", key)],
                )
                .await;
            assert_eq!(made.status, 200, "{}", made.body);
            made.body["job_id"].as_str().unwrap().to_owned()
        }
    };
    let finished = start("k-done").await;
    let worker = app.start_worker();
    let done = crate::books::poll(&app, &user, &finished, crate::books::PATIENCE).await;
    worker.abort();
    assert_eq!(done.body["status"], "done", "{}", done.body);
    let failed = start("k-failed").await;
    fail_book(
        &*app.state.store,
        clock.now(),
        &BookId::parse(&failed).unwrap(),
        FailureCode::Unknown,
        None,
    )
    .await
    .unwrap();
    let waiting = start("k-waiting").await;
    assert_eq!(app.book(&waiting).await.state.as_str(), "queued");

    let (_, body) = detailed(&app, &app.admin_key).await;
    let jobs = &body["jobs"];
    assert_eq!(jobs["queued"], 1, "{body}");
    assert_eq!(jobs["running"], 0, "{body}");
    assert_eq!(jobs["stuck"], 0, "{body}");
    assert_eq!(jobs["completed_last_hour"], 1, "{body}");
    assert_eq!(jobs["failed_last_hour"], 1, "{body}");
    assert_eq!(jobs["success_rate"], 50.0);

    // Sixteen minutes on, the waiting book is stuck; seventy, the outcomes are past the hour.
    clock.set(now + Duration::minutes(16));
    assert_eq!(detailed(&app, &app.admin_key).await.1["jobs"]["stuck"], 1);
    clock.set(now + Duration::minutes(70));
    let (_, body) = detailed(&app, &app.admin_key).await;
    assert_eq!(body["jobs"]["completed_last_hour"], 0, "{body}");
    assert_eq!(body["jobs"]["failed_last_hour"], 0, "{body}");

    // Stopped generation is degraded, still 200.
    storybook_core::spend::SpendGuard::new(&app.state)
        .switch(true, "maintenance", "ops")
        .await
        .unwrap();
    let (status, body) = detailed(&app, &app.admin_key).await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "degraded");
    assert_eq!(body["kill_switch"]["on"], true);
    assert!(
        body["warnings"]
            .as_array()
            .unwrap()
            .contains(&"kill_switch_on".into())
    );
    let text = body.to_string();
    assert!(
        !text.contains(&app.admin_key) && !text.contains("sbk_"),
        "{text}"
    );
}
on_both_backends!(
    #[tokio::test]
    detailed_health,
    the_detailed_health_counts_jobs_for_an_admin
);
