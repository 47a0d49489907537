//! Google Play of the test's own: a token endpoint that checks our service account's RS256
//! assertion, and the Play Developer API's purchase reads and acknowledgement.

use super::{BOTH, Backend, app_with_stores, balance, stores};
use crate::harness::{Answer, TestApp, new_user_key, test_config};
use crate::on_both_backends;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use storybook_core::domain::purchase::StoreEnvironment;
use storybook_stores::settings::{GoogleSettings, PushSettings, StoreSettings};
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

const PACKAGE: &str = "com.example.storybook";
const CLIENT_EMAIL: &str = "play@storybook-test.iam.gserviceaccount.com";
const PRIVATE_KEY: &str = include_str!("../../fixtures/google-test-service-account-key.pem");
const PUBLIC_KEY: &str = include_str!("../../fixtures/google-test-service-account-key.pub.pem");
const ACCESS_TOKEN: &str = "ya29.test-access-token";
const PUSH_AUDIENCE: &str = "https://api.storybook.example/v1/iap/webhook/google";
const PUSH_ACCOUNT: &str = "rtdn-push@storybook-test.iam.gserviceaccount.com";

/// The token endpoint: an access token for a well-signed assertion from our account.
struct TokenEndpoint {
    audience: String,
    minted: Arc<Mutex<usize>>,
}

impl Respond for TokenEndpoint {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let form: Vec<(String, String)> =
            form_urlencoded::parse(&request.body).into_owned().collect();
        let field = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&[&self.audience]);
        validation.set_issuer(&[CLIENT_EMAIL]);
        let claims = jsonwebtoken::decode::<Value>(
            &field("assertion"),
            &jsonwebtoken::DecodingKey::from_rsa_pem(PUBLIC_KEY.as_bytes()).unwrap(),
            &validation,
        );
        let good = field("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer"
            && matches!(&claims, Ok(c) if c.claims["scope"] == "https://www.googleapis.com/auth/androidpublisher");
        if !good {
            return ResponseTemplate::new(400).set_body_json(json!({"error": "invalid_grant"}));
        }
        *self.minted.lock().unwrap() += 1;
        ResponseTemplate::new(200).set_body_json(
            json!({"access_token": ACCESS_TOKEN, "expires_in": 3599, "token_type": "Bearer"}),
        )
    }
}

pub struct GooglePlay {
    server: MockServer,
    pub minted: Arc<Mutex<usize>>,
    /// Later answers for a token take precedence over earlier ones.
    priority: Mutex<u8>,
}

impl GooglePlay {
    pub async fn start() -> Self {
        let server = MockServer::start().await;
        let minted = Arc::new(Mutex::new(0));
        Mock::given(method("POST"))
            .and(path("/token"))
            .respond_with(TokenEndpoint {
                audience: format!("{}/token", server.uri()),
                minted: minted.clone(),
            })
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/certs"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_string(include_str!("../../fixtures/google-test-jwks.json")),
            )
            .mount(&server)
            .await;
        GooglePlay {
            server,
            minted,
            priority: Mutex::new(10),
        }
    }

    fn api(&self, kind: &str, token: &str) -> String {
        format!("/androidpublisher/v3/applications/{PACKAGE}/purchases/{kind}/tokens/{token}")
    }

    /// The API answers `body` for purchase token `token` of `kind` (`productsv2`,
    /// `subscriptionsv2`), to our access token only.
    pub async fn knows(&self, kind: &str, token: &str, body: Value) {
        let priority = {
            let mut next = self.priority.lock().unwrap();
            *next = next.saturating_sub(1).max(1);
            *next
        };
        Mock::given(method("GET"))
            .and(path(self.api(kind, token)))
            .and(wiremock::matchers::header(
                "authorization",
                format!("Bearer {ACCESS_TOKEN}"),
            ))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .with_priority(priority)
            .mount(&self.server)
            .await;
    }

    /// Acknowledgements of subscription `product`, counted.
    pub async fn acknowledges(&self, product: &str) {
        Mock::given(method("POST"))
            .and(path_regex(format!(
                r"^/androidpublisher/v3/applications/{PACKAGE}/purchases/subscriptions/{product}/tokens/[^/]+:acknowledge$"
            )))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
            .expect(1)
            .mount(&self.server)
            .await;
    }

    pub fn settings(&self, environments: &[StoreEnvironment]) -> StoreSettings {
        StoreSettings {
            google: Some(GoogleSettings {
                package_name: PACKAGE.into(),
                client_email: CLIENT_EMAIL.into(),
                private_key: PRIVATE_KEY.into(),
                token_uri: format!("{}/token", self.server.uri()),
                api_url: self.server.uri(),
                environments: environments.to_vec(),
                push: Some(PushSettings {
                    audience: PUSH_AUDIENCE.into(),
                    service_account: PUSH_ACCOUNT.into(),
                    jwks_url: format!("{}/certs", self.server.uri()),
                }),
            }),
            ..stores()
        }
    }
}

fn product(order: &str, product: &str, state: &str) -> Value {
    json!({
        "kind": "androidpublisher#productPurchaseV2",
        "productLineItem": [{"productId": product, "productOfferDetails": {"quantity": 1}}],
        "purchaseStateContext": {"purchaseState": state},
        "orderId": order,
        "purchaseCompletionTime": "2026-12-03T10:00:00Z",
        "acknowledgementState": "ACKNOWLEDGEMENT_STATE_PENDING",
        "regionCode": "KR",
    })
}

pub(super) fn subscription(order: &str, product: &str, state: &str, days: i64) -> Value {
    json!({
        "kind": "androidpublisher#subscriptionPurchaseV2",
        "subscriptionState": state,
        "acknowledgementState": "ACKNOWLEDGEMENT_STATE_PENDING",
        "startTime": "2026-12-03T10:00:00Z",
        "regionCode": "KR",
        "lineItems": [{
            "productId": product,
            "expiryTime": (chrono::Utc::now() + chrono::Duration::days(days)).to_rfc3339(),
            "autoRenewingPlan": {"autoRenewEnabled": true},
            "latestSuccessfulOrderId": order,
        }],
    })
}

pub(super) async fn verify(
    app: &TestApp,
    user: &str,
    product: &str,
    order: &str,
    token: &str,
) -> Answer {
    let body = json!({
        "platform": "google", "product_id": product, "transaction_id": order,
        "purchase_token": token,
    });
    app.post_json("/v1/iap/verify", user, &body, &[]).await
}

async fn google_play_purchases_are_read_from_google(backend: Backend) {
    let play = GooglePlay::start().await;
    let app = app_with_stores(backend, test_config(), play.settings(BOTH)).await;
    let user = new_user_key();
    play.knows(
        "productsv2",
        "tok-pack",
        product("GPA.3300-0000-0001", "credit_pack_10", "PURCHASED"),
    )
    .await;
    let bought = verify(
        &app,
        &user,
        "credit_pack_10",
        "GPA.3300-0000-0001",
        "tok-pack",
    )
    .await;
    assert_eq!(bought.status, 200, "{}", bought.body);
    assert_eq!(bought.body["verification_source"], "google_play");
    assert_eq!(bought.body["credits_added"], 10);
    assert_eq!(balance(&app, &user).await, 13);
    let again = verify(
        &app,
        &user,
        "credit_pack_10",
        "GPA.3300-0000-0001",
        "tok-pack",
    )
    .await;
    assert_eq!(again.body["status"], "already_processed");

    // A plan: confirmed, acknowledged (else Google refunds it in three days), opened.
    play.acknowledges("subscription_basic").await;
    play.knows(
        "subscriptionsv2",
        "tok-sub",
        subscription(
            "GPA.3300-0000-0002",
            "subscription_basic",
            "SUBSCRIPTION_STATE_ACTIVE",
            30,
        ),
    )
    .await;
    let plan = verify(
        &app,
        &user,
        "subscription_basic",
        "GPA.3300-0000-0002",
        "tok-sub",
    )
    .await;
    assert_eq!(plan.body["status"], "verified", "{}", plan.body);
    assert_eq!(balance(&app, &user).await, 23);
    let status = app.get("/v1/credits/status", &user).await.body;
    assert_eq!(status["subscription"]["plan"], "basic");
    assert_eq!(*play.minted.lock().unwrap(), 1, "one access token, kept");

    // Cancelled from the app: Google stops renewing it (a server may, unlike Apple's).
    Mock::given(method("POST"))
        .and(path(format!(
            "/androidpublisher/v3/applications/{PACKAGE}/purchases/subscriptions/subscription_basic/tokens/tok-sub:cancel"
        )))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&play.server)
        .await;
    let cancelled = app
        .call(
            http::Method::POST,
            "/v1/credits/cancel-subscription",
            &[("x-user-key", &user)],
            None,
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    assert_eq!(cancelled.body["status"], "success");
    let status = app.get("/v1/credits/status", &user).await.body;
    assert_eq!(status["subscription"]["status"], "cancelled");
}
on_both_backends!(
    #[tokio::test]
    google_play,
    google_play_purchases_are_read_from_google
);

#[tokio::test]
async fn google_plays_refusals() {
    let play = GooglePlay::start().await;
    let app = app_with_stores(
        Backend::Embedded,
        test_config(),
        play.settings(&[StoreEnvironment::Production]),
    )
    .await;
    let user = new_user_key();
    let reason = |a: &Answer| {
        a.body["error"]["details"]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    play.knows(
        "productsv2",
        "tok-pending",
        product("GPA.1", "credit_pack_1", "PENDING"),
    )
    .await;
    assert_eq!(
        reason(&verify(&app, &user, "credit_pack_1", "GPA.1", "tok-pending").await),
        "not_paid"
    );
    play.knows(
        "productsv2",
        "tok-other",
        product("GPA.2", "credit_pack_1", "PURCHASED"),
    )
    .await;
    assert_eq!(
        reason(&verify(&app, &user, "credit_pack_5", "GPA.2", "tok-other").await),
        "product_mismatch"
    );
    assert_eq!(
        reason(&verify(&app, &user, "credit_pack_1", "GPA.9999", "tok-other").await),
        "not_found",
        "another order's token"
    );
    assert_eq!(
        reason(&verify(&app, &user, "credit_pack_1", "GPA.3", "tok-unknown").await),
        "not_found"
    );
    let mut test = product("GPA.4", "credit_pack_1", "PURCHASED");
    test["testPurchaseContext"] = json!({"fopType": "TEST"});
    play.knows("productsv2", "tok-test", test).await;
    assert_eq!(
        reason(&verify(&app, &user, "credit_pack_1", "GPA.4", "tok-test").await),
        "sandbox_not_allowed"
    );
    play.knows(
        "subscriptionsv2",
        "tok-hold",
        subscription(
            "GPA.5",
            "subscription_premium",
            "SUBSCRIPTION_STATE_ON_HOLD",
            30,
        ),
    )
    .await;
    assert_eq!(
        reason(&verify(&app, &user, "subscription_premium", "GPA.5", "tok-hold").await),
        "not_paid"
    );
    assert_eq!(balance(&app, &user).await, 3);
}

/// Pub/Sub's push of a developer notification, with an OIDC token signed by `key_id` for
/// `audience` from `email`.
fn push(notification: Value, message_id: &str) -> String {
    use base64::Engine;
    let data = base64::engine::general_purpose::STANDARD.encode(notification.to_string());
    json!({
        "message": {"data": data, "messageId": message_id, "publishTime": "2026-12-03T10:00:00Z"},
        "subscription": "projects/storybook-test/subscriptions/play-rtdn",
    })
    .to_string()
}

fn push_token(key_id: &str, audience: &str, email: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(key_id.into());
    let claims = json!({
        "iss": "https://accounts.google.com", "aud": audience, "email": email,
        "email_verified": true, "sub": "1234567890", "iat": now, "exp": now + 3600,
    });
    let key = jsonwebtoken::EncodingKey::from_rsa_pem(PRIVATE_KEY.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

async fn deliver(app: &TestApp, body: &str, token: Option<&str>) -> Answer {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("authorization", b.as_str()))
        .collect();
    app.call(
        http::Method::POST,
        "/v1/iap/webhook/google",
        &headers,
        Some(body),
    )
    .await
}

fn changed(kind: i64, token: &str, product: &str) -> Value {
    json!({
        "version": "1.0", "packageName": PACKAGE, "eventTimeMillis": "1764756000000",
        "subscriptionNotification": {
            "version": "1.0", "notificationType": kind, "purchaseToken": token,
            "subscriptionId": product,
        },
    })
}

async fn google_plays_pushes_renew_refund_and_end(backend: Backend) {
    let play = GooglePlay::start().await;
    let app = app_with_stores(backend, test_config(), play.settings(BOTH)).await;
    let user = new_user_key();
    play.acknowledges("subscription_basic").await;
    play.knows(
        "subscriptionsv2",
        "tok-rtdn",
        subscription(
            "GPA.7700-0001",
            "subscription_basic",
            "SUBSCRIPTION_STATE_ACTIVE",
            30,
        ),
    )
    .await;
    verify(
        &app,
        &user,
        "subscription_basic",
        "GPA.7700-0001",
        "tok-rtdn",
    )
    .await;
    assert_eq!(balance(&app, &user).await, 13);
    let good = push_token("test-key-1", PUSH_AUDIENCE, PUSH_ACCOUNT);

    // Renewed: Google's notification carries no state; the purchase is read again.
    let mut renewed = subscription(
        "GPA.7700-0001..0",
        "subscription_basic",
        "SUBSCRIPTION_STATE_ACTIVE",
        60,
    );
    renewed["acknowledgementState"] = json!("ACKNOWLEDGEMENT_STATE_ACKNOWLEDGED");
    play.knows("subscriptionsv2", "tok-rtdn", renewed).await;
    let renewal = push(changed(2, "tok-rtdn", "subscription_basic"), "m-1");
    let answer = deliver(&app, &renewal, Some(&good)).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["event"], "paid");
    assert_eq!(balance(&app, &user).await, 23);
    assert_eq!(
        deliver(&app, &renewal, Some(&good)).await.body["status"],
        "duplicate"
    );
    assert_eq!(balance(&app, &user).await, 23);

    // The renewal refunded (a voided purchase): its credits back, the plan over.
    let voided = json!({
        "version": "1.0", "packageName": PACKAGE, "eventTimeMillis": "1764756000000",
        "voidedPurchaseNotification": {
            "purchaseToken": "tok-rtdn", "orderId": "GPA.7700-0001..0", "productType": 1,
            "refundType": 1,
        },
    });
    let refunded = deliver(&app, &push(voided, "m-2"), Some(&good)).await;
    assert_eq!(refunded.body["event"], "refunded", "{}", refunded.body);
    assert_eq!(balance(&app, &user).await, 13);
    assert_eq!(
        app.get("/v1/credits/status", &user).await.body["subscription"],
        Value::Null
    );
}
on_both_backends!(
    #[tokio::test]
    google_pushes,
    google_plays_pushes_renew_refund_and_end
);

#[tokio::test]
async fn only_googles_push_from_our_sender_counts() {
    let play = GooglePlay::start().await;
    let app = app_with_stores(Backend::Embedded, test_config(), play.settings(BOTH)).await;
    let body = push(changed(2, "tok-x", "subscription_basic"), "m-9");
    for token in [
        None,
        Some(push_token(
            "test-key-1",
            "https://elsewhere.example",
            PUSH_ACCOUNT,
        )),
        Some(push_token(
            "test-key-1",
            PUSH_AUDIENCE,
            "someone@else.iam.gserviceaccount.com",
        )),
        Some(push_token("unknown-key", PUSH_AUDIENCE, PUSH_ACCOUNT)),
        Some("not-a-jwt".to_owned()),
    ] {
        let answer = deliver(&app, &body, token.as_deref()).await;
        assert_eq!(answer.status, 401, "{token:?}: {}", answer.body);
    }
    let mut other_app = changed(2, "tok-x", "subscription_basic");
    other_app["packageName"] = json!("com.example.other");
    let good = push_token("test-key-1", PUSH_AUDIENCE, PUSH_ACCOUNT);
    assert_eq!(
        deliver(&app, &push(other_app, "m-10"), Some(&good))
            .await
            .status,
        401
    );
    let test = json!({"version": "1.0", "packageName": PACKAGE, "eventTimeMillis": "1",
                      "testNotification": {"version": "1.0"}});
    assert_eq!(
        deliver(&app, &push(test, "m-11"), Some(&good)).await.body["event"],
        "test"
    );
}
