//! A shared book's page in a real browser: Debian's Chromium, headless, opens the link the way a
//! grandparent's phone and a desktop would (360×740 and 1280×800). Its network log shows that
//! every picture on the page loaded and that the page asked nothing of any other origin; the
//! screenshots are kept as test artefacts (`$TEST_ARTEFACTS`, else the system's temp folder).

use crate::harness::{Backend, TestApp, new_user_key};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn artefacts() -> PathBuf {
    let dir = std::env::var_os("TEST_ARTEFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("ai-story-book-artefacts"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// What the page's own requests came to: each URL it asked for, with the status line answered.
struct Visit {
    requested: Vec<(String, Option<String>)>,
}

/// Opens `url` in headless Chromium at `width`×`height`, saving a screenshot to `shot`.
async fn visit(url: &str, origin: &str, width: u32, height: u32, shot: &Path) -> Visit {
    let work = tempfile::tempdir().unwrap();
    let netlog = work.path().join("netlog.json");
    let mut command = tokio::process::Command::new("chromium");
    command
        .arg("--headless")
        .arg("--disable-gpu")
        .arg("--no-first-run")
        .arg("--disable-background-networking")
        .arg("--disable-component-update")
        .arg("--disable-sync")
        .arg("--hide-scrollbars")
        .arg(format!(
            "--user-data-dir={}",
            work.path().join("profile").display()
        ))
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("--log-net-log={}", netlog.display()))
        .arg("--net-log-capture-mode=Default")
        // Nothing leaves the machine, whatever the browser tries.
        .arg("--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
        .arg(url)
        .kill_on_drop(true);
    // As root (a CI container) Chromium runs only without its sandbox.
    if runs_as_root() {
        command.arg("--no-sandbox");
    }
    let output = match tokio::time::timeout(Duration::from_secs(120), command.output()).await {
        Ok(Ok(output)) => output,
        Ok(Err(e)) => {
            panic!("Debian's chromium is needed for this test (bash tests/run.sh installs it): {e}")
        }
        Err(_) => panic!("chromium did not finish within two minutes"),
    };
    assert!(
        output.status.success() && shot.exists(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let log: Value = serde_json::from_slice(&std::fs::read(&netlog).unwrap()).unwrap();
    let types: HashMap<u64, String> = log["constants"]["logEventTypes"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(name, id)| (id.as_u64().unwrap(), name.clone()))
        .collect();
    let mut urls: Vec<(u64, String)> = Vec::new();
    let mut statuses: HashMap<u64, String> = HashMap::new();
    for event in log["events"].as_array().unwrap() {
        let source = event["source"]["id"].as_u64().unwrap_or_default();
        let params = &event["params"];
        match types
            .get(&event["type"].as_u64().unwrap_or_default())
            .map(String::as_str)
        {
            // The page's own requests name it as their initiator; the browser's housekeeping
            // (updates, time checks) names none and is no request of the page's.
            Some("URL_REQUEST_START_JOB") if params["initiator"] == origin => {
                urls.push((
                    source,
                    params["url"].as_str().unwrap_or_default().to_owned(),
                ));
            }
            Some("HTTP_TRANSACTION_READ_RESPONSE_HEADERS") => {
                if let Some(line) = params["headers"][0].as_str() {
                    statuses.insert(source, line.to_owned());
                }
            }
            _ => {}
        }
    }
    Visit {
        requested: urls
            .into_iter()
            .map(|(source, url)| (url, statuses.get(&source).cloned()))
            .collect(),
    }
}

/// Whether this process runs as root (Chromium's sandbox refuses it).
fn runs_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|status| {
            status
                .lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_book_renders_in_a_real_browser_on_a_phone_and_a_desktop() {
    let app = TestApp::new(Backend::Embedded).await;
    let origin = app.base_url.clone().expect("local mode listens");
    let user = new_user_key();
    let book = crate::books::finished_book(&app, &user).await;
    let made = app
        .post_json(&format!("/v1/books/{book}/share"), &user, &json!({}), &[])
        .await;
    assert_eq!(made.status, 200, "{}", made.body);
    let url = made.body["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&origin), "{url}");
    let token = made.body["token"].as_str().unwrap();
    let stored = app.book(&book).await;
    let mut pictures: Vec<String> = stored
        .story_pages()
        .map(|p| format!("{origin}/share/{token}/img/page/{}", p.number))
        .collect();
    pictures.push(format!("{origin}/share/{token}/img/cover"));

    for (name, width, height) in [("phone", 360, 740), ("desktop", 1280, 800)] {
        let shot = artefacts().join(format!("shared-book-{name}-{width}x{height}.png"));
        let _ = std::fs::remove_file(&shot);
        let visit = visit(&url, &origin, width, height, &shot).await;
        // The browser's own favicon.ico aside, only the book's pictures, all from our origin.
        for (requested, _) in &visit.requested {
            assert!(
                requested.starts_with(&format!("{origin}/")),
                "{name}: the page asked another origin for {requested}"
            );
        }
        for picture in &pictures {
            let answered = visit
                .requested
                .iter()
                .find(|(url, _)| url == picture)
                .and_then(|(_, status)| status.as_deref());
            assert_eq!(
                answered,
                Some("HTTP/1.1 200 OK"),
                "{name}: {picture} did not load; the page asked for {:?}",
                visit.requested
            );
        }
        let png = image::open(&shot).unwrap();
        assert_eq!((png.width(), png.height()), (width, height), "{name}");
        eprintln!("{name} screenshot: {}", shot.display());
    }
}
