//! Accounts and security: device keys, the API key refusals (each by name, on both backends),
//! rate limits, brute force, rotation, the audit log, erasure, edges; a file per concern, the
//! helpers they share here.

mod admin_credits;
mod api_keys;
mod edges;
mod erasure;
mod key_lifecycle;
mod limits;

use crate::harness::{Answer, Backend, TestApp, new_user_key, test_config};
use crate::on_both_backends;
use http::Method;
use serde_json::{Value, json};
use std::time::Duration;
use storybook_core::config::{Config, Environment, Limits};
use storybook_core::domain::api_key::{ApiKeySecret, KeyEnvironment};
use storybook_core::domain::credential::CredentialKind;

const KEYS: &str = "/v1/admin/api-keys";

async fn with_key(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<&str>,
) -> Answer {
    app.call(
        method,
        path,
        &[("authorization", &format!("Bearer {key}"))],
        body,
    )
    .await
}

/// Makes a key through the API; answers (key id, secret).
async fn make_key(app: &TestApp, body: Value) -> (String, String) {
    let answer = with_key(
        app,
        Method::POST,
        KEYS,
        &app.admin_key,
        Some(&body.to_string()),
    )
    .await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    (
        answer.body["key_id"].as_str().unwrap().to_owned(),
        answer.body["key"].as_str().unwrap().to_owned(),
    )
}

async fn audit_events(app: &TestApp) -> Vec<String> {
    app.state
        .store
        .audit_log(200, None)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event.as_str().to_owned())
        .collect()
}

fn refused(answer: &Answer, status: u16, code: &str) {
    assert_eq!(
        (answer.status, answer.code()),
        (status, code),
        "{}",
        answer.body
    );
}
