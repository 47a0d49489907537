//! A parent's book end to end, charging under concurrency, redelivered steps, the worker's SQS
//! answers, and refusals, on both backends where the store matters.

use crate::harness::{Answer, Backend, BookAsk, TestApp, new_user_key};
use crate::on_both_backends;
use aws_lambda_events::event::sqs::SqsEvent;
use futures::future::join_all;
use http::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use storybook_core::domain::book::{BookId, JobState, Step};
use storybook_core::domain::credits::{EntryKind, LedgerPage};
use storybook_core::ports::queue::StepMessage;
use storybook_pipeline::pipeline::worker::sqs_batch;

/// Asks for a 4-page Korean book for `user`; answers its job id.
pub async fn start_book(app: &TestApp, user: &str) -> String {
    let created = app
        .post_json("/v1/books", user, &BookAsk::korean(4).json(), &[])
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    created.body["job_id"].as_str().unwrap().to_owned()
}

/// How long a test waits for a book (or a page) to be made: a bound, not a timing. Under the
/// whole suite's load moto_server serves one request at a time, and a book takes far longer than
/// alone; a step whose delivery was lost to a timed-out call (moto busy with the fifty-book chaos
/// test) comes back only after the queue's visibility timeout (`worker::VISIBILITY`, 180 s), so
/// the bound covers one such redelivery and the book's making after it.
pub const PATIENCE: Duration = Duration::from_secs(400);

/// A finished 4-page book of `user`'s, made by a worker that runs only meanwhile; answers its id.
pub async fn finished_book(app: &TestApp, user: &str) -> String {
    let job = start_book(app, user).await;
    let worker = app.start_worker();
    let done = poll(app, user, &job, crate::books::PATIENCE).await;
    worker.abort();
    assert_eq!(done.body["status"], "done", "{}", done.body);
    job
}

/// Polls like the app until the job is done or failed.
pub async fn poll(app: &TestApp, user: &str, job: &str, limit: Duration) -> Answer {
    let started = Instant::now();
    loop {
        let answer = app.get(&format!("/v1/books/{job}"), user).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        if matches!(answer.body["status"].as_str(), Some("done" | "failed"))
            || started.elapsed() > limit
        {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn fetch(url: &str) -> (u16, bytes::Bytes) {
    assert!(
        url.starts_with("http://") || url.starts_with("https://"),
        "not absolute: {url}"
    );
    let response = reqwest::get(url).await.unwrap();
    (response.status().as_u16(), response.bytes().await.unwrap())
}

fn pdf_text(pdf: &[u8]) -> (usize, String) {
    let document = lopdf::Document::load_mem(pdf).expect("a valid PDF");
    let pages: Vec<u32> = document.get_pages().keys().copied().collect();
    let text = document.extract_text(&pages).unwrap_or_default();
    (pages.len(), text)
}

async fn an_eight_page_korean_book(backend: Backend) {
    let app = TestApp::new(backend).await;
    let _worker = app.start_worker();
    let user = new_user_key();
    let started = Instant::now();
    let created = app
        .post_json("/v1/books", &user, &BookAsk::korean(8).json(), &[])
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(created.body["status"], "queued");
    let job = created.body["job_id"].as_str().unwrap().to_owned();
    let status = poll(&app, &user, &job, crate::books::PATIENCE).await;
    let elapsed = started.elapsed();
    assert_eq!(status.body["status"], "done", "{}", status.body);
    if backend == Backend::Embedded {
        assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
    }
    assert_eq!(status.body["progress"], 100);
    let result = &status.body["result"];
    let detail = app
        .get(
            &format!("/v1/books/{}/detail", result["book_id"].as_str().unwrap()),
            &user,
        )
        .await;
    assert_eq!(detail.status, 200, "{}", detail.body);
    for book in [result, &detail.body] {
        let pages = book["pages"].as_array().unwrap();
        assert_eq!(pages.len(), 8);
        for (i, page) in pages.iter().enumerate() {
            assert_eq!(page["page_number"], i + 1);
            assert_eq!(page["asset_status"]["image"]["state"], "generated");
            assert_eq!(page["asset_status"]["audio"]["state"], "available");
        }
    }
    let pages = result["pages"].as_array().unwrap();
    let mut pictures = Vec::new();
    for page in pages {
        let (status, png) = fetch(page["image_url"].as_str().unwrap()).await;
        assert_eq!(status, 200);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        pictures.push(png);
        let (status, wav) = fetch(page["audio_url"].as_str().unwrap()).await;
        assert_eq!(status, 200);
        assert_eq!((&wav[..4], &wav[8..12]), (&b"RIFF"[..], &b"WAVE"[..]));
    }
    assert!(
        pictures.windows(2).all(|w| w[0] != w[1]),
        "every page has its own picture"
    );
    let (status, cover) = fetch(result["cover_image_url"].as_str().unwrap()).await;
    assert_eq!((status, &cover[..4]), (200, &b"\x89PNG"[..]));

    let pdf = app
        .get(
            &format!("/v1/books/{}/pdf", result["book_id"].as_str().unwrap()),
            &user,
        )
        .await;
    assert_eq!(pdf.status, 200, "{}", pdf.body);
    let (status, document) = fetch(pdf.body["pdf_url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert!(document.starts_with(b"%PDF-"));
    let (page_count, text) = pdf_text(&document);
    assert_eq!(page_count, 8 + 2, "cover, 8 story pages, end page");
    let first_page = pages[0]["text"].as_str().unwrap();
    let hangul_words: Vec<&str> = first_page
        .split_whitespace()
        .filter(|w| w.chars().any(|c| ('가'..='힣').contains(&c)))
        .take(3)
        .collect();
    assert!(!hangul_words.is_empty());
    for word in hangul_words {
        let word = word.trim_matches(|c: char| !('가'..='힣').contains(&c));
        assert!(text.contains(word), "the PDF's text lacks {word:?}");
    }
    // One charge: the bonus, then the book.
    let ledger = app.get("/v1/credits/transactions", &user).await;
    let kinds: Vec<&str> = ledger
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["transaction_type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["usage", "bonus"]);
    let library = app.get("/v1/library", &user).await;
    assert_eq!(library.body["total"], 1);
    assert_eq!(library.body["books"][0]["book_id"], result["book_id"]);
}
on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    an_eight_page_korean_book,
    an_eight_page_korean_book
);

async fn fifty_creates_with_one_idempotency_key(backend: Backend) {
    let app = Arc::new(TestApp::new(backend).await);
    let user = new_user_key();
    app.grant(&user, 10, &format!("idem-{user}")).await;
    let answers = join_all((0..50).map(|_| {
        let (app, user) = (app.clone(), user.clone());
        tokio::spawn(async move {
            app.post_json(
                "/v1/books",
                &user,
                &BookAsk::korean(4).json(),
                &[("x-idempotency-key", "retry-me")],
            )
            .await
        })
    }))
    .await;
    let jobs: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|a| {
            let a = a.as_ref().unwrap();
            assert_eq!(a.status, 200, "{}", a.body);
            a.body["job_id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(jobs.len(), 1, "one book");
    let balance = app.get("/v1/credits/balance", &user).await;
    assert_eq!(balance.body["credits"], 3 + 10 - 1, "one charge");
    let id = app.user_id(&user);
    assert_eq!(app.state.store.books_of(&id).await.unwrap().len(), 1);
}
on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    fifty_creates_with_one_idempotency_key,
    fifty_creates_with_one_idempotency_key
);

async fn fifty_creates_against_a_balance_of_seven(backend: Backend) {
    let app = Arc::new(TestApp::new(backend).await);
    let user = new_user_key();
    app.grant(&user, 4, &format!("k-{user}")).await;
    let answers: Vec<Answer> = join_all((0..50).map(|i| {
        let (app, user) = (app.clone(), user.clone());
        tokio::spawn(async move {
            app.post_json(
                "/v1/books",
                &user,
                &BookAsk::korean(4).json(),
                &[("x-idempotency-key", &format!("key-{i}"))],
            )
            .await
        })
    }))
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    let made = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!(made, 7);
    for refused in answers.iter().filter(|a| a.status != 200) {
        assert_eq!((refused.status, refused.code()), (402, "PAYMENT_REQUIRED"));
        assert_eq!(
            refused.body["error"]["details"]["reason"],
            "insufficient_credits"
        );
    }
    assert_eq!(
        app.get("/v1/credits/balance", &user).await.body["credits"],
        0
    );
    let id = app.user_id(&user);
    assert_eq!(app.state.store.books_of(&id).await.unwrap().len(), 7);
    let ledger = app
        .state
        .store
        .ledger(&id, LedgerPage::parse(100, 0).unwrap())
        .await
        .unwrap();
    assert_eq!(
        ledger.iter().filter(|e| e.kind == EntryKind::Usage).count(),
        7
    );
    assert!(ledger.iter().all(|e| e.balance_after >= 0));
}
on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    fifty_creates_against_a_balance_of_seven,
    fifty_creates_against_a_balance_of_seven
);

fn body(book: &str, step: Step) -> String {
    serde_json::to_string(&StepMessage::new(BookId::parse(book).unwrap(), step)).unwrap()
}

async fn redelivered_steps_do_nothing_twice(backend: Backend) {
    let app = TestApp::new(backend).await;
    let pipeline = app.pipeline();
    let user = new_user_key();
    let job = crate::books::start_book(&app, &user).await;
    // The story, ten times: one story, one set of follow-up steps recorded in the book.
    for _ in 0..10 {
        pipeline
            .handle(&body(&job, Step::Story), false)
            .await
            .unwrap();
    }
    let id = BookId::parse(&job).unwrap();
    let book = app.state.store.find_book(&id).await.unwrap().unwrap().book;
    assert_eq!(book.state, JobState::Running);
    assert_eq!(
        (book.pending_assets, book.total_assets),
        (10, 10),
        "4 pictures, a cover, the hero's reference, 4 narrations"
    );
    // The reference, ten times: drawn and counted once.
    for _ in 0..10 {
        pipeline
            .handle(&body(&job, Step::Reference), false)
            .await
            .unwrap();
    }
    // One page's picture, ten times: counted once.
    for _ in 0..10 {
        pipeline
            .handle(&body(&job, Step::Illustrate { page: 2 }), false)
            .await
            .unwrap();
    }
    assert_eq!(
        app.state
            .store
            .find_book(&id)
            .await
            .unwrap()
            .unwrap()
            .book
            .pending_assets,
        8
    );
    // The story failing for good on its last delivery, ten times over: failed, refunded once.
    let refused = app
        .post_json(
            "/v1/books",
            &user,
            &json!({"topic": "a story about murder", "target_age": "7-9", "style": "cartoon"}),
            &[],
        )
        .await;
    let refused_job = refused.body["job_id"].as_str().unwrap().to_owned();
    for _ in 0..10 {
        pipeline
            .handle(&body(&refused_job, Step::Story), true)
            .await
            .unwrap();
    }
    let status = app.get(&format!("/v1/books/{refused_job}"), &user).await;
    assert_eq!(status.body["status"], "failed");
    assert_eq!(status.body["error"]["code"], "SAFETY_INPUT");
    assert!(
        status.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("murder")
    );
    let user_id = app.user_id(&user);
    let ledger = app
        .state
        .store
        .ledger(&user_id, LedgerPage::parse(100, 0).unwrap())
        .await
        .unwrap();
    let count = |kind| ledger.iter().filter(|e| e.kind == kind).count();
    assert_eq!((count(EntryKind::Usage), count(EntryKind::Refund)), (2, 1));
    assert_eq!(
        app.get("/v1/credits/balance", &user).await.body["credits"],
        3 - 1
    );
    // Steps of a failed book change nothing.
    pipeline
        .handle(&body(&refused_job, Step::Assemble), true)
        .await
        .unwrap();
    assert_eq!(
        app.get(&format!("/v1/books/{refused_job}"), &user)
            .await
            .body["status"],
        "failed"
    );
}
on_both_backends!(
    #[tokio::test]
    redelivered_steps_do_nothing_twice,
    redelivered_steps_do_nothing_twice
);

/// One span per SQS message: a line logged while its step runs names the message, the book and
/// the step without the code adding them.
#[tokio::test]
async fn a_steps_log_lines_carry_its_message_book_and_step() {
    let app = TestApp::new(Backend::Embedded).await;
    let user = new_user_key();
    let job = crate::books::start_book(&app, &user).await;
    // Generation stopped: the story step logs that its provider call was not made.
    storybook_core::spend::SpendGuard::new(&app.state)
        .switch(true, "a span test", "tests")
        .await
        .unwrap();
    let mut event: SqsEvent =
        serde_json::from_str(include_str!("../fixtures/sqs-event.json")).unwrap();
    let message_id = format!("span-{job}");
    event.records.truncate(1);
    event.records[0].message_id = Some(message_id.clone());
    event.records[0].body = Some(body(&job, Step::Story));
    sqs_batch(&app.pipeline(), event).await;
    let logs = String::from_utf8_lossy(&crate::harness::LOGS.lock().unwrap()).into_owned();
    let spans_of_the_message: Vec<Value> = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|line| {
            line["spans"]
                .as_array()?
                .iter()
                .find(|span| span["message_id"] == message_id.as_str())
                .cloned()
        })
        .collect();
    assert!(
        !spans_of_the_message.is_empty(),
        "no line logged under the message's span"
    );
    for span in spans_of_the_message {
        assert_eq!(
            (span["book"].as_str(), span["step"].as_str()),
            (Some(job.as_str()), Some("story")),
            "{span}"
        );
    }
}

#[tokio::test]
async fn the_worker_answers_an_sqs_batch_with_its_failures() {
    let app = TestApp::new(Backend::Embedded).await;
    let user = new_user_key();
    let job = crate::books::start_book(&app, &user).await;
    let fixture = include_str!("../fixtures/sqs-event.json");
    let mut event: SqsEvent = serde_json::from_str(fixture).unwrap();
    let template = event.records[0].clone();
    let record = |id: &str, body: String| {
        let mut record = template.clone();
        record.message_id = Some(id.to_owned());
        record.body = Some(body);
        record
    };
    event.records = vec![
        record("story", body(&job, Step::Story)),
        record("gone", body("bk_doesnotexist", Step::Story)),
        // The fixture's own body: not a step.
        record("garbage", template.body.clone().unwrap()),
    ];
    let answer = sqs_batch(&app.pipeline(), event).await;
    let failed: Vec<&str> = answer
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.as_str())
        .collect();
    assert_eq!(failed, vec!["garbage"]);
    let json = serde_json::to_value(&answer).unwrap();
    assert_eq!(
        json,
        json!({"batchItemFailures": [{"itemIdentifier": "garbage"}]})
    );
    let book = app.book(&job).await;
    assert_eq!(book.state, JobState::Running, "the story step ran");
}

#[tokio::test]
async fn refusals_of_a_book_request() {
    let app = TestApp::new(Backend::Embedded).await;
    let user = new_user_key();
    let mut cases: Vec<(Value, &str)> = Vec::new();
    let with = |field: &str, value: Value| {
        let mut body = BookAsk::korean(8).json();
        body[field] = value;
        body
    };
    cases.push((with("page_count", json!(3)), "page_count"));
    cases.push((with("page_count", json!(13)), "page_count"));
    cases.push((with("style", json!("crayon")), "style"));
    cases.push((with("target_age", json!("1-2")), "target_age"));
    cases.push((with("language", json!("fr")), "language"));
    cases.push((with("colour", json!("blue")), "colour"));
    cases.push((with("topic", json!("<script>alert(1)</script>")), "topic"));
    cases.push((with("topic", json!("")), "topic"));
    cases.push((with("topic", json!("x".repeat(201))), "topic"));
    cases.push((with("page_count", json!("eight")), "page_count"));
    for (body, field) in cases {
        let answer = app.post_json("/v1/books", &user, &body, &[]).await;
        assert_eq!(
            (answer.status, answer.code()),
            (422, "VALIDATION_ERROR"),
            "{field}: {}",
            answer.body
        );
        assert_eq!(answer.body["detail"][0]["loc"][1], field, "{}", answer.body);
    }
    let huge = format!(
        r#"{{"topic": "{}", "target_age": "5-7", "style": "cartoon"}}"#,
        "x".repeat(20 * 1024 * 1024)
    );
    let answer = app
        .call(
            Method::POST,
            "/v1/books",
            &[("x-user-key", &user)],
            Some(&huge),
        )
        .await;
    assert_eq!((answer.status, answer.code()), (422, "VALIDATION_ERROR"));
    let answer = app
        .post_json(
            "/v1/books",
            &user,
            &BookAsk::korean(8).json(),
            &[("x-profile-id", "bad id!")],
        )
        .await;
    assert_eq!((answer.status, answer.code()), (400, "BAD_REQUEST"));
    // Nothing was charged.
    assert_eq!(
        app.get("/v1/credits/balance", &user).await.body["credits"],
        3
    );
}

async fn only_the_owner_sees_a_book(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (owner, stranger) = (new_user_key(), new_user_key());
    let job = crate::books::start_book(&app, &owner).await;
    for path in [
        format!("/v1/books/{job}"),
        format!("/v1/books/{job}/detail"),
        format!("/v1/books/{job}/pdf"),
    ] {
        let answer = app.get(&path, &stranger).await;
        assert_eq!((answer.status, answer.code()), (404, "NOT_FOUND"), "{path}");
    }
    let answer = app
        .call(
            Method::DELETE,
            &format!("/v1/library/{job}"),
            &[("x-user-key", &stranger)],
            None,
        )
        .await;
    assert_eq!(answer.status, 404);
    for unknown in ["bk_nothere", "..%2F..%2Fetc", "a%20b"] {
        let answer = app.get(&format!("/v1/books/{unknown}"), &owner).await;
        assert_eq!(
            (answer.status, answer.code()),
            (404, "NOT_FOUND"),
            "{unknown}"
        );
    }
    // The owner's unfinished book is a conflict, not a missing one.
    let answer = app.get(&format!("/v1/books/{job}/detail"), &owner).await;
    assert_eq!((answer.status, answer.code()), (409, "CONFLICT"));
}
on_both_backends!(
    #[tokio::test]
    only_the_owner_sees_a_book,
    only_the_owner_sees_a_book
);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn too_few_credits_make_nothing() {
    let app = TestApp::new(Backend::Embedded).await;
    let user = new_user_key();
    for _ in 0..3 {
        assert_eq!(
            app.post_json("/v1/books", &user, &BookAsk::korean(4).json(), &[])
                .await
                .status,
            200
        );
    }
    let answer = app
        .post_json("/v1/books", &user, &BookAsk::korean(4).json(), &[])
        .await;
    assert_eq!((answer.status, answer.code()), (402, "PAYMENT_REQUIRED"));
    assert_eq!(
        answer.body["error"]["details"]["reason"],
        "insufficient_credits"
    );
    let id = app.user_id(&user);
    assert_eq!(app.state.store.books_of(&id).await.unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_library_renames_and_deletes() {
    let app = TestApp::new(Backend::Embedded).await;
    let _worker = app.start_worker();
    let user = new_user_key();
    let job = crate::books::start_book(&app, &user).await;
    let done = poll(&app, &user, &job, Duration::from_secs(30)).await;
    assert_eq!(done.body["status"], "done");
    let image = done.body["result"]["pages"][0]["image_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let renamed = app
        .call(
            Method::PATCH,
            &format!("/v1/library/{job}"),
            &[("x-user-key", &user)],
            Some(r#"{"title": "공룡의 밤"}"#),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.body["title"], "공룡의 밤");
    let bad = app
        .call(
            Method::PATCH,
            &format!("/v1/library/{job}"),
            &[("x-user-key", &user)],
            Some(r#"{"title": ""}"#),
        )
        .await;
    assert_eq!(bad.status, 422);
    let filtered = app.get("/v1/library?style=cartoon", &user).await;
    assert_eq!(filtered.body["total"], 0);
    assert_eq!(
        app.get("/v1/library?sort=sideways", &user).await.status,
        422
    );
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/v1/library/{job}"),
            &[("x-user-key", &user)],
            None,
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(app.get("/v1/library", &user).await.body["total"], 0);
    assert_eq!(
        app.get(&format!("/v1/books/{job}"), &user).await.status,
        404
    );
    assert_eq!(
        reqwest::get(&image).await.unwrap().status(),
        404,
        "the pictures are gone too"
    );
}

/// Marks `missing` pictures of a book as lost for good, as the last failed delivery of their
/// steps does, and runs assembly.
async fn assemble_with_missing_pictures(
    backend: Backend,
    missing: u8,
) -> (TestApp, String, String) {
    let app = TestApp::new(backend).await;
    let pipeline = app.pipeline();
    let user = new_user_key();
    let job = app
        .post_json("/v1/books", &user, &BookAsk::korean(8).json(), &[])
        .await
        .body["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for step in [Step::Story, Step::Reference] {
        pipeline.handle(&body(&job, step), false).await.unwrap();
    }
    for page in missing + 1..=8 {
        pipeline
            .handle(&body(&job, Step::Illustrate { page }), false)
            .await
            .unwrap();
    }
    for page in 0..=8u8 {
        pipeline
            .handle(&body(&job, Step::Narrate { page }), false)
            .await
            .unwrap();
    }
    pipeline
        .handle(&body(&job, Step::Illustrate { page: 0 }), false)
        .await
        .unwrap();
    let id = BookId::parse(&job).unwrap();
    let stored = app.state.store.find_book(&id).await.unwrap().unwrap();
    let mut book = stored.book;
    for page in book
        .pages
        .iter_mut()
        .filter(|p| (1..=missing).contains(&p.number))
    {
        page.image_state = storybook_core::domain::book::ImageState::Missing;
        page.image_key = Some(
            storybook_core::book_files::image_key(&id, page.number)
                .as_str()
                .to_owned(),
        );
        book.pending_assets -= 1;
    }
    for page in 1..=missing {
        app.state
            .blobs
            .put(
                &storybook_core::book_files::image_key(&id, page),
                storybook_core::ports::blobs::stream_of(
                    storybook_pipeline::providers::offline::placeholder_png(),
                ),
            )
            .await
            .unwrap();
    }
    assert!(
        app.state
            .store
            .replace_book(&book, stored.version)
            .await
            .unwrap()
    );
    for _ in 0..3 {
        pipeline
            .handle(&body(&job, Step::Assemble), false)
            .await
            .unwrap();
    }
    (app, user, job)
}

async fn a_book_survives_a_few_lost_pictures_but_not_many(backend: Backend) {
    // Eight pages tolerate max(1, 8/4) = 2 lost pictures.
    let (app, user, job) = assemble_with_missing_pictures(backend, 2).await;
    let status = app.get(&format!("/v1/books/{job}"), &user).await;
    assert_eq!(status.body["status"], "done", "{}", status.body);
    let pages = status.body["result"]["pages"].as_array().unwrap();
    assert_eq!(pages[0]["asset_status"]["image"]["state"], "missing");
    assert_eq!(pages[2]["asset_status"]["image"]["state"], "generated");
    assert!(pages[0]["image_url"].as_str().unwrap().starts_with("http"));

    let (app, user, job) = assemble_with_missing_pictures(backend, 3).await;
    let status = app.get(&format!("/v1/books/{job}"), &user).await;
    assert_eq!(status.body["status"], "failed");
    assert_eq!(status.body["error"]["code"], "IMAGE_FAILED");
    assert_eq!(
        app.get("/v1/credits/balance", &user).await.body["credits"],
        3,
        "refunded"
    );
}
on_both_backends!(
    #[tokio::test]
    a_book_survives_a_few_lost_pictures_but_not_many,
    a_book_survives_a_few_lost_pictures_but_not_many
);

async fn parallel_page_steps_never_write_the_book_document(backend: Backend) {
    let app = TestApp::new(backend).await;
    let pipeline = app.pipeline();
    let user = new_user_key();
    let job = crate::books::start_book(&app, &user).await;
    for step in [Step::Story, Step::Reference] {
        pipeline.handle(&body(&job, step), false).await.unwrap();
    }
    let id = BookId::parse(&job).unwrap();
    let before = app.state.store.find_book(&id).await.unwrap().unwrap();
    assert_eq!(before.book.pending_assets, 9);
    let steps: Vec<Step> = (0..=4)
        .map(|page| Step::Illustrate { page })
        .chain((1..=4).map(|page| Step::Narrate { page }))
        .collect();
    // Every page step at once, each twice (a redelivery racing the first delivery).
    let bodies: Vec<String> = steps
        .iter()
        .chain(steps.iter())
        .map(|step| body(&job, *step))
        .collect();
    let runs = bodies.iter().map(|message| pipeline.handle(message, false));
    for outcome in join_all(runs).await {
        outcome.unwrap();
    }
    let after = app.state.store.find_book(&id).await.unwrap().unwrap();
    assert_eq!(
        after.version, before.version,
        "page steps wrote only their own items"
    );
    assert_eq!(after.book.pending_assets, 0);
    assert!(after.book.pages.iter().all(|p| p.image_key.is_some()));
    assert!(after.book.story_pages().all(|p| p.audio_key.is_some()));
    pipeline
        .handle(&body(&job, Step::Assemble), false)
        .await
        .unwrap();
    let done = app.state.store.find_book(&id).await.unwrap().unwrap().book;
    assert_eq!(done.state, JobState::Done);
    // Deleting the book takes its page assets with it.
    let stored = app.state.store.find_book(&id).await.unwrap().unwrap();
    assert!(
        app.state
            .store
            .delete_book(&stored.book, stored.version)
            .await
            .unwrap()
    );
    assert!(app.state.store.find_book(&id).await.unwrap().is_none());
}
on_both_backends!(
    #[tokio::test]
    parallel_page_steps_never_write_the_book_document,
    parallel_page_steps_never_write_the_book_document
);

/// A user granted 50 credits asks for 20 books at once, under `settings`: the app, the user's
/// key and the answers.
async fn twenty_books_at_once(
    backend: Backend,
    config: storybook_core::config::Config,
) -> (Arc<TestApp>, String, Vec<Answer>) {
    let app = Arc::new(TestApp::with_config(backend, config).await);
    let user = new_user_key();
    assert_eq!(
        app.grant(&user, 50, &format!("cap-{user}")).await.status,
        200
    );
    let answers = join_all((0..20).map(|_| {
        let (app, user) = (app.clone(), user.clone());
        tokio::spawn(async move {
            app.post_json("/v1/books", &user, &BookAsk::korean(4).json(), &[])
                .await
        })
    }))
    .await;
    let answers = answers.into_iter().map(|a| a.unwrap()).collect();
    (app, user, answers)
}

/// The daily cap is counted before the book is made, atomically: twenty concurrent requests with
/// a cap of 3 make 3 books (a check made before any of them counted let 17 or 18 through), and
/// the refused ones are neither charged nor counted.
async fn concurrent_requests_never_pass_the_daily_cap(backend: Backend) {
    let config = storybook_core::config::Config {
        limits: storybook_core::config::Limits {
            books_per_day: 3,
            ..crate::harness::test_config().limits
        },
        ..crate::harness::test_config()
    };
    let (app, user, answers) = twenty_books_at_once(backend, config).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        3,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 429)),
        "{statuses:?}"
    );
    let balance = app.get("/v1/credits/balance", &user).await.body["credits"].clone();
    assert_eq!(balance, 3 + 50 - 3, "only the books made are charged");
    let day_full = app
        .post_json("/v1/books", &user, &BookAsk::korean(4).json(), &[])
        .await;
    assert_eq!(day_full.code(), "DAILY_LIMIT_EXCEEDED");
}
on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    concurrent_requests_never_pass_the_daily_cap,
    concurrent_requests_never_pass_the_daily_cap
);

/// A refused request gives its place back: a user without credits can ask all day and still make
/// the day's books once paid.
async fn refused_requests_give_their_place_back(backend: Backend) {
    let config = storybook_core::config::Config {
        opening_credits: 0,
        limits: storybook_core::config::Limits {
            books_per_day: 2,
            ..crate::harness::test_config().limits
        },
        ..crate::harness::test_config()
    };
    let app = TestApp::with_config(backend, config).await;
    let user = new_user_key();
    for _ in 0..4 {
        let poor = app
            .post_json("/v1/books", &user, &BookAsk::korean(4).json(), &[])
            .await;
        assert_eq!(poor.code(), "PAYMENT_REQUIRED");
    }
    assert_eq!(
        app.grant(&user, 5, &format!("back-{user}")).await.status,
        200
    );
    for _ in 0..2 {
        let made = app
            .post_json("/v1/books", &user, &BookAsk::korean(4).json(), &[])
            .await;
        assert_eq!(made.status, 200, "{}", made.body);
    }
}
on_both_backends!(
    #[tokio::test]
    refused_requests_give_their_place_back,
    refused_requests_give_their_place_back
);

/// The unfinished-books cap is counted in the same atomic step that makes the book: 20
/// concurrent requests with a cap of 2 make 2 books (a count read before any of them was made
/// let 16 to 19 through), and the refused ones are neither charged nor counted for the day.
async fn concurrent_requests_never_pass_the_unfinished_cap(backend: Backend) {
    let config = storybook_core::config::Config {
        limits: storybook_core::config::Limits {
            unfinished_books: 2,
            ..crate::harness::test_config().limits
        },
        ..crate::harness::test_config()
    };
    // No worker runs: every book made stays unfinished.
    let (app, user, answers) = twenty_books_at_once(backend, config).await;
    let made = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!(
        made,
        2,
        "{:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert!(
        answers
            .iter()
            .all(|a| a.status == 200 || a.code() == "TOO_MANY_PENDING_JOBS"),
        "{:?}",
        answers
            .iter()
            .map(|a| a.code().to_owned())
            .collect::<Vec<_>>()
    );
    let balance = app.get("/v1/credits/balance", &user).await.body["credits"].clone();
    assert_eq!(balance, 3 + 50 - 2, "only the books made are charged");
}
on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    concurrent_requests_never_pass_the_unfinished_cap,
    concurrent_requests_never_pass_the_unfinished_cap
);

/// An illustrator that tells when it is drawing and waits to be let go: a step held mid-way.
struct HeldIllustrator {
    inner: Arc<dyn storybook_pipeline::providers::Illustrator>,
    drawing: Arc<tokio::sync::Notify>,
    go: Arc<tokio::sync::Notify>,
}

#[async_trait::async_trait]
impl storybook_pipeline::providers::Illustrator for HeldIllustrator {
    async fn illustrate(
        &self,
        prompt: &storybook_pipeline::providers::ImagePrompt,
    ) -> Result<
        storybook_pipeline::providers::Metered<storybook_pipeline::providers::Artwork>,
        storybook_pipeline::providers::ProviderError,
    > {
        self.drawing.notify_one();
        self.go.notified().await;
        self.inner.illustrate(prompt).await
    }
}

/// A user erased while a page is being drawn: the step finishes after the erasure and leaves no
/// picture behind (before, it stored one the erasure had no record of).
async fn a_step_finishing_after_erasure_leaves_no_file(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    let job = start_book(&app, &user).await;
    let plain = app.pipeline();
    for step in [Step::Story, Step::Reference] {
        plain.handle(&body(&job, step), false).await.unwrap();
    }
    let (drawing, go) = (
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(tokio::sync::Notify::new()),
    );
    let mut providers = storybook_pipeline::providers::Providers::offline();
    providers.illustrator = Arc::new(HeldIllustrator {
        inner: providers.illustrator.clone(),
        drawing: drawing.clone(),
        go: go.clone(),
    });
    let held = app.pipeline_with(providers);
    let message = body(&job, Step::Illustrate { page: 1 });
    let step = tokio::spawn(async move { held.handle(&message, false).await });
    drawing.notified().await;
    let erased = app.erase(&user).await;
    assert_eq!(erased.status, 200, "{}", erased.body);
    go.notify_one();
    let _ = step.await.unwrap();
    let id = BookId::parse(&job).unwrap();
    assert!(app.state.store.find_book(&id).await.unwrap().is_none());
    for extension in ["png", "jpg", "webp"] {
        let key = storybook_core::book_files::image_key_as(&id, 1, extension);
        assert_eq!(
            app.state.blobs.get(&key).await.unwrap(),
            None,
            "{} outlived the erasure",
            key.as_str()
        );
    }
}
on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    a_step_finishing_after_erasure_leaves_no_file,
    a_step_finishing_after_erasure_leaves_no_file
);
