//! Print orders sent to Lulu's Print API, an in-process Lulu speaking its wire format: the
//! client-credentials token, the cover's dimensions, the job's cost, the print job with its
//! print-ready files, its state read back, and its webhooks believed only with their HMAC.

use crate::books::finished_book;
use crate::harness::{Answer, Backend, TestApp, new_user_key, test_config};
use crate::on_both_backends;
use hmac::{Hmac, Mac};
use http::Method;
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::{Arc, Mutex};
use storybook_pipeline::print::LuluSettings;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const KEY: &str = "lulu-client-key";
const SECRET: &str = "lulu-client-secret";
const TOKEN: &str = "lulu-access-token";

/// Lulu, as far as we use it; each print job it was asked to make is kept.
struct FakeLulu {
    server: MockServer,
    jobs: Arc<Mutex<Vec<Value>>>,
}

struct CreateJob(Arc<Mutex<Vec<Value>>>);

impl Respond for CreateJob {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        self.0.lock().unwrap().push(body.clone());
        ResponseTemplate::new(201).set_body_json(json!({
            "id": 81231,
            "external_id": body["external_id"],
            "status": {"name": "CREATED", "messages": {}},
            "line_items": [{"id": 1, "tracking_id": null, "status": {"name": "CREATED"}}],
            "costs": {"total_cost_incl_tax": null, "currency": "USD"},
        }))
    }
}

impl FakeLulu {
    async fn start() -> Self {
        let server = MockServer::start().await;
        use base64::Engine;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{KEY}:{SECRET}"));
        Mock::given(method("POST"))
            .and(path("/auth/realms/glasstree/protocol/openid-connect/token"))
            .and(header("authorization", format!("Basic {basic}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                json!({"access_token": TOKEN, "expires_in": 3600, "token_type": "Bearer"}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        let bearer = format!("Bearer {TOKEN}");
        Mock::given(method("POST"))
            .and(path("/cover-dimensions/"))
            .and(header("authorization", bearer.as_str()))
            .respond_with(
                ResponseTemplate::new(201)
                    .set_body_json(json!({"width": "1350.720", "height": "720.000", "unit": "pt"})),
            )
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path("/print-job-cost-calculations/"))
            .and(header("authorization", bearer.as_str()))
            .respond_with(ResponseTemplate::new(201).set_body_json(json!({
                "currency": "USD",
                "total_cost_excl_tax": "21.55",
                "total_cost_incl_tax": "23.71",
                "shipping_cost": {"total_cost_incl_tax": "6.99"},
            })))
            .mount(&server)
            .await;
        let jobs = Arc::new(Mutex::new(Vec::new()));
        Mock::given(method("POST"))
            .and(path("/print-jobs/"))
            .and(header("authorization", bearer.as_str()))
            .respond_with(CreateJob(jobs.clone()))
            .mount(&server)
            .await;
        FakeLulu { server, jobs }
    }

    fn settings(&self) -> LuluSettings {
        LuluSettings {
            client_key: KEY.into(),
            client_secret: SECRET.into(),
            api_url: self.server.uri(),
            package_id: "0850X0850FCPRECW080CW444GXX".into(),
            contact_email: "orders@storybook.example".into(),
            shipping_level: None,
            webhook_secret: Some(SECRET.into()),
        }
    }

    /// Lulu says job 81231 is now `status`, shipped with `tracking` if given.
    async fn job_is(&self, order: &str, status: &str, tracking: Option<&str>) {
        Mock::given(method("GET"))
            .and(path("/print-jobs/81231/"))
            .respond_with(ResponseTemplate::new(200).set_body_json(job(order, status, tracking)))
            .mount(&self.server)
            .await;
    }
}

fn job(order: &str, status: &str, tracking: Option<&str>) -> Value {
    json!({
        "id": 81231, "external_id": order,
        "status": {"name": status},
        "line_items": [{"tracking_id": tracking, "tracking_urls": []}],
        "costs": {"total_cost_incl_tax": "23.71", "currency": "USD"},
    })
}

fn signed(body: &str, secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

async fn webhook(app: &TestApp, body: &str, signature: Option<&str>) -> Answer {
    let headers: Vec<(&str, &str)> = signature
        .map(|s| ("lulu-hmac-sha256", s))
        .into_iter()
        .collect();
    app.call(Method::POST, "/v1/pod/webhook/lulu", &headers, Some(body))
        .await
}

/// An order of a finished book of `user`'s, shipped to `country`; answers the order's answer.
async fn placed(app: &TestApp, user: &str, country: &str) -> Answer {
    let book = finished_book(app, user).await;
    let address = json!({"name": "A", "line1": "1 Road", "city": "Seoul", "state": "IL",
        "postal_code": "04524", "country": country});
    let body = json!({"book_id": book, "shipping_address": address});
    app.post_json("/v1/pod/orders", user, &body, &[]).await
}

async fn approve(app: &TestApp, id: &str) -> Answer {
    let bearer = format!("Bearer {}", app.admin_key);
    let path = format!("/v1/admin/pod/orders/{id}/approve");
    app.call(Method::POST, &path, &[("authorization", &bearer)], None)
        .await
}

/// The kill switch on or off.
async fn switch(app: &TestApp, on: bool) {
    let bearer = format!("Bearer {}", app.admin_key);
    let headers = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    let body = json!({"enabled": on, "reason": "print test"}).to_string();
    let switched = app
        .call(Method::PUT, "/v1/admin/kill-switch", &headers, Some(&body))
        .await;
    assert!(switched.status < 300, "{}", switched.body);
}

async fn an_approved_order_is_printed_by_lulu_and_followed(backend: Backend) {
    let lulu = FakeLulu::start().await;
    let app = TestApp::with_printer(backend, test_config(), lulu.settings()).await;
    let user = new_user_key();
    let book = finished_book(&app, &user).await;
    let address = json!({
        "name": "Grandma Kim", "line1": "12 Maple Road", "city": "Springfield", "state": "IL",
        "postal_code": "62701", "country": "US", "phone": "+1 555 0100",
    });
    let placed = app
        .post_json(
            "/v1/pod/orders",
            &user,
            &json!({"book_id": book, "quantity": 2, "shipping_address": address}),
            &[],
        )
        .await;
    let id = placed.body["order_id"].as_str().unwrap().to_owned();
    assert_eq!(placed.body["status"], "pending_review");
    assert!(
        lulu.jobs.lock().unwrap().is_empty(),
        "nothing printed unpaid"
    );

    let approved = approve(&app, &id).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(approved.body["status"], "in_production");
    assert_eq!(approved.body["provider_order_id"], "81231");
    assert_eq!(approved.body["provider_total"], 23.71);
    assert_eq!(approved.body["provider_currency"], "USD");

    // The job as Lulu got it: our order, the address, two copies, the package, and files it
    // can fetch that are print-ready.
    let job_body = lulu.jobs.lock().unwrap()[0].clone();
    assert_eq!(job_body["external_id"], id.as_str());
    assert_eq!(job_body["shipping_address"]["street1"], "12 Maple Road");
    assert_eq!(job_body["shipping_address"]["state_code"], "IL");
    assert_eq!(job_body["shipping_level"], "MAIL");
    let line = &job_body["line_items"][0];
    assert_eq!(line["quantity"], 2);
    let files = &line["printable_normalization"];
    assert_eq!(files["pod_package_id"], "0850X0850FCPRECW080CW444GXX");
    let stored_book = app.book(&book).await;
    for (file, pages, size) in [
        ("interior", 24, (630.0, 630.0)),
        ("cover", 1, (1350.72, 720.0)),
    ] {
        assert!(
            files[file]["source_url"]
                .as_str()
                .unwrap()
                .starts_with("http")
        );
        let key = storybook_core::book_files::print_file_key(&stored_book.id, &id, file);
        let pdf = app
            .state
            .blobs
            .get(&key)
            .await
            .unwrap()
            .expect("the file is stored");
        let document = lopdf::Document::load_mem(&pdf).unwrap();
        let sizes: Vec<(f32, f32)> = document
            .get_pages()
            .values()
            .map(|page| {
                let media = document
                    .get_dictionary(*page)
                    .unwrap()
                    .get(b"MediaBox")
                    .unwrap();
                let media = media.as_array().unwrap();
                (media[2].as_float().unwrap(), media[3].as_float().unwrap())
            })
            .collect();
        assert_eq!(sizes.len(), pages, "{file}");
        assert!(
            sizes
                .iter()
                .all(|s| (s.0 - size.0).abs() < 0.01 && (s.1 - size.1).abs() < 0.01),
            "{file}: {sizes:?}"
        );
    }
    // Approving again sends nothing more.
    let again = approve(&app, &id).await;
    assert_eq!(again.body["status"], "in_production");
    assert_eq!(lulu.jobs.lock().unwrap().len(), 1);

    // The parent looks: read again from Lulu.
    lulu.job_is(&id, "IN_PRODUCTION", None).await;
    let read = app.get(&format!("/v1/pod/orders/{id}"), &user).await;
    assert_eq!(read.body["sync_source"], "lulu", "{}", read.body);
    assert_eq!(read.body["status"], "in_production");

    // Lulu's webhook: a forged one changes nothing; the signed one ships the order.
    let shipped = json!({"topic": "PRINT_JOB_STATUS_CHANGED", "data": job(&id, "SHIPPED", Some("1Z999AA10123456784"))}).to_string();
    for forged in [
        None,
        Some(signed(&shipped, "not-the-secret")),
        Some("zz".to_owned()),
    ] {
        let answer = webhook(&app, &shipped, forged.as_deref()).await;
        assert_eq!(answer.status, 401, "{}", answer.body);
    }
    let answer = webhook(&app, &shipped, Some(&signed(&shipped, SECRET))).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["status"], "applied");
    let order = app.state.store.print_order(&id).await.unwrap().unwrap();
    assert_eq!(order.status.as_str(), "shipped");
    assert_eq!(order.tracking_number.as_deref(), Some("1Z999AA10123456784"));
    assert_eq!(order.address, None, "a shipped order forgets its address");
    // Shipped is final: a late webhook of an earlier state does not move it back.
    let late =
        json!({"topic": "PRINT_JOB_STATUS_CHANGED", "data": job(&id, "IN_PRODUCTION", None)})
            .to_string();
    webhook(&app, &late, Some(&signed(&late, SECRET))).await;
    let read = app.get(&format!("/v1/pod/orders/{id}"), &user).await;
    assert_eq!(read.body["status"], "shipped");
    assert_eq!(read.body["tracking_number"], "1Z999AA10123456784");
    assert_eq!(
        read.body["sync_source"], "local_snapshot",
        "a shipped order is not asked again"
    );
}
on_both_backends!(
    #[tokio::test]
    lulu_prints,
    an_approved_order_is_printed_by_lulu_and_followed
);

#[tokio::test]
async fn racing_approvals_send_one_job() {
    let lulu = FakeLulu::start().await;
    let app =
        Arc::new(TestApp::with_printer(Backend::Embedded, test_config(), lulu.settings()).await);
    let user = new_user_key();
    let placed = placed(&app, &user, "KR").await;
    let id = placed.body["order_id"].as_str().unwrap().to_owned();
    let answers = futures::future::join_all((0..5).map(|_| {
        let (app, id) = (app.clone(), id.clone());
        tokio::spawn(async move { approve(&app, &id).await })
    }))
    .await;
    for answer in answers {
        let answer = answer.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    assert_eq!(lulu.jobs.lock().unwrap().len(), 1, "one job for one order");
    let order = app.state.store.print_order(&id).await.unwrap().unwrap();
    assert_eq!(order.status.as_str(), "in_production");
}

#[tokio::test]
async fn the_kill_switch_stops_submissions() {
    let lulu = FakeLulu::start().await;
    let app = TestApp::with_printer(Backend::Embedded, test_config(), lulu.settings()).await;
    let user = new_user_key();
    let placed = placed(&app, &user, "KR").await;
    let id = placed.body["order_id"].as_str().unwrap().to_owned();
    switch(&app, true).await;
    assert_eq!(approve(&app, &id).await.body["status"], "approved");
    assert!(
        lulu.jobs.lock().unwrap().is_empty(),
        "nothing sent while stopped"
    );
    switch(&app, false).await;
    assert_eq!(approve(&app, &id).await.body["status"], "in_production");
    assert_eq!(lulu.jobs.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn lulus_refusals_and_outages_leave_the_order_approved() {
    let lulu = FakeLulu::start().await;
    let app = TestApp::with_printer(Backend::Embedded, test_config(), lulu.settings()).await;
    let user = new_user_key();
    let placed = placed(&app, &user, "KR").await;
    let id = placed.body["order_id"].as_str().unwrap().to_owned();

    // A malformed cost: unavailable, nothing created, the order still approved.
    Mock::given(method("POST"))
        .and(path("/print-job-cost-calculations/"))
        .respond_with(ResponseTemplate::new(201).set_body_string("<html>oops"))
        .up_to_n_times(3)
        .with_priority(1)
        .mount(&lulu.server)
        .await;
    let answer = approve(&app, &id).await;
    assert_eq!(answer.status, 503, "{}", answer.body);
    let order = app.state.store.print_order(&id).await.unwrap().unwrap();
    assert_eq!(order.status.as_str(), "approved");

    // Lulu refuses the job (its files, say): 409, Lulu's words kept out of the answer.
    Mock::given(method("POST"))
        .and(path("/print-jobs/"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"detail": "interior file: page size mismatch"})),
        )
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&lulu.server)
        .await;
    let answer = approve(&app, &id).await;
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert!(
        !answer.body.to_string().contains("mismatch"),
        "{}",
        answer.body
    );
    assert!(lulu.jobs.lock().unwrap().is_empty());

    // Busy twice (429, then 503 on the cost): asked again, then printed.
    Mock::given(method("POST"))
        .and(path("/cover-dimensions/"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&lulu.server)
        .await;
    Mock::given(method("POST"))
        .and(path("/print-job-cost-calculations/"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&lulu.server)
        .await;
    let answer = approve(&app, &id).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["status"], "in_production");
    assert_eq!(lulu.jobs.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn with_auto_submit_an_order_goes_to_lulu_at_once() {
    let lulu = FakeLulu::start().await;
    let config = storybook_core::config::Config {
        print_auto_submit: true,
        ..test_config()
    };
    let app = TestApp::with_printer(Backend::Embedded, config, lulu.settings()).await;
    let user = new_user_key();
    let placed = placed(&app, &user, "JP").await;
    assert_eq!(placed.status, 200, "{}", placed.body);
    assert_eq!(placed.body["status"], "in_production");
    assert_eq!(lulu.jobs.lock().unwrap().len(), 1);
}
