//! What operators rely on: secrets read from Secrets Manager at start (moto_server), the release's
//! smoke test as CodeDeploy's PreTraffic hook (a real lifecycle event, a local server, CodeDeploy's
//! JSON protocol on loopback), the dry-run book it asks for, and the budget guard on a real
//! CloudWatch alarm event.

use crate::harness::BookAsk;
use crate::harness::{Backend, TestApp, moto_config, new_user_key, test_config};
use async_trait::async_trait;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::event::cloudwatch_alarms::{
    CloudWatchAlarmStateValue, CloudWatchMetricAlarm,
};
use aws_lambda_events::event::codedeploy::CodeDeployLifecycleEvent;
use http::Method;
use storybook_aws::deploy::{CodeDeployReporter, api_event, pre_traffic};
use storybook_aws::events::OnSpendAlarm;
use storybook_aws::secrets::{SecretIds, Secrets};
use storybook_core::catalogue::Family;
use storybook_core::deploy_check::{SmokeRequest, SmokeResponse, SmokeTarget, Verdict};
use storybook_core::spend::{BUDGET_GUARD, SpendGuard};
use storybook_http::{app, smoke};
use tower::ServiceExt;
use wiremock::matchers::{body_partial_json, header, method};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::test]
async fn secrets_are_read_from_secrets_manager_by_id() {
    let sdk = moto_config().await;
    let client = aws_sdk_secretsmanager::Client::new(&sdk);
    let prefix = crate::harness::unique_prefix();
    let pepper = "p".repeat(48);
    let generated = "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0U1v";
    for (name, value) in [
        ("pepper", pepper.as_str()),
        (
            "providers",
            r#"{"OPENAI_API_KEY": "sk-from-the-secret", "FAL_KEY": ""}"#,
        ),
        ("admin", generated),
        ("short", "too short"),
    ] {
        client
            .create_secret()
            .name(format!("{prefix}/{name}"))
            .secret_string(value)
            .send()
            .await
            .unwrap();
    }
    let ids = SecretIds::from_lookup(&|name| match name {
        "KEY_PEPPER_SECRET_ID" => Some(format!("{prefix}/pepper")),
        "PROVIDER_KEYS_SECRET_ID" => Some(format!("{prefix}/providers")),
        "BOOTSTRAP_ADMIN_KEY_SECRET_ID" => Some(format!("{prefix}/admin")),
        _ => None,
    });
    let secrets = Secrets::load(&client, &ids).await.unwrap();
    assert_eq!(
        secrets.pepper.as_ref().unwrap().as_bytes(),
        pepper.as_bytes()
    );
    assert_eq!(
        secrets.bootstrap_admin_key.as_deref(),
        Some(format!("sbk_live_{generated}").as_str()),
        "a generated secret becomes a live admin key"
    );
    storybook_core::domain::api_key::ApiKeySecret::parse(
        secrets.bootstrap_admin_key.as_deref().unwrap(),
    )
    .expect("a well-formed admin key");
    let lookup = secrets.provider_lookup();
    assert_eq!(
        lookup("OPENAI_API_KEY").as_deref(),
        Some("sk-from-the-secret")
    );
    assert_eq!(lookup("FAL_KEY"), None, "an empty key is unset");
    // Only the configured secrets are read.
    let none = Secrets::load(&client, &SecretIds::default()).await.unwrap();
    assert!(none.pepper.is_none() && none.provider_keys.is_empty());
    // A short pepper or a missing secret stops the start, named by id and never by value.
    let short = SecretIds {
        pepper: Some(format!("{prefix}/short")),
        ..SecretIds::default()
    };
    let error = format!("{:#}", Secrets::load(&client, &short).await.unwrap_err());
    assert!(
        error.contains(&format!("{prefix}/short")) && !error.contains("too short"),
        "{error}"
    );
    let missing = SecretIds {
        provider_keys: Some(format!("{prefix}/nowhere")),
        ..SecretIds::default()
    };
    assert!(Secrets::load(&client, &missing).await.is_err());
}

fn lifecycle_event() -> CodeDeployLifecycleEvent {
    serde_json::from_str(include_str!("../fixtures/codedeploy-lifecycle-event.json")).unwrap()
}

/// CodeDeploy's API on loopback (its JSON 1.1 protocol), expecting one verdict.
async fn codedeploy_expecting(status: &str) -> (MockServer, CodeDeployReporter) {
    let server = MockServer::start().await;
    let event = lifecycle_event();
    Mock::given(method("POST"))
        .and(header(
            "x-amz-target",
            "CodeDeploy_20141006.PutLifecycleEventHookExecutionStatus",
        ))
        .and(body_partial_json(serde_json::json!({
            "deploymentId": event.deployment_id,
            "lifecycleEventHookExecutionId": event.lifecycle_event_hook_execution_id,
            "status": status,
        })))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "application/x-amz-json-1.1")
                .set_body_json(serde_json::json!({
                    "lifecycleEventHookExecutionId": event.lifecycle_event_hook_execution_id
                })),
        )
        .expect(1)
        .mount(&server)
        .await;
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        // The SDK's own default client is not built in (see storybook-aws's sdk.rs).
        .http_client(storybook_aws::sdk::https_client())
        .endpoint_url(server.uri())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_dynamodb::config::Credentials::new(
            "x", "x", None, None, "tests",
        ))
        .load()
        .await;
    let reporter = CodeDeployReporter(aws_sdk_codedeploy::Client::new(&sdk));
    (server, reporter)
}

#[tokio::test]
async fn the_pre_traffic_hook_passes_a_healthy_release() {
    let app = TestApp::new(Backend::Embedded).await;
    let target = HttpTarget::new(app.base_url.clone().unwrap());
    let (server, reporter) = codedeploy_expecting("Succeeded").await;
    let verdict = pre_traffic(lifecycle_event(), &smoke::checks(), &target, &reporter)
        .await
        .unwrap();
    assert_eq!(verdict, Verdict::Succeeded);
    server.verify().await;
    // The dry run charged nothing and made no book.
    let smoke = storybook_core::deploy_check::SMOKE_USER_KEY;
    let user = app
        .state
        .store
        .find_user(&app.user_id(smoke))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(user.credits, 3);
    assert!(app.state.store.books_of(&user.id).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_pre_traffic_hook_stops_a_release_whose_health_check_fails() {
    // The new release cannot reach its store: /health/ready answers 503.
    let broken = app(crate::api_edges::unreachable_aws_state().await, Family::ALL);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let server_task = tokio::spawn(async move {
        let _ = storybook_local::serve(listener, broken).await;
    });
    let (server, reporter) = codedeploy_expecting("Failed").await;
    let verdict = pre_traffic(
        lifecycle_event(),
        &smoke::checks(),
        &HttpTarget::new(base_url),
        &reporter,
    )
    .await
    .unwrap();
    assert!(
        matches!(&verdict, Verdict::Failed(reason) if reason.contains("/health/ready") && reason.contains("503")),
        "{verdict:?}"
    );
    server.verify().await;
    server_task.abort();
}

#[tokio::test]
async fn the_hook_event_for_a_function_version_is_one_lambda_http_serves() {
    let app = TestApp::new(Backend::Embedded).await;
    let request = SmokeRequest {
        family: Family::Books,
        method: "POST",
        path: "/v1/books",
        headers: vec![
            ("x-user-key", new_user_key()),
            ("x-dry-run", "true".into()),
            ("content-type", "application/json".into()),
        ],
        body: Some(BookAsk::korean(4).json().to_string()),
    };
    let event = api_event(&request).to_string();
    let _: ApiGatewayV2httpRequest = serde_json::from_str(&event).expect("an API Gateway v2 event");
    let http_request = lambda_http::request::from_str(&event).expect("lambda_http reads it");
    let response = app.router.clone().oneshot(http_request).await.unwrap();
    assert_eq!(response.status(), 204);
}

async fn a_dry_run_book_is_checked_but_never_made(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    let dry = [("x-dry-run", "true")];
    let answer = app
        .post_json("/v1/books", &user, &BookAsk::korean(4).json(), &dry)
        .await;
    assert_eq!(answer.status, 204, "{}", answer.body);
    assert_eq!(
        app.get("/v1/credits/balance", &user).await.body["credits"],
        3
    );
    let books = app.state.store.books_of(&app.user_id(&user)).await.unwrap();
    assert!(books.is_empty(), "no book stored");
    // Checked like a real request: the schema, then the credits.
    let invalid = app
        .post_json("/v1/books", &user, &serde_json::json!({"topic": ""}), &dry)
        .await;
    assert_eq!(invalid.status, 422);
    let maybe = app
        .post_json(
            "/v1/books",
            &user,
            &BookAsk::korean(4).json(),
            &[("x-dry-run", "maybe")],
        )
        .await;
    assert_eq!((maybe.status, maybe.code()), (422, "VALIDATION_ERROR"));
    let poor = new_user_key();
    let config = storybook_core::config::Config {
        book_price: 5,
        ..test_config()
    };
    let pricey = TestApp::with_config(backend, config).await;
    let refused = pricey
        .post_json("/v1/books", &poor, &BookAsk::korean(4).json(), &dry)
        .await;
    assert_eq!((refused.status, refused.code()), (402, "PAYMENT_REQUIRED"));
}
crate::on_both_backends!(
    #[tokio::test]
    a_dry_run_book_is_checked_but_never_made,
    a_dry_run_book_is_checked_but_never_made
);

fn alarm(state: CloudWatchAlarmStateValue) -> CloudWatchMetricAlarm {
    let mut alarm: CloudWatchMetricAlarm =
        serde_json::from_str(include_str!("../fixtures/cloudwatch-alarm.json")).unwrap();
    if let Some(current) = alarm.alarm_data.state.as_mut() {
        current.value = state;
    }
    alarm
}

async fn the_budget_guard_switches_generation_off_once(backend: Backend) {
    let app = TestApp::new(backend).await;
    let guard = SpendGuard::new(&app.state);
    assert!(
        !guard
            .on_spend_alarm(&alarm(CloudWatchAlarmStateValue::Ok))
            .await
            .unwrap()
    );
    assert_eq!(app.state.store.kill_switch().await.unwrap(), None);
    assert!(
        guard
            .on_spend_alarm(&alarm(CloudWatchAlarmStateValue::Alarm))
            .await
            .unwrap()
    );
    let switch = app.state.store.kill_switch().await.unwrap().unwrap();
    assert!(switch.on && switch.by == BUDGET_GUARD, "{switch:?}");
    assert!(switch.reason.contains("lambda-demo-metric-alarm"));
    // Firing again keeps the switch as it was set.
    assert!(
        !guard
            .on_spend_alarm(&alarm(CloudWatchAlarmStateValue::Alarm))
            .await
            .unwrap()
    );
    let refused = app
        .post_json(
            "/v1/books",
            &new_user_key(),
            &BookAsk::korean(4).json(),
            &[],
        )
        .await;
    assert_eq!(
        (refused.status, refused.code()),
        (503, "SERVICE_UNAVAILABLE")
    );
    let report = app
        .call(
            Method::GET,
            "/v1/admin/spend",
            &[("x-api-key", &app.admin_key)],
            None,
        )
        .await;
    assert_eq!(report.body["kill_switch"]["set_by"], BUDGET_GUARD);
}
crate::on_both_backends!(
    #[tokio::test]
    the_budget_guard_switches_generation_off_once,
    the_budget_guard_switches_generation_off_once
);

#[tokio::test]
async fn the_restore_drill_restores_the_table_and_reconciles_every_balance() {
    use storybook_aws::restore::restore_and_reconcile;
    use storybook_core::domain::credits::{EntryKind, Grant, GrantAmount, TransactionId};
    use storybook_core::ports::Store;
    let sdk = moto_config().await;
    let resources = storybook_aws::provision::provision(&sdk, &crate::harness::unique_prefix())
        .await
        .unwrap();
    let state = crate::harness::state_over(&sdk, &resources, test_config());
    let store: &dyn Store = &*state.store;
    let users: Vec<_> = (0..3)
        .map(|_| {
            state.hasher.hash(
                storybook_core::domain::credential::CredentialKind::UserKey,
                &new_user_key(),
            )
        })
        .collect();
    for (i, user) in users.iter().enumerate() {
        store
            .create_user(user, 3, chrono::Utc::now())
            .await
            .unwrap();
        store
            .grant(&Grant {
                user: user.clone(),
                delta: GrantAmount::parse(5).unwrap().get(),
                transaction_id: TransactionId::parse(&format!("drill-{i}-{}", new_user_key()))
                    .unwrap(),
                kind: EntryKind::Purchase,
                reason: None,
                at: chrono::Utc::now(),
            })
            .await
            .unwrap();
    }
    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let restored = format!("{}-drill", resources.table);
    let report = restore_and_reconcile(&client, &resources.table, &restored, None)
        .await
        .unwrap();
    assert_eq!(report.table, restored);
    assert_eq!((report.users, report.ledger_entries), (3, 6), "{report:?}");
    assert!(report.unreconciled.is_empty(), "{report:?}");
    // A balance moved without its ledger entry is found.
    client
        .update_item()
        .table_name(&resources.table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{}", users[1].as_str())),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("PROFILE".into()),
        )
        .update_expression("SET credits = credits + :five")
        .expression_attribute_values(
            ":five",
            aws_sdk_dynamodb::types::AttributeValue::N("5".into()),
        )
        .send()
        .await
        .unwrap();
    let report = restore_and_reconcile(&client, &resources.table, &format!("{restored}-2"), None)
        .await
        .unwrap();
    assert_eq!(report.unreconciled, vec![users[1].truncated().to_owned()]);
}

/// A running API over HTTP (a local server in tests, or a stage's URL).
pub struct HttpTarget {
    pub base_url: String,
    pub client: reqwest::Client,
}

impl HttpTarget {
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .no_proxy()
                .build()
                .expect("an HTTP client"),
        }
    }
}

#[async_trait]
impl SmokeTarget for HttpTarget {
    async fn send(&self, request: &SmokeRequest) -> anyhow::Result<SmokeResponse> {
        let method = reqwest::Method::from_bytes(request.method.as_bytes())?;
        let mut builder = self
            .client
            .request(method, format!("{}{}", self.base_url, request.path));
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        let response = builder.send().await?;
        Ok(SmokeResponse {
            status: response.status().as_u16(),
            body: response.text().await?,
        })
    }
}
