//! What the last hostile pass found, each on both adapters: every word a parent writes is
//! moderated before it reaches a model (a saved sheet, a preset's name, a series' title and
//! hint), the story model's markup is never stored, narration is paid for once whatever the
//! concurrency and capped in size, paid routes stop with the kill switch, a series retry answers
//! its first job, nothing of a deleted book or character outlives it, and the inputs that slipped
//! past the rules (encoded markup, blank names, bytes that are not UTF-8, too many characters).

use crate::app_contract::conforms;
use crate::books::{PATIENCE, poll};
use crate::characters::sheet;
use crate::harness::{Answer, Backend, BookAsk, TestApp, new_user_key, test_config};
use crate::on_both_backends;
use futures::future::join_all;
use http::Method;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use storybook_core::config::Config;
use storybook_core::domain::book::AudioState;
use storybook_http::AppState;
use storybook_pipeline::providers::Providers;
use storybook_pipeline::providers::settings::ProviderSettings;
use wiremock::matchers::{body_string_contains, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A word the moderation model refuses and the local word list does not know: a refusal for it
/// proves the model was asked.
const MODEL_ONLY: &str = "zorblax";

/// An OpenAI-compatible server on loopback that keeps every request: moderation flags any text
/// holding [`MODEL_ONLY`]; stories (English, `pages` pages), pictures and speech answer.
async fn openai_server(pages: usize) -> MockServer {
    let server = MockServer::start().await;
    let flagged = json!({"results": [{"flagged": true, "categories": {"violence": true}}]});
    Mock::given(path("/v1/moderations"))
        .and(body_string_contains(MODEL_ONLY))
        .respond_with(ResponseTemplate::new(200).set_body_json(flagged))
        .with_priority(1)
        .mount(&server)
        .await;
    mount_moderation_allowing(&server).await;
    let story = crate::providers::story_json(pages).to_string();
    Mock::given(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(crate::providers::chat_answer(&story, "stop")),
        )
        .mount(&server)
        .await;
    mount_pictures(&server, Duration::ZERO).await;
    Mock::given(path("/v1/audio/speech"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(b"ID3\x03\x00narration".to_vec(), "audio/mpeg"),
        )
        .mount(&server)
        .await;
    server
}

/// Moderation on `server` that lets every text through (unless a mock of higher priority flags it).
async fn mount_moderation_allowing(server: &MockServer) {
    Mock::given(path("/v1/moderations"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"results": [{"flagged": false, "categories": {}}]})),
        )
        .mount(server)
        .await;
}

/// Pictures from `server`'s images API, each answered after `delay`.
async fn mount_pictures(server: &MockServer, delay: Duration) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(crate::providers::png());
    for route in ["/v1/images/generations", "/v1/images/edits"] {
        Mock::given(path(route))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"created": 1, "data": [{"b64_json": b64.clone()}]}))
                    .set_delay(delay),
            )
            .mount(server)
            .await;
    }
}

/// Every provider on `server` (story, moderation, pictures, speech), breakers in `state`'s store,
/// with `extra` settings.
fn providers(state: &AppState, server: &MockServer, extra: &[(&str, &str)]) -> Providers {
    let mut vars: HashMap<String, String> = [
        ("OPENAI_API_KEY", "sk-test".to_owned()),
        ("OPENAI_BASE_URL", format!("{}/v1", server.uri())),
        ("IMAGE_PROVIDERS", "openai".to_owned()),
        // A circuit opened by failures half-opens in milliseconds here, in seconds in production.
        ("BREAKER_COOLDOWN_SECONDS", "0.05".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (name, value) in extra {
        vars.insert((*name).to_owned(), (*value).to_owned());
    }
    let mut settings = ProviderSettings::from_lookup(&|name| vars.get(name).cloned()).unwrap();
    if let Some(openai) = settings.openai.as_mut() {
        openai.api.retry = crate::providers::quick_retries();
    }
    settings.build(state.store.clone(), state.clock.clone())
}

/// The app with its studio on `server`, and a worker whose steps call it too.
async fn app_on(
    backend: Backend,
    config: Config,
    server: &MockServer,
    extra: &[(&str, &str)],
) -> (TestApp, tokio::task::JoinHandle<()>) {
    let app =
        TestApp::with_studio_over(backend, config, |state| providers(state, server, extra)).await;
    let pipeline = app.pipeline_with(providers(&app.state, server, extra));
    let worker = tokio::spawn(storybook_pipeline::pipeline::worker::run_local(pipeline));
    (app, worker)
}

/// Every body `server` was sent on `route`, as text.
async fn sent_to(server: &MockServer, route: &str) -> Vec<String> {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path() == route)
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect()
}

fn balance(answer: &Answer) -> i64 {
    answer.body["credits"].as_i64().unwrap()
}

async fn credits(app: &TestApp, user: &str) -> i64 {
    balance(&app.get("/v1/credits/balance", user).await)
}

/// Refused as unsafe words are: 400 `SAFETY_INPUT` in the envelope.
fn unsafe_words(answer: &Answer, route: &str) {
    conforms("POST", route, answer);
    assert_eq!(
        (answer.status, answer.code()),
        (400, "SAFETY_INPUT"),
        "{route}: {}",
        answer.body
    );
}

/// Issue items 1 and 2: a sheet, a preset's name and a series' words are moderated where they
/// enter, with the local word list and the model; a sheet stored under older rules is moderated
/// again when a book uses it. A refused book is failed as `SAFETY_INPUT` with nothing charged,
/// and no refused word reaches a story or picture prompt.
async fn every_word_a_parent_writes_is_moderated(backend: Backend) {
    let server = openai_server(4).await;
    let (app, _worker) = app_on(backend, test_config(), &server, &[]).await;
    let user = new_user_key();
    app.grant(&user, 5, "safety").await;
    let start = credits(&app, &user).await;

    let mut murder = sheet("Mina");
    murder["master_description"] = json!("a boy covered in blood holding a knife to murder");
    let mut trait_kill = sheet("Mina");
    trait_kill["personality_traits"] = json!(["curious", "likes to kill"]);
    let mut model_only = sheet("Mina");
    model_only["distinctive_features"] = json!([format!("a {MODEL_ONLY} on his belt")]);
    for bad in [&murder, &trait_kill, &model_only] {
        let answer = app.post_json("/v1/characters", &user, bad, &[]).await;
        unsafe_words(&answer, "/v1/characters");
    }
    assert!(
        sent_to(&server, "/v1/moderations")
            .await
            .iter()
            .any(|body| body.contains(MODEL_ONLY)),
        "the sheet was shown to the moderation model"
    );
    let preset = json!({"preset_id": "bunny-tori", "name": "Killer Joe"});
    let answer = app
        .post_json("/v1/characters/from-preset", &user, &preset, &[])
        .await;
    unsafe_words(&answer, "/v1/characters/from-preset");
    assert!(
        app.get("/v1/characters", &user).await.body["characters"]
            .as_array()
            .unwrap()
            .is_empty(),
        "nothing refused is stored"
    );

    // A sheet stored before the rules refused it is judged again when a book names it.
    let good = app
        .post_json("/v1/characters", &user, &sheet("Mina"), &[])
        .await;
    assert_eq!(good.status, 200, "{}", good.body);
    let id = good.body["character_id"].as_str().unwrap();
    let mut stored = app
        .state
        .store
        .find_character(
            &app.user_id(&user),
            &storybook_core::domain::character::CharacterId::parse(id).unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    stored.master_description = format!("A small girl who keeps a {MODEL_ONLY} in her pocket");
    app.state
        .store
        .delete_character(&stored.user, &stored.id)
        .await
        .unwrap();
    app.state.store.put_character(&stored).await.unwrap();
    let mut with_sheet = BookAsk::english(4).json();
    with_sheet["character_id"] = json!(id);
    // A series of a character whose sheet passes: its own words are what is refused.
    let clean = app
        .post_json("/v1/characters", &user, &sheet("Joon"), &[])
        .await;
    let clean = clean.body["character_id"].as_str().unwrap();
    let series_hint = json!({"topic": "the moon", "character_id": clean, "language": "en",
        "new_topic_hint": "this time there is blood and a murder"});
    let series_title = json!({"topic": "the moon", "character_id": clean, "language": "en",
        "series_title": format!("The {MODEL_ONLY} saga")});
    let before = credits(&app, &user).await;
    assert_eq!(before, start);
    let mut jobs = Vec::new();
    for (route, body) in [
        ("/v1/books", &with_sheet),
        ("/v1/books/series", &series_hint),
        ("/v1/books/series", &series_title),
    ] {
        let created = app.post_json(route, &user, body, &[]).await;
        assert_eq!(created.status, 200, "{route}: {}", created.body);
        jobs.push(created.body["job_id"].as_str().unwrap().to_owned());
    }
    for job in &jobs {
        let failed = poll(&app, &user, job, PATIENCE).await;
        assert_eq!(failed.body["status"], "failed", "{}", failed.body);
        assert_eq!(
            failed.body["error"]["code"], "SAFETY_INPUT",
            "{}",
            failed.body
        );
    }
    assert_eq!(
        credits(&app, &user).await,
        start,
        "every refused book refunded"
    );
    // Refused before anything was paid for: no story, no picture was asked for at all.
    for route in [
        "/v1/chat/completions",
        "/v1/images/generations",
        "/v1/images/edits",
    ] {
        let sent = sent_to(&server, route).await;
        assert!(sent.is_empty(), "{route} was sent {sent:?}");
    }
}
on_both_backends!(
    #[tokio::test]
    every_word_a_parent_writes_is_moderated,
    every_word_a_parent_writes_is_moderated
);

/// Issue item 3: a story whose title or page holds markup is refused (asked for again, then the
/// book fails and is refunded); nothing of it is stored or served.
async fn the_story_models_markup_is_never_stored(backend: Backend) {
    let server = MockServer::start().await;
    let mut story = crate::providers::story_json(4);
    story["title"] = json!("<img src=x onerror=alert(document.cookie)>Moon Cat");
    story["pages"][1]["text"] = json!("Dino sang <script>alert(1)</script> to the stars.");
    Mock::given(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(crate::providers::chat_answer(&story.to_string(), "stop")),
        )
        .mount(&server)
        .await;
    mount_moderation_allowing(&server).await;
    let (app, _worker) = app_on(backend, test_config(), &server, &[]).await;
    let user = new_user_key();
    let start = credits(&app, &user).await;
    let created = app
        .post_json("/v1/books", &user, &BookAsk::english(4).json(), &[])
        .await;
    let job = created.body["job_id"].as_str().unwrap().to_owned();
    let failed = poll(&app, &user, &job, PATIENCE).await;
    assert_eq!(failed.body["status"], "failed", "{}", failed.body);
    assert_eq!(credits(&app, &user).await, start, "refunded");
    for needle in ["onerror", "<script", "<img"] {
        assert!(
            app.records_holding(needle).await.is_empty(),
            "{needle} was stored"
        );
    }
    let library = app.get("/v1/library", &user).await;
    assert!(
        !library.body.to_string().contains("onerror"),
        "{}",
        library.body
    );
}
on_both_backends!(
    #[tokio::test]
    the_story_models_markup_is_never_stored,
    the_story_models_markup_is_never_stored
);

/// Waits until every story page of `job` has `state` audio.
async fn narrated(app: &TestApp, job: &str) {
    let started = Instant::now();
    loop {
        let book = app.book(job).await;
        if book
            .story_pages()
            .all(|p| matches!(p.audio_state, AudioState::Available | AudioState::Missing))
        {
            return;
        }
        assert!(started.elapsed() < PATIENCE, "{:?}", book.pages);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Issue items 4 and 6: twenty concurrent requests for a book's narration, and six more while
/// it is pending, narrate each page once; twenty concurrent reads of a silent page read it aloud
/// once (each answered its URL); that read is limited as generation; with the kill switch on,
/// narration and regeneration are refused as a new book is, nothing charged.
async fn narration_is_paid_for_once(backend: Backend) {
    let server = openai_server(4).await;
    let config = Config {
        narration: false,
        book_audio_price: 1,
        page_regeneration_price: 1,
        ..test_config()
    };
    let (app, _worker) = app_on(backend, config, &server, &[]).await;
    let user = new_user_key();
    app.grant(&user, 10, "narration").await;
    let made = app
        .post_json("/v1/books", &user, &BookAsk::english(4).json(), &[])
        .await;
    let job = made.body["job_id"].as_str().unwrap().to_owned();
    assert_eq!(
        poll(&app, &user, &job, PATIENCE).await.body["status"],
        "done"
    );
    assert!(sent_to(&server, "/v1/audio/speech").await.is_empty());

    // One page read on demand by twenty readers at once: one reading, every reader its URL.
    let path = format!("/v1/books/{job}/pages/1/audio");
    let reads = join_all((0..20).map(|_| app.get(&path, &user))).await;
    let urls: Vec<&str> = reads
        .iter()
        .map(|read| {
            assert_eq!(read.status, 200, "{}", read.body);
            read.body["audio_url"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        sent_to(&server, "/v1/audio/speech").await.len(),
        1,
        "one reading"
    );
    let key = app.book(&job).await.pages[1].audio_key.clone().unwrap();
    assert!(urls.iter().all(|url| url.contains(&key)), "{urls:?}");

    // The whole book, twenty at once and six more after: the three silent pages, once each.
    let audio = format!("/v1/books/{job}/audio");
    let headers = [("x-user-key", user.as_str())];
    let asked = join_all((0..20).map(|_| app.call(Method::POST, &audio, &headers, None))).await;
    for answer in &asked {
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    for _ in 0..6 {
        app.call(Method::POST, &audio, &[("x-user-key", &user)], None)
            .await;
    }
    narrated(&app, &job).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        sent_to(&server, "/v1/audio/speech").await.len(),
        4,
        "each page narrated once"
    );
    assert_eq!(
        credits(&app, &user).await,
        10 + 3 - 1 - 1,
        "one book, one narration"
    );

    // Switched off: narration and regeneration answer as a new book does, and charge nothing.
    let other = app
        .post_json("/v1/books", &user, &BookAsk::english(4).json(), &[])
        .await;
    let other = other.body["job_id"].as_str().unwrap().to_owned();
    assert_eq!(
        poll(&app, &user, &other, PATIENCE).await.body["status"],
        "done"
    );
    let on = app
        .call(
            Method::PUT,
            "/v1/admin/kill-switch",
            &[("authorization", &format!("Bearer {}", app.admin_key))],
            Some(r#"{"enabled": true, "reason": "test"}"#),
        )
        .await;
    assert_eq!(on.status, 200, "{}", on.body);
    let before = credits(&app, &user).await;
    let book = app
        .post_json("/v1/books", &user, &BookAsk::english(4).json(), &[])
        .await;
    let regenerate = app
        .post_json(
            &format!("/v1/books/{other}/pages/1/regenerate"),
            &user,
            &json!({"mode": "image"}),
            &[],
        )
        .await;
    let narrate = app
        .call(
            Method::POST,
            &format!("/v1/books/{other}/audio"),
            &[("x-user-key", &user)],
            None,
        )
        .await;
    let read = app
        .get(&format!("/v1/books/{other}/pages/2/audio"), &user)
        .await;
    for answer in [&regenerate, &narrate, &read] {
        assert_eq!(
            (answer.status, answer.code()),
            (book.status, book.code()),
            "{}",
            answer.body
        );
    }
    assert_eq!(book.status, 503);
    assert_eq!(credits(&app, &user).await, before, "nothing charged");
    assert!(
        app.book(&other)
            .await
            .pages
            .iter()
            .all(|p| p.regeneration.is_none())
    );

    // A read that may start paid work counts as generation.
    let limited = TestApp::with_config(
        backend,
        Config {
            limits: storybook_core::config::Limits {
                generation_per_minute: 2,
                ..test_config().limits
            },
            ..test_config()
        },
    )
    .await;
    let reader = new_user_key();
    let answers = join_all((0..3).map(|_| {
        limited.get(
            "/v1/books/bk_0123456789abcdef0123456789abcdef/pages/1/audio",
            &reader,
        )
    }))
    .await;
    assert!(
        answers
            .iter()
            .any(|a| a.status == 429 && a.code() == "RATE_LIMIT_EXCEEDED"),
        "{answers:?}"
    );
}
on_both_backends!(
    #[tokio::test]
    narration_is_paid_for_once,
    narration_is_paid_for_once
);

/// Issue item 5: a speech answer past `MAX_AUDIO_BYTES` is refused as it streams; the book is
/// delivered with its narration missing, and nothing of it stored.
async fn speech_answers_are_capped(backend: Backend) {
    let server = openai_server(4).await;
    Mock::given(path("/v1/audio/speech"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(vec![0xFFu8; 256 * 1024], "audio/mpeg"),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    let (app, _worker) = app_on(
        backend,
        test_config(),
        &server,
        &[("MAX_AUDIO_BYTES", "65536")],
    )
    .await;
    let user = new_user_key();
    let made = app
        .post_json("/v1/books", &user, &BookAsk::english(4).json(), &[])
        .await;
    let job = made.body["job_id"].as_str().unwrap().to_owned();
    let done = poll(&app, &user, &job, PATIENCE).await;
    assert_eq!(done.body["status"], "done", "{}", done.body);
    for page in done.body["result"]["pages"].as_array().unwrap() {
        assert_eq!(page["asset_status"]["audio"]["state"], "missing", "{page}");
    }
    for (key, bytes) in app.all_blobs().await {
        assert!(
            bytes.len() <= 65536 || key.ends_with(".pdf"),
            "{key}: {}",
            bytes.len()
        );
        assert!(!key.ends_with(".mp3"), "{key} stored");
    }
}
on_both_backends!(
    #[tokio::test]
    speech_answers_are_capped,
    speech_answers_are_capped
);

/// Issue item 7: the same series request twice under one key answers the first job, charged
/// once.
async fn a_series_retry_answers_its_first_job(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    let made = app
        .post_json("/v1/characters", &user, &sheet("Mina"), &[])
        .await;
    let id = made.body["character_id"].as_str().unwrap();
    let body = json!({"topic": "the moon", "character_id": id});
    let key = [("x-idempotency-key", "series-retry-1")];
    let first = app.post_json("/v1/books/series", &user, &body, &key).await;
    let again = app.post_json("/v1/books/series", &user, &body, &key).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(first.body["job_id"], again.body["job_id"]);
    assert_eq!(credits(&app, &user).await, 2, "charged once");
    let other = app
        .post_json("/v1/books/series", &new_user_key(), &body, &key)
        .await;
    assert_eq!(other.status, 404, "another's character: {}", other.body);
}
on_both_backends!(
    #[tokio::test]
    a_series_retry_answers_its_first_job,
    a_series_retry_answers_its_first_job
);

/// `DELETE path` as `user`.
async fn delete(app: &TestApp, path: &str, user: &str) -> Answer {
    app.call(Method::DELETE, path, &[("x-user-key", user)], None)
        .await
}

/// The blobs stored under `folder/`.
async fn blobs_in(app: &TestApp, folder: &str) -> Vec<String> {
    app.all_blobs()
        .await
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| key.starts_with(&format!("{folder}/")))
        .collect()
}

/// Issue items 8, 9 and 14: a page regeneration racing the book's deletion or its user's erasure
/// leaves no file of the book (its PDF included); deleted characters leave no folder; a large
/// PNG is refused before it is decoded.
async fn nothing_outlives_a_deletion(backend: Backend) {
    let server = openai_server(4).await;
    let (app, worker) = app_on(backend, test_config(), &server, &[]).await;
    let (deleter, eraser) = (new_user_key(), new_user_key());
    let mut books = Vec::new();
    for user in [&deleter, &eraser] {
        let made = app
            .post_json("/v1/books", user, &BookAsk::english(4).json(), &[])
            .await;
        let job = made.body["job_id"].as_str().unwrap().to_owned();
        assert_eq!(
            poll(&app, user, &job, PATIENCE).await.body["status"],
            "done"
        );
        books.push(job);
    }
    worker.abort();
    // Pictures now take a while: the deletion lands while the page is being drawn.
    let slow = MockServer::start().await;
    mount_moderation_allowing(&slow).await;
    mount_pictures(&slow, Duration::from_millis(1500)).await;
    let pipeline = app.pipeline_with(providers(&app.state, &slow, &[]));
    let _slow_worker = tokio::spawn(storybook_pipeline::pipeline::worker::run_local(pipeline));
    for (user, job) in [(&deleter, &books[0]), (&eraser, &books[1])] {
        let asked = app
            .post_json(
                &format!("/v1/books/{job}/pages/2/regenerate"),
                user,
                &json!({"mode": "image"}),
                &[],
            )
            .await;
        assert_eq!(asked.status, 200, "{}", asked.body);
    }
    let started = Instant::now();
    while slow
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().starts_with("/v1/images"))
        .count()
        < 2
    {
        assert!(started.elapsed() < PATIENCE, "the regenerations never drew");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deleted = delete(&app, &format!("/v1/library/{}", books[0]), &deleter).await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    let erased = delete(&app, "/v1/users/me", &eraser).await;
    assert_eq!(erased.status, 200, "{}", erased.body);
    // The drawings answer, the steps end; then nothing of either book is left.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    for job in &books {
        let started = Instant::now();
        loop {
            let left = blobs_in(&app, &format!("books/{job}")).await;
            if left.is_empty() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "left: {left:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    if let Some(dir) = &app.data_dir {
        for job in &books {
            assert!(
                !dir.join("blobs/books").join(job).exists(),
                "{job}'s folder is left"
            );
        }
    }

    // Characters from drawings, deleted one by one or with the consent: no folder of theirs
    // left (described by the offline studio).
    let app = TestApp::new(backend).await;
    let parent = new_user_key();
    crate::uploads::consent(&app, &parent, true).await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let fields: [(&str, Option<&str>, &[u8]); 1] =
            [("drawing", Some("d.png"), &crate::uploads::drawing())];
        let made =
            crate::uploads::upload(&app, &parent, "/v1/characters/from-drawing", &fields, None)
                .await;
        assert_eq!(made.status, 200, "{}", made.body);
        ids.push(made.body["character_id"].as_str().unwrap().to_owned());
    }
    let gone = delete(&app, &format!("/v1/characters/{}", ids[0]), &parent).await;
    assert_eq!(gone.status, 200, "{}", gone.body);
    // Issue item 14: a PNG is decoded whole, so one of 25 megapixels is refused by its header
    // (a JPEG that large is decoded at a reduced scale: `pictures`' own test).
    let fields: [(&str, Option<&str>, &[u8]); 1] =
        [("drawing", Some("d.png"), &crate::uploads::bomb(5000))];
    let large =
        crate::uploads::upload(&app, &parent, "/v1/characters/from-drawing", &fields, None).await;
    assert_eq!(large.status, 400, "{}", large.body);
    assert_eq!(large.body["error"]["details"]["reason"], "too_many_pixels");
    assert_eq!(
        large.body["error"]["details"]["limit_pixels"],
        storybook_pipeline::pictures::WHOLE_DECODE_PIXELS
    );
    let revoked = app
        .post_json("/v1/consent/revoke", &parent, &json!({}), &[])
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    for id in &ids {
        assert!(blobs_in(&app, &format!("characters/{id}")).await.is_empty());
        if let Some(dir) = &app.data_dir {
            assert!(
                !dir.join("blobs/characters").join(id).exists(),
                "{id}'s folder is left"
            );
        }
    }
}
on_both_backends!(
    #[tokio::test]
    nothing_outlives_a_deletion,
    nothing_outlives_a_deletion
);

/// Issue items 10, 11 and 13: markup in character references is markup wherever a parent
/// writes; a consent version is a label; a blank sheet name, a form name that is not UTF-8 and a
/// character past `CHARACTERS_PER_USER` (racing requests too) are refused.
async fn inputs_that_slipped_past_the_rules(backend: Backend) {
    let config = Config {
        characters_per_user: 3,
        ..test_config()
    };
    let app = TestApp::with_config(backend, config).await;
    let user = new_user_key();
    for encoded in [
        "javascript&colon;alert(1)",
        "java&#x09;script:alert(1)",
        "&#x3C;script&#x3E;",
    ] {
        let mut book = BookAsk::english(4).json();
        book["topic"] = json!(format!("a cat {encoded}"));
        let answer = app.post_json("/v1/books", &user, &book, &[]).await;
        assert_eq!(answer.status, 422, "{encoded}: {}", answer.body);
        let mut bad = sheet("Mina");
        bad["master_description"] = json!(format!("A small girl who likes {encoded} a lot"));
        let answer = app.post_json("/v1/characters", &user, &bad, &[]).await;
        assert_eq!(answer.status, 422, "{encoded}: {}", answer.body);
    }
    let job = crate::books::finished_book(&app, &user).await;
    let feedback = json!({"mode": "text", "feedback": "java&#x09;script:alert(1)"});
    let answer = app
        .post_json(
            &format!("/v1/books/{job}/pages/1/regenerate"),
            &user,
            &feedback,
            &[],
        )
        .await;
    assert_eq!(answer.status, 422, "{}", answer.body);

    let consent = json!({"privacy": true, "data_processing": true,
        "consent_version": "<b>2026</b>"});
    let answer = app.post_json("/v1/consent", &user, &consent, &[]).await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    let mut blank = sheet("Mina");
    blank["name"] = json!("   ");
    let answer = app.post_json("/v1/characters", &user, &blank, &[]).await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    let answer = app
        .send(
            "/v1/characters/from-text",
            &[("x-user-key", &user)],
            "application/x-www-form-urlencoded",
            b"name=%ff%fe&age=5&traits=kind".to_vec(),
        )
        .await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    assert!(app.records_holding("\u{FFFD}").await.is_empty());

    // Three characters at most, whatever the concurrency.
    let racers = new_user_key();
    let made = join_all((0..8).map(|i| {
        let body = sheet(&format!("Racer {i}"));
        let app = &app;
        let racers = racers.clone();
        async move { app.post_json("/v1/characters", &racers, &body, &[]).await }
    }))
    .await;
    assert!(
        made.iter().all(|a| a.status == 200 || a.status == 409),
        "{made:?}"
    );
    let kept = app.get("/v1/characters", &racers).await.body["total"]
        .as_u64()
        .unwrap();
    // Racing requests may all be refused; never are more than three kept.
    assert!(kept <= 3, "{kept} kept");
    while app.get("/v1/characters", &racers).await.body["total"]
        .as_u64()
        .unwrap()
        < 3
    {
        let answer = app
            .post_json("/v1/characters", &racers, &sheet("Late"), &[])
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let fourth = app
        .post_json("/v1/characters", &racers, &sheet("Four"), &[])
        .await;
    conforms("POST", "/v1/characters", &fourth);
    assert_eq!(
        (fourth.status, fourth.code()),
        (409, "CONFLICT"),
        "{}",
        fourth.body
    );
    let preset = app
        .post_json(
            "/v1/characters/from-preset",
            &racers,
            &json!({"preset_id": "bunny-tori"}),
            &[],
        )
        .await;
    assert_eq!(
        (preset.status, preset.code()),
        (409, "CONFLICT"),
        "{}",
        preset.body
    );
}
on_both_backends!(
    #[tokio::test]
    inputs_that_slipped_past_the_rules,
    inputs_that_slipped_past_the_rules
);

/// Issue item 12 (local mode's own route, so the embedded adapter alone): a blob path that is
/// not UTF-8 answers the envelope, not a plain-text 400.
#[tokio::test]
async fn a_local_blob_path_that_is_not_text_answers_the_envelope() {
    let app = TestApp::new(Backend::Embedded).await;
    let answer = app
        .call(Method::GET, "/local/blobs/%ff.png", &[], None)
        .await;
    assert_eq!(answer.status, 400, "{:?}", answer.body);
    assert_eq!(answer.code(), "BAD_REQUEST");
    assert!(!answer.body.to_string().contains("key"), "{}", answer.body);
}
