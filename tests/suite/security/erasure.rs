//! Erasing a user: their books go, the ledger stays anonymised, and no lasting item names them.

use super::*;
use crate::harness::BookAsk;

async fn erasure_removes_a_users_books_and_keeps_the_ledger_anonymised(backend: Backend) {
    let app = TestApp::new(backend).await;
    let _worker = app.start_worker();
    let user = new_user_key();
    let job = crate::books::start_book(&app, &user).await;
    let done = crate::books::poll(&app, &user, &job, crate::books::PATIENCE).await;
    assert_eq!(done.body["status"], "done");
    let picture = done.body["result"]["pages"][0]["image_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let erased = app.erase(&user).await;
    assert_eq!(erased.status, 200, "{}", erased.body);
    assert_eq!(erased.body["deleted"]["books"], 1);
    assert_eq!(erased.body["kept_anonymised"]["ledger_entries"], 2);
    assert!(
        reqwest::get(&picture)
            .await
            .unwrap()
            .status()
            .is_client_error(),
        "the pictures are gone"
    );
    assert!(audit_events(&app).await.contains(&"user_erased".to_owned()));
    // The same key starts afresh: new credits, empty library, no trace of the book.
    assert_eq!(
        app.get("/v1/credits/balance", &user).await.body["credits"],
        3
    );
    assert_eq!(app.get("/v1/library", &user).await.body["total"], 0);
    assert_eq!(
        app.get(&format!("/v1/books/{job}"), &user).await.status,
        404
    );
    assert_eq!(
        app.get("/v1/credits/transactions", &user)
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
}
on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    erasure_removes_a_users_books_and_keeps_the_ledger_anonymised,
    erasure_removes_a_users_books_and_keeps_the_ledger_anonymised
);

/// After erasure no lasting item of the DynamoDB table holds the user's keyed hash anywhere: not
/// the profile, books, settings, streak, readings or indexes, nor the once-only grant markers.
#[tokio::test]
async fn erasure_leaves_no_trace_of_the_user_in_dynamodb() {
    let sdk = crate::harness::moto_config().await;
    let resources = storybook_aws::provision::provision(&sdk, &crate::harness::unique_prefix())
        .await
        .unwrap();
    let state = crate::harness::state_over(&sdk, &resources, test_config());
    let router = storybook_http::app(state.clone(), storybook_core::catalogue::Family::ALL);
    let user = new_user_key();
    let hash = state.hasher.hash(CredentialKind::UserKey, &user);
    let call =
        |method: Method, path: &str, headers: Vec<(&'static str, String)>, body: Option<Value>| {
            let router = router.clone();
            let mut request = http::Request::builder().method(method).uri(path);
            for (name, value) in headers {
                request = request.header(name, value);
            }
            let request = request
                .header("content-type", "application/json")
                .body(axum::body::Body::from(
                    body.map(|b| b.to_string()).unwrap_or_default(),
                ))
                .unwrap();
            async move {
                use tower::ServiceExt;
                Answer::from_response(router.oneshot(request).await.unwrap()).await
            }
        };
    let admin = ApiKeySecret::generate(KeyEnvironment::Live);
    storybook_core::bootstrap::store_admin_key(&state, &admin, "tests")
        .await
        .unwrap();
    let me = || vec![("x-user-key", user.clone())];
    let mut with_admin = me();
    with_admin.push(("x-admin-key", admin.expose().to_owned()));
    let granted = call(
        Method::POST,
        "/v1/credits/add",
        with_admin,
        Some(json!({"amount": 2, "transaction_id": format!("erase-{user}")})),
    )
    .await;
    assert_eq!(granted.status, 200, "{}", granted.body);
    let book = call(
        Method::POST,
        "/v1/books",
        me(),
        Some(BookAsk::korean(4).json()),
    )
    .await;
    let job = book.body["job_id"].as_str().unwrap().to_owned();
    // Only a finished book counts as reading: made here by a worker over this state.
    let pipeline = std::sync::Arc::new(storybook_pipeline::pipeline::Pipeline {
        first_retry: std::time::Duration::from_millis(20),
        ..storybook_pipeline::pipeline::Pipeline::new(
            &state,
            storybook_pipeline::providers::Providers::offline(),
        )
    });
    let worker = tokio::spawn(storybook_pipeline::pipeline::worker::run_local(pipeline));
    let id = storybook_core::domain::book::BookId::parse(&job).unwrap();
    for _ in 0..600 {
        if state
            .store
            .find_book(&id)
            .await
            .unwrap()
            .unwrap()
            .book
            .is_readable()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    worker.abort();
    call(
        Method::PATCH,
        "/v1/settings",
        me(),
        Some(json!({"timezone": "Europe/Berlin"})),
    )
    .await;
    let read = call(
        Method::POST,
        "/v1/streak/read",
        me(),
        Some(json!({"book_id": job})),
    )
    .await;
    assert_eq!(read.status, 200, "{}", read.body);
    let erased = call(Method::DELETE, "/v1/users/me", me(), None).await;
    assert_eq!(erased.status, 200, "{}", erased.body);

    let client = aws_sdk_dynamodb::Client::new(&sdk);
    let items = client
        .scan()
        .table_name(&resources.table)
        .send()
        .await
        .unwrap()
        .items
        .unwrap_or_default();
    assert!(!items.is_empty(), "the anonymised ledger stays");
    for item in &items {
        let text = format!("{item:?}");
        // Rate-limit counters count by caller and expire with their window (a day at most).
        if text.contains("S(\"LIMIT#") {
            continue;
        }
        assert!(
            !text.contains(hash.as_str()),
            "an item still names the user: {text}"
        );
        assert!(
            !text.contains(&job),
            "an item still names the erased book: {text}"
        );
    }
}
