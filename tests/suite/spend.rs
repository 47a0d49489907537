//! Bounded spend on both backends: the store's sums under concurrency, the hard limit and the
//! kill switch at the API and before a worker's provider call, and the admin's spend report.

use crate::books::{poll, start_book};
use crate::harness::BookAsk;
use crate::harness::{Answer, Backend, TestApp, new_user_key, test_config};
use crate::on_both_backends;
use futures::future::join_all;
use http::Method;
use std::sync::Arc;
use std::time::Duration;
use storybook_core::clock::Clock;
use storybook_core::config::Config;
use storybook_core::domain::book::{BookId, JobState, Step};
use storybook_core::domain::spend::Usage;
use storybook_core::domain::spend::{
    Microdollars, PriceTable, SpendCharge, SpendLimits, WhenStopped, spend_day,
};
use storybook_core::ports::queue::StepMessage;
use storybook_core::spend::SpendGuard;
use storybook_pipeline::pipeline::StepError;

/// Offline pictures priced at 4 cents each and narration at 1.5 cents per thousand characters,
/// so that an offline book costs something.
fn priced_offline() -> Arc<PriceTable> {
    Arc::new(
        PriceTable::with_overrides(
            r#"{"images": {"offline": {"*": 0.04}}, "speech": {"offline": 0.015},
                "text": {"offline": {"input_per_million": 1.0, "output_per_million": 2.0}}}"#,
        )
        .unwrap(),
    )
}

fn settings_with(limits: SpendLimits) -> Config {
    Config {
        spend: limits,
        prices: priced_offline(),
        ..test_config()
    }
}

/// An alert at 50 cents and a hard limit at one dollar a day.
fn one_dollar_a_day(when_stopped: WhenStopped) -> SpendLimits {
    SpendLimits {
        alert: dollars(0.5),
        hard_limit: dollars(1.0),
        when_stopped,
    }
}

fn dollars(usd: f64) -> Microdollars {
    Microdollars::from_usd(usd).unwrap()
}

async fn admin(app: &TestApp, method: Method, path: &str, body: Option<&str>) -> Answer {
    app.call(method, path, &[("x-api-key", &app.admin_key)], body)
        .await
}

fn story_step(job: &str) -> String {
    serde_json::to_string(&StepMessage::new(BookId::parse(job).unwrap(), Step::Story)).unwrap()
}

async fn concurrent_adds_sum_exactly(backend: Backend) {
    let app = TestApp::new(backend).await;
    let store = app.state.store.clone();
    let day = spend_day(chrono::Utc::now()).0;
    let books: Vec<BookId> = (0..5).map(|_| BookId::generate()).collect();
    let adds = join_all((0..50u64).map(|i| {
        let store = store.clone();
        let charge = SpendCharge {
            day,
            book: books[(i % 5) as usize].clone(),
            cost: Microdollars(1_000 + i),
        };
        tokio::spawn(async move { store.add_spend(&charge).await.unwrap() })
    }))
    .await;
    let expected: u64 = (0..50).map(|i| 1_000 + i).sum();
    // Each add answers the total after it: fifty different totals, the largest the sum.
    let mut totals: Vec<u64> = adds.into_iter().map(|t| t.unwrap().0).collect();
    totals.sort_unstable();
    totals.dedup();
    assert_eq!(totals.len(), 50, "every add saw its own total");
    assert_eq!(*totals.last().unwrap(), expected);
    let spend = store.day_spend(day).await.unwrap();
    assert_eq!((spend.total, spend.calls), (Microdollars(expected), 50));
    assert_eq!(store.spent_on(day).await.unwrap(), Microdollars(expected));
    // The per-book records add up to the day, and each book's whole cost to its records.
    assert_eq!(spend.books.len(), 5);
    let by_books: u64 = spend.books.iter().map(|b| b.cost.0).sum();
    assert_eq!(by_books, expected);
    for record in &spend.books {
        let (cost, calls) = store
            .book_cost(&BookId::parse(&record.book).unwrap())
            .await
            .unwrap();
        assert_eq!((cost, calls), (record.cost, record.calls));
        assert_eq!(calls, 10);
    }
    assert!(spend.books.windows(2).all(|w| w[0].cost >= w[1].cost));
    // Counting a finished book is once, with its whole cost.
    let first = &books[0];
    let (cost, _) = store.book_cost(first).await.unwrap();
    assert!(store.record_finished_book(day, first).await.unwrap());
    assert!(!store.record_finished_book(day, first).await.unwrap());
    let spend = store.day_spend(day).await.unwrap();
    assert_eq!((spend.finished_books, spend.finished_cost), (1, cost));
    assert_eq!(
        spend.total,
        Microdollars(expected),
        "finishing costs nothing"
    );
    // An erased book's spend stays in the day under no book's name.
    store.anonymise_book_spend(&books[1]).await.unwrap();
    let after = store.day_spend(day).await.unwrap();
    assert_eq!((after.total, after.calls), (spend.total, spend.calls));
    assert_eq!(after.books.iter().map(|b| b.cost.0).sum::<u64>(), expected);
    assert!(after.books.iter().all(|b| b.book != books[1].as_str()));
    assert!(
        after
            .books
            .iter()
            .any(|b| b.book == storybook_core::domain::spend::ERASED_BOOK)
    );
    assert_eq!(
        store.book_cost(&books[1]).await.unwrap(),
        (Microdollars::ZERO, 0)
    );
    // Another day is empty.
    let tomorrow = day.succ_opt().unwrap();
    assert_eq!(store.spent_on(tomorrow).await.unwrap(), Microdollars::ZERO);
}
on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    concurrent_adds_sum_exactly,
    concurrent_adds_sum_exactly
);

async fn the_hard_limit_refuses_new_books_and_stops_workers(backend: Backend) {
    let now: chrono::DateTime<chrono::Utc> = "2026-12-01T20:00:00Z".parse().unwrap();
    let limits = one_dollar_a_day(WhenStopped::Wait);
    let app = TestApp::with_clock(backend, settings_with(limits), Clock::manual(now)).await;
    let user = new_user_key();
    // A book admitted while under the limit; its story has not run yet.
    let job = start_book(&app, &user).await;
    let balance = app.get("/v1/credits/balance", &user).await.body["credits"].clone();
    let day = spend_day(now).0;
    app.state
        .store
        .add_spend(&SpendCharge {
            day,
            book: BookId::generate(),
            cost: dollars(1.0),
        })
        .await
        .unwrap();
    let refused = app
        .post_json("/v1/books", &user, &BookAsk::korean(4).json(), &[])
        .await;
    assert_eq!(refused.status, 429, "{}", refused.body);
    assert_eq!(refused.code(), "SERVICE_BUDGET_EXCEEDED");
    assert_eq!(
        refused.headers["retry-after"], "14400",
        "to the next UTC day"
    );
    assert_eq!(refused.body["error"]["details"]["retry_after"], 14400);
    assert_eq!(
        app.get("/v1/credits/balance", &user).await.body["credits"],
        balance,
        "nothing charged"
    );
    // The worker stops before its provider call: no call is made (every call is counted), and
    // the step comes back later without spending a delivery.
    let pipeline = app.pipeline();
    let outcome = pipeline.handle(&story_step(&job), false).await;
    assert!(
        matches!(outcome, Err(StepError::Paused { wait }) if wait <= Duration::from_secs(300)),
        "{outcome:?}"
    );
    let spend = app.state.store.day_spend(day).await.unwrap();
    assert_eq!(spend.calls, 1, "only the charge above: no provider call");
    let book = app.book(&job).await;
    assert_eq!((book.state, book.title), (JobState::Queued, None));
    // The next UTC day, the same step runs and the book is made.
    app.state.clock.set("2026-12-02T00:00:01Z".parse().unwrap());
    let _worker = app.start_worker();
    pipeline.handle(&story_step(&job), false).await.unwrap();
    let finished = poll(&app, &user, &job, crate::books::PATIENCE).await;
    assert_eq!(finished.body["status"], "done", "{}", finished.body);
    let next_day = app
        .state
        .store
        .day_spend(day.succ_opt().unwrap())
        .await
        .unwrap();
    assert!(next_day.calls > 0 && next_day.total > Microdollars::ZERO);
}
on_both_backends!(
    #[tokio::test]
    the_hard_limit_refuses_new_books_and_stops_workers,
    the_hard_limit_refuses_new_books_and_stops_workers
);

async fn a_stopped_book_fails_and_is_refunded_when_so_configured(backend: Backend) {
    let limits = one_dollar_a_day(WhenStopped::Fail);
    let app = TestApp::with_config(backend, settings_with(limits)).await;
    let user = new_user_key();
    let job = start_book(&app, &user).await;
    app.state
        .store
        .add_spend(&SpendCharge {
            day: spend_day(app.state.clock.now()).0,
            book: BookId::generate(),
            cost: dollars(2.0),
        })
        .await
        .unwrap();
    app.pipeline()
        .handle(&story_step(&job), false)
        .await
        .unwrap();
    let status = app.get(&format!("/v1/books/{job}"), &user).await;
    assert_eq!(status.body["status"], "failed");
    assert_eq!(status.body["error"]["code"], "UNKNOWN");
    let book = app.book(&job).await;
    assert!(book.refunded);
    assert_eq!(
        app.get("/v1/credits/balance", &user).await.body["credits"],
        3,
        "the opening credits, refunded"
    );
}
on_both_backends!(
    #[tokio::test]
    a_stopped_book_fails_and_is_refunded_when_so_configured,
    a_stopped_book_fails_and_is_refunded_when_so_configured
);

async fn the_kill_switch_stops_generation_and_is_audited(backend: Backend) {
    let app = TestApp::with_config(backend, settings_with(SpendLimits::default())).await;
    let user = new_user_key();
    let job = start_book(&app, &user).await;
    let unauthorised = app
        .call(
            Method::PUT,
            "/v1/admin/kill-switch",
            &[],
            Some(r#"{"enabled": true}"#),
        )
        .await;
    assert_eq!(unauthorised.status, 401);
    let bad = admin(
        &app,
        Method::PUT,
        "/v1/admin/kill-switch",
        Some(r#"{"on": true}"#),
    )
    .await;
    assert_eq!((bad.status, bad.code()), (422, "VALIDATION_ERROR"));
    let on = admin(
        &app,
        Method::PUT,
        "/v1/admin/kill-switch",
        Some(r#"{"enabled": true, "reason": "provider incident"}"#),
    )
    .await;
    assert_eq!(on.status, 200, "{}", on.body);
    assert_eq!(on.body["enabled"], true);
    assert_eq!(on.body["reason"], "provider incident");
    let refused = app
        .post_json("/v1/books", &user, &BookAsk::korean(4).json(), &[])
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (503, "SERVICE_UNAVAILABLE")
    );
    let outcome = app.pipeline().handle(&story_step(&job), false).await;
    assert!(
        matches!(outcome, Err(StepError::Paused { .. })),
        "{outcome:?}"
    );
    let calls = app
        .state
        .store
        .day_spend(spend_day(app.state.clock.now()).0)
        .await
        .unwrap()
        .calls;
    assert_eq!(calls, 0, "no provider call while switched off");
    let report = admin(&app, Method::GET, "/v1/admin/spend", None).await;
    assert_eq!(report.body["kill_switch"]["enabled"], true);
    let entries = app.state.store.audit_log(50, None).await.unwrap();
    let audited = entries
        .iter()
        .find(|e| e.event.as_str() == "kill_switch_set")
        .expect("the switch is audited");
    assert!(
        audited
            .detail
            .as_deref()
            .unwrap()
            .contains("provider incident")
    );
    let off = admin(
        &app,
        Method::PUT,
        "/v1/admin/kill-switch",
        Some(r#"{"enabled": false}"#),
    )
    .await;
    assert_eq!(off.body["enabled"], false);
    let accepted = app
        .post_json("/v1/books", &user, &BookAsk::korean(4).json(), &[])
        .await;
    assert_eq!(accepted.status, 200, "{}", accepted.body);
}
on_both_backends!(
    #[tokio::test]
    the_kill_switch_stops_generation_and_is_audited,
    the_kill_switch_stops_generation_and_is_audited
);

async fn the_spend_report_adds_up_a_finished_book(backend: Backend) {
    let app = TestApp::with_config(backend, settings_with(SpendLimits::default())).await;
    let _worker = app.start_worker();
    let user = new_user_key();
    let job = start_book(&app, &user).await;
    let done = poll(&app, &user, &job, crate::books::PATIENCE).await;
    assert_eq!(done.body["status"], "done", "{}", done.body);
    let report = admin(&app, Method::GET, "/v1/admin/spend", None).await;
    assert_eq!(report.status, 200, "{}", report.body);
    let body = &report.body;
    // Four pages, a cover and the reference at 4 cents; narration and the story a little more.
    let spent = body["spent_usd"].as_f64().unwrap();
    assert!(spent > 0.24 && spent < 0.30, "{body}");
    assert_eq!(body["books_charged"], 1);
    assert_eq!(body["books"][0]["book_id"], job.as_str());
    assert_eq!(body["books"][0]["spent_usd"], body["spent_usd"]);
    assert_eq!(body["books"][0]["provider_calls"], body["provider_calls"]);
    assert_eq!(body["finished_books"], 1);
    assert_eq!(body["average_finished_book_usd"], body["spent_usd"]);
    assert_eq!(body["alert_threshold_usd"], 100.0);
    assert_eq!(body["hard_limit_usd"], 500.0);
    assert_eq!(body["kill_switch"]["enabled"], false);
    // Calls: moderation of the request and of the story, the story, the reference, five
    // pictures and four narrations.
    assert_eq!(body["provider_calls"], 13, "{body}");
    let old = admin(&app, Method::GET, "/v1/admin/spend?day=2020-01-01", None).await;
    assert_eq!(
        (
            old.body["spent_usd"].as_f64(),
            old.body["resets_in_seconds"].is_null()
        ),
        (Some(0.0), true)
    );
    let bad = admin(&app, Method::GET, "/v1/admin/spend?day=yesterday", None).await;
    assert_eq!((bad.status, bad.code()), (422, "VALIDATION_ERROR"));
}
on_both_backends!(
    #[tokio::test]
    the_spend_report_adds_up_a_finished_book,
    the_spend_report_adds_up_a_finished_book
);

/// Fifty workers racing past the limit: each checks, then makes a 4-cent call. The day ends at
/// the limit plus at most the calls in flight when it was reached.
async fn racing_workers_overshoot_by_at_most_their_calls_in_flight(backend: Backend) {
    let limits = one_dollar_a_day(WhenStopped::Wait);
    let app = TestApp::with_config(backend, settings_with(limits)).await;
    let guard = SpendGuard::new(&app.state);
    // An offline picture: 4 cents in these settings.
    let call = Usage {
        images: 1,
        ..Usage::new("offline", "offline")
    };
    let book = BookId::generate();
    let workers = join_all((0..50).map(|_| {
        let guard = guard.clone();
        let call = call.clone();
        let book = book.clone();
        tokio::spawn(async move {
            let mut made = 0u64;
            // Bounded, so that a guard that never stops fails the test rather than hangs it.
            while made < 100 && guard.stopped().await.unwrap().is_none() {
                guard.record(&book, "illustrate", &call).await.unwrap();
                made += 1;
            }
            made
        })
    }))
    .await;
    let made: u64 = workers.into_iter().map(|w| w.unwrap()).sum();
    let spent = app
        .state
        .store
        .spent_on(spend_day(app.state.clock.now()).0)
        .await
        .unwrap();
    assert_eq!(spent, Microdollars(made * 40_000), "every call counted");
    assert!(spent >= dollars(1.0), "{spent:?}");
    assert!(spent <= dollars(1.0 + 50.0 * 0.04), "{spent:?}");
}
on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    racing_workers_overshoot_by_at_most_their_calls_in_flight,
    racing_workers_overshoot_by_at_most_their_calls_in_flight
);
