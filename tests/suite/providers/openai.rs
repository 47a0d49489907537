//! OpenAI-compatible chat (the story), moderation, images and speech, on their wire formats.

use super::{chat_answer, openai_at, png, story_json};
use crate::harness::BookAsk;
use base64::Engine;
use std::time::Duration;
use storybook_core::domain::book::Language;
use storybook_pipeline::providers::openai::{
    ChatStoryWriter, ModerationEndpoint, OpenAiImages, OpenAiSpeech, VoiceChoice,
};
use storybook_pipeline::providers::{
    Artwork, CharacterReference, Illustrator, ImagePrompt, Moderator, Narrator, PictureKind,
    ProviderError, SpeechRequest, StoryBrief, StoryWriter, Verdict,
};
use wiremock::matchers::{body_partial_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn writer(server: &MockServer) -> ChatStoryWriter {
    ChatStoryWriter::new(openai_at(server), "story-model-x", Duration::from_secs(2))
}

fn brief(pages: i64) -> StoryBrief {
    StoryBrief {
        request: BookAsk::english(pages as u8).request(),
        stricter: false,
    }
}

fn story_answer(pages: usize) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(chat_answer(&story_json(pages).to_string(), "stop"))
}

#[tokio::test]
async fn story_happy_path_asks_for_the_strict_schema() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", "Bearer sk-test-key"))
        .and(body_partial_json(serde_json::json!({
            "model": "story-model-x",
            "response_format": {"type": "json_schema", "json_schema": {"strict": true}},
        })))
        .respond_with(story_answer(4))
        .expect(1)
        .mount(&server)
        .await;
    let written = writer(&server).write(&brief(4)).await.unwrap();
    assert_eq!(written.value.pages.len(), 4);
    assert_eq!(written.value.characters[0].features().len(), 2);
    assert_eq!(
        (written.usage.input_tokens, written.usage.output_tokens),
        (120, 340)
    );
    assert_eq!(written.usage.model, "story-model-x");
}

#[tokio::test]
async fn story_invalid_for_its_schema_is_asked_again_once() {
    let server = MockServer::start().await;
    // Three pages where four were asked, then a good answer.
    Mock::given(path("/v1/chat/completions"))
        .respond_with(story_answer(3))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/v1/chat/completions"))
        .respond_with(story_answer(4))
        .mount(&server)
        .await;
    let written = writer(&server).write(&brief(4)).await.unwrap();
    assert_eq!(written.value.pages.len(), 4);
    assert_eq!(
        written.usage.input_tokens, 240,
        "both exchanges are metered"
    );
}

#[tokio::test]
async fn story_invalid_twice_fails_as_malformed() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/chat/completions"))
        .respond_with(story_answer(3))
        .expect(2)
        .mount(&server)
        .await;
    let error = writer(&server).write(&brief(4)).await.unwrap_err();
    assert!(
        matches!(error, ProviderError::Malformed(ref m) if m.contains("3 pages")),
        "{error:?}"
    );
}

#[tokio::test]
async fn story_cut_off_at_the_length_limit_is_asked_again() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(chat_answer("{\"title\": \"Di", "length")),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/v1/chat/completions"))
        .respond_with(story_answer(4))
        .mount(&server)
        .await;
    assert!(writer(&server).write(&brief(4)).await.is_ok());
}

#[tokio::test]
async fn story_refusal_twice_is_a_refusal() {
    let server = MockServer::start().await;
    let refusal = serde_json::json!({
        "choices": [{"message": {"role": "assistant", "content": null, "refusal": "I can't write that."}, "finish_reason": "stop"}],
    });
    Mock::given(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_json(refusal))
        .expect(2)
        .mount(&server)
        .await;
    let error = writer(&server).write(&brief(4)).await.unwrap_err();
    assert!(matches!(error, ProviderError::Refused(_)), "{error:?}");
}

#[tokio::test]
async fn story_malformed_json_body() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(200).set_body_string("{\"choices\": [ oops"))
        .mount(&server)
        .await;
    let error = writer(&server).write(&brief(4)).await.unwrap_err();
    assert!(matches!(error, ProviderError::Malformed(_)), "{error:?}");
}

#[tokio::test]
async fn story_429_with_a_short_retry_after_is_waited_for_in_process() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0.05"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/v1/chat/completions"))
        .respond_with(story_answer(4))
        .mount(&server)
        .await;
    assert!(writer(&server).write(&brief(4)).await.is_ok());
    assert_eq!(server.received_requests().await.unwrap().len(), 2);
}

#[tokio::test]
async fn story_429_with_a_long_retry_after_goes_back_to_the_caller() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "120"))
        .mount(&server)
        .await;
    let error = writer(&server).write(&brief(4)).await.unwrap_err();
    assert_eq!(error.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(
        server.received_requests().await.unwrap().len(),
        1,
        "not slept through"
    );
}

#[tokio::test]
async fn story_429_without_retry_after_backs_off_and_retries() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(429))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/v1/chat/completions"))
        .respond_with(story_answer(4))
        .mount(&server)
        .await;
    assert!(writer(&server).write(&brief(4)).await.is_ok());
    assert_eq!(server.received_requests().await.unwrap().len(), 3);
}

#[tokio::test]
async fn story_5xx_is_retried_then_reported_unavailable() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/chat/completions"))
        .respond_with(ResponseTemplate::new(503).set_body_string("overloaded"))
        .expect(3)
        .mount(&server)
        .await;
    let error = writer(&server).write(&brief(4)).await.unwrap_err();
    assert!(
        matches!(error, ProviderError::Unavailable(_)) && error.is_retryable(),
        "{error:?}"
    );
}

#[tokio::test]
async fn story_timeout() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/chat/completions"))
        .respond_with(story_answer(4).set_delay(Duration::from_millis(500)))
        .mount(&server)
        .await;
    let writer = ChatStoryWriter::new(openai_at(&server), "m", Duration::from_millis(100));
    let error = writer.write(&brief(4)).await.unwrap_err();
    assert_eq!(error, ProviderError::Timeout);
}

#[tokio::test]
async fn story_other_4xx_is_final() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(401).set_body_string("{\"error\": {\"message\": \"bad key\"}}"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let error = writer(&server).write(&brief(4)).await.unwrap_err();
    assert!(matches!(error, ProviderError::Rejected(_)) && !error.is_retryable());
}

#[tokio::test]
async fn moderation_reads_categories_as_a_map() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/moderations"))
        .and(body_partial_json(serde_json::json!({"model": "omni-moderation-latest"})))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "id": "modr-1", "model": "omni-moderation-latest",
            "results": [{"flagged": true, "categories": {"violence": true, "harassment": false, "violence/graphic": null, "a-new-category": true}, "category_scores": {"violence": 0.9}}],
        })))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(path("/v1/moderations"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "results": [{"flagged": false, "categories": {"violence": false}}],
        })))
        .mount(&server)
        .await;
    let moderator = ModerationEndpoint::new(
        openai_at(&server),
        "omni-moderation-latest",
        Duration::from_secs(2),
    );
    let Verdict::Refused(reason) = moderator.check("something violent").await.unwrap().value else {
        panic!("flagged text is refused")
    };
    assert!(
        reason.contains("violence")
            && reason.contains("a-new-category")
            && !reason.contains("harassment"),
        "{reason}"
    );
    assert_eq!(
        moderator.check("a kind story").await.unwrap().value,
        Verdict::Allowed
    );
}

fn image_prompt(reference: Option<bytes::Bytes>) -> ImagePrompt {
    ImagePrompt {
        prompt: "a green dinosaur".into(),
        negative_prompt: "text, watermark".into(),
        style: storybook_core::domain::book::Style::Watercolor,
        seed: 42,
        reference: CharacterReference {
            name: "Dino".into(),
            description: None,
            seed: 1,
        },
        kind: PictureKind::Page,
        reference_image: reference,
    }
}

fn images(server: &MockServer) -> OpenAiImages {
    OpenAiImages::new(
        openai_at(server),
        "image-model-x",
        "1536x1024",
        None,
        Duration::from_secs(2),
    )
}

#[tokio::test]
async fn images_generations_answer_base64() {
    let server = MockServer::start().await;
    let b64 = base64::engine::general_purpose::STANDARD.encode(png());
    Mock::given(method("POST"))
        .and(path("/v1/images/generations"))
        .and(body_partial_json(
            serde_json::json!({"model": "image-model-x", "size": "1536x1024"}),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "created": 1, "data": [{"b64_json": b64}],
            "usage": {"input_tokens": 50, "output_tokens": 4160},
        })))
        .expect(1)
        .mount(&server)
        .await;
    let made = images(&server)
        .illustrate(&image_prompt(None))
        .await
        .unwrap();
    assert_eq!(made.value, Artwork::Bytes(png()));
    assert_eq!((made.usage.images, made.usage.output_tokens), (1, 4160));
    let sent = &server.received_requests().await.unwrap()[0];
    let body: serde_json::Value = serde_json::from_slice(&sent.body).unwrap();
    assert!(
        body["prompt"]
            .as_str()
            .unwrap()
            .contains("Do not show: text, watermark"),
        "negatives in words"
    );
}

#[tokio::test]
async fn images_edits_carry_the_reference_image() {
    let server = MockServer::start().await;
    let b64 = base64::engine::general_purpose::STANDARD.encode(png());
    Mock::given(method("POST"))
        .and(path("/v1/images/edits"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(serde_json::json!({"data": [{"b64_json": b64}]})),
        )
        .expect(1)
        .mount(&server)
        .await;
    images(&server)
        .illustrate(&image_prompt(Some(png())))
        .await
        .unwrap();
    let sent = &server.received_requests().await.unwrap()[0];
    let kind = sent.headers.get("content-type").unwrap().to_str().unwrap();
    assert!(kind.starts_with("multipart/form-data"), "{kind}");
    let body = String::from_utf8_lossy(&sent.body);
    assert!(body.contains("name=\"image[]\"") && body.contains("name=\"prompt\""));
}

#[tokio::test]
async fn images_moderation_blocked_is_a_refusal() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/images/generations"))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "error": {"message": "Your request was rejected by the safety system.", "type": "image_generation_user_error", "code": "moderation_blocked"},
        })))
        .expect(1)
        .mount(&server)
        .await;
    let error = images(&server)
        .illustrate(&image_prompt(None))
        .await
        .unwrap_err();
    assert!(matches!(error, ProviderError::Refused(_)), "{error:?}");
}

#[tokio::test]
async fn images_without_data_are_malformed() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/images/generations"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"data": [{}]})))
        .mount(&server)
        .await;
    let error = images(&server)
        .illustrate(&image_prompt(None))
        .await
        .unwrap_err();
    assert!(matches!(error, ProviderError::Malformed(_)), "{error:?}");
}

fn speech(server: &MockServer) -> OpenAiSpeech {
    let voices = VoiceChoice {
        default: "nova".into(),
        by_language: [("ko".to_owned(), "shimmer".to_owned())]
            .into_iter()
            .collect(),
    };
    OpenAiSpeech::new(
        openai_at(server),
        "speech-model-x",
        voices,
        "mp3",
        Duration::from_secs(2),
    )
}

#[tokio::test]
async fn speech_by_language_and_age() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/audio/speech"))
        .and(body_partial_json(serde_json::json!({"model": "speech-model-x", "voice": "shimmer", "speed": 0.85, "response_format": "mp3"})))
        .respond_with(ResponseTemplate::new(200).set_body_raw(b"ID3\x03\x00fake-mp3".to_vec(), "audio/mpeg"))
        .expect(1)
        .mount(&server)
        .await;
    let spoken = speech(&server)
        .narrate(&SpeechRequest {
            text: "안녕하세요".into(),
            language: Language::Korean,
            age: storybook_core::domain::book::TargetAge::ThreeToFive,
        })
        .await
        .unwrap();
    assert_eq!(spoken.value.format, "mp3");
    assert!(spoken.value.audio.starts_with(b"ID3"));
    assert_eq!(spoken.usage.characters_spoken, 5);
}

#[tokio::test]
async fn speech_that_is_not_audio_is_malformed() {
    let server = MockServer::start().await;
    Mock::given(path("/v1/audio/speech"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(b"<html>".to_vec(), "text/html"))
        .mount(&server)
        .await;
    let error = speech(&server)
        .narrate(&SpeechRequest {
            text: "hello".into(),
            language: Language::English,
            age: storybook_core::domain::book::TargetAge::Adult,
        })
        .await
        .unwrap_err();
    assert!(matches!(error, ProviderError::Malformed(_)), "{error:?}");
}
