//! A parent's consent: granted, read, superseded, revoked, audited and erased, on both adapters,
//! every answer against the app's contract.

use crate::app_contract::conforms;
use crate::harness::{Answer, Backend, TestApp, new_user_key};
use crate::on_both_backends;
use http::Method;
use serde_json::{Value, json};

async fn get(app: &TestApp, user: &str) -> Answer {
    let answer = app.get("/v1/consent", user).await;
    conforms("GET", "/v1/consent", &answer);
    answer
}

async fn grant(app: &TestApp, user: &str, body: Value) -> Answer {
    let answer = app.post_json("/v1/consent", user, &body, &[]).await;
    conforms("POST", "/v1/consent", &answer);
    answer
}

async fn revoke(app: &TestApp, user: &str) -> Answer {
    let answer = app
        .call(
            Method::POST,
            "/v1/consent/revoke",
            &[("x-user-key", user)],
            None,
        )
        .await;
    conforms("POST", "/v1/consent/revoke", &answer);
    answer
}

/// The audit log's entries about `user` (by their truncated id), newest first.
async fn audit_entries_of(app: &TestApp, user: &str) -> Vec<Value> {
    let log = app
        .call(
            Method::GET,
            "/v1/admin/audit-log?limit=200",
            &[("authorization", &format!("Bearer {}", app.admin_key))],
            None,
        )
        .await;
    let me = app.user_id(user);
    log.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["credential"] == me.truncated())
        .cloned()
        .collect()
}

fn items(answer: &Answer) -> (bool, bool, bool, bool, bool) {
    let b = &answer.body;
    let flag = |name: &str| b[name].as_bool().unwrap();
    (
        flag("granted"),
        flag("privacy"),
        flag("data_processing"),
        flag("photos"),
        flag("revoked"),
    )
}

async fn a_grant_is_read_back_superseded_and_revoked(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    let none = get(&app, &user).await;
    assert_eq!(none.status, 200);
    assert_eq!(items(&none), (false, false, false, false, false));
    assert_eq!(none.body["consent_version"], "2025-01");

    let all = json!({"privacy": true, "data_processing": true, "photos": true, "consent_version": "2026-03"});
    let granted = grant(&app, &user, all).await;
    assert_eq!(granted.status, 200, "{}", granted.body);
    assert_eq!(items(&granted), (true, true, true, true, false));
    assert_eq!(granted.body["consent_version"], "2026-03");
    assert_eq!(get(&app, &user).await.body, granted.body);

    // Granting again without photos supersedes the first grant.
    let without_photos = grant(
        &app,
        &user,
        json!({"privacy": true, "data_processing": true}),
    )
    .await;
    assert_eq!(items(&without_photos), (true, true, true, false, false));
    assert_eq!(without_photos.body["consent_version"], "2025-01");
    assert_eq!(get(&app, &user).await.body, without_photos.body);

    // The required items missing: recorded, but not granted.
    let partial = grant(&app, &user, json!({"privacy": true, "photos": true})).await;
    assert_eq!(items(&partial), (false, true, false, true, false));

    let revoked = revoke(&app, &user).await;
    assert_eq!(revoked.status, 200);
    assert_eq!(items(&revoked), (false, true, false, true, true));
    assert_eq!(get(&app, &user).await.body, revoked.body);
    // Revoking again changes nothing.
    assert_eq!(revoke(&app, &user).await.body, revoked.body);

    let again = grant(
        &app,
        &user,
        json!({"privacy": true, "data_processing": true, "photos": true}),
    )
    .await;
    assert_eq!(items(&again), (true, true, true, true, false));

    // Each grant and the one revocation are audited.
    let entries = audit_entries_of(&app, &user).await;
    let mine: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["event"].as_str())
        .filter(|event| event.starts_with("consent_"))
        .collect();
    assert_eq!(
        mine,
        [
            "consent_granted",
            "consent_revoked",
            "consent_granted",
            "consent_granted",
            "consent_granted"
        ]
    );
}
on_both_backends!(
    #[tokio::test]
    a_grant_is_read_back_superseded_and_revoked,
    a_grant_is_read_back_superseded_and_revoked
);

/// A typo must never read as consent: an unknown field, a wrong type or a bad version is
/// refused whole, and nothing is recorded.
async fn a_grant_with_an_unknown_field_is_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    for body in [
        json!({"privacy": true, "data_processing": true, "photo": true}),
        json!({"privacy": "yes", "data_processing": true}),
        json!({"privacy": true, "data_processing": true, "consent_version": ""}),
        json!([]),
    ] {
        let refused = grant(&app, &user, body.clone()).await;
        assert_eq!(refused.status, 422, "{body}: {}", refused.body);
        assert_eq!(refused.code(), "VALIDATION_ERROR");
    }
    assert_eq!(
        items(&get(&app, &user).await),
        (false, false, false, false, false)
    );
}
on_both_backends!(
    #[tokio::test]
    a_grant_with_an_unknown_field_is_refused,
    a_grant_with_an_unknown_field_is_refused
);

/// Erasing the account erases its consent records: the same key afterwards starts with none.
async fn erasure_takes_the_consent_records(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    grant(
        &app,
        &user,
        json!({"privacy": true, "data_processing": true, "photos": true}),
    )
    .await;
    let erased = app.erase(&user).await;
    assert_eq!(erased.status, 200, "{}", erased.body);
    assert_eq!(
        items(&get(&app, &user).await),
        (false, false, false, false, false)
    );
}
on_both_backends!(
    #[tokio::test]
    erasure_takes_the_consent_records,
    erasure_takes_the_consent_records
);

/// A character made from a photo or a drawing, stored as the upload routes store one, with its
/// reference picture.
async fn photo_character(
    app: &TestApp,
    user: &str,
    origin: storybook_core::domain::character::Origin,
) -> storybook_core::domain::character::Character {
    let sheet = storybook_core::domain::character::preset("girl-haru").unwrap();
    let mut character = sheet.character(app.user_id(user), None, None, chrono::Utc::now());
    character.origin = origin;
    let key = storybook_core::book_files::character_reference_key(&character.id, "png");
    app.state
        .blobs
        .put(
            &key,
            storybook_core::ports::blobs::stream_of(&b"\x89PNG ref"[..]),
        )
        .await
        .unwrap();
    character.reference_key = Some(key.as_str().to_owned());
    app.state.store.put_character(&character).await.unwrap();
    character
}

/// Revoking consent, or granting again without photos, deletes every character made from a photo
/// or a drawing and its picture at once; a character written by the parent stays; what went is
/// audited.
async fn consent_withdrawn_takes_the_photo_characters(backend: Backend) {
    use storybook_core::domain::character::Origin;
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    let all = json!({"privacy": true, "data_processing": true, "photos": true});
    grant(&app, &user, all.clone()).await;
    let photo = photo_character(&app, &user, Origin::Photo).await;
    let drawing = photo_character(&app, &user, Origin::Drawing).await;
    let written = app
        .post_json(
            "/v1/characters",
            &user,
            &crate::characters::sheet("Mina"),
            &[],
        )
        .await;
    assert_eq!(written.status, 200);

    revoke(&app, &user).await;
    let me = app.user_id(&user);
    for gone in [&photo, &drawing] {
        let found = app.state.store.find_character(&me, &gone.id).await.unwrap();
        assert!(
            found.is_none(),
            "{} outlived the revocation",
            gone.id.as_str()
        );
        let key =
            storybook_core::ports::BlobKey::parse(gone.reference_key.as_deref().unwrap()).unwrap();
        assert!(
            app.state.blobs.get(&key).await.unwrap().is_none(),
            "its picture too"
        );
    }
    let left = app.get("/v1/characters", &user).await;
    assert_eq!(left.body["total"], 1, "the written one stays");

    // Granting again without photos does the same.
    grant(&app, &user, all).await;
    let later = photo_character(&app, &user, Origin::Photo).await;
    grant(
        &app,
        &user,
        json!({"privacy": true, "data_processing": true}),
    )
    .await;
    assert!(
        app.state
            .store
            .find_character(&me, &later.id)
            .await
            .unwrap()
            .is_none()
    );

    let entries = audit_entries_of(&app, &user).await;
    let deletions: Vec<&str> = entries
        .iter()
        .filter(|e| e["event"] == "photo_characters_deleted")
        .filter_map(|e| e["detail"].as_str())
        .collect();
    assert_eq!(deletions.len(), 2, "{deletions:?}");
    assert!(
        deletions
            .iter()
            .any(|d| d.contains(photo.id.as_str()) && d.contains(drawing.id.as_str()))
    );
}
on_both_backends!(
    #[tokio::test]
    consent_withdrawn_takes_the_photo_characters,
    consent_withdrawn_takes_the_photo_characters
);
