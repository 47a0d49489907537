use crate::harness::{Backend, TestApp};
use crate::on_both_backends;
use bytes::Bytes;
use std::time::Duration;
use storybook_core::ports::blobs::stream_of;
use storybook_core::ports::{BlobKey, BlobStream};

fn key(name: &str) -> BlobKey {
    BlobKey::parse(&format!("tests/{}/{name}", uuid::Uuid::new_v4())).unwrap()
}

fn chunks(parts: Vec<std::io::Result<Bytes>>) -> BlobStream {
    Box::pin(futures::stream::iter(parts))
}

async fn put_get_replace_delete(backend: Backend) {
    let app = TestApp::new(backend).await;
    let blobs = &*app.state.blobs;
    let k = key("page-1.png");
    assert_eq!(blobs.get(&k).await.unwrap(), None);
    blobs
        .put(
            &k,
            chunks(vec![
                Ok(Bytes::from_static(b"\x89PNG")),
                Ok(Bytes::from_static(b" first")),
            ]),
        )
        .await
        .unwrap();
    assert_eq!(
        blobs.get(&k).await.unwrap().unwrap(),
        Bytes::from_static(b"\x89PNG first")
    );
    blobs.put(&k, stream_of(&b"second"[..])).await.unwrap();
    assert_eq!(
        blobs.get(&k).await.unwrap().unwrap(),
        Bytes::from_static(b"second")
    );
    blobs.delete(&k).await.unwrap();
    assert_eq!(blobs.get(&k).await.unwrap(), None);
    blobs.delete(&k).await.unwrap();
}
on_both_backends!(
    #[tokio::test]
    put_get_replace_delete,
    put_get_replace_delete
);

async fn a_failing_stream_leaves_nothing_behind(backend: Backend) {
    let app = TestApp::new(backend).await;
    let blobs = &*app.state.blobs;
    let k = key("book.pdf");
    let broken = chunks(vec![
        Ok(Bytes::from_static(b"%PDF-")),
        Err(std::io::Error::other("client went away")),
    ]);
    assert!(blobs.put(&k, broken).await.is_err());
    assert_eq!(blobs.get(&k).await.unwrap(), None);
}
on_both_backends!(
    #[tokio::test]
    a_failing_stream_leaves_nothing_behind,
    a_failing_stream_leaves_nothing_behind
);

async fn a_large_stream_arrives_whole(backend: Backend) {
    let app = TestApp::new(backend).await;
    let blobs = &*app.state.blobs;
    let k = key("narration.wav");
    // Past one 8 MiB part, in 1 MiB chunks with distinct contents.
    let parts: Vec<std::io::Result<Bytes>> = (0..9u8)
        .map(|i| Ok(Bytes::from(vec![i; 1024 * 1024])))
        .collect();
    blobs.put(&k, chunks(parts)).await.unwrap();
    let back = blobs.get(&k).await.unwrap().unwrap();
    assert_eq!(back.len(), 9 * 1024 * 1024);
    for i in 0..9usize {
        assert!(
            back[i * 1024 * 1024..(i + 1) * 1024 * 1024]
                .iter()
                .all(|b| *b == i as u8),
            "chunk {i}"
        );
    }
}
on_both_backends!(
    #[tokio::test]
    a_large_stream_arrives_whole,
    a_large_stream_arrives_whole
);

async fn a_signed_url_loads_without_headers(backend: Backend) {
    let app = TestApp::new(backend).await;
    let blobs = &*app.state.blobs;
    let k = key("cover.png");
    blobs.put(&k, stream_of(&b"cover bytes"[..])).await.unwrap();
    let url = blobs.signed_url(&k, Duration::from_secs(60)).await.unwrap();
    assert!(
        url.starts_with("http://") || url.starts_with("https://"),
        "{url}"
    );
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    assert_eq!(
        response.bytes().await.unwrap(),
        Bytes::from_static(b"cover bytes")
    );
}
on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    a_signed_url_loads_without_headers,
    a_signed_url_loads_without_headers
);

async fn ping_answers(backend: Backend) {
    TestApp::new(backend)
        .await
        .state
        .blobs
        .ping()
        .await
        .unwrap();
}
on_both_backends!(
    #[tokio::test]
    ping_answers,
    ping_answers
);
