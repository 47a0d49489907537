//! The SSRF-safe fetcher: a table of hostile URLs, every one refused; redirects re-checked; the
//! size cap (declared and streamed) and the content type.

use super::png;
use futures::StreamExt;
use std::time::Duration;
use storybook_pipeline::providers::fetch::{Expected, FetchError, FetchPolicy, SafeFetcher};
use tokio::io::AsyncWriteExt;
use wiremock::matchers::path;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// The production rules, with an allow-list that names hosts an attacker would love.
fn strict() -> SafeFetcher {
    SafeFetcher::new(FetchPolicy {
        allowed_hosts: vec![
            "cdn.example.com".into(),
            "*.example.org".into(),
            "localhost".into(),
            "127.0.0.1".into(),
            "169.254.169.254".into(),
        ],
        timeout: Duration::from_secs(2),
        ..FetchPolicy::default()
    })
}

const HOSTILE: &[&str] = &[
    "http://127.0.0.1/a.png",
    "https://127.0.0.1/a.png",
    "https://2130706433/a.png",
    "https://0x7f000001/a.png",
    "https://017700000001/a.png",
    "https://0177.0.0.1/a.png",
    "https://0x7f.0.0.1/a.png",
    "https://127.1/a.png",
    "https://0/a.png",
    "https://[::1]/a.png",
    "https://[::ffff:127.0.0.1]/a.png",
    "https://[0:0:0:0:0:ffff:7f00:1]/a.png",
    "https://[::127.0.0.1]/a.png",
    "https://169.254.169.254/latest/meta-data/iam/",
    "https://[::ffff:169.254.169.254]/latest/",
    "https://[fd00:ec2::254]/latest/meta-data/",
    "https://[64:ff9b::a9fe:a9fe]/latest/",
    "https://10.0.0.1/a.png",
    "https://172.16.0.1/a.png",
    "https://192.168.1.1/a.png",
    "https://100.64.0.1/a.png",
    "https://0.0.0.0/a.png",
    "https://[::]/a.png",
    "https://224.0.0.1/a.png",
    "https://[ff02::1]/a.png",
    "https://[fe80::1]/a.png",
    "https://192.0.2.1/a.png",
    "https://198.18.0.1/a.png",
    "https://255.255.255.255/a.png",
    "https://[2001:db8::1]/a.png",
    "https://localhost/a.png",
    "https://localhost./a.png",
    "file:///etc/passwd",
    "gopher://cdn.example.com/_a",
    "data:image/png;base64,iVBORw0KGgo=",
    "ftp://cdn.example.com/a.png",
    "javascript:alert(1)",
    "https://cdn.example.com@127.0.0.1/a.png",
    "https://user:secret@cdn.example.com/a.png",
    "https://evil.com/a.png",
    "https://cdn.example.com.evil.com/a.png",
    "https://evil-example.org/a.png",
    "https://cdn.example.com:8443/a.png",
    "http://cdn.example.com/a.png",
    "not a url",
];

#[tokio::test]
async fn every_hostile_url_is_refused() {
    assert!(HOSTILE.len() >= 40);
    let fetcher = strict();
    for url in HOSTILE {
        match fetcher.fetch(url, Expected::Image).await {
            Err(FetchError::Refused(_)) => {}
            Err(other) => panic!("{url} failed as {other:?}, not refused"),
            Ok(_) => panic!("{url} was fetched"),
        }
    }
}

/// Names this machine's hosts file maps to loopback (other than `localhost`, which is refused by
/// name): the resolver refuses them after looking them up, though they are allow-listed.
#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_after_resolution() {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let names: Vec<String> = hosts
        .lines()
        .filter_map(|line| line.split('#').next())
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let address: std::net::IpAddr = fields.next()?.parse().ok()?;
            address
                .is_loopback()
                .then(|| fields.map(str::to_owned).collect::<Vec<_>>())
        })
        .flatten()
        .filter(|name| {
            !name.contains("localhost") && name.contains(|c: char| c.is_ascii_alphabetic())
        })
        .collect();
    let fetcher = SafeFetcher::new(FetchPolicy {
        allowed_hosts: names.clone(),
        timeout: Duration::from_secs(2),
        ..FetchPolicy::default()
    });
    for name in names {
        let error = fetcher
            .fetch(&format!("https://{name}/a.png"), Expected::Image)
            .await
            .err()
            .unwrap();
        assert!(
            matches!(&error, FetchError::Refused(why) if why.contains("not public")),
            "{name}: {error:?}"
        );
    }
}

/// The rules with the test server's loopback address allowed (plain http, any port), and
/// nothing else private.
fn on_loopback(max_bytes: u64) -> SafeFetcher {
    SafeFetcher::new(FetchPolicy {
        allowed_hosts: vec![
            "127.0.0.1".into(),
            "elsewhere.example".into(),
            "10.0.0.1".into(),
            "169.254.169.254".into(),
        ],
        allow_loopback_http: true,
        max_bytes,
        timeout: Duration::from_secs(2),
        max_redirects: 3,
    })
}

async fn redirect(server: &MockServer, from: &str, to: &str) {
    Mock::given(path(from))
        .respond_with(ResponseTemplate::new(302).insert_header("location", to))
        .mount(server)
        .await;
}

async fn body_of(fetched: storybook_pipeline::providers::fetch::Fetched) -> Vec<u8> {
    let mut body = fetched.body;
    let mut all = Vec::new();
    while let Some(chunk) = body.next().await {
        all.extend_from_slice(&chunk.unwrap());
    }
    all
}

#[tokio::test]
async fn redirects_are_checked_again_and_bounded() {
    let server = MockServer::start().await;
    Mock::given(path("/image.png"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(png().to_vec(), "image/png"))
        .mount(&server)
        .await;
    redirect(
        &server,
        "/to-metadata",
        "http://169.254.169.254/latest/meta-data/",
    )
    .await;
    redirect(&server, "/to-private", "http://10.0.0.1/a.png").await;
    redirect(
        &server,
        "/to-elsewhere",
        "https://not-allowed.example/a.png",
    )
    .await;
    redirect(&server, "/to-file", "file:///etc/passwd").await;
    for hop in 1..=4 {
        let next = if hop == 4 {
            "/image.png".to_owned()
        } else {
            format!("/hop{}", hop + 1)
        };
        redirect(&server, &format!("/hop{hop}"), &next).await;
    }
    let fetcher = on_loopback(1 << 20);
    for hostile in [
        "/to-metadata",
        "/to-private",
        "/to-elsewhere",
        "/to-file",
        "/hop1",
    ] {
        let error = fetcher
            .fetch(&format!("{}{hostile}", server.uri()), Expected::Image)
            .await
            .err()
            .unwrap_or_else(|| panic!("{hostile} was followed"));
        assert!(
            matches!(error, FetchError::Refused(_)),
            "{hostile}: {error:?}"
        );
    }
    // Three hops are fine.
    let fetched = fetcher
        .fetch(&format!("{}/hop2", server.uri()), Expected::Image)
        .await
        .unwrap();
    assert_eq!(fetched.extension, "png");
    assert_eq!(body_of(fetched).await, png().to_vec());
}

#[tokio::test]
async fn a_declared_oversized_body_is_refused_before_reading() {
    let server = MockServer::start().await;
    let mut big = png().to_vec();
    big.resize(64 * 1024, 0);
    Mock::given(path("/big.png"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(big, "image/png"))
        .mount(&server)
        .await;
    let error = on_loopback(16 * 1024)
        .fetch(&format!("{}/big.png", server.uri()), Expected::Image)
        .await
        .err()
        .unwrap();
    assert_eq!(error, FetchError::TooLarge(16 * 1024));
}

/// A server that answers one chunked PNG body of `size` bytes with no length declared.
async fn chunked_server(size: usize) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = [0u8; 2048];
                let _ = tokio::io::AsyncReadExt::read(&mut socket, &mut request).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let mut body = png().to_vec();
                body.resize(size, 7);
                for chunk in body.chunks(8192) {
                    let framed =
                        [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
                    if socket.write_all(&framed).await.is_err() {
                        return;
                    }
                }
                let _ = socket.write_all(b"0\r\n\r\n").await;
            });
        }
    });
    format!("http://{address}/stream.png")
}

#[tokio::test]
async fn an_undeclared_oversized_body_is_cut_off_while_streaming() {
    let url = chunked_server(200 * 1024).await;
    let fetched = on_loopback(64 * 1024)
        .fetch(&url, Expected::Image)
        .await
        .unwrap();
    let flag = fetched.too_large_flag();
    let mut body = fetched.body;
    let mut failed = false;
    let mut seen = 0;
    while let Some(chunk) = body.next().await {
        match chunk {
            Ok(bytes) => seen += bytes.len(),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed && flag.is_set(), "the stream stops past the cap");
    assert!(seen <= 64 * 1024, "{seen} bytes passed the cap");
    // Under the cap, the same server's body streams whole.
    let small = chunked_server(20 * 1024).await;
    let fetched = on_loopback(64 * 1024)
        .fetch(&small, Expected::Image)
        .await
        .unwrap();
    assert_eq!(body_of(fetched).await.len(), 20 * 1024);
}

#[tokio::test]
async fn wrong_types_are_refused() {
    let server = MockServer::start().await;
    Mock::given(path("/page.html"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(b"<html></html>".to_vec(), "text/html"),
        )
        .mount(&server)
        .await;
    Mock::given(path("/liar.png"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(b"GIF89a not what it says it is".to_vec(), "image/png"),
        )
        .mount(&server)
        .await;
    Mock::given(path("/gone.png"))
        .respond_with(ResponseTemplate::new(404))
        .mount(&server)
        .await;
    let fetcher = on_loopback(1 << 20);
    for (route, wrong) in [
        ("/page.html", true),
        ("/liar.png", true),
        ("/gone.png", false),
    ] {
        let error = fetcher
            .fetch(&format!("{}{route}", server.uri()), Expected::Image)
            .await
            .err()
            .unwrap();
        match wrong {
            true => assert!(
                matches!(error, FetchError::WrongType(_)),
                "{route}: {error:?}"
            ),
            false => assert!(matches!(error, FetchError::Failed(_)), "{route}: {error:?}"),
        }
    }
}

/// The same table through the step that stores a provider's picture, on both adapters: every URL
/// is refused before anything is stored.
async fn hostile_urls_never_reach_blob_storage(backend: crate::harness::Backend) {
    use storybook_pipeline::providers::Artwork;
    let app = crate::harness::TestApp::new(backend).await;
    let fetcher = strict();
    // Streamed (an ordinary book's picture) or held to lose its metadata (one drawn from a
    // child's picture): refused either way.
    for (i, (url, from_picture)) in HOSTILE
        .iter()
        .flat_map(|url| [(url, false), (url, true)])
        .enumerate()
    {
        let key = |extension: &str| {
            storybook_core::ports::BlobKey::parse(&format!("tests/hostile/{i}.{extension}"))
                .unwrap()
        };
        let stored = storybook_pipeline::pipeline::artwork::store(
            &*app.state.blobs,
            &fetcher,
            Artwork::Url((*url).to_owned()),
            from_picture,
            key,
        )
        .await;
        assert!(stored.is_err(), "{url} was stored");
        for extension in ["png", "jpg", "webp"] {
            assert!(
                app.state
                    .blobs
                    .get(&key(extension))
                    .await
                    .unwrap()
                    .is_none(),
                "{url}"
            );
        }
    }
}
crate::on_both_backends!(
    #[tokio::test]
    hostile_urls_never_reach_blob_storage,
    hostile_urls_never_reach_blob_storage
);
