//! Replicate predictions: `Prefer: wait`, polling `urls.get`, output URLs, failures.

use super::{png, quick_retries};
use std::time::Duration;
use storybook_pipeline::providers::replicate::{ReplicateImages, ReplicateSettings};
use storybook_pipeline::providers::wire::ApiSecret;
use storybook_pipeline::providers::{
    Artwork, CharacterReference, Illustrator, ImagePrompt, PictureKind, ProviderError,
};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn replicate(server: &MockServer, timeout: Duration) -> ReplicateImages {
    ReplicateImages::new(ReplicateSettings {
        base_url: format!("{}/v1", server.uri()),
        token: ApiSecret::new("r8_test"),
        model: "owner/text-model".into(),
        reference_model: Some("owner/kontext-model".into()),
        aspect_ratio: "3:2".into(),
        poll_every: Duration::from_millis(5),
        timeout,
        retry: quick_retries(),
    })
}

fn prompt(reference: Option<bytes::Bytes>) -> ImagePrompt {
    ImagePrompt {
        prompt: "a green dinosaur".into(),
        negative_prompt: "text".into(),
        style: storybook_core::domain::book::Style::Cartoon,
        seed: 7,
        reference: CharacterReference {
            name: "Dino".into(),
            description: None,
            seed: 1,
        },
        kind: PictureKind::Page,
        reference_image: reference,
    }
}

fn prediction(server: &MockServer, status: &str, output: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "id": "p1", "status": status, "output": output, "error": null,
        "urls": {"get": format!("{}/v1/predictions/p1", server.uri()), "cancel": format!("{}/v1/predictions/p1/cancel", server.uri())},
    })
}

#[tokio::test]
async fn prefer_wait_answers_the_output_url() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/models/owner/text-model/predictions"))
        .and(header("prefer", "wait"))
        .and(header("authorization", "Bearer r8_test"))
        .and(body_partial_json(
            serde_json::json!({"input": {"seed": 7, "negative_prompt": "text"}}),
        ))
        .respond_with(ResponseTemplate::new(201).set_body_json(prediction(
            &server,
            "succeeded",
            serde_json::json!(["https://replicate.delivery/out-0.png"]),
        )))
        .expect(1)
        .mount(&server)
        .await;
    let made = replicate(&server, Duration::from_secs(2))
        .illustrate(&prompt(None))
        .await
        .unwrap();
    assert_eq!(
        made.value,
        Artwork::Url("https://replicate.delivery/out-0.png".into())
    );
    assert_eq!(made.usage.images, 1);
}

#[tokio::test]
async fn a_running_prediction_is_polled_until_it_settles() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/models/owner/kontext-model/predictions"))
        .respond_with(ResponseTemplate::new(201).set_body_json(prediction(
            &server,
            "processing",
            serde_json::Value::Null,
        )))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/predictions/p1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(prediction(
            &server,
            "processing",
            serde_json::Value::Null,
        )))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/predictions/p1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(prediction(
            &server,
            "succeeded",
            serde_json::json!("https://replicate.delivery/x.webp"),
        )))
        .mount(&server)
        .await;
    let made = replicate(&server, Duration::from_secs(2))
        .illustrate(&prompt(Some(png())))
        .await
        .unwrap();
    assert_eq!(
        made.value,
        Artwork::Url("https://replicate.delivery/x.webp".into())
    );
    let sent: serde_json::Value =
        serde_json::from_slice(&server.received_requests().await.unwrap()[0].body).unwrap();
    assert!(
        sent["input"]["input_image"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,")
    );
}

#[tokio::test]
async fn a_prediction_that_stays_processing_times_out() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(prediction(
            &server,
            "starting",
            serde_json::Value::Null,
        )))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(prediction(
            &server,
            "processing",
            serde_json::Value::Null,
        )))
        .mount(&server)
        .await;
    let error = replicate(&server, Duration::from_millis(100))
        .illustrate(&prompt(None))
        .await
        .unwrap_err();
    assert_eq!(error, ProviderError::Timeout);
}

#[tokio::test]
async fn an_nsfw_failure_is_a_refusal() {
    let server = MockServer::start().await;
    let mut failed = prediction(&server, "failed", serde_json::Value::Null);
    failed["error"] =
        "NSFW content detected. Try running it again, or try a different prompt.".into();
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(failed))
        .mount(&server)
        .await;
    let error = replicate(&server, Duration::from_secs(2))
        .illustrate(&prompt(None))
        .await
        .unwrap_err();
    assert!(matches!(error, ProviderError::Refused(_)), "{error:?}");
}

#[tokio::test]
async fn a_poll_url_on_another_origin_is_not_followed() {
    let server = MockServer::start().await;
    let mut running = prediction(&server, "processing", serde_json::Value::Null);
    running["urls"]["get"] = "https://attacker.example/steal".into();
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(201).set_body_json(running))
        .mount(&server)
        .await;
    let error = replicate(&server, Duration::from_secs(2))
        .illustrate(&prompt(None))
        .await
        .unwrap_err();
    assert!(matches!(error, ProviderError::Malformed(_)), "{error:?}");
}

#[tokio::test]
async fn a_422_is_final_and_a_500_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(422).set_body_string("{\"detail\": \"invalid input\"}"))
        .mount(&server)
        .await;
    let error = replicate(&server, Duration::from_secs(2))
        .illustrate(&prompt(None))
        .await
        .unwrap_err();
    assert!(matches!(error, ProviderError::Rejected(_)), "{error:?}");
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}
