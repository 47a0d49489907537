//! Admins granting and deducting a user's credits, with a reason.

use super::*;

async fn admins_grant_and_deduct_credits_with_a_reason(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    app.get("/v1/credits/balance", &user).await;
    let user_id = app.user_id(&user).as_str().to_owned();
    let path = format!("/v1/admin/users/{user_id}/credits");
    let grant = with_key(
        &app,
        Method::POST,
        &path,
        &app.admin_key,
        Some(r#"{"amount": 5, "reason": "apology for an outage"}"#),
    )
    .await;
    assert_eq!(
        (grant.status, grant.body["new_balance"].as_i64()),
        (200, Some(8)),
        "{}",
        grant.body
    );
    let deduct = with_key(
        &app,
        Method::POST,
        &path,
        &app.admin_key,
        Some(r#"{"amount": -6, "reason": "chargeback"}"#),
    )
    .await;
    assert_eq!(deduct.body["new_balance"], 2);
    let too_much = with_key(
        &app,
        Method::POST,
        &path,
        &app.admin_key,
        Some(r#"{"amount": -3, "reason": "chargeback"}"#),
    )
    .await;
    refused(&too_much, 402, "PAYMENT_REQUIRED");
    refused(
        &with_key(
            &app,
            Method::POST,
            &path,
            &app.admin_key,
            Some(r#"{"amount": 0, "reason": "x"}"#),
        )
        .await,
        400,
        "VALIDATION_ERROR",
    );
    refused(
        &with_key(
            &app,
            Method::POST,
            &path,
            &app.admin_key,
            Some(r#"{"amount": 1, "reason": ""}"#),
        )
        .await,
        400,
        "VALIDATION_ERROR",
    );
    let unknown = format!("/v1/admin/users/{}/credits", "0".repeat(64));
    refused(
        &with_key(
            &app,
            Method::POST,
            &unknown,
            &app.admin_key,
            Some(r#"{"amount": 1, "reason": "x"}"#),
        )
        .await,
        404,
        "NOT_FOUND",
    );
    let through_app = app.grant(&user, 1, &format!("app-{user}")).await;
    assert_eq!(through_app.body["status"], "success");
    let ledger = app.get("/v1/credits/transactions", &user).await;
    let descriptions: Vec<&str> = ledger
        .body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["description"].as_str())
        .collect();
    assert!(
        descriptions.contains(&"admin: chargeback")
            && descriptions.contains(&"admin: apology for an outage")
    );
    let check = with_key(
        &app,
        Method::GET,
        &format!("/v1/admin/users/{user_id}/reconciliation"),
        &app.admin_key,
        None,
    )
    .await;
    assert_eq!(check.body["reconciled"], true, "{}", check.body);
    assert_eq!(check.body["balance"], check.body["ledger_sum"]);
    let granted = app
        .state
        .store
        .audit_log(50, None)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.event.as_str() == "credits_granted")
        .count();
    assert_eq!(
        granted, 3,
        "two admin adjustments and one grant through /v1/credits/add"
    );
}
on_both_backends!(
    #[tokio::test]
    admins_grant_and_deduct_credits_with_a_reason,
    admins_grant_and_deduct_credits_with_a_reason
);
