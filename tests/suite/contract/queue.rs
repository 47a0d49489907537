use crate::harness::{Backend, TestApp};
use crate::on_both_backends;
use std::time::Duration;
use storybook_core::ports::queue::MAX_RECEIVES;

async fn a_message_is_delivered_hidden_then_deleted(backend: Backend) {
    let app = TestApp::new(backend).await;
    let queue = &*app.state.queue;
    let id = queue.send(r#"{"step":"story","book":"b1"}"#).await.unwrap();
    let got = queue.receive(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].id, id);
    assert_eq!(got[0].body, r#"{"step":"story","book":"b1"}"#);
    assert_eq!(got[0].receive_count, 1);
    // Hidden while its visibility timeout runs.
    assert!(
        queue
            .receive(10, Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty()
    );
    queue.delete(&got[0].receipt).await.unwrap();
    assert!(queue.receive(10, Duration::ZERO).await.unwrap().is_empty());
    assert!(queue.dead_letters(10).await.unwrap().is_empty());
}
on_both_backends!(
    #[tokio::test]
    a_message_is_delivered_hidden_then_deleted,
    a_message_is_delivered_hidden_then_deleted
);

async fn an_unacknowledged_message_comes_back(backend: Backend) {
    let app = TestApp::new(backend).await;
    let queue = &*app.state.queue;
    queue.send("again").await.unwrap();
    let first = queue.receive(1, Duration::from_secs(1)).await.unwrap();
    assert_eq!(first.len(), 1);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = queue.receive(1, Duration::from_secs(30)).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].id, first[0].id);
    assert_eq!(second[0].receive_count, 2);
    assert_ne!(second[0].receipt, first[0].receipt);
    queue.delete(&second[0].receipt).await.unwrap();
    assert!(queue.receive(1, Duration::ZERO).await.unwrap().is_empty());
}
on_both_backends!(
    #[tokio::test]
    an_unacknowledged_message_comes_back,
    an_unacknowledged_message_comes_back
);

async fn five_receives_then_the_dead_letters(backend: Backend) {
    let app = TestApp::new(backend).await;
    let queue = &*app.state.queue;
    let id = queue.send("poison").await.unwrap();
    queue.send("healthy").await.unwrap();
    for attempt in 1..=MAX_RECEIVES {
        let got = queue.receive(10, Duration::ZERO).await.unwrap();
        let poison = got
            .iter()
            .find(|m| m.id == id)
            .unwrap_or_else(|| panic!("receive {attempt} lost it"));
        assert_eq!(poison.receive_count, attempt);
        for other in got.iter().filter(|m| m.id != id) {
            queue.delete(&other.receipt).await.unwrap();
        }
    }
    assert!(
        queue.receive(10, Duration::ZERO).await.unwrap().is_empty(),
        "a sixth delivery"
    );
    let dead = queue.dead_letters(10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body, "poison");
}
on_both_backends!(
    #[tokio::test]
    five_receives_then_the_dead_letters,
    five_receives_then_the_dead_letters
);

async fn ping_answers(backend: Backend) {
    TestApp::new(backend)
        .await
        .state
        .queue
        .ping()
        .await
        .unwrap();
}
on_both_backends!(
    #[tokio::test]
    ping_answers,
    ping_answers
);

async fn a_postponed_delivery_comes_back_after_its_wait(backend: Backend) {
    let app = TestApp::new(backend).await;
    let queue = &*app.state.queue;
    queue.send("later").await.unwrap();
    let first = queue.receive(1, Duration::ZERO).await.unwrap();
    assert_eq!(first.len(), 1);
    queue
        .postpone(&first[0].receipt, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        queue
            .receive(1, Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty(),
        "hidden for the wait"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let again = queue.receive(1, Duration::from_secs(30)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(
        (again[0].body.as_str(), again[0].receive_count),
        ("later", 2)
    );
}
on_both_backends!(
    #[tokio::test]
    a_postponed_delivery_comes_back_after_its_wait,
    a_postponed_delivery_comes_back_after_its_wait
);

async fn a_delayed_message_is_new_and_hidden_for_its_delay(backend: Backend) {
    let app = TestApp::new(backend).await;
    let queue = &*app.state.queue;
    queue
        .send_delayed("deferred", Duration::from_secs(2))
        .await
        .unwrap();
    assert!(
        queue
            .receive(1, Duration::from_secs(30))
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let got = queue.receive(1, Duration::from_secs(30)).await.unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(
        (got[0].body.as_str(), got[0].receive_count),
        ("deferred", 1)
    );
}
on_both_backends!(
    #[tokio::test]
    a_delayed_message_is_new_and_hidden_for_its_delay,
    a_delayed_message_is_new_and_hidden_for_its_delay
);
