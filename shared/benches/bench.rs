//! `cargo bench -p shared --no-default-features --bench bench`
//!
//! Prints, from one run on this machine:
//! - the cost of one credential check (format check plus keyed hash) for an API key and for a
//!   device key, beside PBKDF2-HMAC-SHA256 at 100,000 rounds (the replaced system's scheme), and
//!   their ratio;
//! - the in-process latency of an authenticated `GET /v1/credits/balance` on the embedded store
//!   (median and p99), through the same router and edges that serve real requests.

use axum::body::Body;
use http::Request;
use shared::config::{LocalSettings, Settings};
use shared::domain::api_key::{ApiKeySecret, KeyEnvironment};
use shared::domain::credential::{CredentialHasher, CredentialKind, Pepper};
use shared::domain::user::UserKey;
use shared::local::LocalMode;
use std::hint::black_box;
use std::time::{Duration, Instant};
use tower::ServiceExt;

fn per_call(iterations: u32, mut work: impl FnMut()) -> Duration {
    let started = Instant::now();
    for _ in 0..iterations {
        work();
    }
    started.elapsed() / iterations
}

fn credential_checks() {
    let hasher = CredentialHasher::new(Pepper::generate());
    let api_key = ApiKeySecret::generate(KeyEnvironment::Live)
        .expose()
        .to_owned();
    let device_key = uuid::Uuid::new_v4().to_string();
    // Warm up caches and the CPU's clock before measuring.
    per_call(20_000, || {
        black_box(hasher.hash(CredentialKind::ApiKey, black_box(&api_key)));
    });
    let api = per_call(200_000, || {
        let parsed = ApiKeySecret::parse(black_box(&api_key)).unwrap();
        black_box(hasher.hash(CredentialKind::ApiKey, parsed.expose()));
    });
    let device = per_call(200_000, || {
        let parsed = UserKey::parse(black_box(&device_key)).unwrap();
        black_box(hasher.hash(CredentialKind::UserKey, parsed.expose()));
    });
    let salt = [7u8; 16];
    let pbkdf2 = per_call(5, || {
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
            black_box(api_key.as_bytes()),
            &salt,
            100_000,
            &mut out,
        );
        black_box(out);
    });
    println!("credential check (one run, side by side)");
    println!(
        "  API key: format + HMAC-SHA256          {:>10.2} µs",
        api.as_secs_f64() * 1e6
    );
    println!(
        "  device key: format + HMAC-SHA256       {:>10.2} µs",
        device.as_secs_f64() * 1e6
    );
    println!(
        "  PBKDF2-HMAC-SHA256, 100,000 rounds     {:>10.2} µs",
        pbkdf2.as_secs_f64() * 1e6
    );
    println!(
        "  ratio PBKDF2 / API key check           {:>10.0} x",
        pbkdf2.as_secs_f64() / api.as_secs_f64()
    );
}

async fn balance_latency() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalSettings {
        port: 0,
        data_dir: dir.path().to_owned(),
        public_base_url: "http://127.0.0.1:0".into(),
    };
    // No log subscriber is installed: a line per request would measure the terminal.
    let mode = LocalMode::open(Settings::default(), &local).unwrap();
    let router = mode.router();
    let user = uuid::Uuid::new_v4().to_string();
    let request = || {
        Request::get("/v1/credits/balance")
            .header("x-user-key", &user)
            .body(Body::empty())
            .unwrap()
    };
    let first = router.clone().oneshot(request()).await.unwrap();
    assert_eq!(
        first.status(),
        200,
        "the user is created by the first request"
    );
    for _ in 0..200 {
        router.clone().oneshot(request()).await.unwrap();
    }
    let mut samples: Vec<Duration> = Vec::with_capacity(5000);
    for _ in 0..5000 {
        let started = Instant::now();
        let response = router.clone().oneshot(request()).await.unwrap();
        let _ = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap();
        samples.push(started.elapsed());
    }
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "authenticated GET /v1/credits/balance, embedded store, in process ({} requests)",
        samples.len()
    );
    println!(
        "  median                                  {:>10.1} µs",
        at(0.5).as_secs_f64() * 1e6
    );
    println!(
        "  p99                                     {:>10.1} µs",
        at(0.99).as_secs_f64() * 1e6
    );
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted, so nothing else is parsed.
    credential_checks();
    println!();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(balance_latency());
}
