//! Our answers against the app's contract (`contract/app-openapi.json`, the OpenAPI document the
//! mobile app was built against): every answer of an operation of the app contract validates
//! against its schema for its status, and our OpenAPI document keeps each of its operations
//! exactly, adding only responses.

use crate::harness::{Answer, Backend, BookAsk, TestApp, new_user_key};
use http::Method;
use serde_json::{Value, json};

fn load(path: &str) -> Value {
    let full = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}")))
        .unwrap()
}

pub fn app_contract() -> Value {
    load("contract/app-openapi.json")
}

pub fn ours() -> Value {
    load("openapi.json")
}

/// Validates `body` against `document`'s response schema for the operation and status, with the
/// document's components in scope. Answers false when the document has no schema for it.
fn check(
    document: &Value,
    method: &str,
    path: &str,
    status: u16,
    body: &Value,
) -> Result<bool, String> {
    let operation = &document["paths"][path][method.to_lowercase()];
    assert!(
        operation.is_object(),
        "{method} {path} is not in the document"
    );
    let Some(schema) =
        operation["responses"][status.to_string()]["content"]["application/json"]["schema"]
            .as_object()
    else {
        return Ok(false);
    };
    let mut schema = Value::Object(schema.clone());
    schema["components"] = document["components"].clone();
    schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .map_err(|e| e.to_string())?;
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    if errors.is_empty() {
        Ok(true)
    } else {
        Err(errors.join("; "))
    }
}

/// Every answer must match the app contract's schema where it has one for its status, and our own
/// document's error envelope otherwise.
pub fn conforms(method: &str, path: &str, answer: &Answer) {
    let app = app_contract();
    match check(&app, method, path, answer.status, &answer.body) {
        Ok(true) => {}
        Ok(false) => {
            assert!(
                answer.status >= 400,
                "{method} {path} answered {} with no schema in the app contract",
                answer.status
            );
            let ours = ours();
            let envelope = json!({
                "$schema": "https://json-schema.org/draft/2020-12/schema",
                "$ref": "#/components/schemas/ErrorResponse",
                "components": ours["components"],
            });
            let validator = jsonschema::validator_for(&envelope).unwrap();
            assert!(
                validator.is_valid(&answer.body),
                "{method} {path} {}: {}",
                answer.status,
                answer.body
            );
        }
        Err(errors) => panic!(
            "{method} {path} {} does not match the app contract: {errors}\n{}",
            answer.status, answer.body
        ),
    }
}

#[tokio::test]
async fn every_answer_of_a_served_app_operation_matches_the_seed() {
    let app = TestApp::new(Backend::Embedded).await;
    let key = new_user_key();
    let admin = app.admin_key.clone();
    let mut seen = std::collections::BTreeSet::new();
    let mut exercise = |method: &'static str, path: &'static str, answer: Answer| {
        conforms(method, path, &answer);
        seen.insert((method, path, answer.status));
    };
    for path in [
        "/health",
        "/health/live",
        "/health/ready",
        "/v1/config/capabilities",
    ] {
        exercise("GET", path, app.call(Method::GET, path, &[], None).await);
    }
    let user = [("x-user-key", key.as_str())];
    let bad_user = [("x-user-key", "0000")];
    for path in [
        "/v1/credits/balance",
        "/v1/credits/status",
        "/v1/credits/check",
        "/v1/credits/transactions",
    ] {
        exercise("GET", path, app.call(Method::GET, path, &user, None).await);
        exercise("GET", path, app.call(Method::GET, path, &[], None).await);
        exercise(
            "GET",
            path,
            app.call(Method::GET, path, &bad_user, None).await,
        );
    }
    exercise(
        "GET",
        "/v1/credits/transactions",
        app.call(
            Method::GET,
            "/v1/credits/transactions?limit=500",
            &user,
            None,
        )
        .await,
    );
    exercise(
        "GET",
        "/v1/credits/check",
        app.call(Method::GET, "/v1/credits/check?required=x", &user, None)
            .await,
    );
    let add = |headers: Vec<(&'static str, String)>, body: &'static str| {
        let app = &app;
        async move {
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            app.call(Method::POST, "/v1/credits/add", &headers, Some(body))
                .await
        }
    };
    let both = || vec![("x-user-key", key.clone()), ("x-admin-key", admin.clone())];
    exercise(
        "POST",
        "/v1/credits/add",
        add(both(), r#"{"amount": 3, "transaction_id": "seed-1"}"#).await,
    );
    exercise(
        "POST",
        "/v1/credits/add",
        add(both(), r#"{"amount": 3, "transaction_id": "seed-1"}"#).await,
    );
    exercise(
        "POST",
        "/v1/credits/add",
        add(both(), r#"{"amount": 0, "transaction_id": "seed-2"}"#).await,
    );
    exercise(
        "POST",
        "/v1/credits/add",
        add(both(), r#"{"amount": "3"}"#).await,
    );
    exercise(
        "POST",
        "/v1/credits/add",
        add(vec![("x-user-key", key.clone())], r#"{"amount": 3}"#).await,
    );
    // The ledger now holds a bonus and a purchase: its rows were checked item by item above.
    let transactions = app
        .call(Method::GET, "/v1/credits/transactions", &user, None)
        .await;
    assert_eq!(transactions.body.as_array().unwrap().len(), 2);
    conforms("GET", "/v1/credits/transactions", &transactions);
    let statuses: std::collections::BTreeSet<u16> = seen.iter().map(|(_, _, s)| *s).collect();
    assert_eq!(
        statuses,
        [200, 400, 403, 422].into_iter().collect(),
        "the cases cover success and each refusal"
    );
}

#[test]
fn our_document_keeps_each_app_operation_exactly() {
    let (app, ours) = (app_contract(), ours());
    for (path, operations) in ours["paths"].as_object().unwrap() {
        for (method, operation) in operations.as_object().unwrap() {
            let Some(app_operation) = app["paths"][path][method].as_object() else {
                continue;
            };
            for field in ["parameters", "requestBody"] {
                assert_eq!(
                    operation.get(field),
                    app_operation.get(field),
                    "{method} {path} {field}"
                );
            }
            for (status, response) in app_operation["responses"].as_object().unwrap() {
                assert_eq!(
                    &operation["responses"][status], response,
                    "{method} {path} response {status}"
                );
            }
        }
    }
    // Every schema the app contract's operations use is carried over unchanged.
    for (name, schema) in ours["components"]["schemas"].as_object().unwrap() {
        if let Some(app_schema) = app["components"]["schemas"].get(name) {
            assert_eq!(schema, app_schema, "schema {name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_answer_of_the_book_operations_matches_the_app_contract() {
    let app = TestApp::new(Backend::Embedded).await;
    let user = new_user_key();
    let headers = [("x-user-key", user.as_str())];
    let book = BookAsk::korean(4).json().to_string();
    let created = app
        .call(Method::POST, "/v1/books", &headers, Some(&book))
        .await;
    conforms("POST", "/v1/books", &created);
    let job = created.body["job_id"].as_str().unwrap().to_owned();
    // Queued: polled before any step ran.
    conforms(
        "GET",
        "/v1/books/{job_id}",
        &app.get(&format!("/v1/books/{job}"), &user).await,
    );
    conforms(
        "GET",
        "/v1/books/{book_id}/detail",
        &app.get(&format!("/v1/books/{job}/detail"), &user).await,
    );
    let _worker = app.start_worker();
    let done = crate::books::poll(&app, &user, &job, std::time::Duration::from_secs(30)).await;
    assert_eq!(done.body["status"], "done");
    conforms("GET", "/v1/books/{job_id}", &done);
    conforms(
        "GET",
        "/v1/books/{book_id}/detail",
        &app.get(&format!("/v1/books/{job}/detail"), &user).await,
    );
    conforms(
        "GET",
        "/v1/books/{book_id}/pdf",
        &app.get(&format!("/v1/books/{job}/pdf"), &user).await,
    );
    conforms("GET", "/v1/library", &app.get("/v1/library", &user).await);
    conforms(
        "GET",
        "/v1/library",
        &app.get("/v1/library?limit=0", &user).await,
    );
    let rename = app
        .call(
            Method::PATCH,
            &format!("/v1/library/{job}"),
            &headers,
            Some(r#"{"title": "새 제목"}"#),
        )
        .await;
    conforms("PATCH", "/v1/library/{book_id}", &rename);
    // A failed job: refused by moderation.
    let refused =
        json!({"topic": "murder mystery", "target_age": "7-9", "style": "cartoon"}).to_string();
    let failed_job = app
        .call(Method::POST, "/v1/books", &headers, Some(&refused))
        .await
        .body["job_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let failed =
        crate::books::poll(&app, &user, &failed_job, std::time::Duration::from_secs(30)).await;
    assert_eq!(failed.body["status"], "failed");
    conforms("GET", "/v1/books/{job_id}", &failed);
    // The same idempotency key with another request: a 422, in the app contract's shape for 422s.
    let keyed = [
        ("x-user-key", user.as_str()),
        ("x-idempotency-key", "seed-key"),
    ];
    let other_book = BookAsk::korean(5).json().to_string();
    app.call(Method::POST, "/v1/books", &keyed, Some(&book))
        .await;
    let reused = app
        .call(Method::POST, "/v1/books", &keyed, Some(&other_book))
        .await;
    assert_eq!(
        (reused.status, reused.code()),
        (422, "IDEMPOTENCY_KEY_REUSED")
    );
    conforms("POST", "/v1/books", &reused);
    for (method, path, answer) in [
        (
            "POST",
            "/v1/books",
            app.call(
                Method::POST,
                "/v1/books",
                &headers,
                Some(r#"{"topic": "x"}"#),
            )
            .await,
        ),
        (
            "GET",
            "/v1/books/{job_id}",
            app.get("/v1/books/bk_unknown", &user).await,
        ),
        (
            "DELETE",
            "/v1/library/{book_id}",
            app.call(
                Method::DELETE,
                &format!("/v1/library/{job}"),
                &headers,
                None,
            )
            .await,
        ),
    ] {
        conforms(method, path, &answer);
    }
}

#[tokio::test]
async fn every_answer_of_the_streak_and_settings_operations_matches_the_app_contract() {
    let app = TestApp::new(Backend::Embedded).await;
    let user = new_user_key();
    let headers = [("x-user-key", user.as_str())];
    let job = crate::books::finished_book(&app, &user).await;
    let mut statuses = std::collections::BTreeSet::new();
    let mut check = |method: &str, path: &str, answer: Answer| {
        conforms(method, path, &answer);
        statuses.insert(answer.status);
    };
    for (body, times) in [
        (
            json!({"book_id": job, "reading_time": 120, "completed": true}),
            2,
        ),
        (json!({"book_id": "bk_nobody"}), 1),
        (json!({"book_id": job, "reading_time": "long"}), 1),
    ] {
        for _ in 0..times {
            let answer = app
                .call(
                    Method::POST,
                    "/v1/streak/read",
                    &headers,
                    Some(&body.to_string()),
                )
                .await;
            check("POST", "/v1/streak/read", answer);
        }
    }
    for path in [
        "/v1/streak/info",
        "/v1/streak/calendar?year=2026&month=11",
        "/v1/streak/calendar?year=2026",
        "/v1/streak/history",
        "/v1/streak/history?days=400",
        "/v1/settings",
    ] {
        let template = path.split('?').next().unwrap();
        check(
            "GET",
            template,
            app.call(Method::GET, path, &headers, None).await,
        );
        check(
            "GET",
            template,
            app.call(Method::GET, path, &[], None).await,
        );
    }
    for body in [
        json!({"timezone": "Europe/Paris"}),
        json!({"timezone": "Europe/Nowhere"}),
    ] {
        let answer = app
            .call(
                Method::PATCH,
                "/v1/settings",
                &headers,
                Some(&body.to_string()),
            )
            .await;
        check("PATCH", "/v1/settings", answer);
    }
    assert_eq!(statuses, [200, 404, 422].into_iter().collect());
}
