//! fal's queue: submit, status URL, result URL; the NSFW flag.

use super::quick_retries;
use std::time::Duration;
use storybook_pipeline::providers::fal::{FalImages, FalSettings};
use storybook_pipeline::providers::wire::ApiSecret;
use storybook_pipeline::providers::{
    Artwork, CharacterReference, Illustrator, ImagePrompt, PictureKind, ProviderError,
};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn fal(server: &MockServer) -> FalImages {
    FalImages::new(FalSettings {
        base_url: server.uri(),
        key: ApiSecret::new("fal-test"),
        model: "fal-ai/flux/dev".into(),
        reference_model: Some("fal-ai/flux-pro/kontext".into()),
        image_size: "landscape_4_3".into(),
        poll_every: Duration::from_millis(5),
        timeout: Duration::from_secs(2),
        retry: quick_retries(),
    })
}

fn prompt() -> ImagePrompt {
    ImagePrompt {
        prompt: "a green dinosaur".into(),
        negative_prompt: "text".into(),
        style: storybook_core::domain::book::Style::Watercolor,
        seed: 9,
        reference: CharacterReference {
            name: "Dino".into(),
            description: None,
            seed: 1,
        },
        kind: PictureKind::Cover,
        reference_image: None,
    }
}

async fn queue(server: &MockServer, result: serde_json::Value) {
    let base = server.uri();
    Mock::given(method("POST"))
        .and(path("/fal-ai/flux/dev"))
        .and(header("authorization", "Key fal-test"))
        .and(body_partial_json(
            serde_json::json!({"seed": 9, "image_size": "landscape_4_3"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "request_id": "r1",
            "status_url": format!("{base}/fal-ai/flux/requests/r1/status"),
            "response_url": format!("{base}/fal-ai/flux/requests/r1"),
            "cancel_url": format!("{base}/fal-ai/flux/requests/r1/cancel"),
        })))
        .expect(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/fal-ai/flux/requests/r1/status"))
        .respond_with(
            ResponseTemplate::new(202)
                .set_body_json(serde_json::json!({"status": "IN_QUEUE", "queue_position": 2})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/fal-ai/flux/requests/r1/status"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(serde_json::json!({"status": "COMPLETED"})),
        )
        .mount(server)
        .await;
    Mock::given(method("GET"))
        .and(path("/fal-ai/flux/requests/r1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(result))
        .mount(server)
        .await;
}

#[tokio::test]
async fn submit_poll_and_read_the_result() {
    let server = MockServer::start().await;
    queue(
        &server,
        serde_json::json!({
            "images": [{"url": "https://v3.fal.media/files/x.png", "width": 1024, "height": 768, "content_type": "image/png"}],
            "seed": 9, "has_nsfw_concepts": [false], "prompt": "a green dinosaur",
        }),
    )
    .await;
    let made = fal(&server).illustrate(&prompt()).await.unwrap();
    assert_eq!(
        made.value,
        Artwork::Url("https://v3.fal.media/files/x.png".into())
    );
    assert_eq!(made.usage.provider, "fal");
}

#[tokio::test]
async fn an_nsfw_flag_is_a_refusal() {
    let server = MockServer::start().await;
    queue(
        &server,
        serde_json::json!({"images": [{"url": "https://v3.fal.media/files/x.png"}], "has_nsfw_concepts": [true]}),
    )
    .await;
    let error = fal(&server).illustrate(&prompt()).await.unwrap_err();
    assert!(matches!(error, ProviderError::Refused(_)), "{error:?}");
}

#[tokio::test]
async fn a_result_without_images_is_malformed() {
    let server = MockServer::start().await;
    queue(&server, serde_json::json!({"images": []})).await;
    let error = fal(&server).illustrate(&prompt()).await.unwrap_err();
    assert!(matches!(error, ProviderError::Malformed(_)), "{error:?}");
}
