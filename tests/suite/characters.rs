//! A parent's characters from a sheet: made, listed, read and deleted, on both adapters, every
//! answer against the app's contract; another user's character is not found.

use crate::app_contract::conforms;
use crate::harness::{Answer, Backend, BookAsk, TestApp, new_user_key};
use crate::on_both_backends;
use http::Method;
use serde_json::{Value, json};

pub fn sheet(name: &str) -> Value {
    json!({
        "name": name,
        "master_description": "A small girl with a bright yellow raincoat and a curious smile",
        "appearance": {"age_visual": "about six", "face": "round, freckles", "hair": "short black bob",
            "skin": "light tan", "body": "small"},
        "clothing": {"top": "yellow raincoat", "bottom": "blue jeans", "shoes": "red boots",
            "accessories": "a green umbrella"},
        "personality_traits": ["curious", "kind"],
        "distinctive_features": ["a gap in her front teeth"],
        "visual_style_notes": "soft watercolor, warm light"
    })
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    user: &str,
    body: Option<&Value>,
) -> Answer {
    let body = body.map(Value::to_string);
    app.call(method, path, &[("x-user-key", user)], body.as_deref())
        .await
}

async fn a_character_is_made_listed_read_and_deleted(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    let mut made = Vec::new();
    for name in ["Mina", "Joon", "Sora"] {
        let answer = call(
            &app,
            Method::POST,
            "/v1/characters",
            &user,
            Some(&sheet(name)),
        )
        .await;
        conforms("POST", "/v1/characters", &answer);
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_eq!(answer.body["name"], name);
        assert_eq!(answer.body["clothing"]["shoes"], "red boots");
        made.push(answer.body["character_id"].as_str().unwrap().to_owned());
    }
    let listed = call(&app, Method::GET, "/v1/characters?limit=2", &user, None).await;
    conforms("GET", "/v1/characters", &listed);
    assert_eq!(listed.body["total"], 3);
    let names: Vec<&str> = listed.body["characters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "a page of two");
    let rest = call(
        &app,
        Method::GET,
        "/v1/characters?limit=2&offset=2",
        &user,
        None,
    )
    .await;
    assert_eq!(rest.body["characters"].as_array().unwrap().len(), 1);

    let path = format!("/v1/characters/{}", made[0]);
    let read = call(&app, Method::GET, &path, &user, None).await;
    conforms("GET", "/v1/characters/{character_id}", &read);
    assert_eq!(read.body["name"], "Mina");

    // Someone else's character is not found, and not deleted.
    let stranger = new_user_key();
    for method in [Method::GET, Method::DELETE] {
        let answer = call(&app, method, &path, &stranger, None).await;
        assert_eq!(answer.status, 404, "{}", answer.body);
        assert_eq!(answer.code(), "NOT_FOUND");
    }
    let deleted = call(&app, Method::DELETE, &path, &user, None).await;
    conforms("DELETE", "/v1/characters/{character_id}", &deleted);
    assert_eq!(deleted.status, 200);
    assert_eq!(
        call(&app, Method::GET, &path, &user, None).await.status,
        404
    );
    assert_eq!(
        call(&app, Method::DELETE, &path, &user, None).await.status,
        404
    );
    let after = call(&app, Method::GET, "/v1/characters", &user, None).await;
    assert_eq!(after.body["total"], 2);
    for bad in ["/v1/characters/bk_123", "/v1/characters/..%2F..%2Fetc"] {
        assert_eq!(call(&app, Method::GET, bad, &user, None).await.status, 404);
    }
}
on_both_backends!(
    #[tokio::test]
    a_character_is_made_listed_read_and_deleted,
    a_character_is_made_listed_read_and_deleted
);

/// The sheet's rules, each with its location; nothing is stored for a refused sheet.
async fn a_sheet_that_breaks_the_contract_is_refused(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    let with = |path: &[&str], value: Value| {
        let mut body = sheet("Mina");
        let mut at = &mut body;
        for key in &path[..path.len() - 1] {
            at = &mut at[*key];
        }
        at[path[path.len() - 1]] = value;
        body
    };
    for (body, loc) in [
        (with(&["name"], json!("")), vec!["body", "name"]),
        (
            with(&["master_description"], json!("short")),
            vec!["body", "master_description"],
        ),
        (
            with(&["appearance", "hair"], json!("x".repeat(121))),
            vec!["body", "appearance", "hair"],
        ),
        (
            with(&["personality_traits"], json!([])),
            vec!["body", "personality_traits"],
        ),
        (
            with(&["clothing", "top"], json!("<img src=x onerror=alert(1)>")),
            vec!["body", "clothing", "top"],
        ),
        (
            with(&["clothing", "hat"], json!("red")),
            vec!["body", "clothing", "hat"],
        ),
    ] {
        let answer = call(&app, Method::POST, "/v1/characters", &user, Some(&body)).await;
        conforms("POST", "/v1/characters", &answer);
        assert_eq!(answer.status, 422, "{loc:?}: {}", answer.body);
        assert_eq!(
            answer.body["detail"][0]["loc"],
            json!(loc),
            "{}",
            answer.body
        );
    }
    let listed = call(&app, Method::GET, "/v1/characters", &user, None).await;
    assert_eq!(listed.body["total"], 0);
}
on_both_backends!(
    #[tokio::test]
    a_sheet_that_breaks_the_contract_is_refused,
    a_sheet_that_breaks_the_contract_is_refused
);

/// Erasing the account erases its characters.
async fn erasure_takes_the_characters(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    call(
        &app,
        Method::POST,
        "/v1/characters",
        &user,
        Some(&sheet("Mina")),
    )
    .await;
    let erased = call(&app, Method::DELETE, "/v1/users/me", &user, None).await;
    assert_eq!(erased.status, 200);
    let listed = call(&app, Method::GET, "/v1/characters", &user, None).await;
    assert_eq!(listed.body["total"], 0);
}
on_both_backends!(
    #[tokio::test]
    erasure_takes_the_characters,
    erasure_takes_the_characters
);

/// Presets speak the asked language (Korean when it is not one the app speaks); the master
/// description stays English for the illustrator; a character made from one keeps both.
async fn a_character_is_made_from_a_preset_in_the_parents_language(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    for (query, served, first_name) in [
        ("", "ko", "토리"),
        ("?language=en", "en", "Tori"),
        ("?language=fr", "ko", "토리"),
    ] {
        let path = format!("/v1/characters/presets{query}");
        let answer = app.call(Method::GET, &path, &[], None).await;
        conforms("GET", "/v1/characters/presets", &answer);
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body["language"], served);
        let first = &answer.body["presets"][0];
        assert_eq!(first["name"], first_name);
        assert!(first["master_description"].as_str().unwrap().is_ascii());
    }
    let korean = call(
        &app,
        Method::POST,
        "/v1/characters/from-preset",
        &user,
        Some(&json!({"preset_id": "bunny-tori"})),
    )
    .await;
    conforms("POST", "/v1/characters/from-preset", &korean);
    assert_eq!(korean.status, 200, "{}", korean.body);
    assert_eq!(korean.body["name"], "토리");
    assert_eq!(korean.body["clothing"]["top"], "빨간 목도리");
    assert!(
        korean.body["master_description"]
            .as_str()
            .unwrap()
            .starts_with("A small white bunny")
    );

    let named = call(
        &app,
        Method::POST,
        "/v1/characters/from-preset",
        &user,
        Some(&json!({"preset_id": "dino-ddori", "name": "Minho", "language": "en"})),
    )
    .await;
    assert_eq!(named.body["name"], "Minho");
    assert_eq!(
        named.body["personality_traits"],
        json!(["brave", "playful"])
    );
    let listed = call(&app, Method::GET, "/v1/characters", &user, None).await;
    assert_eq!(listed.body["total"], 2);

    let unknown = call(
        &app,
        Method::POST,
        "/v1/characters/from-preset",
        &user,
        Some(&json!({"preset_id": "dragon-nope"})),
    )
    .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.code(), "NOT_FOUND");
    let scripted = call(
        &app,
        Method::POST,
        "/v1/characters/from-preset",
        &user,
        Some(&json!({"preset_id": "bunny-tori", "name": "<script>x</script>"})),
    )
    .await;
    assert_eq!(scripted.status, 422);
}
on_both_backends!(
    #[tokio::test]
    a_character_is_made_from_a_preset_in_the_parents_language,
    a_character_is_made_from_a_preset_in_the_parents_language
);

/// A book that names the parent's characters draws them from their sheets: the hero's first,
/// its name the protagonist's, its master description and features in place of what the story
/// model would make up. Another user's character is not found, and nothing is charged.
async fn a_book_naming_characters_uses_their_sheets(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    let mina = call(
        &app,
        Method::POST,
        "/v1/characters",
        &user,
        Some(&sheet("Mina")),
    )
    .await;
    let joon = call(
        &app,
        Method::POST,
        "/v1/characters/from-preset",
        &user,
        Some(&json!({"preset_id": "robot-bori", "name": "Joon", "language": "en"})),
    )
    .await;
    let (mina_id, joon_id) = (
        mina.body["character_id"].as_str().unwrap(),
        joon.body["character_id"].as_str().unwrap(),
    );

    let stranger = new_user_key();
    let mut theirs = BookAsk::korean(4).json();
    theirs["character_id"] = json!(mina_id);
    let refused = app.post_json("/v1/books", &stranger, &theirs, &[]).await;
    assert_eq!(refused.status, 404, "{}", refused.body);
    assert_eq!(refused.body["error"]["details"]["resource"], "character");
    let balance = app.get("/v1/credits/balance", &stranger).await;
    assert_eq!(balance.body["credits"], 3, "nothing charged");

    let mut mine = BookAsk::korean(4).json();
    mine["character_id"] = json!(mina_id);
    mine["character_ids"] = json!([joon_id, mina_id]);
    let created = app.post_json("/v1/books", &user, &mine, &[]).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let job = created.body["job_id"].as_str().unwrap().to_owned();
    let worker = app.start_worker();
    let done = crate::books::poll(&app, &user, &job, crate::books::PATIENCE).await;
    worker.abort();
    assert_eq!(done.body["status"], "done", "{}", done.body);

    let book = app.book(&job).await;
    let names: Vec<&str> = book.characters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        &names[..2],
        ["Mina", "Joon"],
        "the hero first, then the others named"
    );
    assert_eq!(
        book.characters[0].master_description,
        "A small girl with a bright yellow raincoat and a curious smile"
    );
    assert_eq!(book.characters[0].features(), ["a gap in her front teeth"]);
    assert!(
        book.characters[1]
            .master_description
            .starts_with("A small round silver robot")
    );
    assert_eq!(book.request.hero(), "Mina");
    let text: String = book.pages.iter().map(|p| p.text.as_str()).collect();
    assert!(text.contains("Mina"), "the story is about her: {text}");
}
on_both_backends!(
    #[tokio::test]
    a_book_naming_characters_uses_their_sheets,
    a_book_naming_characters_uses_their_sheets
);

/// Counts the illustrator's calls, passing each to the offline illustrator.
struct CountingIllustrator(std::sync::Arc<std::sync::atomic::AtomicUsize>);

#[async_trait::async_trait]
impl storybook_pipeline::providers::Illustrator for CountingIllustrator {
    async fn illustrate(
        &self,
        prompt: &storybook_pipeline::providers::ImagePrompt,
    ) -> Result<
        storybook_pipeline::providers::Metered<storybook_pipeline::providers::Artwork>,
        storybook_pipeline::providers::ProviderError,
    > {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        storybook_pipeline::providers::offline::OfflineIllustrator
            .illustrate(prompt)
            .await
    }
}

/// A character's reference picture is made once, by the first book that names it, and every
/// later book takes a copy: one image call less. Deleting the character deletes its picture;
/// the books keep their own copies.
async fn a_characters_reference_is_drawn_once_and_reused(backend: Backend) {
    use std::sync::atomic::Ordering::SeqCst;
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    app.grant(&user, 10, "reference-reuse").await;
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut providers = storybook_pipeline::providers::Providers::offline();
    providers.illustrator = std::sync::Arc::new(CountingIllustrator(calls.clone()));
    let worker = tokio::spawn(storybook_pipeline::pipeline::worker::run_local(
        app.pipeline_with(providers),
    ));
    let mina = call(
        &app,
        Method::POST,
        "/v1/characters",
        &user,
        Some(&sheet("Mina")),
    )
    .await;
    let mina_id = mina.body["character_id"].as_str().unwrap().to_owned();
    let mut spec = BookAsk::korean(4).json();
    spec["character_id"] = json!(mina_id);
    let book = |n: usize| {
        let (app, user, spec) = (&app, user.clone(), spec.clone());
        async move {
            let created = app.post_json("/v1/books", &user, &spec, &[]).await;
            assert_eq!(created.status, 200, "book {n}: {}", created.body);
            let job = created.body["job_id"].as_str().unwrap().to_owned();
            let done = crate::books::poll(app, &user, &job, crate::books::PATIENCE).await;
            assert_eq!(done.body["status"], "done", "{}", done.body);
            app.book(&job).await
        }
    };
    let first = book(1).await;
    let drawn_for_first = calls.swap(0, SeqCst);
    assert_eq!(drawn_for_first, 6, "4 pages, the cover and the reference");
    let character = app
        .state
        .store
        .find_character(
            &app.user_id(&user),
            &storybook_core::domain::character::CharacterId::parse(&mina_id).unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    let kept =
        storybook_core::ports::BlobKey::parse(character.reference_key.as_deref().unwrap()).unwrap();
    let picture = app
        .state
        .blobs
        .get(&kept)
        .await
        .unwrap()
        .expect("the character's reference");

    let second = book(2).await;
    assert_eq!(
        calls.load(SeqCst),
        drawn_for_first - 1,
        "no reference drawn for the second book"
    );
    let copy = second.reference_key.as_deref().unwrap();
    assert!(
        copy.starts_with(&format!("books/{}/", second.id.as_str())),
        "{copy}"
    );
    let copied = storybook_core::ports::BlobKey::parse(copy).unwrap();
    assert_eq!(app.state.blobs.get(&copied).await.unwrap(), Some(picture));
    assert_ne!(first.reference_key, second.reference_key);
    worker.abort();

    let path = format!("/v1/characters/{mina_id}");
    assert_eq!(
        call(&app, Method::DELETE, &path, &user, None).await.status,
        200
    );
    assert!(
        app.state.blobs.get(&kept).await.unwrap().is_none(),
        "its picture went with it"
    );
    assert!(
        app.state.blobs.get(&copied).await.unwrap().is_some(),
        "the book keeps its copy"
    );
}
on_both_backends!(
    #[tokio::test]
    a_characters_reference_is_drawn_once_and_reused,
    a_characters_reference_is_drawn_once_and_reused
);

/// An inline `character` named as one of the parent's own characters is that character: the
/// book carries its sheet and will reuse its reference picture. Another name is the story's own.
async fn an_inline_character_named_as_the_parents_is_that_character(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    let mina = call(
        &app,
        Method::POST,
        "/v1/characters",
        &user,
        Some(&sheet("Mina")),
    )
    .await;
    let mina_id = mina.body["character_id"].as_str().unwrap().to_owned();
    let mut spec = BookAsk::korean(4).json();
    spec["character"] = json!({"name": "Mina", "appearance": "yellow raincoat"});
    let created = app.post_json("/v1/books", &user, &spec, &[]).await;
    assert_eq!(created.status, 200, "{}", created.body);
    let book = app.book(created.body["job_id"].as_str().unwrap()).await;
    assert_eq!(
        book.request.hero_character.as_ref().map(|id| id.as_str()),
        Some(mina_id.as_str())
    );
    assert_eq!(book.request.characters.len(), 1);
    assert_eq!(
        book.request.characters[0].master_description,
        mina.body["master_description"].as_str().unwrap()
    );
    spec["character"] = json!({"name": "Bo"});
    let other = app.post_json("/v1/books", &user, &spec, &[]).await;
    let book = app.book(other.body["job_id"].as_str().unwrap()).await;
    assert!(book.request.hero_character.is_none() && book.request.characters.is_empty());
    // Another user's character of the same name is not theirs.
    let someone = new_user_key();
    spec["character"] = json!({"name": "Mina"});
    let theirs = app.post_json("/v1/books", &someone, &spec, &[]).await;
    let book = app.book(theirs.body["job_id"].as_str().unwrap()).await;
    assert!(book.request.hero_character.is_none());
}
on_both_backends!(
    #[tokio::test]
    an_inline_character_named_as_the_parents_is_that_character,
    an_inline_character_named_as_the_parents_is_that_character
);
