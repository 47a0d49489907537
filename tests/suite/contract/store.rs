use crate::harness::{Backend, TestApp};
use crate::on_both_backends;
use chrono::{Duration as Days, Utc};
use futures::future::join_all;
use shared::domain::api_key::{ApiKeyRecord, KeyEnvironment, Scope};
use shared::domain::credential::{CredentialHash, CredentialKind};
use shared::domain::credits::{
    EntryKind, Grant, GrantAmount, GrantOutcome, LedgerPage, TransactionId, ledger_reconciles,
};
use shared::domain::user::UserId;
use shared::ports::{Store, StoreError};
use std::sync::Arc;
use std::time::Duration;

fn user_id(app: &TestApp) -> UserId {
    app.state
        .hasher
        .hash(CredentialKind::UserKey, &uuid::Uuid::new_v4().to_string())
}

fn grant(user: &UserId, amount: i64, transaction: &str) -> Grant {
    Grant {
        user: user.clone(),
        amount: GrantAmount::parse(amount).unwrap(),
        transaction_id: TransactionId::parse(transaction).unwrap(),
        kind: EntryKind::Purchase,
        at: Utc::now(),
    }
}

async fn whole_ledger(
    store: &dyn Store,
    user: &UserId,
) -> Vec<shared::domain::credits::LedgerEntry> {
    let mut all = Vec::new();
    loop {
        let page = LedgerPage::parse(100, all.len() as i64).unwrap();
        let entries = store.ledger(user, page).await.unwrap();
        let done = entries.len() < 100;
        all.extend(entries);
        if done {
            break;
        }
    }
    all.reverse();
    all
}

async fn creating_a_user_is_once(backend: Backend) {
    let app = TestApp::new(backend).await;
    let store = &*app.state.store;
    let id = user_id(&app);
    assert_eq!(store.find_user(&id).await.unwrap(), None);
    let first = store.create_user(&id, 3, Utc::now()).await.unwrap();
    assert!(first.created);
    assert_eq!(
        (
            first.user.credits,
            first.user.total_purchased,
            first.user.total_used
        ),
        (3, 0, 0)
    );
    let again = store.create_user(&id, 3, Utc::now()).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.user, first.user);
    assert_eq!(store.find_user(&id).await.unwrap(), Some(first.user));
    let ledger = whole_ledger(store, &id).await;
    assert_eq!(ledger.len(), 1);
    assert_eq!(
        (
            ledger[0].kind,
            ledger[0].delta,
            ledger[0].balance_after,
            ledger[0].seq
        ),
        (EntryKind::Bonus, 3, 3, 1)
    );
}
on_both_backends!(
    #[tokio::test]
    creating_a_user_is_once,
    creating_a_user_is_once
);

async fn concurrent_first_requests_make_one_user(backend: Backend) {
    let app = TestApp::new(backend).await;
    let store = app.state.store.clone();
    let id = user_id(&app);
    let lookups = join_all((0..50).map(|_| {
        let store = store.clone();
        let id = id.clone();
        tokio::spawn(async move { store.create_user(&id, 3, Utc::now()).await.unwrap() })
    }))
    .await;
    let created = lookups
        .iter()
        .filter(|l| l.as_ref().unwrap().created)
        .count();
    assert_eq!(created, 1);
    let ledger = whole_ledger(&*store, &id).await;
    assert_eq!(ledger.len(), 1, "one bonus entry");
    assert_eq!(store.find_user(&id).await.unwrap().unwrap().credits, 3);
}
on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    concurrent_first_requests_make_one_user,
    concurrent_first_requests_make_one_user
);

async fn a_user_without_opening_credits_has_an_empty_ledger(backend: Backend) {
    let app = TestApp::new(backend).await;
    let id = user_id(&app);
    let made = app
        .state
        .store
        .create_user(&id, 0, Utc::now())
        .await
        .unwrap();
    assert_eq!(made.user.credits, 0);
    assert!(whole_ledger(&*app.state.store, &id).await.is_empty());
    let outcome = app
        .state
        .store
        .grant(&grant(&id, 2, "zero-start"))
        .await
        .unwrap();
    assert_eq!(outcome, GrantOutcome::Applied { balance: 2 });
}
on_both_backends!(
    #[tokio::test]
    a_user_without_opening_credits_has_an_empty_ledger,
    a_user_without_opening_credits_has_an_empty_ledger
);

async fn fifty_grants_with_one_transaction_id_apply_once(backend: Backend) {
    let app = TestApp::new(backend).await;
    let store: Arc<dyn Store> = app.state.store.clone();
    let id = user_id(&app);
    store.create_user(&id, 3, Utc::now()).await.unwrap();
    let transaction = format!("pay-{}", uuid::Uuid::new_v4());
    let outcomes: Vec<GrantOutcome> = join_all((0..50).map(|_| {
        let store = store.clone();
        let g = grant(&id, 7, &transaction);
        tokio::spawn(async move { store.grant(&g).await.unwrap() })
    }))
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
    let applied = outcomes
        .iter()
        .filter(|o| matches!(o, GrantOutcome::Applied { .. }))
        .count();
    assert_eq!(applied, 1, "{outcomes:?}");
    let user = store.find_user(&id).await.unwrap().unwrap();
    assert_eq!(user.credits, 10);
    assert_eq!(user.total_purchased, 7);
    let ledger = whole_ledger(&*store, &id).await;
    assert_eq!(ledger.len(), 2);
    assert!(ledger_reconciles(user.credits, &ledger));
}
on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    fifty_grants_with_one_transaction_id_apply_once,
    fifty_grants_with_one_transaction_id_apply_once
);

async fn fifty_grants_with_different_ids_apply_fifty_times(backend: Backend) {
    let app = TestApp::new(backend).await;
    let store: Arc<dyn Store> = app.state.store.clone();
    let id = user_id(&app);
    store.create_user(&id, 3, Utc::now()).await.unwrap();
    let run = uuid::Uuid::new_v4();
    let outcomes = join_all((0..50).map(|i| {
        let store = store.clone();
        let g = grant(&id, 2, &format!("pay-{run}-{i}"));
        tokio::spawn(async move { store.grant(&g).await.unwrap() })
    }))
    .await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, Ok(GrantOutcome::Applied { .. })))
    );
    let user = store.find_user(&id).await.unwrap().unwrap();
    assert_eq!(user.credits, 3 + 50 * 2);
    let ledger = whole_ledger(&*store, &id).await;
    assert_eq!(ledger.len(), 51);
    assert_eq!(
        ledger.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=51).collect::<Vec<_>>()
    );
    assert!(ledger_reconciles(user.credits, &ledger));
}
on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    fifty_grants_with_different_ids_apply_fifty_times,
    fifty_grants_with_different_ids_apply_fifty_times
);

async fn a_grant_needs_an_existing_user(backend: Backend) {
    let app = TestApp::new(backend).await;
    let id = user_id(&app);
    let error = app
        .state
        .store
        .grant(&grant(&id, 1, &format!("x-{}", uuid::Uuid::new_v4())))
        .await
        .unwrap_err();
    assert!(matches!(error, StoreError::Missing("user")), "{error:?}");
}
on_both_backends!(
    #[tokio::test]
    a_grant_needs_an_existing_user,
    a_grant_needs_an_existing_user
);

async fn the_ledger_pages_newest_first(backend: Backend) {
    let app = TestApp::new(backend).await;
    let store = &*app.state.store;
    let id = user_id(&app);
    store.create_user(&id, 3, Utc::now()).await.unwrap();
    let run = uuid::Uuid::new_v4();
    for i in 1..=4 {
        store
            .grant(&grant(&id, i, &format!("page-{run}-{i}")))
            .await
            .unwrap();
    }
    let first = store
        .ledger(&id, LedgerPage::parse(2, 0).unwrap())
        .await
        .unwrap();
    assert_eq!(
        first.iter().map(|e| e.delta).collect::<Vec<_>>(),
        vec![4, 3]
    );
    assert_eq!(first[0].balance_after, 13);
    assert_eq!(
        first[0].reference.as_deref(),
        Some(format!("page-{run}-4").as_str())
    );
    let second = store
        .ledger(&id, LedgerPage::parse(2, 2).unwrap())
        .await
        .unwrap();
    assert_eq!(
        second.iter().map(|e| e.delta).collect::<Vec<_>>(),
        vec![2, 1]
    );
    let last = store
        .ledger(&id, LedgerPage::parse(10, 4).unwrap())
        .await
        .unwrap();
    assert_eq!(
        last.iter().map(|e| e.kind).collect::<Vec<_>>(),
        vec![EntryKind::Bonus]
    );
    assert!(
        store
            .ledger(&id, LedgerPage::parse(10, 5).unwrap())
            .await
            .unwrap()
            .is_empty()
    );
}
on_both_backends!(
    #[tokio::test]
    the_ledger_pages_newest_first,
    the_ledger_pages_newest_first
);

async fn api_keys_are_found_by_hash_and_stored_once(backend: Backend) {
    let app = TestApp::new(backend).await;
    let store = &*app.state.store;
    let hash = app
        .state
        .hasher
        .hash(CredentialKind::ApiKey, &uuid::Uuid::new_v4().to_string());
    let now = Utc::now();
    let record = ApiKeyRecord {
        key_id: ApiKeyRecord::new_id(),
        name: "reporting".into(),
        hash: hash.clone(),
        display_prefix: "sbk_test_AbCd".into(),
        environment: KeyEnvironment::Test,
        scopes: vec![Scope::Read, Scope::Write],
        created_at: now,
        expires_at: Some(now + Days::days(30)),
        revoked_at: None,
    };
    assert_eq!(store.find_api_key(&hash).await.unwrap(), None);
    store.put_api_key(&record).await.unwrap();
    let found = store.find_api_key(&hash).await.unwrap().unwrap();
    assert_eq!(found.key_id, record.key_id);
    assert_eq!(found.scopes, record.scopes);
    assert_eq!(found.environment, KeyEnvironment::Test);
    assert_eq!(
        found.expires_at.map(|t| t.timestamp()),
        record.expires_at.map(|t| t.timestamp())
    );
    let other = ApiKeyRecord {
        key_id: ApiKeyRecord::new_id(),
        name: "impostor".into(),
        ..record.clone()
    };
    store.put_api_key(&other).await.unwrap();
    assert_eq!(
        store.find_api_key(&hash).await.unwrap().unwrap().name,
        "reporting"
    );
    let expired = ApiKeyRecord {
        key_id: ApiKeyRecord::new_id(),
        hash: CredentialHash::from_stored(format!("{}-expired", hash.as_str())),
        expires_at: Some(now - Days::days(1)),
        revoked_at: Some(now),
        ..record
    };
    store.put_api_key(&expired).await.unwrap();
    let found = store
        .find_api_key(&expired.hash)
        .await
        .unwrap()
        .expect("an expired key stays readable");
    assert!(!found.is_active(now));
}
on_both_backends!(
    #[tokio::test]
    api_keys_are_found_by_hash_and_stored_once,
    api_keys_are_found_by_hash_and_stored_once
);

async fn limit_counters_count_atomically(backend: Backend) {
    let app = TestApp::new(backend).await;
    let store = app.state.store.clone();
    let counter = format!("test:{}", uuid::Uuid::new_v4());
    let window = Duration::from_secs(3600);
    let now = Utc::now();
    let decisions = join_all((0..20).map(|_| {
        let store = store.clone();
        let counter = counter.clone();
        tokio::spawn(async move { store.take(&counter, 5, window, now).await.unwrap() })
    }))
    .await;
    let allowed = decisions
        .iter()
        .filter(|d| d.as_ref().unwrap().allowed)
        .count();
    assert_eq!(allowed, 5);
    let next = store.take(&counter, 5, window, now).await.unwrap();
    assert!(!next.allowed);
    assert_eq!(next.remaining, 0);
    assert!(next.reset_after > 0 && next.reset_after <= 3600);
    let other = store
        .take(&format!("{counter}-other"), 5, window, now)
        .await
        .unwrap();
    assert!(other.allowed);
    assert_eq!(other.remaining, 4);
    // The next window starts afresh.
    let later = store
        .take(&counter, 5, window, now + Days::hours(1))
        .await
        .unwrap();
    assert!(later.allowed);
}
on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    limit_counters_count_atomically,
    limit_counters_count_atomically
);

async fn ping_answers(backend: Backend) {
    let app = TestApp::new(backend).await;
    app.state.store.ping().await.unwrap();
}
on_both_backends!(
    #[tokio::test]
    ping_answers,
    ping_answers
);
