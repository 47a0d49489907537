//! Arbitrary input against the key parsers and every request validator, through the real router:
//! no panic, no 500, only the app's error envelope with stable codes.

use crate::harness::{Answer, Backend, TestApp, new_user_key};
use http::Method;
use proptest::prelude::*;
use storybook_core::domain::api_key::ApiKeySecret;
use storybook_core::domain::book::{BookId, IdempotencyKey, Name, Topic};
use storybook_core::domain::user::UserKey;
use storybook_core::ports::BlobKey;

const CODES: &[&str] = &[
    "VALIDATION_ERROR",
    "BAD_REQUEST",
    "PAYMENT_REQUIRED",
    "FORBIDDEN",
    "UNAUTHORIZED",
    "NOT_FOUND",
    "CONFLICT",
    "RATE_LIMIT_EXCEEDED",
    "DAILY_LIMIT_EXCEEDED",
    "TOO_MANY_PENDING_JOBS",
    "METHOD_NOT_ALLOWED",
    "IDEMPOTENCY_KEY_REUSED",
    "ACTIVE_PAID_SUBSCRIPTION",
    "POD_REGION_UNSUPPORTED",
];

fn sound(answer: &Answer) {
    assert!(answer.status < 500, "{} {}", answer.status, answer.body);
    if answer.status >= 400 {
        let code = answer.code();
        assert!(CODES.contains(&code), "unknown code {code}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn parsers_never_panic(raw in any::<String>()) {
        let _ = ApiKeySecret::parse(&raw);
        let _ = UserKey::parse(&raw);
        let _ = Topic::parse(&raw);
        let _ = Name::parse(&raw);
        let _ = BookId::parse(&raw);
        let _ = IdempotencyKey::parse(&raw);
        let _ = BlobKey::parse(&raw);
        let _ = storybook_core::domain::api_key::parse_ip_rule(&raw);
    }

    #[test]
    fn key_shaped_strings_parse_only_when_well_formed(
        prefix in prop::sample::select(vec!["sbk_live_", "sbk_test_", "sbk_prod_", "", "SBK_LIVE_"]),
        digits in "[0-9A-Za-z_-]{0,50}",
    ) {
        let raw = format!("{prefix}{digits}");
        let well_formed = matches!(prefix, "sbk_live_" | "sbk_test_")
            && digits.len() == 43
            && digits.bytes().all(|b| b.is_ascii_alphanumeric());
        prop_assert_eq!(ApiKeySecret::parse(&raw).is_ok(), well_formed);
    }
}

/// JSON values of every shape, a few levels deep, with hostile strings among them.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let strings = prop_oneof![
        any::<String>(),
        Just("<script>alert(1)</script>".to_owned()),
        Just("'; DROP TABLE users; --".to_owned()),
        Just("../../etc/passwd".to_owned()),
        "[가-힣 ]{0,300}",
    ];
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        strings.prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("topic".to_owned()),
                    Just("target_age".to_owned()),
                    Just("style".to_owned()),
                    Just("page_count".to_owned()),
                    Just("amount".to_owned()),
                    Just("title".to_owned()),
                    Just("scopes".to_owned()),
                    Just("name".to_owned()),
                    "[a-z_]{1,12}",
                ],
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = String> {
    prop_oneof![
        json_value().prop_map(|v| v.to_string()),
        any::<String>(),
        // Near-valid book requests, one field at a time made strange.
        (
            json_value(),
            prop::sample::select(vec![
                "topic",
                "target_age",
                "style",
                "page_count",
                "language",
                "character"
            ])
        )
            .prop_map(|(value, field)| {
                let mut book =
                    serde_json::json!({"topic": "공룡", "target_age": "5-7", "style": "cartoon"});
                book[field] = value;
                book.to_string()
            }),
    ]
}

fn route() -> impl Strategy<Value = (Method, String)> {
    prop::sample::select(vec![
        (Method::POST, "/v1/books".to_owned()),
        (Method::POST, "/v1/credits/add".to_owned()),
        (Method::PATCH, "/v1/library/bk_x".to_owned()),
        (Method::POST, "/v1/admin/api-keys".to_owned()),
        (Method::PATCH, "/v1/admin/api-keys/key_x".to_owned()),
        (Method::POST, "/v1/admin/api-keys/key_x/rotate".to_owned()),
        (Method::POST, "/v1/admin/users/00/credits".to_owned()),
        (Method::GET, "/v1/credits/transactions?limit=x".to_owned()),
    ])
}

#[test]
fn every_validator_answers_arbitrary_bodies_with_the_envelope() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let app = runtime.block_on(TestApp::new(Backend::Embedded));
    let user = new_user_key();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 400,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    let headers = (prop::option::of("[ -~]{0,60}"), any::<bool>());
    runner
        .run(
            &(route(), body(), headers),
            |((method, path), body, (odd_user_key, admin))| {
                let user_key = odd_user_key.unwrap_or_else(|| user.clone());
                let admin_key = app.admin_key.clone();
                let mut headers = vec![("x-user-key", user_key.as_str())];
                let bearer = format!("Bearer {admin_key}");
                if admin {
                    headers.push(("x-admin-key", admin_key.as_str()));
                    headers.push(("authorization", bearer.as_str()));
                }
                // Header values that HTTP itself refuses never reach us.
                if headers
                    .iter()
                    .any(|(_, v)| http::HeaderValue::from_str(v).is_err())
                {
                    return Ok(());
                }
                let answer = runtime.block_on(app.call(method, &path, &headers, Some(&body)));
                sound(&answer);
                Ok(())
            },
        )
        .unwrap();
}
