//! `cargo bench -p storybook-tests --bench bench`
//!
//! Prints, from one run on this machine:
//! - the cost of one credential check (format check plus keyed hash) for an API key and for a
//!   device key, beside PBKDF2-HMAC-SHA256 at 100,000 rounds (the replaced system's scheme), and
//!   their ratio;
//! - the in-process latency of an authenticated `GET /v1/credits/balance` on the embedded store
//!   (median and p99), through the same router and edges that serve real requests;
//! - the wall time of a 12-page narrated book in local mode beside its ideal critical path, and
//!   per book the store writes, queue messages and blob writes that set its AWS cost: with the
//!   offline providers, and with an OpenAI-compatible server on loopback answering after real
//!   providers' latencies (story 3 s, pictures 5 s, narration 1 s), with its provider calls;
//! - the cost of that book: provider spend from the price table, AWS spend from its counted store,
//!   queue and blob operations and Lambda time at list prices, beside upstream's $0.22 a book;
//! - a first book naming the parent's character, the next book of its series and one page made
//!   again, each timed with those latencies, with their image calls (the series book reuses the
//!   character's reference picture);
//! - the peak resident memory of a process fetching a 50 MB picture through the illustrate step;
//! - an uploaded 36-megapixel photo, and four 25-megapixel ones at once, decoded as uploads are
//!   (a JPEG at a reduced scale) beside a whole decode: time and peak memory.

use axum::body::Body;
use http::Request;
use std::hint::black_box;
use std::time::{Duration, Instant};
use storybook_core::config::{Config, LocalSettings};
use storybook_core::domain::api_key::{ApiKeySecret, KeyEnvironment};
use storybook_core::domain::credential::{CredentialHasher, CredentialKind, Pepper};
use storybook_core::domain::user::UserKey;
use storybook_local::LocalMode;
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
    // No log subscriber is installed: a line per request would measure the terminal.
    let (_dir, mode) = local_mode();
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
    report(
        "authenticated GET /v1/credits/balance (device key), embedded store, in process",
        sample(&router, 5000, request).await,
    );

    // The same through an API key: verification, usage count and rate limit, one read and two
    // writes on top of the answer.
    let admin = storybook_core::domain::api_key::ApiKeySecret::generate(
        storybook_core::domain::api_key::KeyEnvironment::Live,
    );
    storybook_core::bootstrap::store_admin_key(&mode.state, &admin, "bench")
        .await
        .unwrap();
    let bearer = format!("Bearer {}", admin.expose());
    let admin_request = || {
        Request::get("/v1/admin/api-keys")
            .header("authorization", &bearer)
            .body(Body::empty())
            .unwrap()
    };
    report(
        "authenticated GET /v1/admin/api-keys (API key), embedded store, in process",
        sample(&router, 2000, admin_request).await,
    );
}

/// Times `count` requests one after the other, each answered 200 and read to its end.
async fn sample(
    router: &axum::Router,
    count: usize,
    request: impl Fn() -> Request<Body>,
) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let response = router.clone().oneshot(request()).await.unwrap();
        assert_eq!(response.status(), 200);
        let _ = http_body_util::BodyExt::collect(response.into_body())
            .await
            .unwrap();
        samples.push(started.elapsed());
    }
    samples
}

/// Local mode on a fresh folder (kept as long as the returned guard lives), limits out of the way.
fn local_mode() -> (tempfile::TempDir, LocalMode) {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalSettings {
        port: 0,
        data_dir: dir.path().to_owned(),
        public_base_url: "http://127.0.0.1:0".into(),
    };
    let mode = LocalMode::open(unthrottled(), &local, &Default::default()).unwrap();
    (dir, mode)
}

/// Default settings with limits out of the way: the bench measures the work of a request,
/// rate-limit counting included, not the refusals.
fn unthrottled() -> Config {
    let high = 1_000_000_000;
    Config {
        limits: storybook_core::config::Limits {
            generation_per_minute: high,
            writes_per_minute: high,
            reads_per_minute: high,
            books_per_day: high,
            unfinished_books: high,
            ..storybook_core::config::Limits::default()
        },
        ..Config::default()
    }
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    println!("{what} ({} requests)", samples.len());
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
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
    };
    if std::env::var_os("BENCH_MEMORY_PROBE").is_some() {
        runtime().block_on(memory_probe());
        return;
    }
    if let Some(how) = std::env::var_os("BENCH_UPLOAD_PROBE") {
        upload_probe(&how.to_string_lossy());
        return;
    }
    // `cargo bench` passes `--bench`; nothing else is accepted, so nothing else is parsed.
    credential_checks();
    println!();
    runtime().block_on(async {
        balance_latency().await;
        println!();
        let offline_compute = book_pipeline().await;
        println!();
        book_with_provider_latencies(offline_compute).await;
        println!();
        series_and_regeneration().await;
    });
    println!();
    // The memory probe in a fresh process of this same binary, so that nothing above counts.
    let probe = std::process::Command::new(std::env::current_exe().unwrap())
        .env("BENCH_MEMORY_PROBE", "1")
        .output()
        .unwrap();
    print!("{}", String::from_utf8_lossy(&probe.stdout));
    assert!(
        probe.status.success(),
        "memory probe: {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    println!();
    uploads_decoded();
}

/// Photos as a parent uploads them: a 6000 × 6000 JPEG alone, then four 5000 × 5000 ones at
/// once, each way in a fresh process of this binary (so that its peak memory is that work alone):
/// decoded as uploads are (`pictures::decode_upload`, a JPEG at a reduced scale) beside a whole
/// decode (what uploads cost before).
fn uploads_decoded() {
    let dir = tempfile::tempdir().unwrap();
    for (name, side) in [("one.jpg", 6000u32), ("four.jpg", 5000)] {
        // A photo-like picture (gradients and noise), so the JPEG is of a photo's size.
        let picture = image::RgbImage::from_fn(side, side, |x, y| {
            let grain = (x.wrapping_mul(2_654_435_761) ^ y.wrapping_mul(40_503)) % 7;
            let shade = ((x / 40 + y / 40) % 2 * 30) as u8;
            image::Rgb([
                (x * 200 / side) as u8 + shade,
                (y * 200 / side) as u8,
                (grain * 6) as u8 + shade,
            ])
        });
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 85)
            .encode_image(&picture)
            .unwrap();
        std::fs::write(dir.path().join(name), jpeg).unwrap();
    }
    println!("uploaded photos decoded (each way in a process of its own)");
    for how in ["scaled", "whole"] {
        let probe = std::process::Command::new(std::env::current_exe().unwrap())
            .env("BENCH_UPLOAD_PROBE", how)
            .env("BENCH_UPLOAD_DIR", dir.path())
            .output()
            .unwrap();
        print!("{}", String::from_utf8_lossy(&probe.stdout));
        assert!(
            probe.status.success(),
            "upload probe: {}",
            String::from_utf8_lossy(&probe.stderr)
        );
    }
}

/// One way of decoding uploads (`scaled`: as the studio does; `whole`: every pixel), timed, with
/// the process's peak resident memory.
fn upload_probe(how: &str) {
    let dir = std::path::PathBuf::from(std::env::var_os("BENCH_UPLOAD_DIR").unwrap());
    let decode = |bytes: &[u8]| -> (u32, u32) {
        let decoded = match how {
            "scaled" => storybook_pipeline::pictures::decode_upload(bytes, 40_000_000).unwrap(),
            _ => image::load_from_memory(bytes).unwrap(),
        };
        (decoded.width(), decoded.height())
    };
    let one = std::fs::read(dir.join("one.jpg")).unwrap();
    let before = peak_memory_kib();
    let started = Instant::now();
    let (w, h) = decode(&one);
    let alone = started.elapsed();
    let peak_alone = peak_memory_kib();
    let four = std::fs::read(dir.join("four.jpg")).unwrap();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| decode(&four));
        }
    });
    let together = started.elapsed();
    let peak_four = peak_memory_kib();
    println!(
        "  {how:<6} a 36 MP JPEG ({:.1} MB) to {w} x {h}: {:>7.0} ms, peak {:>6.1} MB; four 25 MP at once: {:>7.0} ms, peak {:>6.1} MB (before {:.1} MB)",
        one.len() as f64 / 1e6,
        alone.as_secs_f64() * 1e3,
        peak_alone as f64 / 1024.0,
        together.as_secs_f64() * 1e3,
        peak_four as f64 / 1024.0,
        before as f64 / 1024.0,
    );
}

/// Counts the calls that set a book's AWS bill: store writes (DynamoDB write requests), queue
/// messages (SQS sends) and blob writes (S3 PUTs). Delegates everything to the real adapter.
mod counting {
    use async_trait::async_trait;
    use bytes::Bytes;
    use chrono::{DateTime, NaiveDate, Utc};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
    use std::time::Duration;
    use storybook_core::domain::api_key::ApiKeyRecord;
    use storybook_core::domain::audit::AuditEntry;
    use storybook_core::domain::book::{Book, BookId, Idempotency, IdempotencyKey, RecordedAsset};
    use storybook_core::domain::breaker::BreakerRecord;
    use storybook_core::domain::character::{Character, CharacterId};
    use storybook_core::domain::consent::Consent;
    use storybook_core::domain::credential::CredentialHash;
    use storybook_core::domain::credits::{Grant, GrantOutcome, LedgerEntry, LedgerPage};
    use storybook_core::domain::settings::UserSettings;
    use storybook_core::domain::spend::{DaySpend, KillSwitch, Microdollars, SpendCharge};
    use storybook_core::domain::streak::{Reading, Streak};
    use storybook_core::domain::user::{User, UserId, UserLookup};
    use storybook_core::ports::queue::{QueueError, QueuedMessage, StepQueue};
    use storybook_core::ports::store::*;
    use storybook_core::ports::{BlobError, BlobFolder, BlobKey, BlobStore, BlobStream};

    #[derive(Default)]
    pub struct Counts {
        pub store_reads: AtomicU64,
        pub store_writes: AtomicU64,
        pub queue_sends: AtomicU64,
        pub queue_receives: AtomicU64,
        pub queue_deletes: AtomicU64,
        pub blob_writes: AtomicU64,
        pub blob_bytes: AtomicU64,
        pub blob_reads: AtomicU64,
    }

    impl Counts {
        /// Every counter now.
        pub fn tally(&self) -> Tally {
            Tally {
                store_reads: self.store_reads.load(Relaxed),
                store_writes: self.store_writes.load(Relaxed),
                queue_sends: self.queue_sends.load(Relaxed),
                queue_receives: self.queue_receives.load(Relaxed),
                queue_deletes: self.queue_deletes.load(Relaxed),
                blob_writes: self.blob_writes.load(Relaxed),
                blob_reads: self.blob_reads.load(Relaxed),
            }
        }
    }

    /// The counters at one moment; the difference of two is what happened between them.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct Tally {
        pub store_reads: u64,
        pub store_writes: u64,
        pub queue_sends: u64,
        pub queue_receives: u64,
        pub queue_deletes: u64,
        pub blob_writes: u64,
        pub blob_reads: u64,
    }

    impl std::ops::Sub for Tally {
        type Output = Tally;
        fn sub(self, before: Tally) -> Tally {
            Tally {
                store_reads: self.store_reads - before.store_reads,
                store_writes: self.store_writes - before.store_writes,
                queue_sends: self.queue_sends - before.queue_sends,
                queue_receives: self.queue_receives - before.queue_receives,
                queue_deletes: self.queue_deletes - before.queue_deletes,
                blob_writes: self.blob_writes - before.blob_writes,
                blob_reads: self.blob_reads - before.blob_reads,
            }
        }
    }

    pub struct Counted<T> {
        pub inner: T,
        pub counts: Arc<Counts>,
    }

    impl<T> Counted<T> {
        fn read(&self) {
            self.counts.store_reads.fetch_add(1, Relaxed);
        }
        fn write(&self) {
            self.counts.store_writes.fetch_add(1, Relaxed);
        }
    }

    type S = Arc<dyn Store>;

    #[async_trait]
    impl UserStore for Counted<S> {
        async fn erase_user(&self, id: &UserId) -> Result<u64, StoreError> {
            self.write();
            self.inner.erase_user(id).await
        }
        async fn find_user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
            self.read();
            self.inner.find_user(id).await
        }
        async fn create_user(
            &self,
            id: &UserId,
            credits: i64,
            at: DateTime<Utc>,
        ) -> Result<UserLookup, StoreError> {
            self.write();
            self.inner.create_user(id, credits, at).await
        }
    }

    #[async_trait]
    impl CreditStore for Counted<S> {
        async fn grant(&self, grant: &Grant) -> Result<GrantOutcome, StoreError> {
            self.write();
            self.inner.grant(grant).await
        }
        async fn ledger(
            &self,
            user: &UserId,
            page: LedgerPage,
        ) -> Result<Vec<LedgerEntry>, StoreError> {
            self.read();
            self.inner.ledger(user, page).await
        }
    }

    #[async_trait]
    impl ApiKeyStore for Counted<S> {
        async fn put_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
            self.write();
            self.inner.put_api_key(record).await
        }
        async fn find_api_key(
            &self,
            hash: &CredentialHash,
        ) -> Result<Option<ApiKeyRecord>, StoreError> {
            self.read();
            self.inner.find_api_key(hash).await
        }
        async fn find_api_key_by_id(
            &self,
            key_id: &str,
        ) -> Result<Option<ApiKeyRecord>, StoreError> {
            self.read();
            self.inner.find_api_key_by_id(key_id).await
        }
        async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
            self.read();
            self.inner.list_api_keys().await
        }
        async fn update_api_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
            self.write();
            self.inner.update_api_key(record).await
        }
        async fn record_key_use(
            &self,
            key_id: &str,
            route: &str,
            at: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            self.write();
            self.inner.record_key_use(key_id, route, at).await
        }
        async fn key_usage(&self, key_id: &str) -> Result<Vec<KeyUsage>, StoreError> {
            self.read();
            self.inner.key_usage(key_id).await
        }
    }

    #[async_trait]
    impl AuditStore for Counted<S> {
        async fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
            self.write();
            self.inner.append_audit(entry).await
        }
        async fn audit_log(
            &self,
            limit: u32,
            before: Option<&str>,
        ) -> Result<Vec<AuditEntry>, StoreError> {
            self.read();
            self.inner.audit_log(limit, before).await
        }
    }

    #[async_trait]
    impl LimitStore for Counted<S> {
        async fn peek(&self, counter: &str, window: Window) -> Result<u32, StoreError> {
            self.read();
            self.inner.peek(counter, window).await
        }
        async fn give_back(&self, counter: &str, window: Window) -> Result<(), StoreError> {
            self.write();
            self.inner.give_back(counter, window).await
        }
        async fn take(
            &self,
            counter: &str,
            limit: u32,
            window: Window,
        ) -> Result<LimitDecision, StoreError> {
            self.write();
            self.inner.take(counter, limit, window).await
        }
    }

    #[async_trait]
    impl BookStore for Counted<S> {
        async fn create_book(
            &self,
            book: &Book,
            key: Option<&Idempotency>,
            unfinished_cap: u32,
        ) -> Result<CreateOutcome, StoreError> {
            self.write();
            self.inner.create_book(book, key, unfinished_cap).await
        }
        async fn find_book(&self, id: &BookId) -> Result<Option<StoredBook>, StoreError> {
            self.read();
            self.inner.find_book(id).await
        }
        async fn record_page_asset(
            &self,
            book: &BookId,
            recorded: &RecordedAsset,
        ) -> Result<bool, StoreError> {
            self.write();
            self.inner.record_page_asset(book, recorded).await
        }
        async fn forget_idempotency(
            &self,
            user: &UserId,
            key: &IdempotencyKey,
        ) -> Result<(), StoreError> {
            self.write();
            self.inner.forget_idempotency(user, key).await
        }
        async fn replace_book(&self, book: &Book, version: u64) -> Result<bool, StoreError> {
            self.write();
            self.inner.replace_book(book, version).await
        }
        async fn replace_and_settle(
            &self,
            book: &Book,
            version: u64,
            settlement: Settlement,
            at: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            self.write();
            self.inner
                .replace_and_settle(book, version, settlement, at)
                .await
        }
        async fn books_of(&self, user: &UserId) -> Result<Vec<Book>, StoreError> {
            self.read();
            self.inner.books_of(user).await
        }
        async fn delete_book(&self, book: &Book, version: u64) -> Result<bool, StoreError> {
            self.write();
            self.inner.delete_book(book, version).await
        }
        async fn count_unfinished_books(&self, user: &UserId) -> Result<u32, StoreError> {
            self.read();
            self.inner.count_unfinished_books(user).await
        }
        async fn unfinished_books(
            &self,
            created_before: DateTime<Utc>,
            limit: u32,
        ) -> Result<Vec<StoredBook>, StoreError> {
            self.read();
            self.inner.unfinished_books(created_before, limit).await
        }
    }

    #[async_trait]
    impl SettingsStore for Counted<S> {
        async fn find_settings(&self, user: &UserId) -> Result<Option<UserSettings>, StoreError> {
            self.read();
            self.inner.find_settings(user).await
        }
        async fn put_settings(
            &self,
            user: &UserId,
            settings: &UserSettings,
        ) -> Result<(), StoreError> {
            self.write();
            self.inner.put_settings(user, settings).await
        }
    }

    #[async_trait]
    impl CharacterStore for Counted<S> {
        async fn put_character(&self, character: &Character) -> Result<bool, StoreError> {
            self.write();
            self.inner.put_character(character).await
        }
        async fn replace_character(&self, character: &Character) -> Result<bool, StoreError> {
            self.write();
            self.inner.replace_character(character).await
        }
        async fn find_character(
            &self,
            user: &UserId,
            id: &CharacterId,
        ) -> Result<Option<Character>, StoreError> {
            self.read();
            self.inner.find_character(user, id).await
        }
        async fn characters_of(&self, user: &UserId) -> Result<Vec<Character>, StoreError> {
            self.read();
            self.inner.characters_of(user).await
        }
        async fn delete_character(
            &self,
            user: &UserId,
            id: &CharacterId,
        ) -> Result<bool, StoreError> {
            self.write();
            self.inner.delete_character(user, id).await
        }
    }

    #[async_trait]
    impl ConsentStore for Counted<S> {
        async fn latest_consent(&self, user: &UserId) -> Result<Option<Consent>, StoreError> {
            self.read();
            self.inner.latest_consent(user).await
        }
        async fn add_consent(&self, user: &UserId, consent: &Consent) -> Result<(), StoreError> {
            self.write();
            self.inner.add_consent(user, consent).await
        }
        async fn revoke_consent(
            &self,
            user: &UserId,
            granted_at: DateTime<Utc>,
            revoked_at: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            self.write();
            self.inner
                .revoke_consent(user, granted_at, revoked_at)
                .await
        }
    }

    #[async_trait]
    impl storybook_core::ports::profiles::ProfileStore for Counted<S> {
        async fn profiles(
            &self,
            user: &UserId,
        ) -> Result<storybook_core::ports::profiles::StoredProfiles, StoreError> {
            self.read();
            self.inner.profiles(user).await
        }

        async fn replace_profiles(
            &self,
            user: &UserId,
            read: u64,
            profiles: &storybook_core::domain::profile::Profiles,
        ) -> Result<bool, StoreError> {
            self.write();
            self.inner.replace_profiles(user, read, profiles).await
        }
    }

    #[async_trait]
    impl storybook_core::ports::shares::ShareStore for Counted<S> {
        async fn share_generation(&self, user: &UserId, book: &BookId) -> Result<u64, StoreError> {
            self.read();
            self.inner.share_generation(user, book).await
        }

        async fn put_share(
            &self,
            share: &storybook_core::domain::share::Share,
        ) -> Result<(), StoreError> {
            self.write();
            self.inner.put_share(share).await
        }

        async fn find_share(
            &self,
            token_hash: &str,
        ) -> Result<Option<(storybook_core::domain::share::Share, u64)>, StoreError> {
            self.read();
            self.inner.find_share(token_hash).await
        }

        async fn revoke_shares(&self, user: &UserId, book: &BookId) -> Result<(), StoreError> {
            self.write();
            self.inner.revoke_shares(user, book).await
        }
    }

    #[async_trait]
    impl storybook_core::ports::print_orders::PrintOrderStore for Counted<S> {
        async fn place_print_order(
            &self,
            order: &storybook_core::domain::print::PrintOrder,
            open_limit: u32,
        ) -> Result<storybook_core::ports::print_orders::Placed, StoreError> {
            self.write();
            self.inner.place_print_order(order, open_limit).await
        }

        async fn print_order(
            &self,
            id: &str,
        ) -> Result<Option<storybook_core::domain::print::PrintOrder>, StoreError> {
            self.read();
            self.inner.print_order(id).await
        }

        async fn replace_print_order(
            &self,
            expected: &storybook_core::domain::print::PrintOrder,
            replacement: &storybook_core::domain::print::PrintOrder,
        ) -> Result<bool, StoreError> {
            self.write();
            self.inner.replace_print_order(expected, replacement).await
        }
    }

    #[async_trait]
    impl storybook_core::ports::purchases::PurchaseStore for Counted<S> {
        async fn redeem(
            &self,
            redemption: &storybook_core::ports::purchases::Redemption,
        ) -> Result<storybook_core::ports::purchases::Redeemed, StoreError> {
            self.write();
            self.inner.redeem(redemption).await
        }
        async fn claim_owner(
            &self,
            platform: storybook_core::domain::purchase::Platform,
            store_id: &str,
        ) -> Result<Option<storybook_core::ports::purchases::ClaimOwner>, StoreError> {
            self.read();
            self.inner.claim_owner(platform, store_id).await
        }
        async fn subscription(
            &self,
            user: &UserId,
        ) -> Result<Option<storybook_core::domain::purchase::Subscription>, StoreError> {
            self.read();
            self.inner.subscription(user).await
        }
        async fn open_subscription(
            &self,
            user: &UserId,
            subscription: &storybook_core::domain::purchase::Subscription,
            reference: &str,
        ) -> Result<bool, StoreError> {
            self.write();
            self.inner
                .open_subscription(user, subscription, reference)
                .await
        }
        async fn replace_subscription(
            &self,
            user: &UserId,
            expected: &storybook_core::domain::purchase::Subscription,
            replacement: &storybook_core::domain::purchase::Subscription,
        ) -> Result<bool, StoreError> {
            self.write();
            self.inner
                .replace_subscription(user, expected, replacement)
                .await
        }
        async fn claimed_subscription(
            &self,
            platform: storybook_core::domain::purchase::Platform,
            store_id: &str,
        ) -> Result<Option<String>, StoreError> {
            self.read();
            self.inner.claimed_subscription(platform, store_id).await
        }
        async fn subscriptions_due(
            &self,
            before: chrono::DateTime<chrono::Utc>,
            limit: u32,
        ) -> Result<Vec<(UserId, storybook_core::domain::purchase::Subscription)>, StoreError>
        {
            self.read();
            self.inner.subscriptions_due(before, limit).await
        }
        async fn subscription_holder(
            &self,
            platform: storybook_core::domain::purchase::Platform,
            subscription_id: &str,
        ) -> Result<Option<UserId>, StoreError> {
            self.read();
            self.inner
                .subscription_holder(platform, subscription_id)
                .await
        }
        async fn refund(
            &self,
            platform: storybook_core::domain::purchase::Platform,
            store_id: &str,
            at: DateTime<Utc>,
        ) -> Result<storybook_core::ports::purchases::Refunded, StoreError> {
            self.write();
            self.inner.refund(platform, store_id, at).await
        }
        async fn reverse_refund(
            &self,
            platform: storybook_core::domain::purchase::Platform,
            store_id: &str,
            at: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            self.write();
            self.inner.reverse_refund(platform, store_id, at).await
        }
        async fn notification_seen(
            &self,
            platform: storybook_core::domain::purchase::Platform,
            id: &str,
        ) -> Result<bool, StoreError> {
            self.read();
            self.inner.notification_seen(platform, id).await
        }
        async fn record_notification(
            &self,
            platform: storybook_core::domain::purchase::Platform,
            id: &str,
            at: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            self.write();
            self.inner.record_notification(platform, id, at).await
        }
    }

    #[async_trait]
    impl StreakStore for Counted<S> {
        async fn find_streak(&self, user: &UserId) -> Result<StoredStreak, StoreError> {
            self.read();
            self.inner.find_streak(user).await
        }
        async fn record_reading(
            &self,
            user: &UserId,
            reading: &Reading,
            advance: Option<&StreakAdvance>,
        ) -> Result<bool, StoreError> {
            self.write();
            self.inner.record_reading(user, reading, advance).await
        }
        async fn find_profile_streak(
            &self,
            user: &UserId,
            profile: &str,
        ) -> Result<StoredStreak, StoreError> {
            self.read();
            self.inner.find_profile_streak(user, profile).await
        }
        async fn replace_profile_streak(
            &self,
            user: &UserId,
            profile: &str,
            streak: &Streak,
            expected_version: u64,
        ) -> Result<bool, StoreError> {
            self.write();
            self.inner
                .replace_profile_streak(user, profile, streak, expected_version)
                .await
        }
        async fn readings(
            &self,
            user: &UserId,
            first: NaiveDate,
            last: NaiveDate,
        ) -> Result<Vec<Reading>, StoreError> {
            self.read();
            self.inner.readings(user, first, last).await
        }
    }

    #[async_trait]
    impl BreakerStore for Counted<S> {
        async fn breaker(&self, provider: &str) -> Result<(BreakerRecord, u64), StoreError> {
            self.read();
            self.inner.breaker(provider).await
        }
        async fn put_breaker(
            &self,
            provider: &str,
            record: &BreakerRecord,
            expected: u64,
        ) -> Result<bool, StoreError> {
            self.write();
            self.inner.put_breaker(provider, record, expected).await
        }
    }

    #[async_trait]
    impl SpendStore for Counted<S> {
        async fn add_spend(&self, charge: &SpendCharge) -> Result<Microdollars, StoreError> {
            // The day's total (an atomic ADD), then the book's two records in a transaction.
            self.write();
            self.write();
            self.inner.add_spend(charge).await
        }
        async fn spent_on(&self, day: NaiveDate) -> Result<Microdollars, StoreError> {
            self.read();
            self.inner.spent_on(day).await
        }
        async fn day_spend(&self, day: NaiveDate) -> Result<DaySpend, StoreError> {
            self.read();
            self.inner.day_spend(day).await
        }
        async fn book_cost(&self, book: &BookId) -> Result<(Microdollars, u64), StoreError> {
            self.read();
            self.inner.book_cost(book).await
        }
        async fn record_finished_book(
            &self,
            day: NaiveDate,
            book: &BookId,
        ) -> Result<bool, StoreError> {
            self.read();
            self.write();
            self.inner.record_finished_book(day, book).await
        }
        async fn anonymise_book_spend(&self, book: &BookId) -> Result<(), StoreError> {
            self.write();
            self.inner.anonymise_book_spend(book).await
        }
        async fn kill_switch(&self) -> Result<Option<KillSwitch>, StoreError> {
            self.read();
            self.inner.kill_switch().await
        }
        async fn put_kill_switch(&self, switch: &KillSwitch) -> Result<(), StoreError> {
            self.write();
            self.inner.put_kill_switch(switch).await
        }
    }

    #[async_trait]
    impl Store for Counted<S> {
        async fn ping(&self) -> Result<(), StoreError> {
            self.inner.ping().await
        }
    }

    #[async_trait]
    impl StepQueue for Counted<Arc<dyn StepQueue>> {
        async fn send_delayed(&self, body: &str, delay: Duration) -> Result<String, QueueError> {
            self.counts.queue_sends.fetch_add(1, Relaxed);
            self.inner.send_delayed(body, delay).await
        }
        async fn receive(
            &self,
            max: u32,
            visibility: Duration,
        ) -> Result<Vec<QueuedMessage>, QueueError> {
            let got = self.inner.receive(max, visibility).await?;
            if !got.is_empty() {
                self.counts.queue_receives.fetch_add(1, Relaxed);
            }
            Ok(got)
        }
        async fn delete(&self, receipt: &str) -> Result<(), QueueError> {
            self.counts.queue_deletes.fetch_add(1, Relaxed);
            self.inner.delete(receipt).await
        }
        async fn postpone(&self, receipt: &str, delay: Duration) -> Result<(), QueueError> {
            self.inner.postpone(receipt, delay).await
        }
        async fn until_sent(&self, up_to: Duration) {
            self.inner.until_sent(up_to).await
        }
        async fn dead_letters(&self, max: u32) -> Result<Vec<QueuedMessage>, QueueError> {
            self.inner.dead_letters(max).await
        }
        async fn ping(&self) -> Result<(), QueueError> {
            self.inner.ping().await
        }
    }

    #[async_trait]
    impl BlobStore for Counted<Arc<dyn BlobStore>> {
        async fn put(&self, key: &BlobKey, body: BlobStream) -> Result<(), BlobError> {
            use futures::StreamExt;
            self.counts.blob_writes.fetch_add(1, Relaxed);
            let counts = self.counts.clone();
            let counted = body.inspect(move |chunk| {
                if let Ok(bytes) = chunk {
                    counts.blob_bytes.fetch_add(bytes.len() as u64, Relaxed);
                }
            });
            self.inner.put(key, Box::pin(counted)).await
        }
        async fn get(&self, key: &BlobKey) -> Result<Option<Bytes>, BlobError> {
            self.counts.blob_reads.fetch_add(1, Relaxed);
            self.inner.get(key).await
        }
        async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
            self.inner.delete(key).await
        }
        async fn delete_folder(&self, folder: &BlobFolder) -> Result<(), BlobError> {
            self.inner.delete_folder(folder).await
        }
        async fn signed_url(&self, key: &BlobKey, ttl: Duration) -> Result<String, BlobError> {
            self.inner.signed_url(key, ttl).await
        }
        async fn ping(&self) -> Result<(), BlobError> {
            self.inner.ping().await
        }
    }
}

/// Local mode's state with its store, queue and blobs wrapped to count what a book costs.
fn counted(mode: &LocalMode) -> (storybook_http::AppState, std::sync::Arc<counting::Counts>) {
    use counting::{Counted, Counts};
    use std::sync::Arc;
    let counts = Arc::new(Counts::default());
    let mut state = mode.state.clone();
    state.store = Arc::new(Counted {
        inner: state.store.clone(),
        counts: counts.clone(),
    });
    state.queue = Arc::new(Counted {
        inner: state.queue.clone(),
        counts: counts.clone(),
    });
    state.blobs = Arc::new(Counted {
        inner: state.blobs.clone(),
        counts: counts.clone(),
    });
    (state, counts)
}

const TWELVE_PAGES: &str = r#"{"topic": "달을 좋아하는 고양이", "target_age": "5-7", "style": "watercolor", "language": "ko", "page_count": 12}"#;

/// Asks for a 12-page narrated Korean book for `user` (whom it makes first, by a balance read, so
/// that only the book is counted afterwards); answers the request to send.
async fn make_user(router: &axum::Router, user: &str) {
    router
        .clone()
        .oneshot(
            Request::get("/v1/credits/balance")
                .header("x-user-key", user)
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
}

async fn request_book(router: &axum::Router, user: &str) -> storybook_core::domain::book::BookId {
    let request = Request::post("/v1/books")
        .header("x-user-key", user)
        .header("content-type", "application/json")
        .body(Body::from(TWELVE_PAGES))
        .unwrap();
    let created = router.clone().oneshot(request).await.unwrap();
    let body = http_body_util::BodyExt::collect(created.into_body())
        .await
        .unwrap()
        .to_bytes();
    let job: serde_json::Value = serde_json::from_slice(&body).unwrap();
    storybook_core::domain::book::BookId::parse(job["job_id"].as_str().unwrap()).unwrap()
}

async fn until_done(
    store: &dyn storybook_core::ports::Store,
    id: &storybook_core::domain::book::BookId,
) -> storybook_core::domain::book::Book {
    loop {
        let book = store.find_book(id).await.unwrap().unwrap().book;
        if book.is_finished() {
            assert_eq!(book.state, storybook_core::domain::book::JobState::Done);
            return book;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// One 12-page narrated book through the local worker, timed from request to `done`, with what
/// it cost in store writes, queue messages and blob writes; then the same book's steps one at a
/// time, to compare the wall time with the ideal critical path (story, the reference, the slowest
/// page step, assembly) measured in the same run. Answers the sum of every step's time alone (our
/// own work per book).
async fn book_pipeline() -> Duration {
    use storybook_core::domain::book::Step;
    use storybook_core::ports::queue::StepMessage;
    use storybook_pipeline::providers::Providers;

    let (_dir, mode) = local_mode();
    let TimedBook {
        wall,
        tally,
        pipeline,
        router,
        user,
        ..
    } = time_one_book(&mode, |_| Providers::offline()).await;

    // The same book again, each step alone and timed.
    let second = request_book(&router, &user).await;
    let timed = |step: Step| {
        let pipeline = pipeline.clone();
        let message = serde_json::to_string(&StepMessage::new(second.clone(), step)).unwrap();
        async move {
            let started = Instant::now();
            pipeline.handle(&message, false).await.unwrap();
            started.elapsed()
        }
    };
    let story = timed(Step::Story).await;
    let reference = timed(Step::Reference).await;
    let mut slowest_page = Duration::ZERO;
    let mut pages = Duration::ZERO;
    for page in 0..=12u8 {
        let picture = timed(Step::Illustrate { page }).await;
        slowest_page = slowest_page.max(picture);
        pages += picture;
        if page > 0 {
            let narration = timed(Step::Narrate { page }).await;
            slowest_page = slowest_page.max(narration);
            pages += narration;
        }
    }
    let assemble = timed(Step::Assemble).await;
    let ideal = story + reference + slowest_page + assemble;
    // Every step's own work, one after another: what the worker bills beyond waiting on providers.
    let offline_compute = story + reference + pages + assemble;

    println!("a 12-page narrated Korean book, local mode, offline providers");
    println!(
        "  wall time, request to done              {:>10.1} ms",
        wall.as_secs_f64() * 1e3
    );
    println!(
        "  ideal critical path (story {:.1} + reference {:.1} + slowest page {:.1} + assembly {:.1})",
        story.as_secs_f64() * 1e3,
        reference.as_secs_f64() * 1e3,
        slowest_page.as_secs_f64() * 1e3,
        assemble.as_secs_f64() * 1e3
    );
    println!(
        "                                          {:>10.1} ms",
        ideal.as_secs_f64() * 1e3
    );
    println!(
        "  ratio wall / ideal                      {:>10.2} x",
        wall.as_secs_f64() / ideal.as_secs_f64()
    );
    print_billed(tally);
    offline_compute
}

fn print_billed(tally: counting::Tally) {
    println!(
        "  per book: store writes {}, queue messages {}, blob writes {}",
        tally.store_writes, tally.queue_sends, tally.blob_writes
    );
}

/// One book made through the local worker over counted adapters, and what is needed to make more.
struct TimedBook {
    book: storybook_core::domain::book::Book,
    /// From the request to `done`.
    wall: Duration,
    /// Every store, queue and blob operation the book took.
    tally: counting::Tally,
    pipeline: std::sync::Arc<storybook_pipeline::pipeline::Pipeline>,
    router: axum::Router,
    user: String,
}

/// Makes one 12-page book in `mode` with the providers `providers` builds over the counted state,
/// timed from the request to `done`.
async fn time_one_book(
    mode: &LocalMode,
    providers: impl FnOnce(&storybook_http::AppState) -> storybook_pipeline::providers::Providers,
) -> TimedBook {
    let (state, counts) = counted(mode);
    let pipeline = std::sync::Arc::new(storybook_pipeline::pipeline::Pipeline::new(
        &state,
        providers(&state),
    ));
    let router = storybook_http::app(state.clone(), storybook_core::catalogue::Family::ALL);
    let user = uuid::Uuid::new_v4().to_string();
    make_user(&router, &user).await;
    let before = counts.tally();
    let worker = tokio::spawn(storybook_pipeline::pipeline::worker::run_local(
        pipeline.clone(),
    ));
    let started = Instant::now();
    let id = request_book(&router, &user).await;
    let book = until_done(&*mode.state.store, &id).await;
    let wall = started.elapsed();
    worker.abort();
    let after = counts.tally();
    TimedBook {
        book,
        wall,
        tally: after - before,
        pipeline,
        router,
        user,
    }
}

/// Simulated latencies of real providers (seconds): the story, each picture, each narration.
const STORY_SECONDS: f64 = 3.0;
const PICTURE_SECONDS: f64 = 5.0;
const SPEECH_SECONDS: f64 = 1.0;

/// An OpenAI-compatible server on loopback answering the story (and a page written again),
/// moderation, pictures (generations, and edits with a reference) and narration after real
/// providers' latencies, and the provider settings that point at it.
async fn providers_on_loopback() -> (
    wiremock::MockServer,
    storybook_pipeline::providers::settings::ProviderSettings,
) {
    use std::collections::HashMap;
    use wiremock::matchers::{body_string_contains, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let server = MockServer::start().await;
    let seconds = Duration::from_secs_f64;
    let story = serde_json::json!({
        "title": "달을 좋아하는 고양이",
        "pages": (1..=12).map(|i| serde_json::json!({
            "text": format!("고양이 나비는 {i}번째 밤에 달을 보며 인사했어요."),
            "scene": format!("A small white cat greeting the moon, night {i}"),
            "characters": ["나비"],
        })).collect::<Vec<_>>(),
        "cover_scene": "A small white cat under a big moon",
        "characters": [{"name": "나비", "description": "a small white cat with a pink nose", "features": ["blue collar", "one black ear"]}],
    });
    let chat = |content: String| {
        serde_json::json!({
            "choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 400, "completion_tokens": 1500},
        })
    };
    let page = serde_json::json!({"text": "나비는 달에게 다시 손을 흔들었어요.", "scene": "A small white cat waving at the moon again"});
    let picture = {
        use base64::Engine;
        let png = storybook_pipeline::providers::offline::placeholder_png();
        serde_json::json!({"data": [{"b64_json": base64::engine::general_purpose::STANDARD.encode(png)}]})
    };
    // A page written again asks for the page's schema by name.
    Mock::given(path("/v1/chat/completions"))
        .and(body_string_contains("picture_book_page"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(chat(page.to_string()))
                .set_delay(seconds(STORY_SECONDS)),
        )
        .with_priority(1)
        .mount(&server)
        .await;
    let answers = [
        (
            "/v1/chat/completions",
            ResponseTemplate::new(200)
                .set_body_json(chat(story.to_string()))
                .set_delay(seconds(STORY_SECONDS)),
        ),
        (
            "/v1/moderations",
            ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"results": [{"flagged": false, "categories": {}}]}),
            ),
        ),
        (
            "/v1/images/generations",
            ResponseTemplate::new(200)
                .set_body_json(picture.clone())
                .set_delay(seconds(PICTURE_SECONDS)),
        ),
        (
            "/v1/images/edits",
            ResponseTemplate::new(200)
                .set_body_json(picture)
                .set_delay(seconds(PICTURE_SECONDS)),
        ),
        (
            "/v1/audio/speech",
            ResponseTemplate::new(200)
                .set_body_raw(b"ID3\x03\x00narration".to_vec(), "audio/mpeg")
                .set_delay(seconds(SPEECH_SECONDS)),
        ),
    ];
    for (route, answer) in answers {
        Mock::given(path(route))
            .respond_with(answer)
            .mount(&server)
            .await;
    }
    let vars: HashMap<&str, String> = [
        ("OPENAI_API_KEY", "sk-bench".to_owned()),
        ("OPENAI_BASE_URL", format!("{}/v1", server.uri())),
    ]
    .into_iter()
    .collect();
    let provider_settings =
        storybook_pipeline::providers::settings::ProviderSettings::from_lookup(&|name| {
            vars.get(name).cloned()
        })
        .unwrap();
    (server, provider_settings)
}

/// The same book with an OpenAI-compatible server on loopback answering after real providers'
/// latencies: its wall time beside the ideal critical path (story + reference + the slowest
/// page picture, or narration if slower, + assembly), and what it cost.
async fn book_with_provider_latencies(offline_compute: Duration) {
    let seconds = Duration::from_secs_f64;
    let (server, provider_settings) = providers_on_loopback().await;
    let (_dir, mode) = local_mode();
    let TimedBook {
        book, wall, tally, ..
    } = time_one_book(&mode, |state| {
        provider_settings.build(state.store.clone(), state.clock.clone())
    })
    .await;
    // Assembly alone, on the finished book, to complete the ideal path.
    let assembling = Instant::now();
    storybook_pipeline::pipeline::pdf::render(&book, &*mode.state.blobs)
        .await
        .unwrap();
    let assembly = assembling.elapsed();
    let ideal =
        seconds(STORY_SECONDS + PICTURE_SECONDS + PICTURE_SECONDS.max(SPEECH_SECONDS)) + assembly;
    let calls = server.received_requests().await.unwrap();
    let by_route = |route: &str| calls.iter().filter(|r| r.url.path() == route).count();

    println!(
        "a 12-page narrated Korean book, local mode, providers over HTTP on loopback (story {STORY_SECONDS} s, pictures {PICTURE_SECONDS} s, narration {SPEECH_SECONDS} s)"
    );
    println!(
        "  wall time, request to done              {:>10.2} s",
        wall.as_secs_f64()
    );
    println!(
        "  ideal critical path (story + reference + slowest page + assembly {:.0} ms)",
        assembly.as_secs_f64() * 1e3
    );
    println!(
        "                                          {:>10.2} s",
        ideal.as_secs_f64()
    );
    println!(
        "  ratio wall / ideal                      {:>10.3} x",
        wall.as_secs_f64() / ideal.as_secs_f64()
    );
    print_billed(tally);
    println!(
        "  provider calls: {} (story {}, moderation {}, reference {}, pages and cover {}, narration {})",
        calls.len(),
        by_route("/v1/chat/completions"),
        by_route("/v1/moderations"),
        by_route("/v1/images/generations"),
        by_route("/v1/images/edits"),
        by_route("/v1/audio/speech"),
    );
    let images = by_route("/v1/images/generations") + by_route("/v1/images/edits");
    let provider_seconds = STORY_SECONDS * by_route("/v1/chat/completions") as f64
        + PICTURE_SECONDS * images as f64
        + SPEECH_SECONDS * by_route("/v1/audio/speech") as f64;
    let (provider, _) = mode.state.store.book_cost(&book.id).await.unwrap();
    print_cost(
        provider,
        images as u64,
        tally,
        provider_seconds + offline_compute.as_secs_f64(),
        wall,
    );
}

/// POSTs `body` to `path` as `user`; answers the JSON answer.
async fn post(
    router: &axum::Router,
    user: &str,
    path: &str,
    body: serde_json::Value,
) -> serde_json::Value {
    let request = Request::post(path)
        .header("x-user-key", user)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let answer = router.clone().oneshot(request).await.unwrap();
    assert!(answer.status().is_success(), "{path}: {}", answer.status());
    let bytes = http_body_util::BodyExt::collect(answer.into_body())
        .await
        .unwrap()
        .to_bytes();
    serde_json::from_slice(&bytes).unwrap()
}

/// A first book naming the parent's character, the next book of its series, and one page of it
/// made again, each timed with the providers on loopback (their latencies as above): the series
/// book takes a copy of the character's reference picture instead of drawing one, one image call
/// less; the page is one text call, one picture and the PDF.
async fn series_and_regeneration() {
    use storybook_core::domain::book::BookId;
    let (server, provider_settings) = providers_on_loopback().await;
    let (_dir, mode) = local_mode();
    let state = mode.state.clone();
    let providers = provider_settings.build(state.store.clone(), state.clock.clone());
    let pipeline = std::sync::Arc::new(storybook_pipeline::pipeline::Pipeline::new(
        &state, providers,
    ));
    let router = storybook_http::app(state.clone(), storybook_core::catalogue::Family::ALL);
    let worker = tokio::spawn(storybook_pipeline::pipeline::worker::run_local(pipeline));
    let user = uuid::Uuid::new_v4().to_string();
    make_user(&router, &user).await;
    let sheet = serde_json::json!({
        "name": "나비", "master_description": "A small white cat with a pink nose and a blue collar",
        "appearance": {"age_visual": "a kitten", "face": "round, pink nose", "hair": "white fur",
            "skin": "white", "body": "small"},
        "clothing": {"top": "none", "bottom": "none", "shoes": "none", "accessories": "a blue collar"},
        "personality_traits": ["curious"], "visual_style_notes": "soft watercolor"
    });
    let character = post(&router, &user, "/v1/characters", sheet).await["character_id"].clone();
    let images = || async {
        let calls = server.received_requests().await.unwrap();
        calls
            .iter()
            .filter(|r| r.url.path().starts_with("/v1/images/"))
            .count()
    };
    let mut first: serde_json::Value = serde_json::from_str(TWELVE_PAGES).unwrap();
    first["character_id"] = character.clone();
    let book = |path: &'static str, body: serde_json::Value| {
        let (router, user, store) = (&router, &user, &mode.state.store);
        async move {
            let before = images().await;
            let started = Instant::now();
            let job = post(router, user, path, body).await;
            let id = BookId::parse(job["job_id"].as_str().unwrap()).unwrap();
            until_done(&**store, &id).await;
            (id, started.elapsed(), images().await - before)
        }
    };
    let (first_id, first_wall, first_images) = book("/v1/books", first).await;
    let next = serde_json::json!({"character_id": character, "topic": "달에게 가는 기차",
        "page_count": 12, "previous_book_id": first_id.as_str()});
    let (series_id, series_wall, series_images) = book("/v1/books/series", next).await;

    let before = images().await;
    let started = Instant::now();
    post(
        &router,
        &user,
        &format!("/v1/books/{}/pages/3/regenerate", series_id.as_str()),
        serde_json::json!({"mode": "both", "feedback": "달을 더 크게"}),
    )
    .await;
    let regenerated = loop {
        let book = mode
            .state
            .store
            .find_book(&series_id)
            .await
            .unwrap()
            .unwrap()
            .book;
        if book.pages[3].version == 2 && book.pages[3].regeneration.is_none() {
            break book;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let regeneration_wall = started.elapsed();
    let regeneration_images = images().await - before;
    worker.abort();
    let assembling = Instant::now();
    storybook_pipeline::pipeline::pdf::render(&regenerated, &*mode.state.blobs)
        .await
        .unwrap();
    let assembly = assembling.elapsed().as_secs_f64();
    let page = PICTURE_SECONDS.max(SPEECH_SECONDS);
    let first_ideal = STORY_SECONDS + PICTURE_SECONDS + page + assembly;
    let series_ideal = STORY_SECONDS + page + assembly;
    let regeneration_ideal = STORY_SECONDS + PICTURE_SECONDS + assembly;
    println!(
        "a first book with the parent's character, its series' next book and one page made again (providers on loopback, latencies as above)"
    );
    for (what, wall, ideal, calls) in [
        (
            "first book (12 pages)",
            first_wall,
            first_ideal,
            first_images,
        ),
        (
            "series book (12 pages)",
            series_wall,
            series_ideal,
            series_images,
        ),
        (
            "page regeneration (text and picture)",
            regeneration_wall,
            regeneration_ideal,
            regeneration_images,
        ),
    ] {
        println!(
            "  {what:<38} {:>7.2} s   ideal {:>6.2} s   {:>5.3} x   image calls {calls}",
            wall.as_secs_f64(),
            ideal,
            wall.as_secs_f64() / ideal,
        );
    }
    println!(
        "  the series book took {} image call(s) less than the first; the regeneration {:.2} x a first book's time",
        first_images as i64 - series_images as i64,
        regeneration_wall.as_secs_f64() / first_wall.as_secs_f64()
    );
}

/// AWS list prices (us-east-1, on demand, USD, late 2025).
mod aws_prices {
    pub const DYNAMODB_PER_MILLION_WRITE_UNITS: f64 = 0.625;
    pub const DYNAMODB_PER_MILLION_READ_UNITS: f64 = 0.125;
    /// Transactional writes cost two units per item, and a book document is a few KB: two
    /// units per write and per (strongly consistent) read, an estimate on the high side.
    pub const UNITS_PER_WRITE: f64 = 2.0;
    pub const UNITS_PER_READ: f64 = 2.0;
    pub const SQS_PER_MILLION_REQUESTS: f64 = 0.40;
    pub const S3_PER_THOUSAND_PUTS: f64 = 0.005;
    pub const S3_PER_THOUSAND_GETS: f64 = 0.0004;
    pub const LAMBDA_ARM_PER_GB_SECOND: f64 = 0.000_013_333_4;
    pub const LAMBDA_PER_MILLION_REQUESTS: f64 = 0.20;
    pub const HTTP_API_PER_MILLION_REQUESTS: f64 = 1.00;
    /// The step worker's memory (template.yaml) and the API functions'.
    pub const WORKER_GB: f64 = 1.0;
    pub const API_GB: f64 = 0.25;
    /// What one API request is billed for (an assumption: the in-process figures above are a
    /// fraction of a millisecond; a store round trip on AWS is a few).
    pub const API_SECONDS_PER_REQUEST: f64 = 0.05;
    /// Upstream's measured cost of one book.
    pub const UPSTREAM_PER_BOOK: f64 = 0.22;
}

/// What one book costs: provider spend as the price table priced it (recorded by the pipeline),
/// and AWS spend from its counted operations at list prices. Step worker time is an upper bound:
/// every step billed alone for its provider's latency plus its own work (on Lambda, steps of one
/// batch share an invocation). The app's requests: the create, a poll every 2 s, the detail and
/// the PDF.
fn print_cost(
    provider: storybook_core::domain::spend::Microdollars,
    images: u64,
    tally: counting::Tally,
    worker_seconds: f64,
    wall: Duration,
) {
    use aws_prices::*;
    let dynamodb = (tally.store_writes as f64 * UNITS_PER_WRITE * DYNAMODB_PER_MILLION_WRITE_UNITS
        + tally.store_reads as f64 * UNITS_PER_READ * DYNAMODB_PER_MILLION_READ_UNITS)
        / 1e6;
    let sqs_requests = tally.queue_sends + tally.queue_receives + tally.queue_deletes;
    let sqs = sqs_requests as f64 * SQS_PER_MILLION_REQUESTS / 1e6;
    let s3 = tally.blob_writes as f64 * S3_PER_THOUSAND_PUTS / 1e3
        + tally.blob_reads as f64 * S3_PER_THOUSAND_GETS / 1e3;
    let api_requests = 3 + (wall.as_secs_f64() / 2.0).ceil() as u64;
    let lambda = worker_seconds * WORKER_GB * LAMBDA_ARM_PER_GB_SECOND
        + api_requests as f64 * API_SECONDS_PER_REQUEST * API_GB * LAMBDA_ARM_PER_GB_SECOND
        + (tally.queue_receives + api_requests) as f64 * LAMBDA_PER_MILLION_REQUESTS / 1e6;
    let http_api = api_requests as f64 * HTTP_API_PER_MILLION_REQUESTS / 1e6;
    let aws = dynamodb + sqs + s3 + lambda + http_api;
    // The same book with fal's flux-dev for every picture instead of gpt-image-1.
    let table = storybook_core::domain::spend::PriceTable::default();
    let picture = |model| {
        table
            .price(&storybook_core::domain::spend::Consumption {
                model,
                images: 1,
                image_size: Some("1536x1024"),
                ..Default::default()
            })
            .usd()
    };
    let with_flux =
        provider.usd() - images as f64 * (picture("gpt-image-1") - picture("fal-ai/flux/dev"));
    println!("  cost of this book at list prices (USD)");
    println!(
        "    provider spend (price table, default models: gpt-4o-mini, gpt-image-1 medium, gpt-4o-mini-tts) {:>9.4}",
        provider.usd()
    );
    println!(
        "    AWS: DynamoDB {dynamodb:.5} ({} reads, {} writes), SQS {sqs:.5} ({sqs_requests} requests), S3 {s3:.5}, Lambda {lambda:.5} (worker {worker_seconds:.0} s at 1 GB, at most), HTTP API {http_api:.5} ({api_requests} requests)",
        tally.store_reads, tally.store_writes
    );
    println!("    AWS total {aws:>9.4}");
    println!(
        "    book total {:>9.4}, beside upstream's measured {UPSTREAM_PER_BOOK:.2} ({:.2} x)",
        provider.usd() + aws,
        (provider.usd() + aws) / UPSTREAM_PER_BOOK
    );
    println!(
        "    with fal flux-dev pictures instead: {:.4} ({:.2} x upstream)",
        with_flux + aws,
        (with_flux + aws) / UPSTREAM_PER_BOOK
    );
}

/// The size of the picture the memory probe streams.
const BIG_PICTURE: usize = 50 * 1024 * 1024;

/// Run in a process of its own (the bench starts itself again with `BENCH_MEMORY_PROBE` set), so
/// that its peak resident memory is this alone: one illustrate step whose provider answers with a
/// URL to a 50 MB picture, served on loopback as a generated stream (no copy of it is ever held),
/// fetched through the SSRF-safe fetcher (size cap raised) and written to blob storage. Prints
/// the process's peak resident memory (VmHWM).
async fn memory_probe() {
    use std::sync::Arc;
    use storybook_core::domain::book::Step;
    use storybook_core::domain::spend::Usage;
    use storybook_core::ports::queue::StepMessage;
    use storybook_pipeline::pipeline::Pipeline;
    use storybook_pipeline::providers::fetch::{FetchPolicy, SafeFetcher};
    use storybook_pipeline::providers::{
        Artwork, Illustrator, ImagePrompt, Metered, ProviderError,
    };

    // The picture server: a PNG signature, then zeros, in 64 KiB chunks made as they are sent.
    let app = axum::Router::new().route(
        "/big.png",
        axum::routing::get(|| async {
            let head = bytes::Bytes::from_static(b"\x89PNG\r\n\x1a\n");
            let chunks = (0..BIG_PICTURE / 65536).map(move |i| {
                let mut chunk = vec![0u8; 65536];
                if i == 0 {
                    chunk[..8].copy_from_slice(&head);
                }
                Ok::<_, std::io::Error>(bytes::Bytes::from(chunk))
            });
            (
                [(http::header::CONTENT_TYPE, "image/png")],
                Body::from_stream(futures::stream::iter(chunks)),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/big.png", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    /// An illustrator that answers with the big picture's URL, as Replicate and fal do.
    struct AnswersWithUrl(String);
    #[async_trait::async_trait]
    impl Illustrator for AnswersWithUrl {
        async fn illustrate(&self, _: &ImagePrompt) -> Result<Metered<Artwork>, ProviderError> {
            Ok(Metered {
                value: Artwork::Url(self.0.clone()),
                usage: Usage::new("bench", "bench"),
            })
        }
    }

    let (_dir, mode) = local_mode();
    let mut providers = storybook_pipeline::providers::Providers::offline();
    providers.illustrator = Arc::new(AnswersWithUrl(url));
    providers.fetcher = SafeFetcher::new(FetchPolicy {
        allowed_hosts: vec!["127.0.0.1".into()],
        allow_loopback_http: true,
        max_bytes: (BIG_PICTURE as u64) + 1024,
        ..FetchPolicy::default()
    });
    let pipeline = Pipeline::new(&mode.state, providers);
    let router = storybook_http::app(mode.state.clone(), storybook_core::catalogue::Family::ALL);
    let user = uuid::Uuid::new_v4().to_string();
    make_user(&router, &user).await;
    let id = request_book(&router, &user).await;
    let step = |step| serde_json::to_string(&StepMessage::new(id.clone(), step)).unwrap();
    pipeline.handle(&step(Step::Story), false).await.unwrap();
    let before = peak_memory_kib();
    let started = Instant::now();
    pipeline
        .handle(&step(Step::Illustrate { page: 1 }), false)
        .await
        .unwrap();
    let elapsed = started.elapsed();
    let book = mode.state.store.find_book(&id).await.unwrap().unwrap().book;
    let key = book.pages[1]
        .image_key
        .clone()
        .expect("the picture is stored");
    let key = storybook_core::ports::BlobKey::parse(&key).unwrap();
    // Read back whole only after the peak was taken.
    let peak = peak_memory_kib();
    let length = mode.state.blobs.get(&key).await.unwrap().unwrap().len();
    assert_eq!(length, BIG_PICTURE);
    println!(
        "a {} MB picture streamed through the illustrate step (fetched from a URL into the blob folder) in {:.2} s",
        BIG_PICTURE / (1024 * 1024),
        elapsed.as_secs_f64()
    );
    println!(
        "  peak resident memory of the process     {:>10.1} MB (before the step {:.1} MB)",
        peak as f64 / 1024.0,
        before as f64 / 1024.0
    );
}

/// The process's peak resident set size so far, from `/proc/self/status` (Linux).
fn peak_memory_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
