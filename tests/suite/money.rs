//! Credits under concurrency and failure: many users, random balances, racing book requests;
//! failures injected around the charge and the enqueue.

use crate::books::start_book;
use crate::harness::BookAsk;
use crate::harness::{Backend, TestApp, new_user_key, state_over, test_config, whole_ledger};
use crate::on_both_backends;
use chrono::Utc;
use futures::future::join_all;
use http::Method;
use std::sync::Arc;
use std::time::Duration;
use storybook_core::book_records::sweep_stuck_books;
use storybook_core::clock::Clock;
use storybook_core::domain::book::{BookId, Step};
use storybook_core::domain::credential::CredentialKind;
use storybook_core::domain::credits::{EntryKind, ledger_reconciles};
use storybook_core::ports::queue::StepMessage;

async fn two_hundred_book_requests_across_twenty_users(backend: Backend) {
    let app = Arc::new(TestApp::new(backend).await);
    // Random balances from 3 (the opening credits) to 3 + 9, from a fixed seed.
    let mut seed = 0x2545F4914F6CDD1Du64;
    let mut users = Vec::new();
    for i in 0..20 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let extra = (seed % 10) as i64;
        let user = new_user_key();
        if extra > 0 {
            app.grant(&user, extra, &format!("seed-{i}-{user}")).await;
        } else {
            app.get("/v1/credits/balance", &user).await;
        }
        users.push((user, 3 + extra));
    }
    let requests = (0..200).map(|i| {
        let (app, user) = (app.clone(), users[i % 20].0.clone());
        tokio::spawn(async move {
            let body = crate::harness::BookAsk::korean(4).json();
            app.post_json(
                "/v1/books",
                &user,
                &body,
                &[("x-idempotency-key", &format!("r-{i}"))],
            )
            .await
            .status
        })
    });
    let statuses: Vec<u16> = join_all(requests)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 402)),
        "{statuses:?}"
    );
    for (user, balance) in &users {
        let id = app.user_id(user);
        let stored = app.state.store.find_user(&id).await.unwrap().unwrap();
        let ledger = whole_ledger(&*app.state.store, &id).await;
        assert!(
            ledger_reconciles(stored.credits, &ledger),
            "balance equals the sum of the ledger"
        );
        assert!(
            ledger.iter().all(|e| e.balance_after >= 0),
            "never below zero"
        );
        let books = app.state.store.books_of(&id).await.unwrap().len() as i64;
        // Ten requests each: as many books as the balance allowed.
        assert_eq!(books, (*balance).min(10), "user with {balance} credits");
        assert_eq!(stored.credits, balance - books);
        assert_eq!(
            ledger.iter().filter(|e| e.kind == EntryKind::Usage).count() as i64,
            books
        );
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count() as i64,
        users.iter().map(|(_, b)| (*b).min(10)).sum::<i64>()
    );
}
on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    two_hundred_book_requests_across_twenty_users,
    two_hundred_book_requests_across_twenty_users
);

/// The step queue is gone (a real SQS adapter aimed at a queue that does not exist) after the
/// charge: the book is failed and refunded at once, so no charge stands without a book, and its
/// idempotency key is freed for the retry.
#[tokio::test]
async fn a_failed_enqueue_after_the_charge_leaves_no_charge_without_a_book() {
    let sdk = crate::harness::moto_config().await;
    let mut resources = storybook_aws::provision::provision(&sdk, &crate::harness::unique_prefix())
        .await
        .unwrap();
    resources.step_queue_url = format!("{}-gone", resources.step_queue_url);
    let state = state_over(&sdk, &resources, test_config());
    let router = storybook_http::app(state.clone(), storybook_core::catalogue::Family::ALL);
    let user = new_user_key();
    let call = |method: Method, path: &str, body: Option<String>| {
        let router = router.clone();
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .header("x-user-key", &user)
            .header("x-idempotency-key", "retry-after-503")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.unwrap_or_default()))
            .unwrap();
        async move {
            use tower::ServiceExt;
            crate::harness::Answer::from_response(router.oneshot(request).await.unwrap()).await
        }
    };
    // The app retries after the error with the same key: the key was freed, so the retry is a
    // new attempt (failing again here), not the failed book's answer.
    for _ in 0..2 {
        let answer = call(
            Method::POST,
            "/v1/books",
            Some(crate::harness::BookAsk::korean(4).json().to_string()),
        )
        .await;
        assert_eq!((answer.status, answer.code()), (503, "SERVICE_UNAVAILABLE"));
    }
    let id = state.hasher.hash(CredentialKind::UserKey, &user);
    let books = state.store.books_of(&id).await.unwrap();
    assert_eq!(books.len(), 2);
    assert!(books.iter().all(|b| b.failure
        == Some(storybook_core::domain::failure::FailureCode::QueueFailed)
        && b.refunded));
    let ledger = whole_ledger(&*state.store, &id).await;
    let kinds: Vec<EntryKind> = ledger.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        vec![
            EntryKind::Bonus,
            EntryKind::Usage,
            EntryKind::Refund,
            EntryKind::Usage,
            EntryKind::Refund
        ]
    );
    assert_eq!(
        state.store.find_user(&id).await.unwrap().unwrap().credits,
        3
    );
}

/// The answer is lost after the enqueue (the client never hears back) and the app retries with
/// its idempotency key: one book, one charge, and the book is made.
async fn a_lost_answer_after_the_enqueue_charges_once(backend: Backend) {
    let app = TestApp::new(backend).await;
    let _worker = app.start_worker();
    let user = new_user_key();
    let first = app
        .post_json(
            "/v1/books",
            &user,
            &crate::harness::BookAsk::korean(4).json(),
            &[("x-idempotency-key", "lost-1")],
        )
        .await;
    let retry = app
        .post_json(
            "/v1/books",
            &user,
            &crate::harness::BookAsk::korean(4).json(),
            &[("x-idempotency-key", "lost-1")],
        )
        .await;
    assert_eq!(first.body["job_id"], retry.body["job_id"]);
    let job = retry.body["job_id"].as_str().unwrap();
    assert_eq!(
        crate::books::poll(&app, &user, job, crate::books::PATIENCE)
            .await
            .body["status"],
        "done"
    );
    let id = app.user_id(&user);
    let ledger = whole_ledger(&*app.state.store, &id).await;
    assert_eq!(
        ledger.iter().filter(|e| e.kind == EntryKind::Usage).count(),
        1
    );
    assert_eq!(app.state.store.books_of(&id).await.unwrap().len(), 1);
}
on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    a_lost_answer_after_the_enqueue_charges_once,
    a_lost_answer_after_the_enqueue_charges_once
);

/// The same key with another request is refused; past 24 hours the key is free again.
async fn idempotency_keys_answer_their_own_request_for_a_day(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    let key = [("x-idempotency-key", "same-key")];
    let first = app
        .post_json(
            "/v1/books",
            &user,
            &crate::harness::BookAsk::korean(4).json(),
            &key,
        )
        .await;
    assert_eq!(first.status, 200);
    let other = app
        .post_json(
            "/v1/books",
            &user,
            &crate::harness::BookAsk::korean(6).json(),
            &key,
        )
        .await;
    assert_eq!(
        (other.status, other.code()),
        (422, "IDEMPOTENCY_KEY_REUSED")
    );
    // Another user's identical key is theirs alone.
    let stranger = app
        .post_json(
            "/v1/books",
            &new_user_key(),
            &crate::harness::BookAsk::korean(6).json(),
            &key,
        )
        .await;
    assert_eq!(stranger.status, 200);
    assert_ne!(stranger.body["job_id"], first.body["job_id"]);

    // A record past its day: made by the store directly, as a day-old request would have.
    let id = app.user_id(&user);
    let old_book = app.state.store.books_of(&id).await.unwrap().remove(0);
    let stale_key = storybook_core::domain::book::IdempotencyKey::parse("yesterday").unwrap();
    let day_ago = chrono::Utc::now() - chrono::Duration::hours(25);
    let stale =
        storybook_core::domain::book::Idempotency::new(stale_key, &old_book.request, day_ago);
    let mut yesterdays = old_book.clone();
    yesterdays.id = storybook_core::domain::book::BookId::generate();
    assert!(matches!(
        app.state
            .store
            .create_book(&yesterdays, Some(&stale), u32::MAX)
            .await
            .unwrap(),
        storybook_core::ports::CreateOutcome::Created(_)
    ));
    let again = app
        .post_json(
            "/v1/books",
            &user,
            &crate::harness::BookAsk::korean(4).json(),
            &[("x-idempotency-key", "yesterday")],
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_ne!(
        again.body["job_id"].as_str(),
        Some(yesterdays.id.as_str()),
        "a new book, not yesterday's"
    );
}
on_both_backends!(
    #[tokio::test]
    idempotency_keys_answer_their_own_request_for_a_day,
    idempotency_keys_answer_their_own_request_for_a_day
);

#[tokio::test]
async fn a_book_costs_what_its_page_count_is_priced() {
    use storybook_core::config::{Config, PagePrice};
    let prices = vec![
        PagePrice {
            min: 4,
            max: 8,
            credits: 1,
        },
        PagePrice {
            min: 9,
            max: 12,
            credits: 2,
        },
    ];
    let app = TestApp::with_config(
        Backend::Embedded,
        Config {
            book_prices_by_pages: prices,
            ..test_config()
        },
    )
    .await;
    // The app reads the price list (page regeneration and book audio free, as by default).
    let prices = app
        .call(Method::GET, "/v1/config/capabilities", &[], None)
        .await
        .body["prices"]
        .clone();
    assert_eq!(
        prices["book_by_pages"][0],
        serde_json::json!({"pages": 4, "credits": 1})
    );
    assert_eq!(
        prices["book_by_pages"][8],
        serde_json::json!({"pages": 12, "credits": 2})
    );
    assert_eq!(
        (
            prices["page_regeneration"].as_i64(),
            prices["book_audio"].as_i64()
        ),
        (Some(0), Some(0))
    );
    let user = new_user_key();
    assert_eq!(
        app.post_json(
            "/v1/books",
            &user,
            &crate::harness::BookAsk::korean(12).json(),
            &[]
        )
        .await
        .status,
        200
    );
    assert_eq!(
        app.get("/v1/credits/balance", &user).await.body["credits"],
        1
    );
    let refused = app
        .post_json(
            "/v1/books",
            &user,
            &crate::harness::BookAsk::korean(10).json(),
            &[],
        )
        .await;
    assert_eq!((refused.status, refused.code()), (402, "PAYMENT_REQUIRED"));
    assert_eq!(refused.body["error"]["details"]["required"], 2);
    assert_eq!(
        app.post_json(
            "/v1/books",
            &user,
            &crate::harness::BookAsk::korean(4).json(),
            &[]
        )
        .await
        .status,
        200
    );
    assert_eq!(
        app.get("/v1/credits/balance", &user).await.body["credits"],
        0
    );
}

/// Waits for the book's PDF (the worker finishing it), at most a minute.
async fn until_assembled(app: &TestApp, job: &str) -> storybook_core::domain::book::Book {
    let started = std::time::Instant::now();
    loop {
        let book = app.book(job).await;
        if book.pdf_key.is_some() || started.elapsed() > Duration::from_secs(60) {
            return book;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const STUCK_AFTER: Duration = Duration::from_secs(15 * 60);

async fn sweep_at(app: &TestApp, now: chrono::DateTime<Utc>) -> u32 {
    sweep_stuck_books(
        &*app.state.store,
        now,
        chrono::Duration::from_std(STUCK_AFTER).unwrap(),
    )
    .await
    .unwrap()
}

/// A book left without progress is failed and refunded once by however many sweeps; when its
/// steps finish it after all it stays failed, the parent can read it, and the refund is taken
/// back once however often its last step is delivered.
async fn a_swept_book_is_refunded_once_and_clawed_back_once(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    let job = start_book(&app, &user).await;
    let id = app.user_id(&user);
    assert_eq!(sweep_at(&app, Utc::now()).await, 0, "not stuck yet");

    // No worker runs: twenty minutes on, the book is stuck. Ten sweeps at once fail it once.
    let later = Utc::now() + chrono::Duration::minutes(20);
    let swept: u32 = join_all((0..10).map(|_| sweep_at(&app, later)))
        .await
        .into_iter()
        .sum();
    assert_eq!(swept, 1);
    let status = app.get(&format!("/v1/books/{job}"), &user).await;
    assert_eq!(status.body["status"], "failed", "{}", status.body);
    assert_eq!(
        status.body["error"]["code"], "UNKNOWN",
        "an internal reason is served as UNKNOWN"
    );
    assert_eq!(
        app.get("/v1/credits/balance", &user).await.body["credits"],
        3
    );
    assert_eq!(
        sweep_at(&app, later + chrono::Duration::hours(1)).await,
        0,
        "swept books leave the index"
    );

    // The worker picks up its story after all and finishes it.
    let worker = app.start_worker();
    let book = until_assembled(&app, &job).await;
    assert!(book.pdf_key.is_some(), "the swept book was finished");
    let status = app.get(&format!("/v1/books/{job}"), &user).await;
    assert_eq!(
        status.body["status"], "failed",
        "the app was told it failed: {}",
        status.body
    );
    assert_eq!(
        app.get("/v1/credits/balance", &user).await.body["credits"],
        2
    );
    let library = app.get("/v1/library", &user).await;
    assert_eq!(
        library.body["books"][0]["book_id"],
        job.as_str(),
        "{}",
        library.body
    );
    assert_eq!(
        app.get(&format!("/v1/books/{job}/detail"), &user)
            .await
            .status,
        200
    );

    // Its last step delivered ten more times: nothing more is taken.
    let pipeline = app.pipeline();
    let assemble = serde_json::to_string(&StepMessage::new(
        BookId::parse(&job).unwrap(),
        Step::Assemble,
    ))
    .unwrap();
    for attempt in 0..10 {
        pipeline.handle(&assemble, attempt == 9).await.unwrap();
    }
    worker.abort();
    let ledger = whole_ledger(&*app.state.store, &id).await;
    let kinds: Vec<_> = ledger.iter().map(|e| (e.kind, e.delta)).collect();
    assert_eq!(
        kinds,
        [
            (EntryKind::Bonus, 3),
            (EntryKind::Usage, -1),
            (EntryKind::Refund, 1),
            (EntryKind::Clawback, -1)
        ]
    );
    assert_eq!(ledger[3].reference.as_deref(), Some(job.as_str()));
    assert!(ledger_reconciles(2, &ledger));
}

on_both_backends!(
    #[tokio::test]
    a_swept_book_is_refunded_once_and_clawed_back_once,
    a_swept_book_is_refunded_once_and_clawed_back_once
);

/// A clawback never takes a balance below zero: the refund was spent, so nothing is taken.
#[tokio::test]
async fn a_clawback_takes_only_what_the_balance_holds() {
    let config = storybook_core::config::Config {
        opening_credits: 1,
        ..test_config()
    };
    let app = TestApp::with_config(Backend::Embedded, config).await;
    let user = new_user_key();
    let job = start_book(&app, &user).await;
    assert_eq!(
        sweep_at(&app, Utc::now() + chrono::Duration::minutes(20)).await,
        1
    );
    // The refunded credit is spent on another book before the first is finished.
    let second = app
        .post_json("/v1/books", &user, &BookAsk::korean(4).json(), &[])
        .await;
    assert_eq!(second.status, 200, "{}", second.body);
    let worker = app.start_worker();
    let book = until_assembled(&app, &job).await;
    worker.abort();
    assert!(book.pdf_key.is_some() && book.clawed_back());
    assert_eq!(
        app.get("/v1/credits/balance", &user).await.body["credits"],
        0
    );
    let ledger = whole_ledger(&*app.state.store, &app.user_id(&user)).await;
    assert!(
        ledger.iter().all(|e| e.kind != EntryKind::Clawback),
        "{ledger:?}"
    );
    assert!(ledger_reconciles(0, &ledger));
}

/// The process stops between the charge and the enqueue (the first step's message is lost); the
/// app's retry with its key starts the book again, and it is made and charged once.
async fn a_retry_starts_a_book_whose_first_step_was_lost(backend: Backend) {
    let clock = Clock::manual(Utc::now());
    let app = TestApp::with_clock(backend, test_config(), clock.clone()).await;
    let user = new_user_key();
    let key = [("x-idempotency-key", "crash-1")];
    let first = app
        .post_json("/v1/books", &user, &BookAsk::korean(4).json(), &key)
        .await;
    let job = first.body["job_id"].clone();
    for message in app
        .state
        .queue
        .receive(10, Duration::from_secs(60))
        .await
        .unwrap()
    {
        app.state.queue.delete(&message.receipt).await.unwrap();
    }
    // A prompt retry gives no duplicate step to a book that may just be waiting its turn.
    let prompt = app
        .post_json("/v1/books", &user, &BookAsk::korean(4).json(), &key)
        .await;
    assert_eq!(prompt.body["job_id"], job);
    assert!(
        app.state
            .queue
            .receive(10, Duration::from_secs(1))
            .await
            .unwrap()
            .is_empty()
    );
    // Three minutes on, the retry starts it.
    clock.set(Utc::now() + chrono::Duration::minutes(3));
    let late = app
        .post_json("/v1/books", &user, &BookAsk::korean(4).json(), &key)
        .await;
    assert_eq!(late.body["job_id"], job);
    let _worker = app.start_worker();
    let done = crate::books::poll(&app, &user, job.as_str().unwrap(), crate::books::PATIENCE).await;
    assert_eq!(done.body["status"], "done", "{}", done.body);
    let ledger = whole_ledger(&*app.state.store, &app.user_id(&user)).await;
    assert_eq!(
        ledger.iter().filter(|e| e.kind == EntryKind::Usage).count(),
        1
    );
}

on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    a_retry_starts_a_book_whose_first_step_was_lost,
    a_retry_starts_a_book_whose_first_step_was_lost
);
