//! An App Store made in the test: a certificate chain of our own (a root, an intermediate and a
//! leaf carrying Apple's marker extensions), transactions signed with its leaf as Apple signs
//! them, and an in-process App Store Server API that checks our request tokens as Apple does.

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256,
};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use storybook_core::domain::purchase::StoreEnvironment;
use storybook_stores::settings::AppleSettings;
use wiremock::matchers::{method, path_regex};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

pub const BUNDLE: &str = "com.example.storybook";
pub const APP_APPLE_ID: i64 = 1234567890;
const ISSUER: &str = "57246542-96fe-1a63-e053-0824d011072a";
const KEY_ID: &str = "TESTKEY123";
/// Apple's markers: the WWDR intermediate and the receipt-signing leaf.
const INTERMEDIATE_MARKER: &[u64] = &[1, 2, 840, 113635, 100, 6, 2, 1];
const LEAF_MARKER: &[u64] = &[1, 2, 840, 113635, 100, 6, 11, 1];

/// A certificate chain and the leaf's key, standing in for Apple's.
pub struct Chain {
    pub root_der: Vec<u8>,
    /// Leaf, intermediate, root: DER.
    x5c: Vec<Vec<u8>>,
    leaf_key_der: Vec<u8>,
}

/// How a chain departs from Apple's, for the refusals.
#[derive(Clone, Copy, Default)]
pub struct ChainFlaws {
    pub leaf_expired: bool,
    pub intermediate_unmarked: bool,
}

/// A marker extension as Apple writes it: its value is DER NULL.
fn marker(oid: &[u64]) -> CustomExtension {
    CustomExtension::from_oid_content(oid, vec![0x05, 0x00])
}

impl Chain {
    pub fn new(flaws: ChainFlaws) -> Self {
        let root_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut root = CertificateParams::new(Vec::<String>::new()).unwrap();
        root.distinguished_name
            .push(DnType::CommonName, "Test Root CA - G3");
        root.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let root_cert = root.self_signed(&root_key).unwrap();
        let root_issuer = Issuer::new(root, &root_key);

        let intermediate_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut intermediate = CertificateParams::new(Vec::<String>::new()).unwrap();
        intermediate
            .distinguished_name
            .push(DnType::CommonName, "Test Worldwide Developer Relations CA");
        intermediate.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        intermediate.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        if !flaws.intermediate_unmarked {
            intermediate
                .custom_extensions
                .push(marker(INTERMEDIATE_MARKER));
        }
        let intermediate_cert = intermediate
            .signed_by(&intermediate_key, &root_issuer)
            .unwrap();
        let intermediate_issuer = Issuer::new(intermediate, &intermediate_key);

        let leaf_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "Test Store Receipt Signing");
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.custom_extensions.push(marker(LEAF_MARKER));
        if flaws.leaf_expired {
            leaf.not_before = rcgen::date_time_ymd(2020, 1, 1);
            leaf.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let leaf_cert = leaf.signed_by(&leaf_key, &intermediate_issuer).unwrap();
        Chain {
            root_der: root_cert.der().to_vec(),
            x5c: vec![
                leaf_cert.der().to_vec(),
                intermediate_cert.der().to_vec(),
                root_cert.der().to_vec(),
            ],
            leaf_key_der: leaf_key.serialize_der(),
        }
    }

    /// `payload` as Apple signs it: ES256 by the leaf, the chain in `x5c` (standard base64).
    pub fn sign(&self, payload: &Value) -> String {
        self.signed_by(&self.leaf_key_der, payload)
    }

    /// A forgery: the same header (the genuine chain) and payload, signed by another key.
    pub fn forge(&self, payload: &Value) -> String {
        let other = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        self.signed_by(&other.serialize_der(), payload)
    }

    fn signed_by(&self, key_der: &[u8], payload: &Value) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.x5c = Some(
            self.x5c
                .iter()
                .map(|der| base64::engine::general_purpose::STANDARD.encode(der))
                .collect(),
        );
        let key = jsonwebtoken::EncodingKey::from_ec_der(key_der);
        jsonwebtoken::encode(&header, payload, &key).unwrap()
    }
}

/// A transaction as the App Store describes it.
pub fn transaction(id: &str, product: &str, environment: &str) -> Value {
    let now = chrono::Utc::now().timestamp_millis();
    json!({
        "transactionId": id,
        "originalTransactionId": id,
        "bundleId": BUNDLE,
        "productId": product,
        "purchaseDate": now,
        "originalPurchaseDate": now,
        "quantity": 1,
        "type": "Consumable",
        "inAppOwnershipType": "PURCHASED",
        "signedDate": now,
        "environment": environment,
        "transactionReason": "PURCHASE",
        "storefront": "KOR",
        "storefrontId": "143466",
        "price": 1100000,
        "currency": "KRW",
    })
}

/// A subscription's transaction: its original id and its period's end, `days` from now.
pub fn subscription(id: &str, original: &str, product: &str, days: i64) -> Value {
    let mut value = transaction(id, product, "Production");
    value["originalTransactionId"] = json!(original);
    value["type"] = json!("Auto-Renewable Subscription");
    value["expiresDate"] =
        json!((chrono::Utc::now() + chrono::Duration::days(days)).timestamp_millis());
    value["subscriptionGroupIdentifier"] = json!("21000000");
    value
}

/// What the fake API answers for one transaction id, per environment.
#[derive(Clone)]
pub enum Answer {
    Signed(String),
    Status(u16, Value),
}

/// The App Store Server API, production under `/prod` and the sandbox under `/sandbox`.
pub struct AppStore {
    pub server: MockServer,
    pub chain: Chain,
    api_key: KeyPair,
    answers: Arc<Mutex<Vec<(String, String, Answer)>>>,
    /// Every transaction id asked for, with its environment.
    pub asked: Arc<Mutex<Vec<(String, String)>>>,
}

struct Api {
    public_key_pem: String,
    answers: Arc<Mutex<Vec<(String, String, Answer)>>>,
    asked: Arc<Mutex<Vec<(String, String)>>>,
}

impl Respond for Api {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        // Apple's checks of the request token: ES256 by the key named in `kid`, for the App
        // Store's audience and our bundle, from our issuer, short-lived.
        let token = request
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        let header = jsonwebtoken::decode_header(token);
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&["appstoreconnect-v1"]);
        validation.set_issuer(&[ISSUER]);
        let claims = jsonwebtoken::decode::<Value>(
            token,
            &jsonwebtoken::DecodingKey::from_ec_pem(self.public_key_pem.as_bytes()).unwrap(),
            &validation,
        );
        let good = matches!(&header, Ok(h) if h.kid.as_deref() == Some(KEY_ID))
            && matches!(&claims, Ok(c) if c.claims["bid"] == BUNDLE
                && c.claims["exp"].as_i64().unwrap_or(0) - c.claims["iat"].as_i64().unwrap_or(0) <= 3600);
        if !good {
            return ResponseTemplate::new(401).set_body_string("Unauthenticated");
        }
        let path = request.url.path();
        let environment = if path.starts_with("/prod/") {
            "prod"
        } else {
            "sandbox"
        };
        let last = path.rsplit('/').next().unwrap_or_default();
        // A subscription's statuses are known by its original id, apart from transactions.
        let id = if path.contains("/inApps/v1/subscriptions/") {
            format!("subscriptions/{last}")
        } else {
            last.to_owned()
        };
        self.asked
            .lock()
            .unwrap()
            .push((environment.to_owned(), id.clone()));
        let answers = self.answers.lock().unwrap();
        match answers
            .iter()
            .rev()
            .find(|(env, known, _)| *env == environment && *known == id)
        {
            Some((_, _, Answer::Signed(signed))) => {
                ResponseTemplate::new(200).set_body_json(json!({ "signedTransactionInfo": signed }))
            }
            Some((_, _, Answer::Status(status, body))) => {
                ResponseTemplate::new(*status).set_body_json(body.clone())
            }
            None => ResponseTemplate::new(404).set_body_json(
                json!({"errorCode": 4040010, "errorMessage": "Transaction id not found."}),
            ),
        }
    }
}

impl AppStore {
    pub async fn start() -> Self {
        Self::with_chain(Chain::new(ChainFlaws::default())).await
    }

    pub async fn with_chain(chain: Chain) -> Self {
        let server = MockServer::start().await;
        let api_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
        let answers = Arc::new(Mutex::new(Vec::new()));
        let asked = Arc::new(Mutex::new(Vec::new()));
        Mock::given(method("GET"))
            .and(path_regex(
                r"^/(prod|sandbox)/inApps/v1/(transactions|subscriptions)/[^/]+$",
            ))
            .respond_with(Api {
                public_key_pem: api_key.public_key_pem(),
                answers: answers.clone(),
                asked: asked.clone(),
            })
            .mount(&server)
            .await;
        AppStore {
            server,
            chain,
            api_key,
            answers,
            asked,
        }
    }

    /// Production (`"prod"`) or the sandbox answers `answer` for transaction `id`.
    pub fn answer(&self, environment: &str, id: &str, answer: Answer) {
        self.answers
            .lock()
            .unwrap()
            .push((environment.to_owned(), id.to_owned(), answer));
    }

    /// Production knows `transaction`, signed by the chain.
    pub fn sells(&self, transaction: &Value) {
        let id = transaction["transactionId"].as_str().unwrap();
        let environment = match transaction["environment"].as_str() {
            Some("Sandbox") => "sandbox",
            _ => "prod",
        };
        self.answer(
            environment,
            id,
            Answer::Signed(self.chain.sign(transaction)),
        );
    }

    /// Production's statuses of `latest`'s subscription (`GET /inApps/v1/subscriptions/{id}`):
    /// its latest transaction and renewal information signed by the chain, beside an unsigned
    /// `status` of `status`.
    pub fn subscription_status(&self, latest: &Value, renewal: Option<&Value>, status: i64) {
        let original = latest["originalTransactionId"].as_str().unwrap();
        let mut item = json!({
            "originalTransactionId": original,
            "status": status,
            "signedTransactionInfo": self.chain.sign(latest),
        });
        if let Some(renewal) = renewal {
            item["signedRenewalInfo"] = json!(self.chain.sign(renewal));
        }
        let body = json!({
            "environment": "Production",
            "bundleId": BUNDLE,
            "appAppleId": APP_APPLE_ID,
            "data": [{"subscriptionGroupIdentifier": "21000000", "lastTransactions": [item]}],
        });
        self.answer(
            "prod",
            &format!("subscriptions/{original}"),
            Answer::Status(200, body),
        );
    }

    /// Our settings for this App Store, trusting `root` (the chain's own, unless a test says).
    pub fn settings(&self, environments: &[StoreEnvironment]) -> AppleSettings {
        self.settings_trusting(self.chain.root_der.clone(), environments)
    }

    pub fn settings_trusting(
        &self,
        root: Vec<u8>,
        environments: &[StoreEnvironment],
    ) -> AppleSettings {
        AppleSettings {
            issuer_id: ISSUER.into(),
            key_id: KEY_ID.into(),
            private_key: self.api_key.serialize_pem(),
            bundle_id: BUNDLE.into(),
            app_apple_id: APP_APPLE_ID,
            production_url: format!("{}/prod", self.server.uri()),
            sandbox_url: format!("{}/sandbox", self.server.uri()),
            roots: vec![root],
            environments: environments.to_vec(),
        }
    }

    /// How many times transaction `id` was asked for.
    pub fn times_asked(&self, id: &str) -> usize {
        self.asked
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, asked)| asked == id)
            .count()
    }
}

impl Chain {
    /// An App Store Server Notification V2 body (`{"signedPayload"}`) of `kind` about
    /// `transaction` (and `renewal`), signed by this chain.
    pub fn notification(&self, kind: &str, transaction: &Value, renewal: Option<&Value>) -> String {
        let environment = transaction["environment"].clone();
        let mut data = json!({
            "appAppleId": APP_APPLE_ID,
            "bundleId": BUNDLE,
            "bundleVersion": "1.0",
            "environment": environment,
            "signedTransactionInfo": self.sign(transaction),
            "status": 1,
        });
        if let Some(renewal) = renewal {
            data["signedRenewalInfo"] = json!(self.sign(renewal));
        }
        let payload = json!({
            "notificationType": kind,
            "notificationUUID": uuid::Uuid::new_v4().to_string(),
            "version": "2.0",
            "signedDate": chrono::Utc::now().timestamp_millis(),
            "data": data,
        });
        json!({ "signedPayload": self.sign(&payload) }).to_string()
    }
}

/// The renewal information of `original`'s subscription, in a grace period until `days` from
/// now.
pub fn renewal_in_grace(original: &str, product: &str, days: i64) -> Value {
    json!({
        "originalTransactionId": original,
        "autoRenewProductId": product,
        "productId": product,
        "autoRenewStatus": 1,
        "isInBillingRetryPeriod": true,
        "gracePeriodExpiresDate": (chrono::Utc::now() + chrono::Duration::days(days)).timestamp_millis(),
        "signedDate": chrono::Utc::now().timestamp_millis(),
        "environment": "Production",
    })
}
