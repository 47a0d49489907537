//! Print orders on both stores: the contract's quotes and refusals, one order per idempotency
//! key (racing requests included), a limit of open orders, owner-only reads, an operator's
//! approval (audited), and the address erased with its user.

use crate::books::{finished_book, start_book};
use crate::harness::{Answer, Backend, TestApp, new_user_key};
use crate::on_both_backends;
use futures::future::join_all;
use http::Method;
use serde_json::{Value, json};
use std::sync::Arc;

fn address(country: &str) -> Value {
    json!({
        "name": "Grandma Kim", "line1": "12 Maple Road", "line2": null, "city": "Springfield",
        "state": "IL", "postal_code": "62701", "country": country, "phone": "",
    })
}

async fn order(app: &TestApp, user: &str, body: &Value, key: Option<&str>) -> Answer {
    let headers: Vec<(&str, &str)> = key.map(|k| ("x-idempotency-key", k)).into_iter().collect();
    app.post_json("/v1/pod/orders", user, body, &headers).await
}

async fn approve(app: &TestApp, id: &str) -> Answer {
    let bearer = format!("Bearer {}", app.admin_key);
    app.call(
        Method::POST,
        &format!("/v1/admin/pod/orders/{id}/approve"),
        &[("authorization", &bearer)],
        None,
    )
    .await
}

#[tokio::test]
async fn quotes_are_the_contracts() {
    let app = TestApp::new(Backend::Embedded).await;
    let user = new_user_key();
    let us = app.get("/v1/pod/quote?country=US&quantity=1", &user).await;
    assert_eq!(
        us.body,
        json!({"unit_price": 20, "shipping_fee": 5, "total_price": 25, "currency": "USD"})
    );
    let kr = app.get("/v1/pod/quote?country=kr&quantity=2", &user).await;
    assert_eq!(kr.body["total_price"], 39000);
    assert_eq!(kr.body["currency"], "KRW");
    let jp = app.get("/v1/pod/quote?country=JP", &user).await;
    assert_eq!(jp.body["total_price"], 3000);
    for quantity in [0, 11, -1] {
        let refused = app
            .get(
                &format!("/v1/pod/quote?country=US&quantity={quantity}"),
                &user,
            )
            .await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert_eq!(refused.code(), "VALIDATION_ERROR");
    }
    let france = app.get("/v1/pod/quote?country=FR", &user).await;
    assert_eq!(france.status, 400);
    assert_eq!(france.code(), "POD_REGION_UNSUPPORTED");
    assert_eq!(
        france.body["error"]["details"],
        json!({"country": "FR", "supported_countries": ["JP", "KR", "US"]})
    );
    assert_eq!(app.get("/v1/pod/quote", &user).await.status, 422);
}

async fn orders_are_saved_once_per_key_and_read_by_their_owner(backend: Backend) {
    let app = Arc::new(TestApp::new(backend).await);
    let user = new_user_key();
    let book = finished_book(&app, &user).await;
    let body = json!({"book_id": book, "quantity": 2, "shipping_address": address("US")});

    // A double tap of twenty: one order.
    let answers = join_all((0..20).map(|_| {
        let (app, user, body) = (app.clone(), user.clone(), body.clone());
        tokio::spawn(async move { order(&app, &user, &body, Some("tap-1")).await })
    }))
    .await;
    let mut ids: Vec<String> = Vec::new();
    for answer in answers {
        let answer = answer.unwrap();
        assert_eq!(answer.status, 200, "{}", answer.body);
        ids.push(answer.body["order_id"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one order for one key: {ids:?}");
    let id = ids.pop().unwrap();
    assert!(id.starts_with("pod_") && id.len() == 21, "{id}");

    // The same key with another body: the order it made, unchanged.
    let changed = json!({"book_id": book, "quantity": 5, "shipping_address": address("KR")});
    let again = order(&app, &user, &changed, Some("tap-1")).await;
    assert_eq!(again.body["order_id"], id.as_str());
    assert_eq!(again.body["sync_source"], "idempotent");
    assert_eq!(again.body["quantity"], 2);

    let read = app.get(&format!("/v1/pod/orders/{id}"), &user).await;
    assert_eq!(read.status, 200, "{}", read.body);
    let read = read.body;
    assert_eq!(
        read["status"], "pending_review",
        "nothing is printed unpaid"
    );
    assert_eq!(read["provider"], "lulu");
    assert_eq!(read["book_id"], book.as_str());
    assert_eq!(
        (read["unit_price"].clone(), read["shipping_fee"].clone()),
        (json!(20), json!(5))
    );
    assert_eq!(read["total_price"], 45);
    assert_eq!(read["currency"], "USD");
    assert_eq!(read["provider_order_id"], Value::Null);
    assert!(
        read.get("shipping_address").is_none(),
        "the address is not echoed"
    );

    // Someone else's order, or none: 404 alike.
    let stranger = new_user_key();
    for path in [
        format!("/v1/pod/orders/{id}"),
        "/v1/pod/orders/pod_20261203_00000000".into(),
        "/v1/pod/orders/..%2F".into(),
    ] {
        let answer = app.get(&path, &stranger).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
    }
    // Someone else's book: 404, as part 1 answers.
    let theirs = order(&app, &stranger, &body, None).await;
    assert_eq!(theirs.status, 404, "{}", theirs.body);

    // An operator approves it, once, audited.
    let approved = approve(&app, &id).await;
    assert_eq!(approved.status, 200, "{}", approved.body);
    assert_eq!(approved.body["status"], "approved");
    assert_eq!(approve(&app, &id).await.body["status"], "approved");
    let bearer = format!("Bearer {}", app.admin_key);
    let audit = app
        .call(
            Method::GET,
            "/v1/admin/audit-log",
            &[("authorization", &bearer)],
            None,
        )
        .await;
    let approvals = audit
        .body
        .to_string()
        .matches("print_order_approved")
        .count();
    assert_eq!(approvals, 1, "{}", audit.body);
    // Not an admin: refused.
    let by_user = app
        .call(
            Method::POST,
            &format!("/v1/admin/pod/orders/{id}/approve"),
            &[("x-user-key", &user)],
            None,
        )
        .await;
    assert_eq!(by_user.status, 401, "{}", by_user.body);
}
on_both_backends!(
    #[tokio::test]
    orders_once_per_key,
    orders_are_saved_once_per_key_and_read_by_their_owner
);

async fn orders_are_refused_as_the_contract_says(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    let book = finished_book(&app, &user).await;
    let with = |address: Value| json!({"book_id": book, "shipping_address": address});
    let mut blank = address("KR");
    blank["name"] = json!("  ");
    blank["city"] = json!(null);
    let refused = order(&app, &user, &with(blank), None).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert_eq!(
        refused.body["error"]["details"]["required"],
        json!(["name", "city"])
    );
    let mut no_state = address("US");
    no_state["state"] = json!(null);
    let refused = order(&app, &user, &with(no_state), None).await;
    assert_eq!(
        refused.body["error"]["details"]["required"],
        json!(["state"])
    );
    let refused = order(&app, &user, &with(address("1A")), None).await;
    assert_eq!((refused.status, refused.code()), (400, "VALIDATION_ERROR"));
    let refused = order(&app, &user, &with(address("USA")), None).await;
    assert_eq!(refused.status, 422, "{}", refused.body);
    let refused = order(&app, &user, &with(address("FR")), None).await;
    assert_eq!(refused.code(), "POD_REGION_UNSUPPORTED");
    let missing = json!({"book_id": "no-such-book", "shipping_address": address("KR")});
    assert_eq!(order(&app, &user, &missing, None).await.status, 404);
    let mut long = address("KR");
    long["name"] = json!("x".repeat(121));
    assert_eq!(order(&app, &user, &with(long), None).await.status, 422);

    // A book still being made cannot be printed.
    let unfinished = start_book(&app, &user).await;
    let early = json!({"book_id": unfinished, "shipping_address": address("KR")});
    let refused = order(&app, &user, &early, None).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(
        refused.body["error"]["details"]["reason"],
        "book_not_finished"
    );

    // Three open orders at most (the default); the fourth waits.
    let mut korean = address("KR");
    // Eighty Hangul letters: 240 bytes, within the 200 characters the schema allows.
    korean["line1"] = json!("가".repeat(80));
    for body in [with(korean), with(address("JP")), with(address("JP"))] {
        let placed = order(&app, &user, &body, None).await;
        assert_eq!(placed.status, 200, "{}", placed.body);
    }
    let fourth = order(&app, &user, &with(address("JP")), None).await;
    assert_eq!(fourth.status, 409, "{}", fourth.body);
    assert_eq!(
        fourth.body["error"]["details"]["reason"],
        "too_many_open_orders"
    );
}
on_both_backends!(
    #[tokio::test]
    order_refusals,
    orders_are_refused_as_the_contract_says
);

async fn an_erased_user_takes_their_orders_and_addresses(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    let book = finished_book(&app, &user).await;
    let body = json!({"book_id": book, "shipping_address": address("US")});
    let placed = order(&app, &user, &body, Some("erase-me")).await;
    let id = placed.body["order_id"].as_str().unwrap().to_owned();
    let erased = app.erase(&user).await;
    assert!(erased.status < 300, "{}", erased.body);
    assert!(app.state.store.print_order(&id).await.unwrap().is_none());
    let user_id = app.user_id(&user);
    let left: Vec<String> = app
        .records_holding(user_id.as_str())
        .await
        .into_iter()
        // Rate-limit counters count by caller and expire with their window.
        .filter(|record| !record.contains("rate:") && !record.contains("books-day:"))
        .collect();
    assert_eq!(left, Vec::<String>::new());
    assert!(
        app.records_holding("Maple Road").await.is_empty(),
        "no address is left anywhere"
    );
}
on_both_backends!(
    #[tokio::test]
    erased_orders,
    an_erased_user_takes_their_orders_and_addresses
);
