//! Every real provider against an in-process server speaking its wire format (`wiremock`): each
//! happy path and each failure class by name; the SSRF-safe fetcher against a table of hostile
//! URLs; the breaker and the fallback chain; books made end to end through real wire formats.

mod breaker;
mod chaos;
mod fal;
mod fetch;
mod openai;
mod pipeline;
mod replicate;

use std::time::Duration;

use storybook_pipeline::providers::wire::{ApiSecret, RetryPolicy};

/// Retries as in production, with millisecond waits.
pub fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        retries: 2,
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_inline_wait: Duration::from_secs(2),
    }
}

pub fn openai_at(server: &wiremock::MockServer) -> storybook_pipeline::providers::openai::OpenAi {
    storybook_pipeline::providers::openai::OpenAi {
        base_url: format!("{}/v1", server.uri()),
        key: ApiSecret::new("sk-test-key"),
        retry: quick_retries(),
    }
}

/// A tiny real PNG.
pub fn png() -> bytes::Bytes {
    storybook_pipeline::providers::offline::placeholder_png()
}

/// A story answer in the structured-output shape, `pages` pages long, in English.
pub fn story_json(pages: usize) -> serde_json::Value {
    serde_json::json!({
        "title": "Dino and the Night",
        "pages": (0..pages).map(|i| serde_json::json!({
            "text": format!("Dino looked at the stars on night {}.", i + 1),
            "scene": format!("A small green dinosaur under the stars, scene {}", i + 1),
            "characters": ["Dino"],
        })).collect::<Vec<_>>(),
        "cover_scene": "Dino waving under a crescent moon",
        "characters": [{
            "name": "Dino",
            "description": "a small round green dinosaur with a cream belly",
            "features": ["red scarf", "big round eyes"],
        }],
    })
}

/// A chat completion carrying `content`.
pub fn chat_answer(content: &str, finish_reason: &str) -> serde_json::Value {
    serde_json::json!({
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": null},
            "finish_reason": finish_reason,
        }],
        "usage": {"prompt_tokens": 120, "completion_tokens": 340, "total_tokens": 460},
    })
}
