//! The local server against clients that hold connections: trickled headers, idle keep-alive
//! connections and slow bodies are cut off, and connections are capped. Raw TCP on loopback,
//! limits of milliseconds.

use crate::harness::{new_user_key, test_config};
use std::time::Duration;
use storybook_core::config::LocalSettings;
use storybook_local::{ConnectionLimits, LocalMode, serve_with};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Local mode served with `limits`; answers its address (and keeps its folder and task).
async fn server(
    limits: ConnectionLimits,
) -> (
    std::net::SocketAddr,
    tempfile::TempDir,
    tokio::task::JoinHandle<()>,
) {
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let local = LocalSettings {
        port: 0,
        data_dir: dir.path().to_owned(),
        public_base_url: format!("http://{address}"),
    };
    let mode = LocalMode::open(test_config(), &local, &Default::default()).unwrap();
    let router = mode.router();
    let task = tokio::spawn(async move {
        let _ = serve_with(listener, router, limits, std::future::pending()).await;
    });
    (address, dir, task)
}

/// Reads until the server closes the connection (or `within` passes): what it sent.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut seen = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&seen).into_owned()),
            Ok(Ok(n)) => seen.extend_from_slice(&buffer[..n]),
        }
    }
}

const QUICK: ConnectionLimits = ConnectionLimits {
    headers: Duration::from_millis(300),
    request: Duration::from_millis(400),
    max_connections: 64,
};

#[tokio::test]
async fn trickled_headers_are_cut_off() {
    let (address, _dir, task) = server(QUICK).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: local\r\n")
        .await
        .unwrap();
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = stream.write_all(b"X-Trickle: 1\r\n").await;
    }
    let sent = read_until_closed(&mut stream, Duration::from_secs(3)).await;
    assert!(
        sent.is_some(),
        "a connection trickling its headers stays open"
    );
    assert!(!sent.unwrap().contains("200 OK"));
    task.abort();
}

#[tokio::test]
async fn an_idle_connection_is_closed() {
    let (address, _dir, task) = server(QUICK).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: local\r\n\r\n")
        .await
        .unwrap();
    // The answer comes, then the kept-alive connection idles until the server closes it.
    let sent = read_until_closed(&mut stream, Duration::from_secs(3)).await;
    let sent = sent.expect("an idle keep-alive connection stays open");
    assert!(sent.starts_with("HTTP/1.1 200"), "{sent}");
    task.abort();
}

#[tokio::test]
async fn a_slow_body_is_answered_408_in_the_envelope() {
    let (address, _dir, task) = server(QUICK).await;
    let mut stream = TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /v1/books HTTP/1.1\r\nHost: local\r\nContent-Type: application/json\r\n\
         Content-Length: 200\r\nX-User-Key: {}\r\nConnection: close\r\n\r\n{{\"topic\"",
        new_user_key()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let sent = read_until_closed(&mut stream, Duration::from_secs(3))
        .await
        .expect("a slow body holds the connection");
    assert!(sent.starts_with("HTTP/1.1 408"), "{sent}");
    assert!(sent.contains(r#""code":"REQUEST_TIMEOUT""#), "{sent}");
    task.abort();
}

#[tokio::test]
async fn connections_past_the_cap_wait() {
    let (address, _dir, task) = server(ConnectionLimits {
        headers: Duration::from_secs(10),
        request: Duration::from_secs(10),
        max_connections: 2,
    })
    .await;
    let first = TcpStream::connect(address).await.unwrap();
    let _second = TcpStream::connect(address).await.unwrap();
    // Both slots are held by connections that send nothing: a third is not served...
    let mut third = TcpStream::connect(address).await.unwrap();
    third
        .write_all(b"GET /health HTTP/1.1\r\nHost: local\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = [0u8; 64];
    assert!(
        tokio::time::timeout(Duration::from_millis(300), third.read(&mut buffer))
            .await
            .is_err(),
        "a connection past the cap was served"
    );
    // ...until one of them goes.
    drop(first);
    let sent = read_until_closed(&mut third, Duration::from_secs(3))
        .await
        .expect("the waiting connection is served once a slot frees");
    assert!(sent.starts_with("HTTP/1.1 200"), "{sent}");
    task.abort();
}
