//! Settings and reading streaks through the API, on a manual clock: local days in two time zones,
//! midnight, daylight-saving changes, concurrent reads and milestone rewards.

use crate::books::{finished_book, start_book};
use crate::harness::BookAsk;
use crate::harness::{Backend, TestApp, new_user_key, test_config, whole_ledger};
use crate::on_both_backends;
use futures::future::join_all;
use http::Method;
use serde_json::{Value, json};
use storybook_core::clock::Clock;
use storybook_core::domain::credits::ledger_reconciles;

fn at(raw: &str) -> chrono::DateTime<chrono::Utc> {
    raw.parse().unwrap()
}

async fn app_at(backend: Backend, now: &str) -> (TestApp, Clock) {
    let clock = Clock::manual(at(now));
    let app = TestApp::with_clock(backend, test_config(), clock.clone()).await;
    (app, clock)
}

/// A new user in `zone` (or the default) with one finished book to read.
async fn reader(app: &TestApp, zone: Option<&str>) -> (String, String) {
    let user = new_user_key();
    if let Some(zone) = zone {
        let answer = patch_settings(app, &user, &json!({"timezone": zone})).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["timezone"], zone);
    }
    let book = finished_book(app, &user).await;
    (user, book)
}

async fn patch_settings(app: &TestApp, user: &str, body: &Value) -> crate::harness::Answer {
    app.call(
        Method::PATCH,
        "/v1/settings",
        &[("x-user-key", user)],
        Some(&body.to_string()),
    )
    .await
}

async fn read(app: &TestApp, user: &str, book: &str) -> Value {
    let answer = app
        .post_json(
            "/v1/streak/read",
            user,
            &json!({"book_id": book, "reading_time": 300, "completed": true}),
            &[],
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

async fn read_at(app: &TestApp, clock: &Clock, now: &str, user: &str, book: &str) -> Value {
    clock.set(at(now));
    read(app, user, book).await
}

async fn info(app: &TestApp, user: &str) -> Value {
    let answer = app.get("/v1/streak/info", user).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

/// APP-BEHAVIOUR's example: a Los Angeles user reading at 2026-07-06T14:00Z and again at
/// 2026-07-07T16:00Z has a streak of 2 (07:00 and 09:00 local on consecutive days); in Seoul the
/// same instants are 23:00 on the 6th and 01:00 on the 8th, a day missed.
async fn midnight_is_local_in_two_time_zones(backend: Backend) {
    let (app, clock) = app_at(backend, "2026-07-06T14:00:00Z").await;
    let (la, la_book) = reader(&app, Some("America/Los_Angeles")).await;
    let (seoul, seoul_book) = reader(&app, None).await;
    for (user, book) in [(&la, &la_book), (&seoul, &seoul_book)] {
        let first = read(&app, user, book).await;
        assert_eq!(
            (
                first["current_streak"].as_u64(),
                first["new_streak_day"].as_bool()
            ),
            (Some(1), Some(true))
        );
    }
    let la_second = read_at(&app, &clock, "2026-07-07T16:00:00Z", &la, &la_book).await;
    assert_eq!(la_second["current_streak"], 2, "{la_second}");
    assert_eq!(la_second["total_days"], 2);
    let seoul_second = read(&app, &seoul, &seoul_book).await;
    assert_eq!(
        seoul_second["current_streak"], 1,
        "Seoul missed the 7th: {seoul_second}"
    );
    assert_eq!(
        (
            seoul_second["longest_streak"].as_u64(),
            seoul_second["total_days"].as_u64()
        ),
        (Some(1), Some(2))
    );

    let la_third = read_at(&app, &clock, "2026-07-08T20:00:00Z", &la, &la_book).await;
    assert_eq!(la_third["current_streak"], 3, "{la_third}");
    assert_eq!(
        la_third["milestones"],
        json!([{"type": "streak", "value": 3, "reward_credits": 0, "message": "3 days in a row!"}])
    );

    // Just before and just after Seoul's midnight (15:00Z): two local days, one UTC day.
    let before = read_at(&app, &clock, "2026-07-09T14:59:00Z", &seoul, &seoul_book).await;
    assert_eq!(
        (
            before["current_streak"].as_u64(),
            before["new_streak_day"].as_bool()
        ),
        (Some(2), Some(true)),
        "{before}"
    );
    let after = read_at(&app, &clock, "2026-07-09T15:01:00Z", &seoul, &seoul_book).await;
    assert_eq!(
        (
            after["current_streak"].as_u64(),
            after["new_streak_day"].as_bool()
        ),
        (Some(3), Some(true)),
        "{after}"
    );
    assert_eq!(after["milestones"][0]["type"], "streak", "{after}");
    assert_eq!(after["milestones"][0]["value"], 3);
    // In Los Angeles both instants are the morning of the 9th: one new day, then nothing new.
    let la_morning = read_at(&app, &clock, "2026-07-09T14:59:00Z", &la, &la_book).await;
    assert_eq!(
        (
            la_morning["current_streak"].as_u64(),
            la_morning["new_streak_day"].as_bool()
        ),
        (Some(4), Some(true)),
        "{la_morning}"
    );
    let la_again = read_at(&app, &clock, "2026-07-09T15:01:00Z", &la, &la_book).await;
    assert_eq!(
        (
            la_again["current_streak"].as_u64(),
            la_again["new_streak_day"].as_bool()
        ),
        (Some(4), Some(false)),
        "{la_again}"
    );
    assert_eq!(la_again["milestones"], json!([]));

    // Info on the next local day still counts the streak; a missed day breaks it.
    clock.set(at("2026-07-10T20:00:00Z")); // LA: 13:00 on the 10th; Seoul: 05:00 on the 11th.
    let la_info = info(&app, &la).await;
    assert_eq!(
        (
            la_info["current_streak"].as_u64(),
            la_info["read_today"].as_bool(),
            la_info["streak_broken"].as_bool()
        ),
        (Some(4), Some(false), Some(false)),
        "{la_info}"
    );
    assert_eq!(la_info["last_read_date"], "2026-07-09");
    let seoul_info = info(&app, &seoul).await;
    assert_eq!(
        seoul_info["current_streak"], 3,
        "read on the 10th local: {seoul_info}"
    );
    assert_eq!(seoul_info["last_read_date"], "2026-07-10");
    clock.set(at("2026-07-12T08:00:00Z")); // LA: 01:00 on the 12th, the 10th and 11th missed.
    let la_info = info(&app, &la).await;
    assert_eq!(
        (
            la_info["current_streak"].as_u64(),
            la_info["streak_broken"].as_bool()
        ),
        (Some(0), Some(true)),
        "{la_info}"
    );
    assert_eq!(
        (
            la_info["longest_streak"].as_u64(),
            la_info["total_days"].as_u64()
        ),
        (Some(4), Some(4))
    );
}

on_both_backends!(
    #[tokio::test]
    midnight_in_two_zones,
    midnight_is_local_in_two_time_zones
);

/// Days across both daylight-saving changes in Los Angeles (23 and 25 hours long). A fixed UTC
/// offset would get each of these wrong.
async fn daylight_saving_changes_keep_local_days(backend: Backend) {
    let (app, clock) = app_at(backend, "2026-03-08T07:30:00Z").await;
    let (user, book) = reader(&app, Some("America/Los_Angeles")).await;
    // 23:30 PST on 7 March.
    assert_eq!(read(&app, &user, &book).await["current_streak"], 1);
    // 23:30 PDT on 8 March: only 23 hours later, and the next local day.
    let next = read_at(&app, &clock, "2026-03-09T06:30:00Z", &user, &book).await;
    assert_eq!(
        (
            next["current_streak"].as_u64(),
            next["new_streak_day"].as_bool()
        ),
        (Some(2), Some(true)),
        "{next}"
    );
    // 00:30 PDT on 9 March: one hour later, a new day again.
    let after = read_at(&app, &clock, "2026-03-09T07:30:00Z", &user, &book).await;
    assert_eq!(
        (
            after["current_streak"].as_u64(),
            after["new_streak_day"].as_bool()
        ),
        (Some(3), Some(true)),
        "{after}"
    );

    // 1 November has 25 hours: 00:30 PDT and 23:30 PST are the same local day.
    let (user, book) = reader(&app, Some("America/Los_Angeles")).await;
    let morning = read_at(&app, &clock, "2026-11-01T07:30:00Z", &user, &book).await;
    assert_eq!(morning["new_streak_day"], true);
    let night = read_at(&app, &clock, "2026-11-02T07:30:00Z", &user, &book).await;
    assert_eq!(
        (
            night["current_streak"].as_u64(),
            night["new_streak_day"].as_bool()
        ),
        (Some(1), Some(false)),
        "{night}"
    );
    let calendar = app
        .get("/v1/streak/calendar?year=2026&month=11", &user)
        .await;
    assert_eq!(calendar.status, 200, "{}", calendar.body);
    assert_eq!(
        calendar.body["days"],
        json!([{"date": "2026-11-01", "day": 1, "sessions": 2, "reading_time": 600, "completed": 2}])
    );
    assert_eq!(calendar.body["timezone"], "America/Los_Angeles");
}

on_both_backends!(
    #[tokio::test]
    daylight_saving,
    daylight_saving_changes_keep_local_days
);

/// Twenty first reads of a day at once count the day once.
async fn concurrent_reads_count_a_day_once(backend: Backend) {
    let (app, clock) = app_at(backend, "2026-07-06T01:00:00Z").await;
    let (user, book) = reader(&app, None).await;
    read(&app, &user, &book).await;
    clock.set(at("2026-07-07T01:00:00Z"));
    let answers = join_all((0..20).map(|_| read(&app, &user, &book))).await;
    let new_days = answers
        .iter()
        .filter(|a| a["new_streak_day"] == true)
        .count();
    assert_eq!(new_days, 1, "{answers:?}");
    assert!(
        answers
            .iter()
            .all(|a| a["current_streak"] == 2 && a["total_days"] == 2),
        "{answers:?}"
    );
    let history = app.get("/v1/streak/history?days=7", &user).await;
    assert_eq!(history.status, 200, "{}", history.body);
    assert_eq!(history.body["total_sessions"], 21);
    assert_eq!(history.body["history"][0]["date"], "2026-07-07");
    assert_eq!(
        history.body["history"][0]["sessions"]
            .as_array()
            .unwrap()
            .len(),
        20
    );
    assert_eq!(history.body["history"][1]["date"], "2026-07-06");
    assert_eq!(history.body["from_date"], "2026-07-01");
}

on_both_backends!(
    #[tokio::test]
    concurrent_reads,
    concurrent_reads_count_a_day_once
);

/// Ten reading days earn one credit, once, in the ledger; the balance still equals its ledger.
async fn total_days_milestones_pay_once(backend: Backend) {
    let (app, clock) = app_at(backend, "2026-07-01T03:00:00Z").await;
    let (user, book) = reader(&app, None).await;
    let start = at("2026-07-01T03:00:00Z");
    let mut rewarded = Vec::new();
    for day in 0..10 {
        clock.set(start + chrono::Duration::days(day * 2)); // every other day: no streak milestone
        let answer = read(&app, &user, &book).await;
        rewarded.extend(answer["milestones"].as_array().unwrap().iter().cloned());
        // A second read on the tenth day pays nothing more.
        if day == 9 {
            let again = read(&app, &user, &book).await;
            assert_eq!(again["milestones"], json!([]));
        }
    }
    assert_eq!(rewarded.len(), 1, "{rewarded:?}");
    assert_eq!(rewarded[0]["type"], "total_days");
    assert_eq!(rewarded[0]["value"], 10);
    assert_eq!(rewarded[0]["reward_credits"], 1);
    // 3 opening credits, 1 for the book, 1 for the milestone.
    assert_eq!(
        app.get("/v1/credits/balance", &user).await.body["credits"],
        3
    );
    let id = app.user_id(&user);
    let balance = app
        .state
        .store
        .find_user(&id)
        .await
        .unwrap()
        .unwrap()
        .credits;
    let ledger = whole_ledger(&*app.state.store, &id).await;
    assert!(ledger_reconciles(balance, &ledger), "{ledger:?}");
    let bonus = ledger.last().unwrap();
    assert_eq!((bonus.delta, bonus.kind.as_str()), (1, "bonus"));
    let streak = info(&app, &user).await;
    assert_eq!(
        (
            streak["total_days"].as_u64(),
            streak["longest_streak"].as_u64()
        ),
        (Some(10), Some(1))
    );
}

on_both_backends!(
    #[tokio::test]
    milestones_pay_once,
    total_days_milestones_pay_once
);

/// The daily book cap ends at the user's local midnight, not Seoul's.
async fn the_daily_cap_follows_the_users_time_zone(backend: Backend) {
    let mut config = test_config();
    config.limits.books_per_day = 1;
    // In the future: the store lets day counters lapse at their window's end in real time.
    let clock = Clock::manual(at("2027-07-06T14:00:00Z"));
    let app = TestApp::with_clock(backend, config, clock).await;
    let (user, _) = reader(&app, Some("America/Los_Angeles")).await;
    let refused = app
        .post_json("/v1/books", &user, &BookAsk::korean(4).json(), &[])
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (429, "DAILY_LIMIT_EXCEEDED"),
        "{}",
        refused.body
    );
    // 07:00 PDT: seventeen hours to local midnight (07:00Z the next day).
    assert_eq!(refused.headers["retry-after"], "61200");
}

on_both_backends!(
    #[tokio::test]
    daily_cap_time_zone,
    the_daily_cap_follows_the_users_time_zone
);

/// Settings start at the defaults, keep what a patch leaves out, and refuse what the app contract bounds.
async fn settings_and_refusals(backend: Backend) {
    let (app, _clock) = app_at(backend, "2026-07-06T14:00:00Z").await;
    let user = new_user_key();
    let defaults = app.get("/v1/settings", &user).await;
    assert_eq!(defaults.status, 200);
    assert_eq!(defaults.body["timezone"], "Asia/Seoul");
    assert_eq!(defaults.body["language"], "ko");
    let changed = patch_settings(
        &app,
        &user,
        &json!({"dark_mode": true, "language": "en", "timezone": null}),
    )
    .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(
        (
            changed.body["dark_mode"].as_bool(),
            changed.body["timezone"].as_str()
        ),
        (Some(true), Some("Asia/Seoul"))
    );
    assert_eq!(app.get("/v1/settings", &user).await.body, changed.body);

    for (body, field) in [
        (json!({"timezone": "Mars/Olympus_Mons"}), "timezone"),
        (json!({"timezone": "Europe/Berlin".repeat(4)}), "timezone"),
        (
            json!({"bedtime_notification_hour": 24}),
            "bedtime_notification_hour",
        ),
        (json!({"daily_limit_minutes": 29}), "daily_limit_minutes"),
        (json!({"language": "fr"}), "language"),
        (json!({"dark_mode": "yes"}), "dark_mode"),
        (json!({"theme": "pink"}), "theme"),
    ] {
        let answer = patch_settings(&app, &user, &body).await;
        assert_eq!(
            (answer.status, answer.code()),
            (422, "VALIDATION_ERROR"),
            "{body}: {}",
            answer.body
        );
        assert_eq!(
            answer.body["detail"][0]["loc"],
            json!(["body", field]),
            "{}",
            answer.body
        );
    }
    assert_eq!(
        app.get("/v1/settings", &user).await.body,
        changed.body,
        "refusals change nothing"
    );

    let (owner, book) = reader(&app, None).await;
    let stranger = new_user_key();
    for (user, body, status, code) in [
        (&stranger, json!({"book_id": book}), 404, "NOT_FOUND"),
        (&owner, json!({"book_id": "bk_missing"}), 404, "NOT_FOUND"),
        (
            &owner,
            json!({"book_id": book, "reading_time": -1}),
            422,
            "VALIDATION_ERROR",
        ),
        (&owner, json!({"reading_time": 10}), 422, "VALIDATION_ERROR"),
        (
            &owner,
            json!({"book_id": book, "pages": 3}),
            422,
            "VALIDATION_ERROR",
        ),
    ] {
        let answer = app.post_json("/v1/streak/read", user, &body, &[]).await;
        assert_eq!(
            (answer.status, answer.code()),
            (status, code),
            "{body}: {}",
            answer.body
        );
    }
    for (path, field) in [
        ("/v1/streak/calendar?year=2026&month=13", "month"),
        ("/v1/streak/calendar?year=2019&month=1", "year"),
        ("/v1/streak/calendar?month=1", "year"),
        ("/v1/streak/history?days=0", "days"),
        ("/v1/streak/history?days=366", "days"),
        ("/v1/streak/history?days=many", "days"),
    ] {
        let answer = app.get(path, &owner).await;
        assert_eq!(
            (answer.status, answer.code()),
            (422, "VALIDATION_ERROR"),
            "{path}: {}",
            answer.body
        );
        assert_eq!(
            answer.body["detail"][0]["loc"],
            json!(["query", field]),
            "{path}: {}",
            answer.body
        );
    }
    let bad_profile = app
        .call(
            Method::GET,
            "/v1/streak/info",
            &[("x-user-key", &owner), ("x-profile-id", "a b")],
            None,
        )
        .await;
    assert_eq!(
        (bad_profile.status, bad_profile.code()),
        (400, "BAD_REQUEST")
    );
    let fresh = info(&app, &owner).await;
    assert_eq!(
        fresh,
        json!({"current_streak": 0, "longest_streak": 0, "total_days": 0, "last_read_date": null, "read_today": false, "streak_broken": false})
    );

    // Erasure takes the streak and the settings with it.
    read(&app, &owner, &book).await;
    patch_settings(&app, &owner, &json!({"timezone": "Europe/Berlin"})).await;
    let erased = app.erase(&owner).await;
    assert_eq!(erased.status, 200);
    assert_eq!(info(&app, &owner).await["total_days"], 0);
    assert_eq!(
        app.get("/v1/settings", &owner).await.body["timezone"],
        "Asia/Seoul"
    );
    assert_eq!(
        app.get("/v1/streak/history?days=365", &owner).await.body["total_sessions"],
        0
    );
}

on_both_backends!(
    #[tokio::test]
    config,
    settings_and_refusals
);

/// Moving the time zone east cannot make a new day out of the same hours: at 23:00 in Seoul a
/// read counts 6 July; switched to Kiritimati (UTC+14) it is already 04:30 on 7 July there, but
/// the read that counted 6 July also fell on 7 July in Kiritimati, so no day is gained.
async fn moving_east_gains_no_day(backend: Backend) {
    let (app, clock) = app_at(backend, "2026-07-06T14:00:00Z").await;
    let (user, book) = reader(&app, Some("Asia/Seoul")).await;
    let first = read_at(&app, &clock, "2026-07-06T14:00:00Z", &user, &book).await;
    assert_eq!(
        (
            first["current_streak"].as_u64(),
            first["new_streak_day"].as_bool()
        ),
        (Some(1), Some(true))
    );
    let moved = patch_settings(&app, &user, &json!({"timezone": "Pacific/Kiritimati"})).await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    let again = read_at(&app, &clock, "2026-07-06T14:30:00Z", &user, &book).await;
    assert_eq!(again["new_streak_day"], false, "{again}");
    assert_eq!(
        (
            again["current_streak"].as_u64(),
            again["total_days"].as_u64()
        ),
        (Some(1), Some(1))
    );
    // A real day later it is a new day in Kiritimati too.
    let later = read_at(&app, &clock, "2026-07-07T15:00:00Z", &user, &book).await;
    assert_eq!(
        (
            later["new_streak_day"].as_bool(),
            later["total_days"].as_u64()
        ),
        (Some(true), Some(2))
    );
}
on_both_backends!(
    #[tokio::test]
    moving_east_gains_no_day,
    moving_east_gains_no_day
);

/// Only a finished book counts as reading: not one still being made, nor a failed and refunded
/// one.
async fn only_a_finished_book_counts_as_reading(backend: Backend) {
    let (app, _clock) = app_at(backend, "2026-07-06T14:00:00Z").await;
    let user = new_user_key();
    let making = start_book(&app, &user).await;
    let failed = start_book(&app, &user).await;
    let failed_id = storybook_core::domain::book::BookId::parse(&failed).unwrap();
    storybook_core::book_records::fail_book(
        &*app.state.store,
        app.state.clock.now(),
        &failed_id,
        storybook_core::domain::failure::FailureCode::Unknown,
        None,
    )
    .await
    .unwrap();
    assert!(app.book(&failed).await.refunded);
    for book in [&making, &failed] {
        let answer = app
            .post_json(
                "/v1/streak/read",
                &user,
                &json!({"book_id": book, "reading_time": 300, "completed": true}),
                &[],
            )
            .await;
        assert_eq!(
            (answer.status, answer.code()),
            (400, "VALIDATION_ERROR"),
            "{}",
            answer.body
        );
    }
    let streak = info(&app, &user).await;
    assert_eq!(streak["current_streak"], 0, "{streak}");
}
on_both_backends!(
    #[tokio::test]
    only_a_finished_book_counts_as_reading,
    only_a_finished_book_counts_as_reading
);
