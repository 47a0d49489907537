//! A book shared by link, on both stores: owner-only create and revoke, the public page with
//! every page in order and nothing of the family's, the pictures from our own store only,
//! guessed, revoked and expired tokens, a revoke racing reads, erasure taking the links, and
//! the public routes limited per client address.

use crate::harness::{Answer, Backend, TestApp, new_user_key, test_config};
use crate::on_both_backends;
use chrono::{Duration, Utc};
use futures::future::join_all;
use http::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use storybook_core::clock::Clock;
use storybook_core::domain::book::BookId;

async fn share(app: &TestApp, user: &str, book: &str, body: Value) -> Answer {
    app.post_json(&format!("/v1/books/{book}/share"), user, &body, &[])
        .await
}

async fn revoke(app: &TestApp, user: &str, book: &str) -> Answer {
    app.call(
        Method::POST,
        &format!("/v1/books/{book}/share/revoke"),
        &[("x-user-key", user)],
        None,
    )
    .await
}

/// A link's token, made by the owner for `days`.
async fn token_of(app: &TestApp, user: &str, book: &str, days: i64) -> String {
    let made = share(app, user, book, json!({"expires_in_days": days})).await;
    assert_eq!(made.status, 200, "{}", made.body);
    made.body["token"].as_str().unwrap().to_owned()
}

async fn page(app: &TestApp, token: &str) -> Answer {
    app.call(Method::GET, &format!("/share/{token}"), &[], None)
        .await
}

/// The stored bytes of a book's picture (page 0: the cover).
async fn stored_picture(app: &TestApp, book: &str, page: u8) -> bytes::Bytes {
    let book = app
        .state
        .store
        .find_book(&BookId::parse(book).unwrap())
        .await
        .unwrap()
        .unwrap()
        .book;
    let key = book
        .pages
        .iter()
        .find(|p| p.number == page)
        .and_then(|p| p.image_key.clone())
        .unwrap();
    let key = storybook_core::ports::BlobKey::parse(&key).unwrap();
    app.state.blobs.get(&key).await.unwrap().unwrap()
}

async fn a_shared_book_opens_as_a_page_with_its_own_pictures(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    let book = crate::books::finished_book(&app, &user).await;
    let other = crate::books::finished_book(&app, &user).await;
    let stranger = new_user_key();
    assert_eq!(
        share(&app, &stranger, &book, json!({})).await.status,
        404,
        "another's book"
    );
    assert_eq!(
        share(&app, &user, &book, json!({"expires_in_days": 366}))
            .await
            .status,
        422
    );
    let made = share(&app, &user, &book, json!({"expires_in_days": 0})).await;
    assert_eq!(made.status, 200, "{}", made.body);
    let token = made.body["token"].as_str().unwrap().to_owned();
    assert_eq!(token.len(), 32);
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert!(
        made.body["url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/share/{token}")),
        "{}",
        made.body
    );
    let expires: chrono::DateTime<Utc> = made.body["expires_at"].as_str().unwrap().parse().unwrap();
    assert!(
        (expires - Utc::now() - Duration::days(30))
            .num_minutes()
            .abs()
            < 5
    );
    assert!(
        app.records_holding(&token).await.is_empty(),
        "only the token's hash is stored"
    );

    let shown = page(&app, &token).await;
    assert_eq!(shown.status, 200);
    let html = shown.body.as_str().unwrap();
    let stored = app.book(&book).await;
    assert!(html.contains(&format!(
        "<h1>{}</h1>",
        html_escape::encode_text(stored.title.as_deref().unwrap())
    )));
    let mut at = 0;
    for page in stored.story_pages() {
        let text = html_escape::encode_text(&page.text).to_string();
        let found = html[at..]
            .find(&text)
            .unwrap_or_else(|| panic!("page {} in order", page.number));
        at += found;
        assert!(html.contains(&format!("src=\"/share/{token}/img/page/{}\"", page.number)));
    }
    assert!(html.contains("<meta name=\"robots\" content=\"noindex,nofollow\">"));
    assert!(
        html.contains(&format!("/share/{token}/img/cover\">")),
        "the preview's picture"
    );
    assert!(html.contains("og:image"));
    assert!(html.contains("lang=\"ko\""));
    for secret in [user.as_str(), "books/", "X-Amz", "signature", "<script"] {
        assert!(!html.contains(secret), "{secret} on the page");
    }
    let policy = shown.headers["content-security-policy"].to_str().unwrap();
    assert!(
        policy.starts_with("default-src 'none'; img-src 'self'; style-src 'sha256-"),
        "{policy}"
    );
    assert_eq!(shown.headers["x-robots-tag"], "noindex, nofollow");

    // The pictures are the book's own stored files; each link opens only its own book's.
    let (status, headers, cover) = app
        .get_bytes(&format!("/share/{token}/img/cover"), &[])
        .await;
    assert_eq!(status, 200);
    assert_eq!(cover, stored_picture(&app, &book, 0).await);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("image/")
    );
    assert_eq!(headers["cache-control"], "private, no-cache");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let (status, _, body) = app
        .get_bytes(
            &format!("/share/{token}/img/cover"),
            &[("if-none-match", &etag)],
        )
        .await;
    assert_eq!((status, body.len()), (304, 0));
    let (status, _, first) = app
        .get_bytes(&format!("/share/{token}/img/page/1"), &[])
        .await;
    assert_eq!(status, 200);
    assert_eq!(first, stored_picture(&app, &book, 1).await);
    assert_ne!(
        first,
        stored_picture(&app, &other, 1).await,
        "not another book's"
    );
    for (path, status) in [
        (format!("/share/{token}/img/page/99"), 404),
        (format!("/share/{token}/img/page/0"), 404),
        (format!("/share/{token}/img/page/-1"), 404),
        (format!("/share/{token}/img/page/one"), 422),
    ] {
        assert_eq!(app.get_bytes(&path, &[]).await.0, status, "{path}");
    }

    // Pages changed after the book was made (made again, narrated later) carry their own files:
    // the page and the picture routes show them as they do the others.
    let stored = app
        .state
        .store
        .find_book(&BookId::parse(&book).unwrap())
        .await
        .unwrap()
        .unwrap();
    let mut revised = stored.book.clone();
    for page in &mut revised.pages {
        page.revised = true;
    }
    assert!(
        app.state
            .store
            .replace_book(&revised, stored.version)
            .await
            .unwrap()
    );
    let shown = page(&app, &token).await;
    let html = shown.body.as_str().unwrap();
    for page in revised.story_pages() {
        assert!(
            html.contains(&format!("/img/page/{}\"", page.number)),
            "page {}",
            page.number
        );
    }
    assert_eq!(
        app.get_bytes(&format!("/share/{token}/img/cover"), &[])
            .await
            .0,
        200
    );
    assert_eq!(
        app.get_bytes(&format!("/share/{token}/img/page/1"), &[])
            .await
            .0,
        200
    );

    // Guessed tokens: well-formed but unknown, malformed, and the other book's never shared.
    for guess in [
        "0123456789abcdef0123456789abcdef".to_owned(),
        token.to_uppercase(),
        format!("{token}0"),
        "..%2F..%2Fetc".to_owned(),
    ] {
        let answer = page(&app, &guess).await;
        assert_eq!(answer.status, 404, "{guess}");
        assert!(
            answer
                .body
                .as_str()
                .unwrap()
                .contains("더 이상 공유되지 않는")
        );
        assert_eq!(
            app.get_bytes(&format!("/share/{guess}/img/cover"), &[])
                .await
                .0,
            404
        );
    }
}
on_both_backends!(
    #[tokio::test]
    shared_page,
    a_shared_book_opens_as_a_page_with_its_own_pictures
);

async fn revoked_and_expired_links_open_nothing(backend: Backend) {
    let now = Utc::now();
    let clock = Clock::manual(now);
    let app = TestApp::with_clock(backend, test_config(), clock.clone()).await;
    let user = new_user_key();
    let book = crate::books::finished_book(&app, &user).await;
    let first = token_of(&app, &user, &book, 0).await;
    let second = token_of(&app, &user, &book, 1).await;
    assert_eq!(
        page(&app, &first).await.status,
        200,
        "earlier links stay valid"
    );
    assert_eq!(page(&app, &second).await.status, 200);

    // A day on, the one-day link has ended and the thirty-day one has not.
    clock.set(now + Duration::days(1) + Duration::seconds(1));
    assert_eq!(page(&app, &second).await.status, 404);
    assert_eq!(
        app.get_bytes(&format!("/share/{second}/img/cover"), &[])
            .await
            .0,
        404
    );
    assert_eq!(page(&app, &first).await.status, 200);

    // Only the owner revokes; a revoke ends every link of the book at once.
    let stranger = new_user_key();
    assert_eq!(revoke(&app, &stranger, &book).await.status, 404);
    assert_eq!(page(&app, &first).await.status, 200);
    let third = token_of(&app, &user, &book, 0).await;
    let revoked = revoke(&app, &user, &book).await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(revoked.body, json!({"status": "revoked"}));
    for token in [&first, &third] {
        assert_eq!(page(&app, token).await.status, 404);
        assert_eq!(
            app.get_bytes(&format!("/share/{token}/img/page/1"), &[])
                .await
                .0,
            404
        );
    }
    assert_eq!(
        revoke(&app, &user, &book).await.status,
        200,
        "none left is fine"
    );
    let fresh = token_of(&app, &user, &book, 0).await;
    assert_eq!(
        page(&app, &fresh).await.status,
        200,
        "a new link after a revoke"
    );

    // A deleted book's links open nothing.
    let deleted = app
        .call(
            Method::DELETE,
            &format!("/v1/library/{book}"),
            &[("x-user-key", &user)],
            None,
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(page(&app, &fresh).await.status, 404);
}
on_both_backends!(
    #[tokio::test]
    revoked_and_expired_links,
    revoked_and_expired_links_open_nothing
);

/// Reads racing a revoke each answer the page or the 404 page, never an error; every read that
/// starts after the revoke answered is a 404.
async fn a_revoke_racing_reads(backend: Backend) {
    let app = Arc::new(TestApp::new(backend).await);
    let user = new_user_key();
    let book = crate::books::finished_book(&app, &user).await;
    let token = token_of(&app, &user, &book, 0).await;
    let reads = (0..12).map(|_| {
        let (app, token) = (app.clone(), token.clone());
        tokio::spawn(async move { page(&app, &token).await.status })
    });
    let revoking = {
        let (app, user, book) = (app.clone(), user.clone(), book.clone());
        tokio::spawn(async move { revoke(&app, &user, &book).await.status })
    };
    let statuses = join_all(reads).await;
    assert_eq!(revoking.await.unwrap(), 200);
    for status in statuses {
        assert!(matches!(status.unwrap(), 200 | 404));
    }
    assert_eq!(page(&app, &token).await.status, 404);
}
on_both_backends!(
    #[tokio::test]
    revoke_racing_reads,
    a_revoke_racing_reads
);

async fn erasure_takes_the_links(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    let book = crate::books::finished_book(&app, &user).await;
    let token = token_of(&app, &user, &book, 0).await;
    let hash = storybook_core::domain::share::ShareToken::parse(&token)
        .unwrap()
        .hash();
    assert!(!app.records_holding(&hash).await.is_empty());
    assert_eq!(app.erase(&user).await.status, 200);
    assert_eq!(app.records_holding(&hash).await, Vec::<String>::new());
    assert_eq!(page(&app, &token).await.status, 404);
}
on_both_backends!(
    #[tokio::test]
    erasure_takes_share_links,
    erasure_takes_the_links
);

/// The public routes need no key but count each client address's reads.
#[tokio::test]
async fn public_share_routes_are_limited_per_client_address() {
    let mut config = test_config();
    config.limits.reads_per_minute = 3;
    let app = TestApp::with_config(Backend::Embedded, config).await;
    let token = "0123456789abcdef0123456789abcdef";
    let from = |ip: &'static str, path: String| {
        let app = &app;
        async move { app.call_from(Some(ip), Method::GET, &path, &[], None).await }
    };
    for _ in 0..3 {
        assert_eq!(
            from("203.0.113.7", format!("/share/{token}")).await.status,
            404
        );
    }
    let limited = from("203.0.113.7", format!("/share/{token}/img/cover")).await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert_eq!(limited.code(), "RATE_LIMIT_EXCEEDED");
    assert_eq!(
        from("198.51.100.2", format!("/share/{token}")).await.status,
        404,
        "another address"
    );
}
