use crate::harness::{Backend, TestApp, whole_ledger};
use crate::on_both_backends;
use chrono::{Duration as Days, Utc};
use futures::future::join_all;
use std::sync::Arc;
use std::time::Duration;
use storybook_core::domain::api_key::{ApiKeyRecord, KeyEnvironment, Scope};
use storybook_core::domain::book::BookId;
use storybook_core::domain::credential::{CredentialHash, CredentialKind};
use storybook_core::domain::credits::{
    EntryKind, Grant, GrantAmount, GrantOutcome, LedgerPage, TransactionId, ledger_reconciles,
};
use storybook_core::domain::settings::{TimeZone, UserSettings};
use storybook_core::domain::streak::{Reading, Streak};
use storybook_core::domain::user::UserId;
use storybook_core::ports::store::{StoredStreak, StreakAdvance, Window};
use storybook_core::ports::{Store, StoreError};

fn user_id(app: &TestApp) -> UserId {
    app.state
        .hasher
        .hash(CredentialKind::UserKey, &uuid::Uuid::new_v4().to_string())
}

fn grant(user: &UserId, amount: i64, transaction: &str) -> Grant {
    Grant {
        user: user.clone(),
        delta: GrantAmount::parse(amount).unwrap().get(),
        transaction_id: TransactionId::parse(transaction).unwrap(),
        kind: EntryKind::Purchase,
        reason: None,
        at: Utc::now(),
    }
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
        allowed_ips: vec!["10.0.0.0/8".into()],
        rotated_to: None,
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
        tokio::spawn(async move {
            store
                .take(&counter, 5, Window::fixed(window, now))
                .await
                .unwrap()
        })
    }))
    .await;
    let allowed = decisions
        .iter()
        .filter(|d| d.as_ref().unwrap().allowed)
        .count();
    assert_eq!(allowed, 5);
    let next = store
        .take(&counter, 5, Window::fixed(window, now))
        .await
        .unwrap();
    assert!(!next.allowed);
    assert_eq!(next.remaining, 0);
    assert!(next.reset_after > 0 && next.reset_after <= 3600);
    let other = store
        .take(&format!("{counter}-other"), 5, Window::fixed(window, now))
        .await
        .unwrap();
    assert!(other.allowed);
    assert_eq!(other.remaining, 4);
    // The next window starts afresh.
    let later = store
        .take(&counter, 5, Window::fixed(window, now + Days::hours(1)))
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

async fn api_keys_are_listed_found_by_id_updated_and_counted(backend: Backend) {
    let app = TestApp::new(backend).await;
    let store = &*app.state.store;
    let now = Utc::now();
    let make = |name: &str, age: i64| ApiKeyRecord {
        key_id: ApiKeyRecord::new_id(),
        name: name.into(),
        hash: app
            .state
            .hasher
            .hash(CredentialKind::ApiKey, &uuid::Uuid::new_v4().to_string()),
        display_prefix: "sbk_live_AbCd".into(),
        environment: KeyEnvironment::Live,
        scopes: vec![Scope::Read],
        created_at: now - Days::minutes(age),
        expires_at: None,
        revoked_at: None,
        allowed_ips: vec![],
        rotated_to: None,
    };
    let (older, newer) = (make("older", 10), make("newer", 1));
    store.put_api_key(&older).await.unwrap();
    store.put_api_key(&newer).await.unwrap();
    let listed: Vec<String> = store
        .list_api_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.name)
        .collect();
    // The test app's own admin key is the newest of all.
    assert_eq!(&listed[1..], &["newer".to_owned(), "older".to_owned()]);
    assert_eq!(
        store
            .find_api_key_by_id(&older.key_id)
            .await
            .unwrap()
            .unwrap()
            .hash,
        older.hash
    );
    assert_eq!(store.find_api_key_by_id("key_missing").await.unwrap(), None);
    let revoked = ApiKeyRecord {
        name: "renamed".into(),
        revoked_at: Some(now),
        allowed_ips: vec!["192.0.2.0/24".into()],
        rotated_to: Some(newer.key_id.clone()),
        ..older.clone()
    };
    store.update_api_key(&revoked).await.unwrap();
    let found = store.find_api_key(&older.hash).await.unwrap().unwrap();
    assert_eq!(
        (
            found.name.as_str(),
            found.allowed_ips.clone(),
            found.rotated_to.clone()
        ),
        (
            "renamed",
            vec!["192.0.2.0/24".to_owned()],
            Some(newer.key_id.clone())
        )
    );
    assert!(found.revoked_at.is_some());
    let stranger = make("stranger", 0);
    assert!(matches!(
        store.update_api_key(&stranger).await,
        Err(StoreError::Missing(_))
    ));

    for _ in 0..3 {
        store
            .record_key_use(&newer.key_id, "GET /v1/admin/api-keys", now)
            .await
            .unwrap();
    }
    store
        .record_key_use(&newer.key_id, "GET /v1/admin/audit-log", now)
        .await
        .unwrap();
    store
        .record_key_use(&newer.key_id, "GET /v1/admin/api-keys", now - Days::days(1))
        .await
        .unwrap();
    let usage = store.key_usage(&newer.key_id).await.unwrap();
    let rows: Vec<(String, &str, u64)> = usage
        .iter()
        .map(|u| (u.day.clone(), u.route.as_str(), u.count))
        .collect();
    let (today, yesterday) = (
        now.format("%Y-%m-%d").to_string(),
        (now - Days::days(1)).format("%Y-%m-%d").to_string(),
    );
    assert_eq!(
        rows,
        vec![
            (today.clone(), "GET /v1/admin/api-keys", 3),
            (today, "GET /v1/admin/audit-log", 1),
            (yesterday, "GET /v1/admin/api-keys", 1),
        ]
    );
    assert!(store.key_usage(&older.key_id).await.unwrap().is_empty());
}
on_both_backends!(
    #[tokio::test]
    api_keys_are_listed_found_by_id_updated_and_counted,
    api_keys_are_listed_found_by_id_updated_and_counted
);

async fn the_audit_log_pages_newest_first(backend: Backend) {
    use storybook_core::domain::audit::{AuditEntry, AuditEvent};
    let app = TestApp::new(backend).await;
    let store = &*app.state.store;
    let mut written = Vec::new();
    for (i, event) in [
        AuditEvent::UnknownKey,
        AuditEvent::KeyCreated,
        AuditEvent::RateLimited,
        AuditEvent::UserErased,
    ]
    .into_iter()
    .enumerate()
    {
        let entry = AuditEntry::new(
            event,
            Some(format!("abc{i}")),
            "198.51.100.1",
            "POST /v1/admin/api-keys",
            None,
            chrono::Utc::now(),
        );
        store.append_audit(&entry).await.unwrap();
        written.push(entry);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let first = store.audit_log(3, None).await.unwrap();
    let events: Vec<AuditEvent> = first.iter().map(|e| e.event).collect();
    assert_eq!(
        events,
        vec![
            AuditEvent::UserErased,
            AuditEvent::RateLimited,
            AuditEvent::KeyCreated
        ]
    );
    assert_eq!(first[0], written[3]);
    let rest = store.audit_log(3, Some(&first[2].id)).await.unwrap();
    assert_eq!(
        rest.iter().map(|e| e.event).collect::<Vec<_>>(),
        vec![AuditEvent::UnknownKey]
    );
}
on_both_backends!(
    #[tokio::test]
    the_audit_log_pages_newest_first,
    the_audit_log_pages_newest_first
);

async fn peeking_counts_nothing(backend: Backend) {
    let app = TestApp::new(backend).await;
    let store = &*app.state.store;
    let counter = format!("peek:{}", uuid::Uuid::new_v4());
    let (window, now) = (Duration::from_secs(60), Utc::now());
    assert_eq!(
        store
            .peek(&counter, Window::fixed(window, now))
            .await
            .unwrap(),
        0
    );
    store
        .take(&counter, 5, Window::fixed(window, now))
        .await
        .unwrap();
    store
        .take(&counter, 5, Window::fixed(window, now))
        .await
        .unwrap();
    assert_eq!(
        store
            .peek(&counter, Window::fixed(window, now))
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .peek(&counter, Window::fixed(window, now))
            .await
            .unwrap(),
        2
    );
}
on_both_backends!(
    #[tokio::test]
    peeking_counts_nothing,
    peeking_counts_nothing
);

async fn deductions_never_go_below_zero(backend: Backend) {
    let app = TestApp::new(backend).await;
    let store = &*app.state.store;
    let id = user_id(&app);
    store.create_user(&id, 3, Utc::now()).await.unwrap();
    let take = |delta: i64, tx: &str| Grant {
        user: id.clone(),
        delta,
        transaction_id: TransactionId::parse(tx).unwrap(),
        kind: EntryKind::Clawback,
        reason: Some("support correction".into()),
        at: Utc::now(),
    };
    let run = uuid::Uuid::new_v4();
    assert_eq!(
        store.grant(&take(-4, &format!("d1-{run}"))).await.unwrap(),
        GrantOutcome::InsufficientCredits { balance: 3 }
    );
    assert_eq!(
        store.grant(&take(-2, &format!("d2-{run}"))).await.unwrap(),
        GrantOutcome::Applied { balance: 1 }
    );
    let ledger = whole_ledger(store, &id).await;
    assert_eq!(ledger.len(), 2);
    assert_eq!(ledger[1].description.as_deref(), Some("support correction"));
    assert!(ledger_reconciles(1, &ledger));
}
on_both_backends!(
    #[tokio::test]
    deductions_never_go_below_zero,
    deductions_never_go_below_zero
);

async fn erasing_a_user_keeps_only_an_anonymous_ledger(backend: Backend) {
    let app = TestApp::new(backend).await;
    let store = &*app.state.store;
    let id = user_id(&app);
    store.create_user(&id, 3, Utc::now()).await.unwrap();
    store
        .grant(&grant(&id, 2, &format!("erase-{}", uuid::Uuid::new_v4())))
        .await
        .unwrap();
    let kept = store.erase_user(&id).await.unwrap();
    assert_eq!(kept, 2);
    assert_eq!(store.find_user(&id).await.unwrap(), None);
    assert!(
        store
            .ledger(&id, LedgerPage::parse(10, 0).unwrap())
            .await
            .unwrap()
            .is_empty()
    );
    // The same key starts afresh.
    let again = store.create_user(&id, 3, Utc::now()).await.unwrap();
    assert!(again.created);
    assert_eq!(whole_ledger(store, &id).await.len(), 1);
}
on_both_backends!(
    #[tokio::test]
    erasing_a_user_keeps_only_an_anonymous_ledger,
    erasing_a_user_keeps_only_an_anonymous_ledger
);

fn reading(day: &str, at: &str) -> Reading {
    Reading {
        book_id: BookId::parse("bk_read").unwrap(),
        read_at: at.parse().unwrap(),
        day: day.parse().unwrap(),
        reading_time: 60,
        completed: false,
        profile: None,
    }
}

async fn a_streak_moves_once_per_version_with_its_reward(backend: Backend) {
    let app = TestApp::new(backend).await;
    let store = &*app.state.store;
    let id = user_id(&app);
    store.create_user(&id, 3, Utc::now()).await.unwrap();
    assert_eq!(
        store.find_streak(&id).await.unwrap(),
        StoredStreak::default()
    );
    let first = reading("2026-07-06", "2026-07-06T10:00:00Z");
    let advance = StreakAdvance {
        streak: Streak::default().after_read(first.day).unwrap(),
        expected_version: 0,
        reward: 2,
        reward_description: "Reading milestone".into(),
    };
    assert!(
        store
            .record_reading(&id, &first, Some(&advance))
            .await
            .unwrap()
    );
    // The same version again lost the race: nothing is written, nothing paid.
    let late = reading("2026-07-06", "2026-07-06T10:00:01Z");
    assert!(
        !store
            .record_reading(&id, &late, Some(&advance))
            .await
            .unwrap()
    );
    let stored = store.find_streak(&id).await.unwrap();
    assert_eq!((stored.streak, stored.version), (advance.streak, 1));
    assert_eq!(store.find_user(&id).await.unwrap().unwrap().credits, 5);
    let ledger = whole_ledger(store, &id).await;
    assert!(ledger_reconciles(5, &ledger));
    assert_eq!(ledger.last().unwrap().kind, EntryKind::Bonus);
    // A later session of a counted day is recorded without a streak change.
    // Tagged with a child profile; the profile's own streak moves by version alone.
    let again = Reading {
        profile: Some("profile_20260706_0a1b2c3d".into()),
        ..reading("2026-07-06", "2026-07-06T11:00:00Z")
    };
    let profile = "profile_20260706_0a1b2c3d";
    assert_eq!(
        store.find_profile_streak(&id, profile).await.unwrap(),
        StoredStreak::default()
    );
    let moved = advance.streak;
    assert!(
        store
            .replace_profile_streak(&id, profile, &moved, 0)
            .await
            .unwrap()
    );
    assert!(
        !store
            .replace_profile_streak(&id, profile, &moved, 0)
            .await
            .unwrap(),
        "a stale version loses"
    );
    let stored = store.find_profile_streak(&id, profile).await.unwrap();
    assert_eq!((stored.streak, stored.version), (moved, 1));
    assert_eq!(
        store.find_streak(&id).await.unwrap().version,
        1,
        "the account's apart"
    );
    assert!(store.record_reading(&id, &again, None).await.unwrap());
    store
        .record_reading(&id, &reading("2026-07-08", "2026-07-08T01:00:00Z"), None)
        .await
        .unwrap();
    let day = |raw: &str| raw.parse::<chrono::NaiveDate>().unwrap();
    let sixth = store
        .readings(&id, day("2026-07-06"), day("2026-07-07"))
        .await
        .unwrap();
    assert_eq!(
        sixth,
        vec![first.clone(), again.clone()],
        "oldest first, the last day whole"
    );
    let all = store
        .readings(&id, day("2026-07-01"), day("2026-07-31"))
        .await
        .unwrap();
    assert_eq!(all.len(), 3);
    assert!(
        store
            .readings(&id, day("2026-07-09"), day("2026-07-31"))
            .await
            .unwrap()
            .is_empty()
    );
}
on_both_backends!(
    #[tokio::test]
    a_streak_moves_once_per_version_with_its_reward,
    a_streak_moves_once_per_version_with_its_reward
);

async fn settings_are_stored_per_user(backend: Backend) {
    let app = TestApp::new(backend).await;
    let store = &*app.state.store;
    let (one, two) = (user_id(&app), user_id(&app));
    assert_eq!(store.find_settings(&one).await.unwrap(), None);
    let mut settings = UserSettings {
        timezone: TimeZone::parse("Europe/Berlin").unwrap(),
        ..UserSettings::default()
    };
    store.put_settings(&one, &settings).await.unwrap();
    settings.dark_mode = true;
    store.put_settings(&one, &settings).await.unwrap();
    assert_eq!(store.find_settings(&one).await.unwrap(), Some(settings));
    assert_eq!(store.find_settings(&two).await.unwrap(), None);
}
on_both_backends!(
    #[tokio::test]
    settings_are_stored_per_user,
    settings_are_stored_per_user
);

/// The index of unfinished books: oldest first, bounded, left by a book when it finishes or its
/// user is erased.
async fn unfinished_books_are_indexed_until_finished(backend: Backend) {
    let app = TestApp::new(backend).await;
    let store = &*app.state.store;
    let user = crate::harness::new_user_key();
    let mut jobs = Vec::new();
    for _ in 0..3 {
        jobs.push(crate::books::start_book(&app, &user).await);
    }
    let later = Utc::now() + Days::seconds(1);
    // The ids among this test's books, in the order the store answers.
    let ours = |books: Vec<storybook_core::ports::StoredBook>| -> Vec<String> {
        books
            .into_iter()
            .map(|b| b.book.id.as_str().to_owned())
            .filter(|id| jobs.contains(id))
            .collect()
    };
    let all = ours(store.unfinished_books(later, 1000).await.unwrap());
    assert_eq!(all, jobs, "oldest first");
    let id = app.user_id(&user);
    assert_eq!(store.count_unfinished_books(&id).await.unwrap(), 3);
    assert_eq!(store.unfinished_books(later, 2).await.unwrap().len(), 2);
    let first = &jobs[0];
    assert!(
        ours(
            store
                .unfinished_books(Utc::now() - Days::hours(1), 1000)
                .await
                .unwrap()
        )
        .is_empty(),
        "none made an hour ago"
    );
    // Finished (failed here) books leave the index.
    storybook_core::book_records::fail_book(
        store,
        chrono::Utc::now(),
        &BookId::parse(first).unwrap(),
        storybook_core::domain::failure::FailureCode::Unknown,
        None,
    )
    .await
    .unwrap();
    assert_eq!(
        ours(store.unfinished_books(later, 1000).await.unwrap()),
        jobs[1..]
    );
    assert_eq!(store.count_unfinished_books(&id).await.unwrap(), 2);
    // So do the books of an erased user.
    store.erase_user(&id).await.unwrap();
    assert!(ours(store.unfinished_books(later, 1000).await.unwrap()).is_empty());
    assert_eq!(store.count_unfinished_books(&id).await.unwrap(), 0);
}
on_both_backends!(
    #[tokio::test]
    unfinished_books_are_indexed_until_finished,
    unfinished_books_are_indexed_until_finished
);

/// A library of more than a hundred books (one read round trip a hundred on DynamoDB) comes back
/// whole, newest first.
async fn a_large_library_is_read_whole_and_in_order(backend: Backend) {
    let app = TestApp::new(backend).await;
    let user = crate::harness::new_user_key();
    app.grant(&user, 102, &format!("library-{user}")).await;
    let mut jobs = Vec::new();
    for _ in 0..105 {
        jobs.push(crate::books::start_book(&app, &user).await);
    }
    let id = app.user_id(&user);
    let books: Vec<String> = app
        .state
        .store
        .books_of(&id)
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.id.as_str().to_owned())
        .collect();
    jobs.reverse();
    assert_eq!(books, jobs);
}
on_both_backends!(
    #[tokio::test]
    a_large_library_is_read_whole_and_in_order,
    a_large_library_is_read_whole_and_in_order
);

async fn a_breaker_is_replaced_only_at_its_version(backend: Backend) {
    use storybook_core::domain::breaker::BreakerRecord;
    let app = TestApp::new(backend).await;
    let store = &*app.state.store;
    let provider = format!("p-{}", uuid::Uuid::new_v4().simple());
    assert_eq!(
        store.breaker(&provider).await.unwrap(),
        (BreakerRecord::default(), 0)
    );
    let open = BreakerRecord {
        failures: 5,
        window_started: Some(Utc::now()),
        open_until: Some(Utc::now() + Days::seconds(30)),
        probe_until: None,
    };
    assert!(store.put_breaker(&provider, &open, 0).await.unwrap());
    assert!(
        !store.put_breaker(&provider, &open, 0).await.unwrap(),
        "created once"
    );
    let (read, version) = store.breaker(&provider).await.unwrap();
    assert_eq!((read, version), (open.clone(), 1));
    assert!(
        !store
            .put_breaker(&provider, &BreakerRecord::default(), 7)
            .await
            .unwrap()
    );
    assert!(
        store
            .put_breaker(&provider, &BreakerRecord::default(), 1)
            .await
            .unwrap()
    );
    assert_eq!(
        store.breaker(&provider).await.unwrap(),
        (BreakerRecord::default(), 2)
    );
    // Concurrent writers at one version: exactly one wins.
    let wins = join_all((0..8).map(|_| store.put_breaker(&provider, &open, 2)))
        .await
        .into_iter()
        .filter(|won| *won.as_ref().unwrap())
        .count();
    assert_eq!(wins, 1);
}
on_both_backends!(
    #[tokio::test]
    a_breaker_is_replaced_only_at_its_version,
    a_breaker_is_replaced_only_at_its_version
);

/// A buffer the span test's subscriber writes to.
#[derive(Clone, Default)]
struct SpanLog(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SpanLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every store call is a span named after it, with the ids it touches as fields (a user's
/// truncated) and nothing of a credential: no key, no full keyed hash.
async fn store_calls_are_spans_with_ids_and_no_secrets(backend: Backend) {
    let app = TestApp::new(backend).await;
    let store = &*app.state.store;
    let log = SpanLog::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_env_filter("storybook_aws=debug,storybook_embedded=debug")
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(move || writer.clone())
        .finish();
    let user = user_id(&app);
    let book = BookId::generate();
    let secret = storybook_core::domain::api_key::ApiKeySecret::generate(KeyEnvironment::Live);
    let hash = app
        .state
        .hasher
        .hash(CredentialKind::ApiKey, secret.expose());
    {
        let _default = tracing::subscriber::set_default(subscriber);
        store.create_user(&user, 3, Utc::now()).await.unwrap();
        assert!(store.find_book(&book).await.unwrap().is_none());
        assert!(store.find_api_key(&hash).await.unwrap().is_none());
    }
    let lines = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let span = |name: &str| {
        lines
            .lines()
            .find(|line| line.contains(&format!("\"name\":\"{name}\"")))
            .unwrap_or_else(|| panic!("no {name} span in {lines}"))
            .to_owned()
    };
    assert!(span("create_user").contains(user.truncated()));
    assert!(span("find_book").contains(book.as_str()));
    span("find_api_key");
    for secret in [secret.expose(), hash.as_str(), user.as_str()] {
        assert!(!lines.contains(secret), "{secret} in {lines}");
    }
}
on_both_backends!(
    #[tokio::test]
    store_calls_are_spans_with_ids_and_no_secrets,
    store_calls_are_spans_with_ids_and_no_secrets
);
