//! API Gateway v2 events (the `aws_lambda_events` fixture, typed) through `lambda_http`'s own
//! conversion and one function's router, as on Lambda; the sweep's scheduled event.

use crate::harness::{Answer, Backend, TestApp, new_user_key, test_config};
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::eventbridge::EventBridgeEvent;
use base64::Engine;
use http::{HeaderValue, Method};
use storybook_aws::events::scheduled_sweep;
use storybook_core::catalogue::Family;
use storybook_core::config::Config;
use storybook_http::app;
use tower::ServiceExt;

/// The fixture (copied from aws_lambda_events' `example-apigw-v2-request-no-authorizer.json`),
/// aimed at one route.
fn event(
    method: Method,
    path: &str,
    source_ip: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
    base64: bool,
) -> String {
    let fixture = include_str!("../fixtures/apigw-v2-request.json");
    let mut event: ApiGatewayV2httpRequest = serde_json::from_str(fixture).unwrap();
    event.raw_path = Some(path.to_owned());
    event.request_context.http.method = method;
    event.request_context.http.path = Some(path.to_owned());
    event.request_context.http.source_ip = Some(source_ip.to_owned());
    for (name, value) in headers {
        event.headers.insert(
            http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    if let Some(body) = body {
        event
            .headers
            .insert("content-type", HeaderValue::from_static("application/json"));
        event
            .headers
            .insert("content-length", HeaderValue::from(body.len()));
        event.body = Some(if base64 {
            base64::engine::general_purpose::STANDARD.encode(body)
        } else {
            body.to_owned()
        });
        event.is_base64_encoded = base64;
    }
    serde_json::to_string(&event).unwrap()
}

async fn invoke(router: &axum::Router, event: &str) -> Answer {
    let request = lambda_http::request::from_str(event).expect("lambda_http reads the event");
    Answer::from_response(router.clone().oneshot(request).await.unwrap()).await
}

#[tokio::test]
async fn the_credits_function_serves_an_api_gateway_event() {
    let config = Config {
        account_creations_per_ip_per_hour: 1,
        ..test_config()
    };
    let test_app = TestApp::with_config(Backend::Embedded, config).await;
    let function = app(test_app.state.clone(), &[Family::Credits]);
    let user = new_user_key();
    let grant = event(
        Method::POST,
        "/v1/credits/add",
        "198.51.100.7",
        &[
            ("x-user-key", &user),
            ("x-admin-key", &test_app.admin_key),
            ("x-request-id", "lambda-1"),
        ],
        Some(r#"{"amount": 2, "transaction_id": "apigw-1"}"#),
        false,
    );
    let answer = invoke(&function, &grant).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["new_balance"], 5);
    assert_eq!(answer.headers["x-request-id"], "lambda-1");

    // The same grant with a base64 body, as API Gateway sends binary-safe payloads.
    let again = event(
        Method::POST,
        "/v1/credits/add",
        "198.51.100.7",
        &[("x-user-key", &user), ("x-admin-key", &test_app.admin_key)],
        Some(r#"{"amount": 2, "transaction_id": "apigw-1"}"#),
        true,
    );
    assert_eq!(
        invoke(&function, &again).await.body["status"],
        "already_processed"
    );

    // Account creation is limited by API Gateway's source IP (one per hour here).
    let from_same_ip = event(
        Method::GET,
        "/v1/credits/balance",
        "198.51.100.7",
        &[("x-user-key", &new_user_key())],
        None,
        false,
    );
    let answer = invoke(&function, &from_same_ip).await;
    assert_eq!((answer.status, answer.code()), (429, "RATE_LIMIT_EXCEEDED"));
    let from_elsewhere = event(
        Method::GET,
        "/v1/credits/balance",
        "203.0.113.9",
        &[("x-user-key", &new_user_key())],
        None,
        false,
    );
    assert_eq!(invoke(&function, &from_elsewhere).await.status, 200);
}

#[tokio::test]
async fn a_function_serves_only_its_family() {
    let test_app = TestApp::new(Backend::Embedded).await;
    let health = app(test_app.state.clone(), &[Family::Health]);
    let answer = invoke(
        &health,
        &event(Method::GET, "/health/ready", "192.0.2.1", &[], None, false),
    )
    .await;
    assert_eq!(answer.status, 200);
    let answer = invoke(
        &health,
        &event(
            Method::GET,
            "/v1/credits/balance",
            "192.0.2.1",
            &[("x-user-key", &new_user_key())],
            None,
            false,
        ),
    )
    .await;
    assert_eq!((answer.status, answer.code()), (404, "NOT_FOUND"));
}

/// The sweep function's handler on the EventBridge scheduled-event fixture (from the AWS
/// documentation), fired twenty minutes after a book was left without a worker.
#[tokio::test]
async fn the_sweep_function_handles_a_scheduled_event() {
    let app = TestApp::new(Backend::Embedded).await;
    let user = new_user_key();
    let job = crate::books::start_book(&app, &user).await;
    let fixture = include_str!("../fixtures/scheduled-event.json");
    let mut event: EventBridgeEvent = serde_json::from_str(fixture).unwrap();
    assert_eq!(event.detail_type, "Scheduled Event");
    let stuck_after = app.state.config.stuck_book_after;
    let answer = scheduled_sweep(
        &*app.state.store,
        &app.state.clock,
        stuck_after,
        event.clone(),
    )
    .await
    .unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"swept": 0}),
        "the fixture fired in 2015"
    );
    event.time = Some(chrono::Utc::now() + chrono::Duration::minutes(20));
    let answer = scheduled_sweep(&*app.state.store, &app.state.clock, stuck_after, event)
        .await
        .unwrap();
    assert_eq!(answer, serde_json::json!({"swept": 1}));
    let status = app.get(&format!("/v1/books/{job}"), &user).await;
    assert_eq!(status.body["status"], "failed");
    assert_eq!(
        app.get("/v1/credits/balance", &user).await.body["credits"],
        3
    );
}
