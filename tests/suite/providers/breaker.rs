//! The breaker, shared through the store: a dead provider stops being called, the fallback
//! serves, and after the cooldown one probe decides.

use super::{openai_at, png, quick_retries};
use crate::harness::{Backend, TestApp};
use crate::on_both_backends;
use base64::Engine;
use std::sync::Arc;
use std::time::Duration;
use storybook_core::clock::Clock;
use storybook_core::domain::breaker::BreakerPolicy;
use storybook_pipeline::providers::chain::{Breakers, Guarded, IllustratorChain};
use storybook_pipeline::providers::fal::{FalImages, FalSettings};
use storybook_pipeline::providers::openai::OpenAiImages;
use storybook_pipeline::providers::wire::ApiSecret;
use storybook_pipeline::providers::{CharacterReference, Illustrator, ImagePrompt, PictureKind};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn prompt() -> ImagePrompt {
    ImagePrompt {
        prompt: "a green dinosaur".into(),
        negative_prompt: String::new(),
        style: storybook_core::domain::book::Style::Watercolor,
        seed: 1,
        reference: CharacterReference {
            name: "Dino".into(),
            description: None,
            seed: 1,
        },
        kind: PictureKind::Page,
        reference_image: None,
    }
}

async fn a_dead_provider_is_skipped_and_the_fallback_serves(backend: Backend) {
    let app = TestApp::new(backend).await;
    let dead = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500).set_body_string("down"))
        .mount(&dead)
        .await;
    let openai = MockServer::start().await;
    let b64 = base64::engine::general_purpose::STANDARD.encode(png());
    Mock::given(path("/v1/images/generations"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"data": [{"b64_json": b64}]})),
        )
        .mount(&openai)
        .await;
    let policy = BreakerPolicy {
        threshold: 3,
        window: chrono::Duration::seconds(60),
        cooldown: chrono::Duration::milliseconds(400),
        probe_timeout: chrono::Duration::seconds(10),
    };
    // A name per test: both backends' stores may be shared by other tests.
    let fal_name = format!("fal-{}", uuid::Uuid::new_v4().simple());
    // The breaker's own clock, moved by hand: a slow store (moto under the other tests' load)
    // must not let the cooldown pass while the loop below still runs.
    let clock = Clock::manual(chrono::Utc::now());
    let breakers = Breakers::new(app.state.store.clone(), policy, clock.clone());
    let fal = FalImages::new(FalSettings {
        base_url: dead.uri(),
        key: ApiSecret::new("k"),
        model: "fal-ai/flux/dev".into(),
        reference_model: None,
        image_size: "landscape_4_3".into(),
        poll_every: Duration::from_millis(5),
        timeout: Duration::from_secs(2),
        retry: storybook_pipeline::providers::wire::RetryPolicy {
            retries: 0,
            ..quick_retries()
        },
    });
    let chain = IllustratorChain {
        links: vec![
            Guarded::<dyn Illustrator> {
                name: fal_name.clone(),
                breakers: breakers.clone(),
                inner: Arc::new(fal),
            },
            Guarded::<dyn Illustrator> {
                name: format!("openai-{}", uuid::Uuid::new_v4().simple()),
                breakers: breakers.clone(),
                inner: Arc::new(OpenAiImages::new(
                    openai_at(&openai),
                    "m",
                    "1024x1024",
                    None,
                    Duration::from_secs(2),
                )),
            },
        ],
    };
    for _ in 0..10 {
        chain
            .illustrate(&prompt())
            .await
            .expect("the fallback serves every picture");
    }
    assert_eq!(
        dead.received_requests().await.unwrap().len(),
        3,
        "called until the breaker opened"
    );
    assert_eq!(openai.received_requests().await.unwrap().len(), 10);
    let (record, _) = app.state.store.breaker(&fal_name).await.unwrap();
    assert!(record.is_open());

    // After the cooldown the provider recovers: one probe, then it serves again.
    dead.reset().await;
    let b64 = base64::engine::general_purpose::STANDARD.encode(png());
    let base = dead.uri();
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "request_id": "r", "status_url": format!("{base}/s"), "response_url": format!("{base}/r"),
        })))
        .mount(&dead)
        .await;
    Mock::given(path("/s"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"status": "COMPLETED"})),
        )
        .mount(&dead)
        .await;
    Mock::given(path("/r"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"images": [{"url": format!("data:{b64}")}]})),
        )
        .mount(&dead)
        .await;
    clock.set(clock.now() + chrono::Duration::milliseconds(500));
    for _ in 0..3 {
        chain.illustrate(&prompt()).await.unwrap();
    }
    assert_eq!(
        openai.received_requests().await.unwrap().len(),
        10,
        "the recovered provider serves"
    );
    let (record, _) = app.state.store.breaker(&fal_name).await.unwrap();
    assert!(!record.is_open() && record.failures == 0);
}
on_both_backends!(
    #[tokio::test]
    a_dead_provider_is_skipped_and_the_fallback_serves,
    a_dead_provider_is_skipped_and_the_fallback_serves
);
