//! Cold start of our Lambda functions beside a hello-world `lambda_http` function, measured side by
//! side in one run: each binary is started as Lambda starts it, against a Lambda Runtime API
//! served here on loopback, and timed from spawn to its first poll for work (init) and to its
//! answer to a first API Gateway event (a cold request).
//!
//! `cargo bench -p storybook-tests --bench startup`: builds each function's package on its own
//! with the release profile (so each links only its own dependencies' features), then measures.
//! Each binary is also zipped as Lambda gets it (one file, `bootstrap`, deflated by the `zip`
//! command as `sam build` does), and each function is held to the goal: an init at most
//! [`INIT_GOAL`] times hello world's and a zipped package of at most [`ZIP_GOAL_BYTES`].

use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What the fake Runtime API saw, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    FirstPoll,
    Answer,
}

#[derive(Clone)]
struct Runtime {
    seen: mpsc::UnboundedSender<Seen>,
    event: String,
    polls: std::sync::Arc<std::sync::atomic::AtomicU32>,
}

/// `GET /runtime/invocation/next`: the first poll gets the event; later polls wait forever
/// (the process is stopped first).
async fn next(State(runtime): State<Runtime>) -> axum::response::Response {
    let poll = runtime
        .polls
        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if poll > 0 {
        std::future::pending::<()>().await;
    }
    let _ = runtime.seen.send(Seen::FirstPoll);
    let mut headers = HeaderMap::new();
    headers.insert("lambda-runtime-aws-request-id", "bench-1".parse().unwrap());
    let deadline = (std::time::SystemTime::now() + Duration::from_secs(60))
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    headers.insert(
        "lambda-runtime-deadline-ms",
        deadline.to_string().parse().unwrap(),
    );
    headers.insert(
        "lambda-runtime-invoked-function-arn",
        "arn:aws:lambda:us-east-1:123456789012:function:bench"
            .parse()
            .unwrap(),
    );
    headers.insert("content-type", "application/json".parse().unwrap());
    (headers, runtime.event.clone()).into_response()
}

async fn answer(State(runtime): State<Runtime>) -> &'static str {
    let _ = runtime.seen.send(Seen::Answer);
    ""
}

/// One cold start of `binary`: (init, first answer).
async fn cold_start(binary: &str, event: &str) -> (Duration, Duration) {
    let (seen, mut events) = mpsc::unbounded_channel();
    let runtime = Runtime {
        seen,
        event: event.to_owned(),
        polls: Default::default(),
    };
    let app = Router::new()
        .route("/2018-06-01/runtime/invocation/next", get(next))
        .route("/2018-06-01/runtime/invocation/{id}/response", post(answer))
        .route("/2018-06-01/runtime/invocation/{id}/error", post(answer))
        .route("/2018-06-01/runtime/init/error", post(answer))
        .with_state(runtime);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let started = Instant::now();
    let mut child = Command::new(binary)
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", address.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "bench")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        // What the template gives our functions; nothing here is reached before the first
        // request needs it, and the health route needs none of it.
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "bench")
        .env("AWS_SECRET_ACCESS_KEY", "bench")
        .env("TABLE_NAME", "bench")
        .env("BUCKET_NAME", "bench")
        .env("STEP_QUEUE_URL", "http://127.0.0.1:9/queue")
        .env("STEP_DLQ_URL", "http://127.0.0.1:9/dlq")
        .env("KEY_PEPPER", "0123456789abcdef0123456789abcdef")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the function binary starts");
    let mut init = None;
    let mut first = None;
    while let Ok(Some(seen)) = tokio::time::timeout(Duration::from_secs(30), events.recv()).await {
        match seen {
            Seen::FirstPoll => init = Some(started.elapsed()),
            Seen::Answer => {
                first = Some(started.elapsed());
                break;
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    server.abort();
    (
        init.expect("the function polled for work"),
        first.expect("the function answered"),
    )
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Builds `package` alone with the release profile and answers its binary's path.
fn release_binary(package: &str) -> String {
    let workspace = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "-p", package])
        .current_dir(workspace)
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building {package} failed");
    let target =
        std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| format!("{workspace}/target"));
    format!("{target}/release/{package}")
}

/// An init at most this many times hello world's.
const INIT_GOAL: f64 = 1.5;
/// A zipped deployment package of at most 8 MB.
const ZIP_GOAL_BYTES: u64 = 8_000_000;

/// The size of the deployment package Lambda would get for `binary`: a zip holding it alone as
/// `bootstrap`, deflated at zip's default level (that of `sam build`'s zipfile). None without the
/// `zip` command.
fn zipped_size(name: &str, binary: &str) -> Option<u64> {
    let dir = std::env::temp_dir().join(format!("startup-bench-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).ok()?;
    let size = (|| {
        std::fs::copy(binary, dir.join("bootstrap")).ok()?;
        let zipped = Command::new("zip")
            .args(["-q", "-X", "package.zip", "bootstrap"])
            .current_dir(&dir)
            .status()
            .ok()?;
        zipped.success().then_some(())?;
        std::fs::metadata(dir.join("package.zip"))
            .ok()
            .map(|m| m.len())
    })();
    let _ = std::fs::remove_dir_all(&dir);
    size
}

/// Whether `binary` is a position-independent executable (ELF type ET_DYN) rather than one
/// linked at a fixed address (ET_EXEC, `-no-pie`).
fn is_pie(binary: &str) -> Option<bool> {
    use std::io::Read;
    let mut header = [0u8; 18];
    std::fs::File::open(binary)
        .ok()?
        .read_exact(&mut header)
        .ok()?;
    (header[..4] == *b"\x7fELF").then_some(())?;
    let kind = if header[5] == 2 {
        u16::from_be_bytes([header[16], header[17]])
    } else {
        u16::from_le_bytes([header[16], header[17]])
    };
    Some(kind == 3)
}

/// A function's deployment package as measured here.
struct Package {
    binary_bytes: u64,
    zipped_bytes: Option<u64>,
    link: &'static str,
}

impl Package {
    fn of(name: &str, binary: &str) -> Self {
        Package {
            binary_bytes: std::fs::metadata(binary).map(|m| m.len()).unwrap_or(0),
            zipped_bytes: zipped_size(name, binary),
            link: match is_pie(binary) {
                Some(true) => "PIE",
                Some(false) => "non-PIE",
                None => "?",
            },
        }
    }

    /// How the package misses the size goal, if it does.
    fn size_miss(&self) -> Option<String> {
        match self.zipped_bytes {
            Some(bytes) if bytes > ZIP_GOAL_BYTES => Some(format!(
                "zipped {:.1} MB > {:.1} MB",
                bytes as f64 / 1e6,
                ZIP_GOAL_BYTES as f64 / 1e6
            )),
            Some(_) => None,
            None => Some("zipped size unknown (no zip command)".into()),
        }
    }

    fn zipped_mb(&self) -> String {
        self.zipped_bytes
            .map_or("?".to_owned(), |bytes| format!("{:.1}", bytes as f64 / 1e6))
    }
}

fn main() {
    const RUNS: usize = 30;
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../../tests/fixtures/apigw-v2-request.json")).unwrap();
    let mut event = fixture;
    event["rawPath"] = "/health".into();
    event["requestContext"]["http"]["path"] = "/health".into();
    event["requestContext"]["http"]["method"] = "GET".into();
    let event = event.to_string();
    let names = [
        "hello-lambda",
        "api-health",
        "api-credits",
        "api-books",
        "api-library",
        "api-users",
        "api-admin",
    ];
    // `cargo bench --bench startup -- api-health` measures only the functions named.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let binaries: Vec<(&str, String)> = names
        .iter()
        .filter(|name| {
            only.is_empty() || **name == "hello-lambda" || only.iter().any(|o| o == *name)
        })
        .map(|name| (*name, release_binary(name)))
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // Interleaved, so that the machine's noise falls on every binary alike.
    let mut samples: Vec<(Vec<Duration>, Vec<Duration>)> = vec![Default::default(); binaries.len()];
    runtime.block_on(async {
        for _ in 0..RUNS {
            for (i, (_, binary)) in binaries.iter().enumerate() {
                let (init, first) = cold_start(binary, &event).await;
                samples[i].0.push(init);
                samples[i].1.push(first);
            }
        }
    });
    println!(
        "cold start, median of {RUNS} runs (init: spawn to first poll; first answer: spawn to the answer of a first GET /health)"
    );
    println!(
        "goal: init at most {INIT_GOAL:.2} x hello world's, zipped package (bootstrap) at most {:.1} MB",
        ZIP_GOAL_BYTES as f64 / 1e6
    );
    println!(
        "  {:<24} {:>8} {:>8}   {:>10} {:>8}   {:>9} {:>9}  {:<7}  goal",
        "function", "init ms", "x hello", "answer ms", "x hello", "binary MB", "zipped MB", "link"
    );
    let (hello_init, hello_first) = (median(samples[0].0.clone()), median(samples[0].1.clone()));
    let mut missed = Vec::new();
    for ((name, binary), (inits, firsts)) in binaries.iter().zip(samples) {
        let baseline = *name == "hello-lambda";
        let shown = if baseline {
            "hello-world lambda_http"
        } else {
            name
        };
        let (init, first) = (median(inits), median(firsts));
        let package = Package::of(name, binary);
        let ratio = millis(init) / millis(hello_init);
        let mut misses = Vec::new();
        if ratio > INIT_GOAL {
            misses.push(format!("init {ratio:.2} x > {INIT_GOAL:.2} x"));
        }
        misses.extend(package.size_miss());
        let verdict = if baseline {
            "(baseline)".to_owned()
        } else if misses.is_empty() {
            "met".to_owned()
        } else {
            missed.push(*name);
            format!("MISSED: {}", misses.join(", "))
        };
        println!(
            "  {shown:<24} {:>8.2} {:>6.2} x   {:>10.2} {:>6.2} x   {:>9.1} {:>9}  {:<7}  {verdict}",
            millis(init),
            ratio,
            millis(first),
            millis(first) / millis(hello_first),
            package.binary_bytes as f64 / 1e6,
            package.zipped_mb(),
            package.link,
        );
    }
    // The other deployed functions: not started here (no `GET /health` of theirs to answer; the
    // worker and the scheduled ones take other events), but packaged and held to the size goal.
    println!("packages of the other functions (not started)");
    for name in [
        "api-studio",
        "step-worker",
        "book-sweeper",
        "subscription-reconciler",
        "budget-guard",
        "deploy-check",
    ] {
        if !only.is_empty() && !only.iter().any(|o| o == name) {
            continue;
        }
        let package = Package::of(name, &release_binary(name));
        let verdict = match package.size_miss() {
            None => "met".to_owned(),
            Some(miss) => {
                missed.push(name);
                format!("MISSED: {miss}")
            }
        };
        println!(
            "  {name:<24} {:>57.1} {:>9}  {:<7}  {verdict}",
            package.binary_bytes as f64 / 1e6,
            package.zipped_mb(),
            package.link,
        );
    }
    if missed.is_empty() {
        println!("every function meets the goal");
    } else {
        println!("missing the goal: {}", missed.join(", "));
    }
}
