//! What every answer shares: the envelope, request ids, unknown routes, limits, readiness.

use crate::harness::{Answer, Backend, TestApp, new_user_key, state_over, test_config};
use http::Method;
use storybook_aws::provision::provision;
use storybook_core::catalogue::Family;
use storybook_core::config::AwsResources;
use storybook_http::{AppState, app};
use tower::ServiceExt;

#[tokio::test]
async fn the_request_id_is_echoed_or_made() {
    let app = TestApp::new(Backend::Embedded).await;
    let answer = app
        .call(
            Method::GET,
            "/v1/credits/balance",
            &[("x-request-id", "req-42"), ("x-user-key", "bad")],
            None,
        )
        .await;
    assert_eq!(answer.headers["x-request-id"], "req-42");
    assert_eq!(answer.body["request_id"], "req-42");
    // An id that could smuggle anything into headers or logs is replaced.
    let answer = app
        .call(Method::GET, "/health", &[("x-request-id", "a b\"c")], None)
        .await;
    let made = answer.headers["x-request-id"].to_str().unwrap();
    assert_eq!(made.len(), 36, "{made}");
}

#[tokio::test]
async fn unknown_routes_and_methods_get_the_envelope() {
    let app = TestApp::new(Backend::Embedded).await;
    let answer = app.call(Method::GET, "/v1/nowhere", &[], None).await;
    assert_eq!((answer.status, answer.code()), (404, "NOT_FOUND"));
    assert_eq!(answer.body["error"]["details"]["resource"], "route");
    let answer = app
        .call(Method::DELETE, "/v1/credits/balance", &[], None)
        .await;
    assert_eq!((answer.status, answer.code()), (405, "METHOD_NOT_ALLOWED"));
}

#[tokio::test]
async fn an_oversized_body_is_a_validation_error() {
    let app = TestApp::new(Backend::Embedded).await;
    let body = format!(
        r#"{{"amount": 1, "transaction_id": "{}"}}"#,
        "x".repeat(test_config().max_body_bytes)
    );
    let key = new_user_key();
    let answer = app
        .call(
            Method::POST,
            "/v1/credits/add",
            &[("x-user-key", &key), ("x-admin-key", &app.admin_key)],
            Some(&body),
        )
        .await;
    assert_eq!(
        (answer.status, answer.code()),
        (422, "VALIDATION_ERROR"),
        "{}",
        answer.body
    );
}

/// The real AWS adapters pointed at a port where nothing listens.
pub async fn unreachable_aws_state() -> AppState {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        // The SDK's own default client is not built in (see storybook-aws's sdk.rs).
        .http_client(storybook_aws::sdk::https_client())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "x", "x", None, None, "tests",
        ))
        .retry_config(aws_config::retry::RetryConfig::disabled())
        .load()
        .await;
    let resources = AwsResources {
        table: "t".into(),
        bucket: "b".into(),
        step_queue_url: "http://127.0.0.1:1/q".into(),
        step_dead_letter_url: "http://127.0.0.1:1/d".into(),
    };
    state_over(&sdk, &resources, test_config())
}

async fn call(router: &axum::Router, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = http::Request::builder().uri(path);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    Answer::from_response(
        router
            .clone()
            .oneshot(request.body(axum::body::Body::empty()).unwrap())
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn with_the_store_unreachable() {
    let router = app(unreachable_aws_state().await, Family::ALL);
    // Key checks that need no store still answer as the app expects.
    let answer = call(
        &router,
        "/v1/credits/balance",
        &[("x-user-key", "not-a-uuid")],
    )
    .await;
    assert_eq!((answer.status, answer.code()), (400, "BAD_REQUEST"));
    let answer = call(&router, "/v1/credits/balance", &[]).await;
    assert_eq!((answer.status, answer.code()), (422, "VALIDATION_ERROR"));
    // What needs the store says so, without a 500.
    let key = new_user_key();
    let answer = call(&router, "/v1/credits/balance", &[("x-user-key", &key)]).await;
    assert_eq!((answer.status, answer.code()), (503, "SERVICE_UNAVAILABLE"));
    // Readiness names every dependency that is down; liveness does not care.
    let ready = call(&router, "/health/ready", &[]).await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body["status"], "degraded");
    assert_eq!(
        ready.body["failing"],
        serde_json::json!(["store", "queue", "blobs"])
    );
    assert_eq!(call(&router, "/health/live", &[]).await.status, 200);
    assert_eq!(call(&router, "/health", &[]).await.status, 200);
}

#[tokio::test]
async fn ready_on_both_backends() {
    for backend in [Backend::Embedded, Backend::Aws] {
        let app = TestApp::new(backend).await;
        let ready = app.call(Method::GET, "/health/ready", &[], None).await;
        assert_eq!(ready.status, 200, "{backend:?}: {}", ready.body);
        assert_eq!(
            ready.body["services"],
            serde_json::json!({"store": "ok", "queue": "ok", "blobs": "ok"})
        );
    }
    // A missing table is a failing store, not a crash.
    let sdk = crate::harness::moto_config().await;
    let mut resources = provision(&sdk, &crate::harness::unique_prefix())
        .await
        .unwrap();
    resources.table = "no-such-table".into();
    let state = state_over(&sdk, &resources, test_config());
    let ready = call(&app(state, Family::ALL), "/health/ready", &[]).await;
    assert_eq!(
        (ready.status, ready.body["failing"].clone()),
        (503, serde_json::json!(["store"]))
    );
}

#[tokio::test]
async fn capabilities_follow_the_routes_served() {
    let app = TestApp::new(Backend::Embedded).await;
    let answer = app
        .call(Method::GET, "/v1/config/capabilities", &[], None)
        .await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["features"]["credits"], true);
    assert_eq!(
        answer.body["features"]["book_generation"],
        storybook_http::endpoints::Feature::BookGeneration.served()
    );
    assert_eq!(answer.body["credits"]["opening_credits"], 3);
    // No key set: the offline providers make every book.
    assert_eq!(answer.body["providers"]["story"], "offline");
    assert_eq!(
        answer.body["providers"]["images"],
        serde_json::json!(["offline"])
    );
}

#[tokio::test]
async fn capabilities_name_the_providers_configured() {
    let vars = [
        ("OPENAI_API_KEY", "sk-test"),
        ("REPLICATE_API_TOKEN", "r8_test"),
        ("IMAGE_PROVIDERS", "replicate,openai"),
        ("STORY_MODEL", "llama3.1"),
    ];
    let config = storybook_core::config::Config::from_lookup(&|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    })
    .unwrap();
    let app = TestApp::with_config(Backend::Embedded, config).await;
    let answer = app
        .call(Method::GET, "/v1/config/capabilities", &[], None)
        .await;
    assert_eq!(answer.body["providers"]["story"], "openai:llama3.1");
    assert_eq!(
        answer.body["providers"]["images"],
        serde_json::json!(["replicate", "openai"])
    );
    let printed = answer.body.to_string();
    assert!(!printed.contains("sk-test") && !printed.contains("r8_test"));
}

/// A path parameter that is not UTF-8 once percent-decoded gets the envelope's 400, on every
/// route that takes one (axum's own answer was plain text).
async fn a_path_parameter_that_is_not_utf8_gets_the_envelope(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    let admin = app.admin_key.clone();
    let cases: [(Method, &str, &str, &str); 5] = [
        (Method::GET, "/v1/books/%ff%fe", "x-user-key", &user),
        (Method::GET, "/v1/books/%ff%fe/detail", "x-user-key", &user),
        (Method::PATCH, "/v1/library/%c3%28", "x-user-key", &user),
        (Method::GET, "/v1/admin/api-keys/%ff", "x-api-key", &admin),
        (
            Method::GET,
            "/v1/admin/users/%fe/reconciliation",
            "x-api-key",
            &admin,
        ),
    ];
    for (method, path, header, key) in cases {
        let answer = app
            .call(method.clone(), path, &[(header, key)], Some("{}"))
            .await;
        assert_eq!(
            (answer.status, answer.code()),
            (400, "BAD_REQUEST"),
            "{method} {path}: {}",
            answer.body
        );
        assert!(answer.body["request_id"].is_string(), "{}", answer.body);
    }
}
crate::on_both_backends!(
    #[tokio::test]
    a_path_parameter_that_is_not_utf8_gets_the_envelope,
    a_path_parameter_that_is_not_utf8_gets_the_envelope
);

/// Every body is an object: serde would fill a struct from an array of its fields in order, so
/// `["a dragon", "5-7", "cartoon"]` made (and charged) a book before.
async fn a_body_that_is_an_array_is_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    for (path, body) in [
        (
            "/v1/books",
            serde_json::json!(["a dragon who learns to share", "5-7", "cartoon"]),
        ),
        ("/v1/settings", serde_json::json!([])),
    ] {
        let method = if path == "/v1/settings" {
            Method::PATCH
        } else {
            Method::POST
        };
        let answer = app
            .call(
                method,
                path,
                &[("x-user-key", &user)],
                Some(&body.to_string()),
            )
            .await;
        assert_eq!(answer.status, 422, "{path}: {}", answer.body);
        assert_eq!(answer.body["detail"][0]["type"], "model_attributes_type");
    }
    let balance = app.get("/v1/credits/balance", &user).await;
    assert_eq!(balance.body["credits"], 3, "nothing was charged");
}
crate::on_both_backends!(
    #[tokio::test]
    a_body_that_is_an_array_is_refused,
    a_body_that_is_an_array_is_refused
);

/// Markup is refused by what it is, not by five substrings: every one of these came back word
/// for word in the pages before.
async fn markup_in_a_topic_or_a_title_is_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    for topic in [
        "a cat onerror =alert(1)",
        "<svg onload =alert(1)>",
        "the dragon onmouseover=alert(1)",
        "<img src=x>",
        "<a href=//x>home</a>",
        "<object data=x>",
        "<embed src=x>",
        "<style>*{}</style>",
        "vbscript:msgbox(1)",
        "data:text/html,<b>hi",
    ] {
        let body = serde_json::json!({"topic": topic, "target_age": "5-7", "style": "watercolor", "language": "en", "page_count": 4});
        let answer = app.post_json("/v1/books", &user, &body, &[]).await;
        assert_eq!(
            (answer.status, answer.code()),
            (422, "VALIDATION_ERROR"),
            "{topic}: {}",
            answer.body
        );
    }
    assert_eq!(
        app.get("/v1/credits/balance", &user).await.body["credits"],
        3,
        "nothing charged"
    );
    let book = storybook_core::domain::book::BookId::generate();
    for title in [
        "<img src=x onerror=alert(1)>",
        "night onclick = steal()",
        "javascript:go()",
    ] {
        let answer = app
            .call(
                Method::PATCH,
                &format!("/v1/library/{}", book.as_str()),
                &[("x-user-key", &user)],
                Some(&serde_json::json!({"title": title}).to_string()),
            )
            .await;
        assert_eq!(
            (answer.status, answer.code()),
            (422, "VALIDATION_ERROR"),
            "{title}: {}",
            answer.body
        );
    }
}
crate::on_both_backends!(
    #[tokio::test]
    markup_in_a_topic_or_a_title_is_refused,
    markup_in_a_topic_or_a_title_is_refused
);
