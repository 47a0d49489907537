//! `POST /v1/books/series`: the next book with the same character, charged as a book, its story
//! told the earlier books in short, its place in the series recorded; on both adapters and
//! against the app's contract.

use crate::app_contract::conforms;
use crate::harness::{Answer, Backend, BookAsk, TestApp, new_user_key};
use crate::on_both_backends;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};
use storybook_core::domain::book::{StoryPage, WrittenStory};
use storybook_pipeline::providers::{Metered, ProviderError, Providers, StoryBrief, StoryWriter};

/// Keeps every brief the story writer is given, passing each to the offline writer.
struct RecordingWriter(Arc<Mutex<Vec<StoryBrief>>>);

#[async_trait::async_trait]
impl StoryWriter for RecordingWriter {
    async fn write(&self, brief: &StoryBrief) -> Result<Metered<WrittenStory>, ProviderError> {
        self.0.lock().unwrap().push(brief.clone());
        storybook_pipeline::providers::offline::OfflineWriter
            .write(brief)
            .await
    }

    async fn rewrite_page(
        &self,
        brief: &storybook_pipeline::providers::PageBrief,
    ) -> Result<Metered<StoryPage>, ProviderError> {
        storybook_pipeline::providers::offline::OfflineWriter
            .rewrite_page(brief)
            .await
    }
}

async fn series(app: &TestApp, user: &str, body: &Value) -> Answer {
    let answer = app.post_json("/v1/books/series", user, body, &[]).await;
    conforms("POST", "/v1/books/series", &answer);
    answer
}

/// Waits for `job` and answers its detail.
async fn finished(app: &TestApp, user: &str, job: &str) -> Answer {
    let done = crate::books::poll(app, user, job, crate::books::PATIENCE).await;
    assert_eq!(done.body["status"], "done", "{}", done.body);
    let detail = app.get(&format!("/v1/books/{job}/detail"), user).await;
    conforms("GET", "/v1/books/{book_id}/detail", &detail);
    detail
}

async fn a_series_continues_the_earlier_books(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = new_user_key();
    app.grant(&user, 10, "series").await;
    let briefs = Arc::new(Mutex::new(Vec::new()));
    let mut providers = Providers::offline();
    providers.writer = Arc::new(RecordingWriter(briefs.clone()));
    let worker = tokio::spawn(storybook_pipeline::pipeline::worker::run_local(
        app.pipeline_with(providers),
    ));
    let mina = app
        .post_json(
            "/v1/characters",
            &user,
            &crate::characters::sheet("Mina"),
            &[],
        )
        .await;
    let mina_id = mina.body["character_id"].as_str().unwrap().to_owned();
    let mut first = BookAsk::korean(4).json();
    first["character_id"] = json!(mina_id);
    let created = app.post_json("/v1/books", &user, &first, &[]).await;
    let first_job = created.body["job_id"].as_str().unwrap().to_owned();
    let first_detail = finished(&app, &user, &first_job).await;
    assert!(first_detail.body.get("series_id").is_none());

    let second = series(
        &app,
        &user,
        &json!({"character_id": mina_id, "topic": "바다 여행", "page_count": 4,
                "previous_book_id": first_job, "series_title": "미나의 모험"}),
    )
    .await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(second.body["status"], "queued");
    let second_job = second.body["job_id"].as_str().unwrap().to_owned();
    let second_detail = finished(&app, &user, &second_job).await;
    assert_eq!(second_detail.body["series_index"], 2);
    let series_id = second_detail.body["series_id"].as_str().unwrap().to_owned();
    // The earlier book's age, style and language carry over.
    assert_eq!(second_detail.body["style"], "watercolor");
    assert_eq!(second_detail.body["language"], "ko");

    let third = series(
        &app,
        &user,
        &json!({"character_id": mina_id, "topic": "숲속 캠핑", "page_count": 4,
                "previous_book_id": second_job, "new_topic_hint": "별 보기"}),
    )
    .await;
    let third_job = third.body["job_id"].as_str().unwrap().to_owned();
    let third_detail = finished(&app, &user, &third_job).await;
    assert_eq!(third_detail.body["series_index"], 3);
    assert_eq!(third_detail.body["series_id"], series_id.as_str());
    worker.abort();

    // The story step received the character's sheet and the earlier books in short.
    let third_brief = briefs
        .lock()
        .unwrap()
        .iter()
        .find(|b| b.request.topic.as_str() == "숲속 캠핑")
        .cloned()
        .expect("the third book's story was written");
    let place = third_brief.request.series.as_ref().expect("a series place");
    assert_eq!(place.number, 3);
    assert_eq!(place.title.as_deref(), Some("미나의 모험"));
    assert_eq!(place.hint.as_deref(), Some("별 보기"));
    let told: Vec<&str> = place.earlier.iter().map(|e| e.title.as_str()).collect();
    assert_eq!(
        told,
        [
            first_detail.body["title"].as_str().unwrap(),
            second_detail.body["title"].as_str().unwrap()
        ]
    );
    assert!(
        place
            .earlier
            .iter()
            .all(|e| !e.summary.is_empty() && e.summary.chars().count() <= 241)
    );
    assert_eq!(third_brief.request.characters[0].name, "Mina");
    let message = storybook_pipeline::providers::story::user_message(&third_brief.request);
    assert!(
        message.contains(first_detail.body["title"].as_str().unwrap()),
        "{message}"
    );

    // Each book charged one credit.
    let balance = app.get("/v1/credits/balance", &user).await;
    assert_eq!(balance.body["credits"], 3 + 10 - 3);
    let library = app.get("/v1/library", &user).await;
    let indexes: Vec<&Value> = library.body["books"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| &b["series_index"])
        .collect();
    assert!(
        indexes.contains(&&json!(3)) && indexes.contains(&&json!(2)),
        "{}",
        library.body
    );
}
on_both_backends!(
    #[tokio::test]
    a_series_continues_the_earlier_books,
    a_series_continues_the_earlier_books
);

/// Another user's or a missing previous book or character is not found; a previous book still
/// being made is a conflict; an unknown field is refused; none of them is charged.
async fn series_refusals(backend: Backend) {
    let app = TestApp::new(backend).await;
    let (user, other) = (new_user_key(), new_user_key());
    let theirs = app
        .post_json(
            "/v1/characters",
            &other,
            &crate::characters::sheet("Bo"),
            &[],
        )
        .await;
    let their_character = theirs.body["character_id"].as_str().unwrap().to_owned();
    let mine = app
        .post_json(
            "/v1/characters",
            &user,
            &crate::characters::sheet("Mina"),
            &[],
        )
        .await;
    let my_character = mine.body["character_id"].as_str().unwrap().to_owned();
    let their_book = crate::books::start_book(&app, &other).await;
    let my_unfinished = crate::books::start_book(&app, &user).await;
    let body = |character: &str, previous: Option<&str>| {
        let mut body = json!({"character_id": character, "topic": "다음 이야기"});
        if let Some(previous) = previous {
            body["previous_book_id"] = json!(previous);
        }
        body
    };
    let answer = series(&app, &user, &body(&their_character, None)).await;
    assert_eq!(answer.status, 404, "{}", answer.body);
    let answer = series(&app, &user, &body(&my_character, Some(&their_book))).await;
    assert_eq!(answer.status, 404, "{}", answer.body);
    let answer = series(&app, &user, &body(&my_character, Some(&my_unfinished))).await;
    assert_eq!(answer.status, 409, "{}", answer.body);
    assert_eq!(answer.body["error"]["code"], "CONFLICT");
    let mut extra = body(&my_character, None);
    extra["sequel"] = json!(true);
    let answer = series(&app, &user, &extra).await;
    assert_eq!(answer.status, 422, "{}", answer.body);
    // Only the one unfinished book was charged.
    assert_eq!(
        app.get("/v1/credits/balance", &user).await.body["credits"],
        2
    );
}
on_both_backends!(
    #[tokio::test]
    series_refusals,
    series_refusals
);
