//! Characters from a parent's words, a child's photo or drawing: the photo gate, the checks on
//! an upload (type, size, decoding, a decompression bomb), idempotent retries, metadata never
//! kept, the upload never stored, on both adapters and against the app's contract.

use crate::app_contract::conforms;
use crate::harness::{Answer, Backend, BookAsk, TestApp, new_user_key, test_config};
use crate::on_both_backends;
use bytes::Bytes;
use img_parts::ImageEXIF;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use storybook_pipeline::pictures::has_metadata;
use storybook_pipeline::providers::{
    Artwork, CharacterDesigner, DesignBrief, Illustrator, ImagePrompt, Metered, ProviderError,
    Providers,
};

/// What a picture's EXIF says where it was taken: no stored byte may hold it.
const GPS: &[u8] = b"GPSLatitude 37.5665 GPSLongitude 126.9780";

/// A JPEG photo with EXIF (a location in it), as a phone sends one.
fn photo_with_location() -> Vec<u8> {
    let mut pixels = image::RgbImage::new(96, 64);
    for (x, y, pixel) in pixels.enumerate_pixels_mut() {
        *pixel = image::Rgb([200, (x * 2) as u8, (y * 3) as u8]);
    }
    let mut jpeg = Vec::new();
    image::DynamicImage::ImageRgb8(pixels)
        .write_to(
            &mut std::io::Cursor::new(&mut jpeg),
            image::ImageFormat::Jpeg,
        )
        .unwrap();
    let mut parts = img_parts::jpeg::Jpeg::from_bytes(Bytes::from(jpeg)).unwrap();
    let mut exif = b"Exif\0\0".to_vec();
    exif.extend_from_slice(GPS);
    parts.set_exif(Some(Bytes::from(exif)));
    parts.encoder().bytes().to_vec()
}

/// A PNG drawing on white paper.
pub(crate) fn drawing() -> Vec<u8> {
    let mut pixels = image::RgbImage::from_pixel(64, 64, image::Rgb([255, 255, 255]));
    for x in 10..50 {
        for y in 20..40 {
            pixels.put_pixel(x, y, image::Rgb([30, 90, 220]));
        }
    }
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(pixels)
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    png
}

/// A PNG whose header declares `side` × `side` pixels, with a few bytes of data: refused by its
/// declared size, never decoded.
pub(crate) fn bomb(side: u32) -> Vec<u8> {
    let mut png = drawing();
    png[16..20].copy_from_slice(&side.to_be_bytes());
    png[20..24].copy_from_slice(&side.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A multipart body of `(field, file name, content)`, as the app's upload sends it.
fn multipart(fields: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "----storybook-test-boundary";
    let mut body = Vec::new();
    for (name, file, content) in fields {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(file) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{file}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub(crate) async fn upload(
    app: &TestApp,
    user: &str,
    route: &str,
    fields: &[(&str, Option<&str>, &[u8])],
    key: Option<&str>,
) -> Answer {
    let (content_type, body) = multipart(fields);
    let mut headers = vec![("x-user-key", user)];
    if let Some(key) = key {
        headers.push(("x-idempotency-key", key));
    }
    let answer = app.send(route, &headers, &content_type, body).await;
    conforms("POST", route, &answer);
    answer
}

async fn photo(app: &TestApp, user: &str, picture: &[u8], key: Option<&str>) -> Answer {
    let fields: [(&str, Option<&str>, &[u8]); 2] = [
        ("photo", Some("me.jpg"), picture),
        ("name", None, "하루".as_bytes()),
    ];
    upload(app, user, "/v1/characters/from-photo", &fields, key).await
}

pub(crate) async fn consent(app: &TestApp, user: &str, photos: bool) {
    let body = json!({"privacy": true, "data_processing": true, "photos": photos});
    let answer = app.post_json("/v1/consent", user, &body, &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

fn refused(answer: &Answer, status: u16, code: &str, reason: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], code, "{}", answer.body);
    assert_eq!(
        answer.body["error"]["details"]["reason"], reason,
        "{}",
        answer.body
    );
}

/// Photos and drawings only behind the photo gate: no consent, consent without photos, revoked
/// consent are refused (403, with the reason); a standing consent with photos lets them in.
async fn uploads_need_consent_to_photos(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    let picture = photo_with_location();
    refused(
        &photo(&app, &user, &picture, None).await,
        403,
        "FORBIDDEN",
        "photo_consent_required",
    );
    consent(&app, &user, false).await;
    refused(
        &photo(&app, &user, &picture, None).await,
        403,
        "FORBIDDEN",
        "photo_consent_required",
    );
    consent(&app, &user, true).await;
    let made = photo(&app, &user, &picture, None).await;
    assert_eq!(made.status, 200, "{}", made.body);
    assert_eq!(made.body["name"], "하루");
    let fields: [(&str, Option<&str>, &[u8]); 1] = [("drawing", Some("d.png"), &drawing())];
    let drawn = upload(&app, &user, "/v1/characters/from-drawing", &fields, None).await;
    assert_eq!(drawn.status, 200, "{}", drawn.body);
    assert!(
        drawn.body["master_description"]
            .as_str()
            .unwrap()
            .contains("blue"),
        "{}",
        drawn.body
    );
    let listed = app.get("/v1/characters", &user).await;
    assert_eq!(listed.body["total"], 2);
    let revoked = app
        .call(
            http::Method::POST,
            "/v1/consent/revoke",
            &[("x-user-key", &user)],
            None,
        )
        .await;
    assert_eq!(revoked.status, 200);
    refused(
        &photo(&app, &user, &picture, None).await,
        403,
        "FORBIDDEN",
        "photo_consent_required",
    );
    assert_eq!(app.get("/v1/characters", &user).await.body["total"], 0);
}
on_both_backends!(
    #[tokio::test]
    uploads_need_consent_to_photos,
    uploads_need_consent_to_photos
);

/// Every refused upload says why: the wrong type, too large, undecodable, a decompression bomb
/// (by its declared size, before decoding), a missing or unknown field. Nothing is stored.
async fn refused_uploads_say_why(backend: Backend) {
    let config = storybook_core::config::Config {
        upload_max_bytes: 64 * 1024,
        ..test_config()
    };
    let app = TestApp::with_config(backend, config).await;
    let user = new_user_key();
    consent(&app, &user, true).await;
    let gif = b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec();
    refused(
        &photo(&app, &user, &gif, None).await,
        400,
        "VALIDATION_ERROR",
        "unsupported_type",
    );
    let large = vec![0xFFu8; 65 * 1024];
    let answer = photo(&app, &user, &large, None).await;
    refused(&answer, 400, "VALIDATION_ERROR", "too_large");
    assert_eq!(answer.body["error"]["details"]["limit_bytes"], 64 * 1024);
    // Past the route's body limit too: still the upload's refusal, not a bare 413.
    let huge = vec![0xFFu8; 2 * 1024 * 1024];
    refused(
        &photo(&app, &user, &huge, None).await,
        400,
        "VALIDATION_ERROR",
        "too_large",
    );
    let picture = photo_with_location();
    let cut = &picture[..picture.len() / 2];
    refused(
        &photo(&app, &user, cut, None).await,
        400,
        "VALIDATION_ERROR",
        "undecodable",
    );
    refused(
        &photo(&app, &user, &bomb(60_000), None).await,
        400,
        "VALIDATION_ERROR",
        "too_many_pixels",
    );
    refused(
        &photo(&app, &user, b"", None).await,
        400,
        "VALIDATION_ERROR",
        "empty",
    );
    let no_photo: [(&str, Option<&str>, &[u8]); 1] = [("name", None, b"Mina")];
    let missing = upload(&app, &user, "/v1/characters/from-photo", &no_photo, None).await;
    assert_eq!(missing.status, 422, "{}", missing.body);
    assert_eq!(missing.body["detail"][0]["loc"], json!(["body", "photo"]));
    let extra: [(&str, Option<&str>, &[u8]); 2] =
        [("photo", Some("p.jpg"), &picture), ("colour", None, b"red")];
    let unknown = upload(&app, &user, "/v1/characters/from-photo", &extra, None).await;
    assert_eq!(unknown.status, 422, "{}", unknown.body);
    assert_eq!(unknown.body["detail"][0]["type"], "extra_forbidden");
    let not_multipart = app
        .send(
            "/v1/characters/from-photo",
            &[("x-user-key", &user)],
            "application/json",
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(not_multipart.status, 422, "{}", not_multipart.body);
    assert_eq!(app.get("/v1/characters", &user).await.body["total"], 0);
    assert!(
        app.all_blobs().await.is_empty(),
        "a refused upload stored something"
    );
}
on_both_backends!(
    #[tokio::test]
    refused_uploads_say_why,
    refused_uploads_say_why
);

/// Counts the designer's calls (each one an analysis), passing each to the offline one.
struct CountingDesigner(Arc<AtomicUsize>);

#[async_trait::async_trait]
impl CharacterDesigner for CountingDesigner {
    async fn design(
        &self,
        brief: &DesignBrief,
    ) -> Result<Metered<storybook_core::domain::character::Sheet>, ProviderError> {
        self.0.fetch_add(1, SeqCst);
        storybook_pipeline::providers::offline::OfflineDesigner
            .design(brief)
            .await
    }
}

/// A retry under the same `X-Idempotency-Key` answers the same character without a second
/// analysis; the same key with another upload is refused; another key makes another character.
async fn a_retry_returns_the_same_character_without_a_second_analysis(backend: Backend) {
    let analyses = Arc::new(AtomicUsize::new(0));
    let mut providers = Providers::offline();
    providers.designer = Arc::new(CountingDesigner(analyses.clone()));
    let app = TestApp::with_studio(backend, test_config(), providers).await;
    let user = new_user_key();
    consent(&app, &user, true).await;
    let picture = photo_with_location();
    let first = photo(&app, &user, &picture, Some("upload-1")).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let again = photo(&app, &user, &picture, Some("upload-1")).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body, first.body);
    assert_eq!(
        analyses.load(SeqCst),
        1,
        "the retry analysed the picture again"
    );
    let other = photo(&app, &user, &drawing(), Some("upload-1")).await;
    assert_eq!(other.status, 422, "{}", other.body);
    assert_eq!(other.body["error"]["code"], "IDEMPOTENCY_KEY_REUSED");
    let fresh = photo(&app, &user, &picture, Some("upload-2")).await;
    assert_ne!(fresh.body["character_id"], first.body["character_id"]);
    assert_eq!(analyses.load(SeqCst), 2);
    // Another user's same key is their own.
    let someone = new_user_key();
    consent(&app, &someone, true).await;
    let theirs = photo(&app, &someone, &picture, Some("upload-1")).await;
    assert_eq!(theirs.status, 200, "{}", theirs.body);
    assert_ne!(theirs.body["character_id"], first.body["character_id"]);
}
on_both_backends!(
    #[tokio::test]
    a_retry_returns_the_same_character_without_a_second_analysis,
    a_retry_returns_the_same_character_without_a_second_analysis
);

/// An illustrator whose pictures carry metadata of their own (a provider's text chunk and
/// EXIF), or that fails after the picture was analysed.
struct TaggingIllustrator {
    fail: bool,
}

#[async_trait::async_trait]
impl Illustrator for TaggingIllustrator {
    async fn illustrate(&self, prompt: &ImagePrompt) -> Result<Metered<Artwork>, ProviderError> {
        if self.fail {
            return Err(ProviderError::Unavailable("the provider is down".into()));
        }
        let made = storybook_pipeline::providers::offline::OfflineIllustrator
            .illustrate(prompt)
            .await?;
        let Artwork::Bytes(png) = made.value else {
            panic!("the offline illustrator answers bytes");
        };
        let mut parts = img_parts::png::Png::from_bytes(png).unwrap();
        let at = parts.chunks().len() - 1;
        let text = img_parts::png::PngChunk::new(
            *b"tEXt",
            Bytes::from_static(b"Comment\0made by a provider"),
        );
        parts.chunks_mut().insert(at, text);
        parts.set_exif(Some(Bytes::from_static(b"MM\0*provider exif")));
        let tagged = parts.encoder().bytes();
        assert!(has_metadata(&tagged));
        Ok(Metered {
            value: Artwork::Bytes(tagged),
            usage: made.usage,
        })
    }
}

/// No stored picture derived from a photo carries metadata (the reference drawn from it, and a
/// book's pictures drawn with it), the upload itself is never stored, also when the request
/// fails half-way, and nothing of a failed request is kept.
async fn no_stored_picture_keeps_metadata_or_the_upload(backend: Backend) {
    let mut providers = Providers::offline();
    providers.illustrator = Arc::new(TaggingIllustrator { fail: false });
    let app = TestApp::with_studio(backend, test_config(), providers.clone()).await;
    let user = new_user_key();
    consent(&app, &user, true).await;
    app.grant(&user, 5, "metadata").await;
    let picture = photo_with_location();
    let made = photo(&app, &user, &picture, Some("with-location")).await;
    assert_eq!(made.status, 200, "{}", made.body);
    let character = made.body["character_id"].as_str().unwrap().to_owned();
    let worker = tokio::spawn(storybook_pipeline::pipeline::worker::run_local(
        app.pipeline_with(providers),
    ));
    let mut spec = BookAsk::korean(4).json();
    spec["character_id"] = json!(character);
    let created = app.post_json("/v1/books", &user, &spec, &[]).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let job = created.body["job_id"].as_str().unwrap().to_owned();
    let done = crate::books::poll(&app, &user, &job, crate::books::PATIENCE).await;
    assert_eq!(done.body["status"], "done", "{}", done.body);
    worker.abort();
    let blobs = app.all_blobs().await;
    let pictures: Vec<&(String, Bytes)> = blobs
        .iter()
        .filter(|(key, _)| key.ends_with(".png") || key.ends_with(".jpg") || key.ends_with(".webp"))
        .collect();
    assert!(
        pictures.len() >= 6,
        "the reference, its copy, the cover, 4 pages: {pictures:?}"
    );
    for (key, bytes) in &blobs {
        assert!(
            !bytes.windows(GPS.len()).any(|w| w == GPS),
            "{key} holds the photo's location"
        );
        assert_ne!(bytes.as_ref(), picture.as_slice(), "{key} is the upload");
    }
    for (key, bytes) in pictures {
        assert!(!has_metadata(bytes), "{key} keeps metadata");
    }

    // Failing half-way (the picture analysed, the reference not drawn): nothing is kept.
    let mut failing = Providers::offline();
    failing.illustrator = Arc::new(TaggingIllustrator { fail: true });
    let app = TestApp::with_studio(backend, test_config(), failing).await;
    let user = new_user_key();
    consent(&app, &user, true).await;
    let failed = photo(&app, &user, &picture, Some("fails")).await;
    assert_eq!(failed.status, 503, "{}", failed.body);
    assert!(
        app.all_blobs().await.is_empty(),
        "a failed upload left a blob"
    );
    assert_eq!(app.get("/v1/characters", &user).await.body["total"], 0);
}
on_both_backends!(
    #[tokio::test]
    no_stored_picture_keeps_metadata_or_the_upload,
    no_stored_picture_keeps_metadata_or_the_upload
);

async fn from_text(app: &TestApp, user: &str, form: &str) -> Answer {
    let answer = app
        .send(
            "/v1/characters/from-text",
            &[("x-user-key", user)],
            "application/x-www-form-urlencoded",
            form.as_bytes().to_vec(),
        )
        .await;
    conforms("POST", "/v1/characters/from-text", &answer);
    answer
}

/// A parent's few words make a whole sheet; a missing or unknown field, markup, or words
/// moderation refuses are not.
async fn a_character_from_words(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    let made = from_text(
        &app,
        &user,
        "name=%EB%AF%BC%EC%A4%80&age=5%EC%82%B4&traits=brave,+curious",
    )
    .await;
    assert_eq!(made.status, 200, "{}", made.body);
    assert_eq!(made.body["name"], "민준");
    assert_eq!(made.body["personality_traits"], json!(["brave", "curious"]));
    assert!(made.body["master_description"].as_str().unwrap().len() > 10);
    let id = made.body["character_id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/v1/characters/{id}"), &user).await.body,
        made.body
    );
    let missing = from_text(&app, &user, "name=Mina&age=5").await;
    assert_eq!(missing.status, 422);
    assert_eq!(missing.body["detail"][0]["loc"], json!(["body", "traits"]));
    let extra = from_text(&app, &user, "name=Mina&age=5&traits=kind&colour=red").await;
    assert_eq!(extra.status, 422);
    assert_eq!(extra.body["detail"][0]["type"], "extra_forbidden");
    let markup = from_text(&app, &user, "name=%3Cscript%3E&age=5&traits=kind").await;
    assert_eq!(markup.status, 422, "{}", markup.body);
    assert_eq!(app.get("/v1/characters", &user).await.body["total"], 1);
}
on_both_backends!(
    #[tokio::test]
    a_character_from_words,
    a_character_from_words
);

/// Revoking consent leaves nothing derived from a child's photo or drawing: no character
/// record, no reference picture, no book's copy of either (a scan of the whole table and
/// bucket); the book itself stays, its pages with it.
async fn revoking_consent_leaves_nothing_from_a_photo(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    consent(&app, &user, true).await;
    app.grant(&user, 5, "revocation-scan").await;
    let made = photo(&app, &user, &photo_with_location(), None).await;
    assert_eq!(made.status, 200, "{}", made.body);
    let character = made.body["character_id"].as_str().unwrap().to_owned();
    let description = made.body["master_description"].as_str().unwrap().to_owned();
    let fields: [(&str, Option<&str>, &[u8]); 1] = [("drawing", Some("d.png"), &drawing())];
    let drawn = upload(&app, &user, "/v1/characters/from-drawing", &fields, None).await;
    let drawn_id = drawn.body["character_id"].as_str().unwrap().to_owned();
    let worker = app.start_worker();
    let mut spec = BookAsk::korean(4).json();
    spec["character_id"] = json!(character);
    let created = app.post_json("/v1/books", &user, &spec, &[]).await;
    let job = created.body["job_id"].as_str().unwrap().to_owned();
    let done = crate::books::poll(&app, &user, &job, crate::books::PATIENCE).await;
    assert_eq!(done.body["status"], "done", "{}", done.body);
    worker.abort();
    let book_reference = format!("books/{job}/reference.png");
    let keys: Vec<String> = app.all_blobs().await.into_iter().map(|(k, _)| k).collect();
    assert!(keys.contains(&book_reference), "{keys:?}");
    assert!(!app.records_holding(&description).await.is_empty());

    let revoked = app
        .call(
            http::Method::POST,
            "/v1/consent/revoke",
            &[("x-user-key", &user)],
            None,
        )
        .await;
    assert_eq!(revoked.status, 200, "{}", revoked.body);

    // The ids stay only in the audit entry that says they were deleted.
    for needle in [&character, &drawn_id, &description] {
        let left: Vec<String> = app
            .records_holding(needle)
            .await
            .into_iter()
            .filter(|r| !r.starts_with("audit_log") && !r.contains("AUDIT#"))
            .collect();
        assert!(left.is_empty(), "{needle} is still stored: {left:?}");
    }
    let keys: Vec<String> = app.all_blobs().await.into_iter().map(|(k, _)| k).collect();
    for key in &keys {
        assert!(!key.starts_with("characters/"), "{key} is left");
        assert_ne!(
            key, &book_reference,
            "the book's copy of the reference is left"
        );
    }
    assert!(
        keys.iter()
            .any(|k| k.starts_with(&format!("books/{job}/page-"))),
        "{keys:?}"
    );
    let detail = app.get(&format!("/v1/books/{job}/detail"), &user).await;
    assert_eq!(detail.status, 200, "{}", detail.body);
}
on_both_backends!(
    #[tokio::test]
    revoking_consent_leaves_nothing_from_a_photo,
    revoking_consent_leaves_nothing_from_a_photo
);
