//! Books made end to end through the providers' real wire formats (OpenAI-compatible story,
//! moderation and speech; fal's queue for pictures, fetched from an output URL), and
//! redelivered steps that neither pay twice nor change the book.

use super::{chat_answer, png};
use crate::books::{poll, start_book};
use crate::harness::{Backend, TestApp};
use crate::on_both_backends;
use std::collections::HashMap;
use std::time::Duration;
use storybook_core::domain::book::{BookId, Step};
use storybook_core::ports::queue::StepMessage;
use storybook_pipeline::providers::fetch::FetchPolicy;
use storybook_pipeline::providers::settings::ProviderSettings;
use wiremock::matchers::{body_string_contains, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn korean_story(pages: usize) -> serde_json::Value {
    serde_json::json!({
        "title": "디노와 밤하늘",
        "pages": (0..pages).map(|i| serde_json::json!({
            "text": format!("디노는 밤하늘의 별을 {}번 세었어요.", i + 1),
            "scene": format!("A small green dinosaur counting stars, scene {}", i + 1),
            "characters": ["토리"],
        })).collect::<Vec<_>>(),
        "cover_scene": "Tori the dinosaur under a crescent moon",
        "characters": [{"name": "토리", "description": "a small round green dinosaur with a cream belly", "features": ["red scarf", "big round eyes"]}],
    })
}

/// OpenAI-compatible story, moderation and speech.
async fn openai_server(pages: usize) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(chat_answer(&korean_story(pages).to_string(), "stop")),
        )
        .mount(&server)
        .await;
    Mock::given(path("/v1/moderations"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"results": [{"flagged": false, "categories": {}}]}),
            ),
        )
        .mount(&server)
        .await;
    Mock::given(path("/v1/audio/speech"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(b"ID3\x03\x00narration".to_vec(), "audio/mpeg"),
        )
        .mount(&server)
        .await;
    server
}

/// A request in fal's queue on `server`, submitted by the POSTs `submits` matches (a higher
/// `priority` wins where several match), completed, and answered with an output URL on the same
/// server, flagged as not safe for work when `nsfw`.
async fn fal_request(
    server: &MockServer,
    id: &str,
    submits: wiremock::MockBuilder,
    priority: u8,
    nsfw: bool,
) {
    let base = server.uri();
    submits
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "request_id": id, "status_url": format!("{base}/requests/{id}/status"), "response_url": format!("{base}/requests/{id}"),
        })))
        .with_priority(priority)
        .mount(server)
        .await;
    Mock::given(path(format!("/requests/{id}/status")))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"status": "COMPLETED"})),
        )
        .mount(server)
        .await;
    Mock::given(path(format!("/requests/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "images": [{"url": format!("{base}/files/picture.png")}], "has_nsfw_concepts": [nsfw],
        })))
        .mount(server)
        .await;
    Mock::given(path("/files/picture.png"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(png().to_vec(), "image/png"))
        .mount(server)
        .await;
}

/// fal's queue; every result is an output URL on the same server.
async fn fal_server() -> MockServer {
    let server = MockServer::start().await;
    fal_request(&server, "r", Mock::given(method("POST")), 5, false).await;
    server
}

fn providers(
    app: &TestApp,
    openai: &MockServer,
    fal: &MockServer,
) -> storybook_pipeline::providers::Providers {
    let vars: HashMap<&str, String> = [
        ("OPENAI_API_KEY", "sk-test".to_owned()),
        ("OPENAI_BASE_URL", format!("{}/v1", openai.uri())),
        ("FAL_KEY", "fal-test".to_owned()),
        ("FAL_BASE_URL", fal.uri()),
        ("IMAGE_PROVIDERS", "fal".to_owned()),
        ("PROVIDER_POLL_SECONDS", "0.005".to_owned()),
        ("BREAKER_COOLDOWN_SECONDS", "0.05".to_owned()),
    ]
    .into_iter()
    .collect();
    let mut settings = ProviderSettings::from_lookup(&|name| vars.get(name).cloned()).unwrap();
    // Waits of milliseconds, where production waits seconds.
    if let Some(openai) = settings.openai.as_mut() {
        openai.api.retry = super::quick_retries();
    }
    if let Some(fal) = settings.fal.as_mut() {
        fal.retry = super::quick_retries();
    }
    settings.fetch = FetchPolicy {
        allowed_hosts: vec!["127.0.0.1".into()],
        allow_loopback_http: true,
        ..FetchPolicy::default()
    };
    settings.build(app.state.store.clone(), app.state.clock.clone())
}

async fn requests_to(server: &MockServer, route: &str) -> usize {
    server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| r.url.path().starts_with(route))
        .count()
}

async fn a_book_through_real_wire_formats(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (openai, fal) = (openai_server(4).await, fal_server().await);
    let pipeline = app.pipeline_with(providers(&app, &openai, &fal));
    let _worker = tokio::spawn(storybook_pipeline::pipeline::worker::run_local(
        pipeline.clone(),
    ));
    let user = uuid::Uuid::new_v4().to_string();
    let job = start_book(&app, &user).await;
    let done = poll(&app, &user, &job, Duration::from_secs(60)).await;
    assert_eq!(done.body["status"], "done", "{}", done.body);
    assert!(
        done.body["result"]["generation_warnings"]
            .as_array()
            .is_none_or(|w| w.is_empty())
    );

    let book = app.book(&job).await;
    assert_eq!(book.characters[0].name, "토리");
    let reference = book
        .reference_key
        .clone()
        .expect("the reference picture is kept with the book");
    for page in &book.pages {
        let key =
            storybook_core::ports::BlobKey::parse(page.image_key.as_deref().unwrap()).unwrap();
        assert_eq!(
            app.state.blobs.get(&key).await.unwrap().unwrap(),
            png(),
            "streamed from the output URL"
        );
        if page.number > 0 {
            assert!(page.audio_key.as_deref().unwrap().ends_with(".mp3"));
        }
    }
    assert!(reference.ends_with("reference.png"));
    // The reference is drawn once from the sheet; every other picture passes it.
    let submits: Vec<_> = fal
        .received_requests()
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.method.as_str() == "POST")
        .collect();
    assert_eq!(submits.len(), 6);
    let with_reference = submits
        .iter()
        .filter(|r| {
            String::from_utf8_lossy(&r.body).contains("\"image_url\":\"data:image/png;base64,")
        })
        .count();
    assert_eq!(with_reference, 5);
    assert!(
        submits
            .iter()
            .all(|r| String::from_utf8_lossy(&r.body).contains("red scarf")),
        "every prompt carries the sheet"
    );
    let seeds: std::collections::HashSet<i64> = submits
        .iter()
        .map(|r| {
            serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["seed"]
                .as_i64()
                .unwrap()
        })
        .collect();
    assert_eq!(seeds.len(), 1, "one seed per book");

    // Every step delivered again: nothing is paid for twice and the book does not change.
    let before = (
        openai.received_requests().await.unwrap().len(),
        fal.received_requests().await.unwrap().len(),
    );
    let id = BookId::parse(&job).unwrap();
    let mut steps = vec![Step::Story, Step::Reference, Step::Assemble];
    steps.extend((0..=4).map(|page| Step::Illustrate { page }));
    steps.extend((1..=4).map(|page| Step::Narrate { page }));
    for step in steps {
        let body = serde_json::to_string(&StepMessage::new(id.clone(), step)).unwrap();
        pipeline.handle(&body, false).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = (
        openai.received_requests().await.unwrap().len(),
        fal.received_requests().await.unwrap().len(),
    );
    assert_eq!(before, after, "redelivered steps called no provider");
    let again = app.state.store.find_book(&id).await.unwrap().unwrap().book;
    assert_eq!((again.pages.len(), &again.pages), (5, &book.pages));
    assert_eq!(requests_to(&openai, "/v1/chat/completions").await, 1);
    assert_eq!(requests_to(&openai, "/v1/audio/speech").await, 4);
}
on_both_backends!(
    #[tokio::test]
    a_book_through_real_wire_formats,
    a_book_through_real_wire_formats
);

async fn a_picture_refused_twice_becomes_a_placeholder_with_a_warning(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (openai, fal) = (openai_server(4).await, fal_server().await);
    // The cover's prompt is refused as not safe for work, every time; the rest are fine.
    let cover =
        Mock::given(method("POST")).and(body_string_contains("The cover of a picture book"));
    fal_request(&fal, "n", cover, 1, true).await;
    let pipeline = app.pipeline_with(providers(&app, &openai, &fal));
    let _worker = tokio::spawn(storybook_pipeline::pipeline::worker::run_local(pipeline));
    let user = uuid::Uuid::new_v4().to_string();
    let job = start_book(&app, &user).await;
    let done = poll(&app, &user, &job, Duration::from_secs(60)).await;
    assert_eq!(done.body["status"], "done", "{}", done.body);
    let warnings = done.body["result"]["generation_warnings"]
        .as_array()
        .unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(
        (
            warnings[0]["code"].as_str(),
            warnings[0]["page_number"].as_u64()
        ),
        (Some("IMAGE_REFUSED"), Some(0))
    );
    let cover_submits = fal
        .received_requests()
        .await
        .unwrap()
        .iter()
        .filter(|r| {
            r.method.as_str() == "POST"
                && String::from_utf8_lossy(&r.body).contains("The cover of a picture book")
        })
        .count();
    assert_eq!(cover_submits, 2, "asked again once with a safer prompt");
}
on_both_backends!(
    #[tokio::test]
    a_picture_refused_twice_becomes_a_placeholder_with_a_warning,
    a_picture_refused_twice_becomes_a_placeholder_with_a_warning
);

async fn a_long_retry_after_puts_the_step_back_on_the_queue(backend: Backend) {
    let app = TestApp::new(backend).await;
    let openai = MockServer::start().await;
    Mock::given(path("/v1/moderations"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"results": [{"flagged": false, "categories": {}}]}),
            ),
        )
        .mount(&openai)
        .await;
    Mock::given(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "120"))
        .mount(&openai)
        .await;
    let fal = fal_server().await;
    let pipeline = app.pipeline_with(providers(&app, &openai, &fal));
    let _worker = tokio::spawn(storybook_pipeline::pipeline::worker::run_local(pipeline));
    let user = uuid::Uuid::new_v4().to_string();
    let job = start_book(&app, &user).await;
    let started = std::time::Instant::now();
    while requests_to(&openai, "/v1/chat/completions").await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the story step never ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        requests_to(&openai, "/v1/chat/completions").await,
        1,
        "neither slept through in process nor delivered again before the wait"
    );
    let status = app.get(&format!("/v1/books/{job}"), &user).await;
    assert_eq!(status.body["status"], "queued", "{}", status.body);
    assert!(
        app.state
            .queue
            .receive(10, Duration::ZERO)
            .await
            .unwrap()
            .is_empty(),
        "the step is hidden for the provider's wait"
    );
}
on_both_backends!(
    #[tokio::test]
    a_long_retry_after_puts_the_step_back_on_the_queue,
    a_long_retry_after_puts_the_step_back_on_the_queue
);

async fn a_narration_lost_for_good_leaves_the_book_done_with_a_warning(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (openai, fal) = (openai_server(4).await, fal_server().await);
    // Speech is down for good; every other call answers.
    Mock::given(path("/v1/audio/speech"))
        .respond_with(ResponseTemplate::new(500).set_body_string("speech is down"))
        .with_priority(1)
        .mount(&openai)
        .await;
    let pipeline = app.pipeline_with(providers(&app, &openai, &fal));
    let _worker = tokio::spawn(storybook_pipeline::pipeline::worker::run_local(pipeline));
    let user = uuid::Uuid::new_v4().to_string();
    let job = start_book(&app, &user).await;
    let done = poll(&app, &user, &job, Duration::from_secs(120)).await;
    assert_eq!(done.body["status"], "done", "{}", done.body);
    let result = &done.body["result"];
    let warnings = result["generation_warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 4, "{warnings:?}");
    assert!(
        warnings
            .iter()
            .all(|w| w["code"] == "AUDIO_MISSING" && w["asset"] == "audio")
    );
    for page in result["pages"].as_array().unwrap() {
        assert_eq!(page["asset_status"]["audio"]["state"], "missing", "{page}");
        assert_eq!(
            page["asset_status"]["image"]["state"], "generated",
            "{page}"
        );
    }
    assert_eq!(
        app.get("/v1/credits/balance", &user).await.body["credits"],
        2,
        "a book delivered with warnings is not refunded"
    );
}
on_both_backends!(
    #[tokio::test]
    a_narration_lost_for_good_leaves_the_book_done_with_a_warning,
    a_narration_lost_for_good_leaves_the_book_done_with_a_warning
);
