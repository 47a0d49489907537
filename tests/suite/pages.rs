//! A finished book's pages afterwards: one page made again (only it changes, its version, the
//! PDF; charged and refunded as configured; one at a time), and narration added later (the
//! whole book, or one page on demand). Both adapters, every answer against the app's contract.

use crate::app_contract::conforms;
use crate::harness::{Answer, Backend, TestApp, new_user_key, test_config};
use crate::on_both_backends;
use serde_json::{Value, json};
use std::time::Duration;
use storybook_core::config::Config;
use storybook_core::domain::book::{AudioState, Book};
use storybook_core::ports::BlobKey;

const REGENERATE: &str = "/v1/books/{job_id}/pages/{page_number}/regenerate";

async fn regenerate(app: &TestApp, user: &str, job: &str, page: i64, body: Value) -> Answer {
    let path = format!("/v1/books/{job}/pages/{page}/regenerate");
    let answer = app.post_json(&path, user, &body, &[]).await;
    conforms("POST", REGENERATE, &answer);
    answer
}

/// The stored book once page `page` reached `version` with nothing pending on it.
async fn landed(app: &TestApp, job: &str, page: u8, version: u32) -> Book {
    let started = std::time::Instant::now();
    loop {
        let book = app.book(job).await;
        let current = book.pages.iter().find(|p| p.number == page).unwrap();
        if current.version == version && current.regeneration.is_none() {
            return book;
        }
        assert!(
            started.elapsed() < crate::books::PATIENCE,
            "page {page} never reached version {version}: {current:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until page `page` has no regeneration pending.
async fn settled(app: &TestApp, job: &str, page: u8) -> Book {
    let started = std::time::Instant::now();
    loop {
        let book = app.book(job).await;
        if book
            .pages
            .iter()
            .all(|p| p.number != page || p.regeneration.is_none())
        {
            return book;
        }
        assert!(
            started.elapsed() < crate::books::PATIENCE,
            "page {page} never settled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn pdf_of(app: &TestApp, book: &Book) -> bytes::Bytes {
    let key = BlobKey::parse(book.pdf_key.as_deref().unwrap()).unwrap();
    app.state.blobs.get(&key).await.unwrap().unwrap()
}

/// A regenerated page changes that page alone and its version; the PDF is made again; the old
/// picture goes once the new one has landed.
async fn a_regenerated_page_changes_only_that_page(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    let job = crate::books::finished_book(&app, &user).await;
    let before = app.book(&job).await;
    let pdf_before = pdf_of(&app, &before).await;
    let worker = app.start_worker();

    let answer = regenerate(
        &app,
        &user,
        &job,
        2,
        json!({"mode": "both", "feedback": "더 밝게"}),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body, json!({"job_id": job, "status": "queued"}));
    let after = landed(&app, &job, 2, 2).await;
    let (old, new) = (&before.pages[2], &after.pages[2]);
    assert_ne!(new.text, old.text);
    assert_ne!(new.image_key, old.image_key);
    assert!(
        new.image_key
            .as_deref()
            .unwrap()
            .ends_with("page-02-v2.png"),
        "{new:?}"
    );
    for (a, b) in before
        .pages
        .iter()
        .zip(&after.pages)
        .filter(|(a, _)| a.number != 2)
    {
        assert_eq!(
            (&a.text, &a.image_key, a.version),
            (&b.text, &b.image_key, b.version)
        );
    }
    assert_ne!(
        pdf_of(&app, &after).await,
        pdf_before,
        "the PDF was not made again"
    );
    let old_key = BlobKey::parse(old.image_key.as_deref().unwrap()).unwrap();
    assert!(
        app.state.blobs.get(&old_key).await.unwrap().is_none(),
        "the old picture is left"
    );
    let detail = app.get(&format!("/v1/books/{job}/detail"), &user).await;
    conforms("GET", "/v1/books/{book_id}/detail", &detail);
    let page_two = &detail.body["pages"][1];
    assert_eq!(page_two["text"], new.text.as_str());
    assert!(
        page_two["image_url"]
            .as_str()
            .unwrap()
            .contains("page-02-v2"),
        "{page_two}"
    );

    // Text only: the picture stays.
    let answer = regenerate(&app, &user, &job, 3, json!({"mode": "text"})).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let text_only = landed(&app, &job, 3, 2).await;
    assert_ne!(text_only.pages[3].text, before.pages[3].text);
    assert_eq!(text_only.pages[3].image_key, before.pages[3].image_key);
    assert_eq!(text_only.pages[2], after.pages[2]);
    worker.abort();
}
on_both_backends!(
    #[tokio::test]
    a_regenerated_page_changes_only_that_page,
    a_regenerated_page_changes_only_that_page
);

/// A book still being made is a conflict; a page that does not exist, another user's book and
/// an unknown book are not found; a wrong mode or feedback is refused by the schema.
async fn regeneration_refusals(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (user, other) = (new_user_key(), new_user_key());
    let unfinished = crate::books::start_book(&app, &user).await;
    let answer = regenerate(&app, &user, &unfinished, 1, json!({"mode": "image"})).await;
    assert_eq!(
        (answer.status, answer.body["error"]["code"].as_str()),
        (409, Some("CONFLICT"))
    );
    let job = crate::books::finished_book(&app, &other).await;
    let answer = regenerate(&app, &user, &job, 1, json!({"mode": "image"})).await;
    assert_eq!(answer.status, 404, "another user's book: {}", answer.body);
    for page in [0, 5, 99, -1] {
        let answer = regenerate(&app, &other, &job, page, json!({"mode": "image"})).await;
        assert_eq!(answer.status, 404, "page {page}: {}", answer.body);
        assert_eq!(answer.body["error"]["details"]["resource"], "page");
    }
    let answer = regenerate(&app, &other, "bk_missing", 1, json!({"mode": "image"})).await;
    assert_eq!(answer.status, 404);
    for body in [
        json!({"mode": "everything"}),
        json!({}),
        json!({"mode": "text", "feedback": "x".repeat(201)}),
        json!({"mode": "text", "feedback": "<script>alert(1)</script>"}),
        json!({"mode": "text", "colour": "red"}),
    ] {
        let answer = regenerate(&app, &other, &job, 1, body.clone()).await;
        assert_eq!(answer.status, 422, "{body}: {}", answer.body);
    }
    let path = format!("/v1/books/{job}/pages/two/regenerate");
    let answer = app
        .post_json(&path, &other, &json!({"mode": "text"}), &[])
        .await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    // Nothing was marked by any of them.
    assert!(
        app.book(&job)
            .await
            .pages
            .iter()
            .all(|p| p.regeneration.is_none())
    );
}
on_both_backends!(
    #[tokio::test]
    regeneration_refusals,
    regeneration_refusals
);

fn priced() -> Config {
    Config {
        page_regeneration_price: 1,
        ..test_config()
    }
}

async fn ledger(app: &TestApp, user: &str) -> Vec<Value> {
    let answer = app.get("/v1/credits/transactions?limit=100", user).await;
    answer.body.as_array().unwrap().clone()
}

/// With a price: 10 concurrent regenerations of one page make one version at a time, and each
/// accepted one is charged once with its ledger entry; the rest are conflicts, charged nothing.
/// A regeneration refused by moderation gives its charge back, once.
async fn regenerations_are_charged_once_and_one_at_a_time(backend: Backend) {
    let app = std::sync::Arc::new(TestApp::with_config(backend, priced()).await);
    let user = new_user_key();
    let job = crate::books::finished_book(&app, &user).await;
    app.grant(&user, 5, "regenerations").await;
    let balance = || async {
        app.get("/v1/credits/balance", &user).await.body["credits"]
            .as_i64()
            .unwrap()
    };
    let start = balance().await;
    let tries: Vec<Answer> = futures::future::join_all((0..10).map(|_| {
        let (app, user, job) = (app.clone(), user.clone(), job.clone());
        async move { regenerate(&app, &user, &job, 1, json!({"mode": "image"})).await }
    }))
    .await;
    let accepted = tries.iter().filter(|a| a.status == 200).count();
    let conflicts = tries.iter().filter(|a| a.status == 409).count();
    assert_eq!(
        (accepted, accepted + conflicts),
        (1, 10),
        "{:?}",
        tries.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    assert_eq!(balance().await, start - 1);
    let charges: Vec<Value> = ledger(&app, &user)
        .await
        .into_iter()
        .filter(|e| {
            e["transaction_type"] == "usage"
                && e["description"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("made again")
        })
        .collect();
    assert_eq!(charges.len(), 1, "{charges:?}");
    assert_eq!(charges[0]["amount"], -1);

    let worker = app.start_worker();
    landed(&app, &job, 1, 2).await;
    // The next one is accepted once the first has landed.
    let again = regenerate(&app, &user, &job, 1, json!({"mode": "image"})).await;
    assert_eq!(again.status, 200, "{}", again.body);
    landed(&app, &job, 1, 3).await;
    assert_eq!(balance().await, start - 2);

    // Refused feedback: the page stays, the charge comes back, once.
    let refused = regenerate(
        &app,
        &user,
        &job,
        2,
        json!({"mode": "both", "feedback": "more blood"}),
    )
    .await;
    assert_eq!(refused.status, 200, "{}", refused.body);
    let book = settled(&app, &job, 2).await;
    worker.abort();
    assert_eq!(book.pages[2].version, 1);
    assert_eq!(balance().await, start - 2);
    let refunds: Vec<Value> = ledger(&app, &user)
        .await
        .into_iter()
        .filter(|e| e["transaction_type"] == "refund")
        .collect();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    // Asking again after the refunded attempt is a new request, charged again.
    let again = regenerate(&app, &user, &job, 2, json!({"mode": "image"})).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(balance().await, start - 3);
    // Not enough credits (three books spent the three opening credits): refused, nothing marked.
    let poor = new_user_key();
    let theirs = crate::books::finished_book(&app, &poor).await;
    for _ in 0..2 {
        crate::books::finished_book(&app, &poor).await;
    }
    let answer = regenerate(&app, &poor, &theirs, 1, json!({"mode": "image"})).await;
    assert_eq!(answer.status, 402, "{}", answer.body);
    assert!(
        app.book(&theirs)
            .await
            .pages
            .iter()
            .all(|p| p.regeneration.is_none())
    );
}
on_both_backends!(
    #[tokio::test]
    regenerations_are_charged_once_and_one_at_a_time,
    regenerations_are_charged_once_and_one_at_a_time
);

/// A book made without narration: narrated afterwards as a whole (409 while it is being made),
/// or one page read aloud on demand; every URL absolute and loadable.
async fn narration_after_the_book(backend: Backend) {
    let config = Config {
        narration: false,
        ..test_config()
    };
    let app = TestApp::with_config(backend, config).await;
    let user = new_user_key();
    let unfinished = crate::books::start_book(&app, &user).await;
    let answer = app
        .call(
            http::Method::POST,
            &format!("/v1/books/{unfinished}/audio"),
            &[("x-user-key", &user)],
            None,
        )
        .await;
    conforms("POST", "/v1/books/{book_id}/audio", &answer);
    assert_eq!(answer.status, 409, "{}", answer.body);
    let job = crate::books::finished_book(&app, &user).await;
    let silent = app.book(&job).await;
    assert!(silent.story_pages().all(|p| p.audio_key.is_none()));

    // One page on demand.
    let path = format!("/v1/books/{job}/pages/2/audio");
    let first = app.get(&path, &user).await;
    conforms(
        "GET",
        "/v1/books/{book_id}/pages/{page_number}/audio",
        &first,
    );
    assert_eq!(first.status, 200, "{}", first.body);
    let url = first.body["audio_url"].as_str().unwrap();
    assert!(
        url.starts_with("http://") || url.starts_with("https://"),
        "{url}"
    );
    let page_two = app.book(&job).await.pages[2].clone();
    assert_eq!(page_two.audio_state, AudioState::Available);
    let again = app.get(&path, &user).await;
    assert_eq!(again.status, 200);
    assert_eq!(app.book(&job).await.pages[2].audio_key, page_two.audio_key);
    for bad in ["/pages/0/audio", "/pages/9/audio"] {
        let answer = app.get(&format!("/v1/books/{job}{bad}"), &user).await;
        assert_eq!(answer.status, 404, "{bad}: {}", answer.body);
    }
    let other = app.get(&path, &new_user_key()).await;
    assert_eq!(other.status, 404);

    // The whole book afterwards.
    let worker = app.start_worker();
    let answer = app
        .call(
            http::Method::POST,
            &format!("/v1/books/{job}/audio"),
            &[("x-user-key", &user)],
            None,
        )
        .await;
    conforms("POST", "/v1/books/{book_id}/audio", &answer);
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["status"], "queued");
    assert_eq!(
        answer.body["pages_queued"], 3,
        "page 2 has its audio already"
    );
    let started = std::time::Instant::now();
    loop {
        let book = app.book(&job).await;
        if book
            .story_pages()
            .all(|p| p.audio_state == AudioState::Available)
        {
            break;
        }
        assert!(
            started.elapsed() < crate::books::PATIENCE,
            "{:?}",
            book.pages
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    worker.abort();
    let detail = app.get(&format!("/v1/books/{job}/detail"), &user).await;
    conforms("GET", "/v1/books/{book_id}/detail", &detail);
    for page in detail.body["pages"].as_array().unwrap() {
        assert!(
            page["audio_url"]
                .as_str()
                .is_some_and(|u| u.starts_with("http")),
            "{page}"
        );
    }
    let answer = app
        .call(
            http::Method::POST,
            &format!("/v1/books/{job}/audio"),
            &[("x-user-key", &user)],
            None,
        )
        .await;
    assert_eq!(answer.body["status"], "available");
}
on_both_backends!(
    #[tokio::test]
    narration_after_the_book,
    narration_after_the_book
);
