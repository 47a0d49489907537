//! Fifty books while every provider misbehaves: 30% 5xx, 10% timeouts, 5% 429 (with and without
//! `Retry-After`), 5% malformed JSON. Every book ends done or failed and refunded, none is left in
//! between, and every user's ledger reconciles. Bounded in count and time (milliseconds of
//! simulated latency, steps retried after milliseconds).

use super::{chat_answer, png};
use crate::harness::{Backend, TestApp, whole_ledger};
use crate::on_both_backends;
use base64::Engine;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use storybook_core::domain::book::JobState;
use storybook_core::domain::credits::{EntryKind, ledger_reconciles};
use storybook_pipeline::providers::settings::ProviderSettings;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// A provider that answers like OpenAI when it feels like it.
struct Unreliable {
    dice: Mutex<u64>,
}

impl Unreliable {
    fn roll(&self) -> u64 {
        let mut state = self.dice.lock().unwrap();
        // xorshift64: repeatable per seed.
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state % 100
    }
}

fn good_answer(request: &Request) -> ResponseTemplate {
    let path = request.url.path();
    if path.ends_with("/chat/completions") {
        let story = serde_json::json!({
            "title": "디노와 별",
            "pages": (0..4).map(|i| serde_json::json!({
                "text": format!("디노는 별을 {}개 세었어요.", i + 1),
                "scene": "a dinosaur counting stars", "characters": ["토리"],
            })).collect::<Vec<_>>(),
            "cover_scene": "a dinosaur under the moon",
            "characters": [{"name": "토리", "description": "a small green dinosaur", "features": ["red scarf", "round eyes"]}],
        });
        ResponseTemplate::new(200).set_body_json(chat_answer(&story.to_string(), "stop"))
    } else if path.ends_with("/moderations") {
        ResponseTemplate::new(200)
            .set_body_json(serde_json::json!({"results": [{"flagged": false, "categories": {}}]}))
    } else if path.ends_with("/images/generations") || path.ends_with("/images/edits") {
        let b64 = base64::engine::general_purpose::STANDARD.encode(png());
        ResponseTemplate::new(200).set_body_json(serde_json::json!({"data": [{"b64_json": b64}]}))
    } else {
        ResponseTemplate::new(200).set_body_raw(b"ID3\x03\x00audio".to_vec(), "audio/mpeg")
    }
}

impl Respond for Unreliable {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        match self.roll() {
            0..30 => ResponseTemplate::new(503).set_body_string("upstream overloaded"),
            // Past the client's timeout, by far: a loaded machine still tells the two apart.
            30..40 => good_answer(request).set_delay(Duration::from_secs(3)),
            40..43 => ResponseTemplate::new(429).insert_header("retry-after", "0.01"),
            43..45 => ResponseTemplate::new(429),
            45..50 => ResponseTemplate::new(200)
                .set_body_raw(b"{\"data\": [ {".to_vec(), "application/json"),
            _ => good_answer(request),
        }
    }
}

async fn fifty_books_while_providers_misbehave(backend: Backend) {
    let app = TestApp::new(backend).await;
    let server = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(Unreliable {
            dice: Mutex::new(0x9E37_79B9_7F4A_7C15),
        })
        .mount(&server)
        .await;
    let vars: HashMap<&str, String> = [
        ("OPENAI_API_KEY", "sk-chaos".to_owned()),
        ("OPENAI_BASE_URL", format!("{}/v1", server.uri())),
        ("STORY_TIMEOUT_SECONDS", "0.6".to_owned()),
        ("IMAGE_TIMEOUT_SECONDS", "0.6".to_owned()),
        ("SPEECH_TIMEOUT_SECONDS", "0.6".to_owned()),
        ("BREAKER_COOLDOWN_SECONDS", "0.05".to_owned()),
    ]
    .into_iter()
    .collect();
    let mut settings = ProviderSettings::from_lookup(&|name| vars.get(name).cloned()).unwrap();
    let quick = super::quick_retries();
    if let Some(openai) = settings.openai.as_mut() {
        openai.api.retry = quick;
    }
    let providers = settings.build(app.state.store.clone(), app.state.clock.clone());
    let mut pipeline = app.pipeline_with(providers);
    // Steps wait for a circuit to close rather than give up after the harness's few seconds: a
    // probe under this much failure (and a loaded machine) can take a while to succeed.
    std::sync::Arc::get_mut(&mut pipeline)
        .expect("the only handle")
        .circuit_patience = Duration::from_secs(60);
    let _worker = tokio::spawn(storybook_pipeline::pipeline::worker::run_local(pipeline));

    let users: Vec<String> = (0..10).map(|_| uuid::Uuid::new_v4().to_string()).collect();
    let mut jobs = Vec::new();
    for (i, user) in users.iter().enumerate() {
        assert_eq!(
            app.grant(user, 5, &format!("chaos-{i}-{user}"))
                .await
                .status,
            200
        );
        for _ in 0..5 {
            jobs.push((user.clone(), crate::books::start_book(&app, user).await));
        }
    }
    assert_eq!(jobs.len(), 50);
    let started = Instant::now();
    let mut unfinished = jobs.clone();
    while !unfinished.is_empty() {
        if started.elapsed() > Duration::from_secs(300) {
            // What each unfinished book waits for, and what the queue gave up on.
            let mut states = Vec::new();
            for (_, job) in &unfinished {
                let book = app.book(job).await;
                let pending: Vec<String> = book
                    .pages
                    .iter()
                    .map(|p| format!("{}:{:?}/{:?}", p.number, p.image_state, p.audio_state))
                    .collect();
                states.push(format!(
                    "{} {:?} title={} ref={} pending={} {:?}",
                    job,
                    book.state,
                    book.title.is_some(),
                    book.reference_done,
                    book.pending_assets,
                    pending
                ));
            }
            let dead = app.state.queue.dead_letters(100).await.unwrap();
            panic!(
                "{} books still unfinished: {states:#?}; dead letters: {:?}",
                unfinished.len(),
                dead.iter().map(|d| &d.body).collect::<Vec<_>>()
            );
        }
        // As the app polls, if less often: every read is a round trip to a single-threaded moto.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut still = Vec::new();
        for (user, job) in unfinished {
            let book = app.book(&job).await;
            if !book.is_finished() {
                still.push((user, job));
            }
        }
        unfinished = still;
    }
    let (mut done, mut failed) = (0, 0);
    for (_, job) in &jobs {
        let book = app.book(job).await;
        match book.state {
            JobState::Done => {
                done += 1;
                assert!(book.pdf_key.is_some() && !book.refunded);
            }
            JobState::Failed => {
                failed += 1;
                assert!(
                    book.refunded,
                    "{} failed without its refund",
                    book.id.as_str()
                );
            }
            other => panic!("{} ended {other:?}", book.id.as_str()),
        }
    }
    for user in &users {
        let id = app.user_id(user);
        let stored = app.state.store.find_user(&id).await.unwrap().unwrap();
        let ledger = whole_ledger(&*app.state.store, &id).await;
        assert!(
            ledger_reconciles(stored.credits, &ledger),
            "a ledger reconciles"
        );
        let refunds = ledger
            .iter()
            .filter(|e| e.kind == EntryKind::Refund)
            .count();
        let usage = ledger.iter().filter(|e| e.kind == EntryKind::Usage).count();
        assert_eq!(usage, 5);
        // Opening 3, granted 5, five books, one credit back per failed book.
        assert_eq!(stored.credits, 3 + 5 - 5 + refunds as i64);
    }
    tracing::info!(
        done,
        failed,
        seconds = started.elapsed().as_secs_f64(),
        "chaos: fifty books settled"
    );
    assert!(done > 0, "some books make it through the chaos");
}
on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    fifty_books_while_providers_misbehave,
    fifty_books_while_providers_misbehave
);
