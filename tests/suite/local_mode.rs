//! Local mode as a parent's laptop runs it: state that survives a restart, and signed blob URLs
//! served by the local server itself.

use crate::harness::{Answer, Backend, BookAsk, TestApp, new_user_key, test_config};
use http::Method;
use std::time::Duration;
use storybook_core::config::LocalSettings;
use storybook_core::domain::api_key::{ApiKeySecret, KeyEnvironment};
use storybook_core::ports::BlobKey;
use storybook_core::ports::blobs::stream_of;
use storybook_local::LocalMode;
use tower::ServiceExt;

async fn call(
    mode: &LocalMode,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> Answer {
    let mut request = http::Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let request = request
        .body(axum::body::Body::from(body.unwrap_or_default().to_owned()))
        .unwrap();
    Answer::from_response(mode.router().oneshot(request).await.unwrap()).await
}

#[tokio::test]
async fn a_restart_keeps_every_user_key_and_credit() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalSettings {
        port: 0,
        data_dir: dir.path().to_owned(),
        public_base_url: "http://127.0.0.1:9".into(),
    };
    let user = new_user_key();
    let admin = ApiKeySecret::generate(KeyEnvironment::Live);
    let grant = |id: &str| format!(r#"{{"amount": 4, "transaction_id": "{id}"}}"#);
    {
        let mode = LocalMode::open(test_config(), &local, &Default::default()).unwrap();
        storybook_core::bootstrap::store_admin_key(&mode.state, &admin, "ops")
            .await
            .unwrap();
        let headers = [
            ("x-user-key", user.as_str()),
            ("x-admin-key", admin.expose()),
        ];
        let answer = call(
            &mode,
            Method::POST,
            "/v1/credits/add",
            &headers,
            Some(&grant("before")),
        )
        .await;
        assert_eq!(answer.body["new_balance"], 7);
        mode.state.queue.send("unfinished step").await.unwrap();
    }
    let mode = LocalMode::open(test_config(), &local, &Default::default()).unwrap();
    let balance = call(
        &mode,
        Method::GET,
        "/v1/credits/balance",
        &[("x-user-key", &user)],
        None,
    )
    .await;
    assert_eq!(
        balance.body["credits"], 7,
        "the user and their credits survived"
    );
    let headers = [
        ("x-user-key", user.as_str()),
        ("x-admin-key", admin.expose()),
    ];
    let again = call(
        &mode,
        Method::POST,
        "/v1/credits/add",
        &headers,
        Some(&grant("before")),
    )
    .await;
    assert_eq!(
        again.body["status"], "already_processed",
        "the grant record survived"
    );
    let after = call(
        &mode,
        Method::POST,
        "/v1/credits/add",
        &headers,
        Some(&grant("after")),
    )
    .await;
    assert_eq!(
        (after.status, after.body["new_balance"].as_i64()),
        (200, Some(11)),
        "the admin key survived"
    );
    let pending = mode
        .state
        .queue
        .receive(10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(pending.len(), 1, "the queued step survived");
    let transactions = call(
        &mode,
        Method::GET,
        "/v1/credits/transactions",
        &[("x-user-key", &user)],
        None,
    )
    .await;
    assert_eq!(transactions.body.as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_blob_urls_are_checked() {
    let app = TestApp::new(Backend::Embedded).await;
    let key = BlobKey::parse("books/b1/page-1.png").unwrap();
    app.state
        .blobs
        .put(&key, stream_of(&b"\x89PNG page"[..]))
        .await
        .unwrap();
    let url = app
        .state
        .blobs
        .signed_url(&key, Duration::from_secs(60))
        .await
        .unwrap();
    assert!(url.starts_with(app.base_url.as_deref().unwrap()), "{url}");
    let ok = reqwest::get(&url).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["content-type"], "image/png");

    let tampered = format!("{}0", &url[..url.len() - 1]);
    let tampered = if tampered == url {
        format!("{}1", &url[..url.len() - 1])
    } else {
        tampered
    };
    assert_eq!(reqwest::get(&tampered).await.unwrap().status(), 403);
    let other_blob = url.replace("page-1.png", "page-2.png");
    assert_eq!(reqwest::get(&other_blob).await.unwrap().status(), 403);
    let unsigned = url.split('?').next().unwrap().to_owned();
    assert_eq!(reqwest::get(&unsigned).await.unwrap().status(), 403);
    let base = app.base_url.clone().unwrap();
    let traversal = reqwest::get(format!(
        "{base}/local/blobs/..%2Fpepper?expires=9999999999&signature=00"
    ))
    .await
    .unwrap();
    assert_eq!(traversal.status(), 404);

    let short = app
        .state
        .blobs
        .signed_url(&key, Duration::ZERO)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = reqwest::get(&short).await.unwrap();
    assert_eq!(expired.status(), 403);
    let body: serde_json::Value = expired.json().await.unwrap();
    assert_eq!(body["error"]["code"], "FORBIDDEN");
}

fn grab_job(answer: &Answer) -> String {
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["job_id"].as_str().unwrap().to_owned()
}

async fn poll_done(mode: &LocalMode, user: &str, job: &str) -> serde_json::Value {
    let started = std::time::Instant::now();
    loop {
        let status = call(
            mode,
            Method::GET,
            &format!("/v1/books/{job}"),
            &[("x-user-key", user)],
            None,
        )
        .await;
        if matches!(status.body["status"].as_str(), Some("done" | "failed"))
            || started.elapsed() > Duration::from_secs(30)
        {
            return status.body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_book_stopped_mid_way_finishes_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalSettings {
        port: 0,
        data_dir: dir.path().to_owned(),
        public_base_url: "http://127.0.0.1:9".into(),
    };
    let user = new_user_key();
    let book = BookAsk::korean(4).json().to_string();
    let (mid_way, never_enqueued) = {
        let mode = LocalMode::open(test_config(), &local, &Default::default()).unwrap();
        let mid_way = grab_job(
            &call(
                &mode,
                Method::POST,
                "/v1/books",
                &[("x-user-key", &user)],
                Some(&book),
            )
            .await,
        );
        // The story runs and is acknowledged; then three page steps are taken and the process
        // stops before finishing them.
        let story = mode
            .state
            .queue
            .receive(1, Duration::from_secs(30))
            .await
            .unwrap();
        mode.pipeline.handle(&story[0].body, false).await.unwrap();
        mode.state.queue.delete(&story[0].receipt).await.unwrap();
        let taken = mode
            .state
            .queue
            .receive(3, Duration::from_secs(300))
            .await
            .unwrap();
        assert_eq!(taken.len(), 3);
        // A second book is charged and stored, and the process stops before its first step is
        // enqueued.
        let never_enqueued = grab_job(
            &call(
                &mode,
                Method::POST,
                "/v1/books",
                &[("x-user-key", &user)],
                Some(&book),
            )
            .await,
        );
        let orphan = mode
            .state
            .queue
            .receive(10, Duration::from_secs(300))
            .await
            .unwrap();
        let orphan_story = orphan
            .iter()
            .find(|m| m.body.contains(&never_enqueued))
            .unwrap();
        mode.state
            .queue
            .delete(&orphan_story.receipt)
            .await
            .unwrap();
        (mid_way, never_enqueued)
    };
    let mode = LocalMode::open(test_config(), &local, &Default::default()).unwrap();
    let _worker = mode.start_worker().await.unwrap();
    for job in [&mid_way, &never_enqueued] {
        let status = poll_done(&mode, &user, job).await;
        assert_eq!(status["status"], "done", "{status}");
    }
    let ledger = call(
        &mode,
        Method::GET,
        "/v1/credits/transactions",
        &[("x-user-key", &user)],
        None,
    )
    .await;
    let kinds: Vec<&str> = ledger
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["transaction_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec!["usage", "usage", "bonus"],
        "charged once per book, nothing refunded"
    );
}
