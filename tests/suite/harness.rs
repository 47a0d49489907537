//! What every test starts from: adapters on a fresh embedded database or on fresh AWS resources
//! in moto_server, and the app over them with typed request helpers.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Method, Request};
use http_body_util::BodyExt;
use serde_json::Value;
use std::sync::Arc;
use storybook_aws::{adapters, provision::provision};
use storybook_core::catalogue::Family;
use storybook_core::clock::Clock;
use storybook_core::config::{Config, LocalSettings};
use storybook_core::domain::api_key::{ApiKeySecret, KeyEnvironment};
use storybook_core::domain::credential::{CredentialHasher, Pepper};
use storybook_http::{AppState, app};
use storybook_local::LocalMode;
use storybook_pipeline::providers::Providers;
use storybook_pipeline::studio::ProviderStudio;
use tower::ServiceExt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    Aws,
}

/// Config for tests: account creation per IP is not what most tests are about.
pub fn test_config() -> Config {
    Config {
        account_creations_per_ip_per_hour: 100_000,
        limits: storybook_core::config::Limits {
            generation_per_minute: 100_000,
            writes_per_minute: 100_000,
            reads_per_minute: 100_000,
            books_per_day: 100_000,
            unfinished_books: 100_000,
            auth_failures_per_minute: 100_000,
            ..storybook_core::config::Limits::default()
        },
        ..Config::default()
    }
}

/// Where moto_server listens: `MOTO_ENDPOINT` (set by `tests/run.sh`), or a moto_server this
/// test binary starts once, on a free loopback port, which ends when the binary does (so a plain
/// `cargo test` runs the AWS half too when `moto[server]` is installed).
pub fn moto_endpoint() -> String {
    // The server's process is kept with its address: it ends by itself when this binary does.
    static STARTED: std::sync::OnceLock<(String, std::sync::Mutex<std::process::Child>)> =
        std::sync::OnceLock::new();
    if let Ok(endpoint) = std::env::var("MOTO_ENDPOINT") {
        return endpoint;
    }
    STARTED.get_or_init(start_moto).0.clone()
}

fn start_moto() -> (String, std::sync::Mutex<std::process::Child>) {
    use std::io::BufRead;
    let script = format!("{}/moto_server.py", env!("CARGO_MANIFEST_DIR"));
    let refuse = |why: String| -> ! {
        panic!(
            "moto_server did not start ({why}): run `bash tests/run.sh`, which installs it, or `pip install 'moto[server]>=5.1,<6'`"
        )
    };
    let mut child = std::process::Command::new("python3")
        .arg(&script)
        .arg("--parent")
        .arg(std::process::id().to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| refuse(e.to_string()));
    let mut port = String::new();
    let stdout = child.stdout.take().expect("piped");
    std::io::BufReader::new(stdout)
        .read_line(&mut port)
        .unwrap_or_else(|e| refuse(e.to_string()));
    let port = port.trim();
    if port.is_empty() {
        refuse(format!("{script} printed no port"));
    }
    (
        format!("http://127.0.0.1:{port}"),
        std::sync::Mutex::new(child),
    )
}

pub async fn moto_config() -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        // The SDK's own default client is not built in (see storybook-aws's sdk.rs).
        .http_client(storybook_aws::sdk::https_client())
        .endpoint_url(moto_endpoint())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        // moto serves one request at a time; under the concurrency tests a connection may wait
        // in its queue longer than the SDK's 3.1 s default before it is accepted.
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(std::time::Duration::from_secs(60))
                .build(),
        )
        .load()
        .await
}

pub fn unique_prefix() -> String {
    format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Keeps a test's temporary folder and local server alive as long as the test holds it.
pub struct Keep {
    _dir: Option<tempfile::TempDir>,
    _server: Option<tokio::task::JoinHandle<()>>,
}

/// The app and its state on one backend.
pub struct TestApp {
    pub state: AppState,
    pub router: Router,
    /// An admin API key stored in this app's store.
    pub admin_key: String,
    /// Where the local server listens (embedded only: it serves the signed blob URLs).
    pub base_url: Option<String>,
    /// The data folder (embedded only).
    pub data_dir: Option<std::path::PathBuf>,
    /// The SDK configuration and resources (AWS only), for scanning what is stored.
    pub aws: Option<(SdkConfig, storybook_core::config::AwsResources)>,
    _keep: Keep,
}

impl TestApp {
    pub async fn new(backend: Backend) -> Self {
        Self::with_config(backend, test_config()).await
    }

    pub async fn with_config(backend: Backend, config: Config) -> Self {
        Self::with_clock(backend, config, Clock::system()).await
    }

    /// The app reading the time from `clock` (a manual one moves days without waiting).
    pub async fn with_clock(backend: Backend, config: Config, clock: Clock) -> Self {
        Self::built(backend, config, clock, |_| Providers::offline()).await
    }

    /// The app asking `marketplace` about purchases.
    pub async fn with_marketplace(
        backend: Backend,
        config: Config,
        marketplace: Arc<dyn storybook_core::ports::Marketplace>,
    ) -> Self {
        Self::built(backend, config, Clock::system(), move |state| {
            state.marketplace = marketplace;
            Providers::offline()
        })
        .await
    }

    /// The app whose printer is Lulu as `settings` describe it, over the app's own blobs.
    pub async fn with_printer(
        backend: Backend,
        config: Config,
        settings: storybook_pipeline::print::LuluSettings,
    ) -> Self {
        Self::built(backend, config, Clock::system(), move |state| {
            let printer =
                storybook_pipeline::print::LuluPrinter::new(settings, state.blobs.clone());
            state.app.printer = Arc::new(printer);
            Providers::offline()
        })
        .await
    }

    /// The app whose studio calls `providers`.
    pub async fn with_studio(backend: Backend, config: Config, providers: Providers) -> Self {
        Self::built(backend, config, Clock::system(), |_| providers).await
    }

    /// The app whose studio calls the providers `make` builds over its state (real providers
    /// keep their breakers in the app's own store).
    pub async fn with_studio_over(
        backend: Backend,
        config: Config,
        make: impl FnOnce(&AppState) -> Providers,
    ) -> Self {
        Self::built(backend, config, Clock::system(), |state| make(state)).await
    }

    async fn built(
        backend: Backend,
        config: Config,
        clock: Clock,
        providers: impl FnOnce(&mut AppState) -> Providers,
    ) -> Self {
        capture_logs();
        let mut aws = None;
        let (state, router, base_url, keep) = match backend {
            Backend::Embedded => embedded(config, clock, providers).await,
            Backend::Aws => {
                let sdk = moto_config().await;
                let resources = provision(&sdk, &unique_prefix())
                    .await
                    .expect("provisioning in moto_server");
                let mut state = state_over(&sdk, &resources, config);
                aws = Some((sdk, resources));
                state.clock = clock;
                let providers = providers(&mut state);
                state.studio = Arc::new(ProviderStudio::new(&state, providers));
                let router = app(state.clone(), Family::ALL);
                (
                    state,
                    router,
                    None,
                    Keep {
                        _dir: None,
                        _server: None,
                    },
                )
            }
        };
        let admin = ApiKeySecret::generate(KeyEnvironment::Live);
        storybook_core::bootstrap::store_admin_key(&state, &admin, "tests")
            .await
            .unwrap();
        TestApp {
            state,
            router,
            admin_key: admin.expose().to_owned(),
            base_url,
            data_dir: keep._dir.as_ref().map(|d| d.path().to_owned()),
            aws,
            _keep: keep,
        }
    }

    /// Every blob stored, by key: the bucket listed, or local mode's blob folder walked.
    pub async fn all_blobs(&self) -> Vec<(String, bytes::Bytes)> {
        let mut found = Vec::new();
        if let Some((sdk, resources)) = &self.aws {
            let s3 = storybook_aws::sdk::s3_client(sdk);
            let listed = s3
                .list_objects_v2()
                .bucket(&resources.bucket)
                .send()
                .await
                .unwrap();
            for object in listed.contents() {
                let key = object.key().unwrap().to_owned();
                let body = s3
                    .get_object()
                    .bucket(&resources.bucket)
                    .key(&key)
                    .send()
                    .await
                    .unwrap();
                found.push((key, body.body.collect().await.unwrap().into_bytes()));
            }
        } else {
            let root = self.data_dir.as_ref().unwrap().join("blobs");
            let mut folders = vec![root.clone()];
            while let Some(folder) = folders.pop() {
                let Ok(entries) = std::fs::read_dir(&folder) else {
                    continue;
                };
                for entry in entries {
                    let path = entry.unwrap().path();
                    if path.is_dir() {
                        folders.push(path);
                    } else {
                        let key = path
                            .strip_prefix(&root)
                            .unwrap()
                            .to_string_lossy()
                            .into_owned();
                        found.push((key, bytes::Bytes::from(std::fs::read(&path).unwrap())));
                    }
                }
            }
        }
        found
    }

    /// Every stored record (a table item, a database row) whose text holds `needle`, named by
    /// its table and key.
    pub async fn records_holding(&self, needle: &str) -> Vec<String> {
        let mut found = Vec::new();
        if let Some((sdk, resources)) = &self.aws {
            let dynamodb = aws_sdk_dynamodb::Client::new(sdk);
            let mut start = None;
            loop {
                let page = dynamodb
                    .scan()
                    .table_name(&resources.table)
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .unwrap();
                for item in page.items() {
                    if format!("{item:?}").contains(needle) {
                        found.push(format!("{:?} {:?}", item.get("pk"), item.get("sk")));
                    }
                }
                start = page.last_evaluated_key().cloned();
                if start.is_none() {
                    break;
                }
            }
        } else {
            let path = self.data_dir.as_ref().unwrap().join("storybook.sqlite3");
            let db = rusqlite::Connection::open(path).unwrap();
            let tables: Vec<String> = db
                .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
                .unwrap()
                .query_map([], |row| row.get(0))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            for table in tables {
                let mut rows = db.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
                let columns = rows.column_count();
                let mut cursor = rows.query([]).unwrap();
                while let Some(row) = cursor.next().unwrap() {
                    let text: String = (0..columns)
                        .map(|i| match row.get_ref(i).unwrap() {
                            rusqlite::types::ValueRef::Text(t) => {
                                String::from_utf8_lossy(t).into_owned()
                            }
                            rusqlite::types::ValueRef::Blob(b) => {
                                String::from_utf8_lossy(b).into_owned()
                            }
                            _ => String::new(),
                        })
                        .collect();
                    if text.contains(needle) {
                        found.push(format!("{table}: {}", &text[..text.len().min(80)]));
                    }
                }
            }
        }
        found
    }

    /// A request with a body of `content_type`, as the app sends a form or an upload.
    pub async fn send(
        &self,
        path: &str,
        headers: &[(&str, &str)],
        content_type: &str,
        body: Vec<u8>,
    ) -> Answer {
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(path)
            .header("content-type", content_type);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Body::from(body)).unwrap();
        Answer::from_response(self.router.clone().oneshot(request).await.unwrap()).await
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Answer {
        self.call_from(None, method, path, headers, body).await
    }

    /// A request as if from `ip` (the local server's view of the peer address).
    pub async fn call_from(
        &self,
        ip: Option<&str>,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let mut request = request
            .body(Body::from(body.unwrap_or_default().to_owned()))
            .unwrap();
        if let Some(ip) = ip {
            let address = std::net::SocketAddr::new(ip.parse().unwrap(), 40000);
            request
                .extensions_mut()
                .insert(axum::extract::ConnectInfo(address));
        }
        Answer::from_response(self.router.clone().oneshot(request).await.unwrap()).await
    }

    /// A GET's status, headers and raw body (a picture's bytes, say).
    pub async fn get_bytes(
        &self,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (u16, HeaderMap, bytes::Bytes) {
        let mut request = Request::builder().method(Method::GET).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let (status, headers) = (response.status().as_u16(), response.headers().clone());
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, headers, body)
    }

    /// The stored id of the user with device key `user_key`.
    pub fn user_id(&self, user_key: &str) -> storybook_core::domain::user::UserId {
        self.state.hasher.hash(
            storybook_core::domain::credential::CredentialKind::UserKey,
            user_key,
        )
    }

    /// The stored book of job `job` (book ids are job ids), as the pipeline sees it.
    pub async fn book(&self, job: &str) -> storybook_core::domain::book::Book {
        let id = storybook_core::domain::book::BookId::parse(job).unwrap();
        self.state.store.find_book(&id).await.unwrap().unwrap().book
    }

    /// The user's `DELETE /v1/users/me`: everything we hold about them erased.
    pub async fn erase(&self, user_key: &str) -> Answer {
        self.call(
            Method::DELETE,
            "/v1/users/me",
            &[("x-user-key", user_key)],
            None,
        )
        .await
    }

    pub async fn get(&self, path: &str, user_key: &str) -> Answer {
        self.call(Method::GET, path, &[("x-user-key", user_key)], None)
            .await
    }

    /// The step runner over this app's adapters, with the offline providers.
    pub fn pipeline(&self) -> Arc<storybook_pipeline::pipeline::Pipeline> {
        self.pipeline_with(storybook_pipeline::providers::Providers::offline())
    }

    /// The step runner over this app's adapters, with `providers`.
    pub fn pipeline_with(
        &self,
        providers: storybook_pipeline::providers::Providers,
    ) -> Arc<storybook_pipeline::pipeline::Pipeline> {
        Arc::new(storybook_pipeline::pipeline::Pipeline {
            // Failed steps come back in milliseconds here, in seconds in production.
            first_retry: std::time::Duration::from_millis(20),
            circuit_patience: std::time::Duration::from_secs(5),
            ..storybook_pipeline::pipeline::Pipeline::new(&self.state, providers)
        })
    }

    /// Runs the generation steps in the background until the test ends.
    pub fn start_worker(&self) -> tokio::task::JoinHandle<()> {
        tokio::spawn(storybook_pipeline::pipeline::worker::run_local(
            self.pipeline(),
        ))
    }

    pub async fn post_json(
        &self,
        path: &str,
        user_key: &str,
        body: &serde_json::Value,
        extra: &[(&str, &str)],
    ) -> Answer {
        let mut headers = vec![("x-user-key", user_key)];
        headers.extend_from_slice(extra);
        self.call(Method::POST, path, &headers, Some(&body.to_string()))
            .await
    }

    pub async fn grant(&self, user_key: &str, amount: i64, transaction_id: &str) -> Answer {
        let body =
            serde_json::json!({"amount": amount, "transaction_id": transaction_id}).to_string();
        self.call(
            Method::POST,
            "/v1/credits/add",
            &[("x-user-key", user_key), ("x-admin-key", &self.admin_key)],
            Some(&body),
        )
        .await
    }
}

/// Local mode on a fresh folder, its server listening on a free port.
async fn embedded(
    config: Config,
    clock: Clock,
    providers: impl FnOnce(&mut AppState) -> Providers,
) -> (AppState, Router, Option<String>, Keep) {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let local = LocalSettings {
        port: 0,
        data_dir: dir.path().to_owned(),
        public_base_url: base_url.clone(),
    };
    let mut mode = LocalMode::open(config, &local, &Default::default()).unwrap();
    mode.state.clock = clock;
    let providers = providers(&mut mode.state);
    mode.state.studio = Arc::new(ProviderStudio::new(&mode.state, providers));
    let router = mode.router();
    let served = router.clone();
    let server = tokio::spawn(async move {
        let _ = storybook_local::serve(listener, served).await;
    });
    (
        mode.state,
        router,
        Some(base_url),
        Keep {
            _dir: Some(dir),
            _server: Some(server),
        },
    )
}

/// The app state over the AWS adapters for `resources`, with a fresh pepper.
pub fn state_over(
    sdk: &SdkConfig,
    resources: &storybook_core::config::AwsResources,
    config: Config,
) -> AppState {
    let (store, blobs, queue) = adapters(sdk, resources);
    AppState::new(
        Arc::new(store),
        Arc::new(blobs),
        Arc::new(queue),
        CredentialHasher::new(Pepper::generate()),
        config,
    )
}

/// The user's whole ledger, oldest first.
pub async fn whole_ledger(
    store: &dyn storybook_core::ports::Store,
    user: &storybook_core::domain::user::UserId,
) -> Vec<storybook_core::domain::credits::LedgerEntry> {
    storybook_core::ports::store::whole_ledger(store, user)
        .await
        .unwrap()
}

/// A response with its body parsed as JSON (or kept as a string when it is not JSON).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub async fn from_response(response: axum::response::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let raw = response.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&raw)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&raw).into()));
        Answer {
            status,
            headers,
            body,
        }
    }

    /// The error envelope's code, checking the envelope's shape on the way.
    pub fn code(&self) -> &str {
        let error = &self.body["error"];
        assert!(
            self.body.get("detail").is_some(),
            "no detail in {}",
            self.body
        );
        assert!(
            self.body
                .get("request_id")
                .and_then(Value::as_str)
                .is_some(),
            "no request_id in {}",
            self.body
        );
        if self.status != 422 {
            assert_eq!(
                error["message"], self.body["detail"],
                "message and detail differ in {}",
                self.body
            );
        }
        error["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error.code in {}", self.body))
    }
}

/// A new, well-formed device key.
pub fn new_user_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// Runs the same async test body against each backend.
#[macro_export]
macro_rules! on_both_backends {
    ($(#[$meta:meta])* $name:ident, $body:path) => {
        mod $name {
            use super::*;
            $(#[$meta])*
            async fn embedded() {
                $body($crate::harness::Backend::Embedded).await
            }
            $(#[$meta])*
            async fn aws() {
                $body($crate::harness::Backend::Aws).await
            }
        }
    };
}

/// Every log line of this test run, as the JSON subscriber wrote it (masking included).
pub static LOGS: std::sync::Mutex<Vec<u8>> = std::sync::Mutex::new(Vec::new());

/// Writes each log line to [`LOGS`] and, when `TEST_LOG` names a file, appends it there too
/// (`tests/run.sh` scans that file for credentials).
#[derive(Clone, Copy)]
struct TestLogWriter;

impl std::io::Write for TestLogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGS.lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(buf);
        if let Ok(path) = std::env::var("TEST_LOG") {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            file.write_all(buf)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the product's JSON subscriber once for the whole test binary.
pub fn capture_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| storybook_core::telemetry::init_with(|| TestLogWriter));
}

/// Every Rust source under the repository's folders `dirs`, whole.
pub fn rust_sources(dirs: &[&str]) -> Vec<(std::path::PathBuf, String)> {
    fn walk(dir: &std::path::Path, found: &mut Vec<(std::path::PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                found.push((path, text));
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut found = Vec::new();
    for dir in dirs {
        walk(&root.join(dir), &mut found);
    }
    found
}

/// The non-test Rust sources of `shared/` and `functions/`: each file up to its first
/// `#[cfg(test)]` (the tests sit at the end of a file).
pub fn non_test_sources() -> Vec<(std::path::PathBuf, String)> {
    rust_sources(&["shared", "functions"])
        .into_iter()
        .map(|(path, text)| {
            let code = text.split("#[cfg(test)]").next().unwrap().to_owned();
            (path, code)
        })
        .collect()
}

/// A book as a parent asks for it, for every test that needs one: the app's JSON body
/// ([`BookAsk::json`]) or the domain's request ([`BookAsk::request`]), of a dinosaur who is
/// afraid of the dark unless told otherwise.
#[derive(Debug, Clone)]
pub struct BookAsk {
    topic: String,
    language: storybook_core::domain::book::Language,
    pages: u8,
}

impl BookAsk {
    /// A Korean book of `pages` pages, as the app asks by default.
    pub fn korean(pages: u8) -> Self {
        BookAsk {
            topic: "어둠을 무서워하는 공룡".into(),
            language: storybook_core::domain::book::Language::Korean,
            pages,
        }
    }

    /// An English book of `pages` pages.
    pub fn english(pages: u8) -> Self {
        BookAsk {
            topic: "a dinosaur who is afraid of the dark".into(),
            language: storybook_core::domain::book::Language::English,
            pages,
        }
    }

    /// The body of `POST /v1/books`.
    pub fn json(&self) -> Value {
        serde_json::json!({
            "topic": self.topic,
            "target_age": "5-7",
            "style": "watercolor",
            "language": self.language.as_str(),
            "page_count": self.pages,
        })
    }

    /// The domain's request, as the pipeline and the providers take it (narrated, no characters).
    pub fn request(&self) -> storybook_core::domain::book::BookRequest {
        use storybook_core::domain::book::{BookRequest, PageCount, Style, TargetAge, Topic};
        BookRequest {
            topic: Topic::parse(&self.topic).unwrap(),
            target_age: TargetAge::FiveToSeven,
            style: Style::Watercolor,
            language: self.language,
            page_count: PageCount::parse(i64::from(self.pages)).unwrap(),
            protagonist: None,
            character_appearance: None,
            forbidden_elements: vec![],
            theme: None,
            narration: true,
            characters: vec![],
            hero_character: None,
            series: None,
            from_picture: false,
        }
    }
}
