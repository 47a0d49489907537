//! The purchase store on both adapters: a store payment claimed once (and kept claimed after
//! its owner is erased), a plan opened once per reference, replaced only as it was read.

use crate::harness::{Backend, TestApp, whole_ledger};
use crate::on_both_backends;
use chrono::{Duration, Utc};
use futures::future::join_all;
use std::sync::Arc;
use storybook_core::domain::credential::CredentialKind;
use storybook_core::domain::credits::EntryKind;
use storybook_core::domain::purchase::{
    Platform, StoreEnvironment, Subscription, SubscriptionSource, SubscriptionStatus,
};
use storybook_core::domain::user::UserId;
use storybook_core::ports::marketplace::StorePurchase;
use storybook_core::ports::purchases::{ClaimOwner, Redeemed, RedeemedAs, Redemption};

async fn new_user(app: &TestApp) -> UserId {
    let id = app
        .state
        .hasher
        .hash(CredentialKind::UserKey, &uuid::Uuid::new_v4().to_string());
    app.state
        .store
        .create_user(&id, 0, Utc::now())
        .await
        .unwrap();
    id
}

fn pack(user: &UserId, store_id: &str) -> Redemption {
    Redemption {
        user: user.clone(),
        purchase: StorePurchase {
            platform: Platform::Apple,
            store_id: store_id.into(),
            product_id: "credit_pack_5".into(),
            subscription_id: None,
            expires_at: None,
            environment: StoreEnvironment::Production,
        },
        reward: RedeemedAs::Credits(5),
        at: Utc::now(),
    }
}

fn plan(source: &str) -> Subscription {
    Subscription {
        plan: "basic".into(),
        credits_per_period: 10,
        status: SubscriptionStatus::Active,
        period_end: Utc::now() + Duration::days(30),
        source: SubscriptionSource::Store {
            platform: Platform::Apple,
            subscription_id: source.into(),
        },
        opened_at: Utc::now(),
    }
}

async fn a_store_payment_is_claimed_once_even_after_erasure(backend: Backend) {
    let app = Arc::new(TestApp::new(backend).await);
    let store = app.state.store.clone();
    let users = [new_user(&app).await, new_user(&app).await];
    let store_id = format!("claim-{}", uuid::Uuid::new_v4().simple());
    let outcomes = join_all((0..20).map(|i| {
        let (store, redemption) = (store.clone(), pack(&users[i % 2], &store_id));
        tokio::spawn(async move { store.redeem(&redemption).await.unwrap() })
    }))
    .await;
    let granted = outcomes
        .iter()
        .filter(|o| matches!(o.as_ref().unwrap(), Redeemed::Granted { credits_added: 5 }))
        .count();
    assert_eq!(granted, 1);
    let mut paid = 0;
    for user in &users {
        let ledger = whole_ledger(&*store, user).await;
        paid += ledger
            .iter()
            .filter(|e| e.kind == EntryKind::Purchase)
            .count();
    }
    assert_eq!(paid, 1);
    let Some(ClaimOwner::User(owner)) =
        store.claim_owner(Platform::Apple, &store_id).await.unwrap()
    else {
        panic!("claimed by a user");
    };
    assert!(users.contains(&owner));
    assert_eq!(
        store
            .claim_owner(Platform::Google, &store_id)
            .await
            .unwrap(),
        None
    );

    store.erase_user(&owner).await.unwrap();
    assert_eq!(
        store.claim_owner(Platform::Apple, &store_id).await.unwrap(),
        Some(ClaimOwner::Erased)
    );
    let newcomer = new_user(&app).await;
    assert_eq!(
        store.redeem(&pack(&newcomer, &store_id)).await.unwrap(),
        Redeemed::RedeemedByErasedAccount
    );
    assert_eq!(
        store.find_user(&newcomer).await.unwrap().unwrap().credits,
        0
    );
}
on_both_backends!(
    #[tokio::test]
    a_store_payment_is_claimed_once_even_after_erasure,
    a_store_payment_is_claimed_once_even_after_erasure
);

async fn a_plan_opens_once_per_reference_and_is_replaced_as_read(backend: Backend) {
    let app = Arc::new(TestApp::new(backend).await);
    let store = app.state.store.clone();
    let user = new_user(&app).await;
    let opened = plan("original-1");
    let reference = format!("admin:{}", uuid::Uuid::new_v4().simple());
    let outcomes = join_all((0..10).map(|_| {
        let (store, user, opened, reference) = (
            store.clone(),
            user.clone(),
            opened.clone(),
            reference.clone(),
        );
        tokio::spawn(async move {
            store
                .open_subscription(&user, &opened, &reference)
                .await
                .unwrap()
        })
    }))
    .await;
    assert_eq!(outcomes.iter().filter(|o| *o.as_ref().unwrap()).count(), 1);
    assert_eq!(store.find_user(&user).await.unwrap().unwrap().credits, 10);
    assert_eq!(
        store.subscription(&user).await.unwrap(),
        Some(opened.clone())
    );

    let cancelled = Subscription {
        status: SubscriptionStatus::Cancelled,
        ..opened.clone()
    };
    assert!(
        store
            .replace_subscription(&user, &opened, &cancelled)
            .await
            .unwrap()
    );
    // A writer that read the plan before that change loses.
    let expired = Subscription {
        status: SubscriptionStatus::Expired,
        ..opened.clone()
    };
    assert!(
        !store
            .replace_subscription(&user, &opened, &expired)
            .await
            .unwrap()
    );
    assert_eq!(store.subscription(&user).await.unwrap(), Some(cancelled));
    let stranger = new_user(&app).await;
    assert!(
        !store
            .replace_subscription(&stranger, &opened, &expired)
            .await
            .unwrap()
    );
    assert_eq!(store.subscription(&stranger).await.unwrap(), None);
}
on_both_backends!(
    #[tokio::test]
    a_plan_opens_once_per_reference_and_is_replaced_as_read,
    a_plan_opens_once_per_reference_and_is_replaced_as_read
);

/// Which of `users` have a plan due at `now`, by their index, each plan as stored.
async fn due(
    app: &TestApp,
    now: chrono::DateTime<Utc>,
    users: &[UserId],
    plans: &[Subscription],
) -> Vec<usize> {
    app.state
        .store
        .subscriptions_due(now, 100)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|(user, plan)| {
            let index = users.iter().position(|u| *u == user)?;
            assert_eq!(plan, plans[index], "the plan as stored");
            Some(index)
        })
        .collect()
}

async fn running_store_plans_past_their_period_are_due_longest_overdue_first(backend: Backend) {
    let app = TestApp::new(backend).await;
    let store = app.state.store.clone();
    let now = Utc::now();
    let ending = |source: &str, days: i64| Subscription {
        period_end: now + Duration::days(days),
        ..plan(source)
    };
    let mut users = Vec::new();
    let plans = [
        ending("overdue-3", -3),
        ending("overdue-1", -1),
        ending("running", 5),
        Subscription {
            source: SubscriptionSource::Admin,
            ..ending("admin", -2)
        },
        Subscription {
            status: SubscriptionStatus::Expired,
            ..ending("expired", -4)
        },
        Subscription {
            status: SubscriptionStatus::Cancelled,
            ..ending("cancelled-2", -2)
        },
        ending("erased", -5),
    ];
    for opened in &plans {
        let user = new_user(&app).await;
        let reference = format!("admin:{}", uuid::Uuid::new_v4().simple());
        assert!(
            store
                .open_subscription(&user, opened, &reference)
                .await
                .unwrap()
        );
        users.push(user);
    }
    store.erase_user(&users[6]).await.unwrap();
    assert_eq!(due(&app, now, &users, &plans).await, vec![0, 5, 1]);

    // Renewed: no longer due. Ended: never due again.
    let renewed = ending("overdue-1", 30);
    assert!(
        store
            .replace_subscription(&users[1], &plans[1], &renewed)
            .await
            .unwrap()
    );
    let ended = Subscription {
        status: SubscriptionStatus::Expired,
        ..plans[0].clone()
    };
    assert!(
        store
            .replace_subscription(&users[0], &plans[0], &ended)
            .await
            .unwrap()
    );
    assert_eq!(due(&app, now, &users, &plans).await, vec![5]);
    assert_eq!(
        store.subscriptions_due(now, 1).await.unwrap().len(),
        1,
        "at most the limit"
    );
}
on_both_backends!(
    #[tokio::test]
    running_store_plans_past_their_period_are_due,
    running_store_plans_past_their_period_are_due_longest_overdue_first
);
