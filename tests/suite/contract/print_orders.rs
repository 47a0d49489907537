//! The print-order store on both adapters: one order per user and key, the limit of open
//! orders (an ended order no longer counts), replacements only as read.

use crate::harness::{Backend, TestApp};
use crate::on_both_backends;
use chrono::Utc;
use storybook_core::domain::book::BookId;
use storybook_core::domain::credential::CredentialKind;
use storybook_core::domain::print::{PrintOrder, PrintPrices, PrintStatus, ShippingAddress};
use storybook_core::ports::print_orders::Placed;

fn order(app: &TestApp, user: &str, key: Option<&str>) -> PrintOrder {
    let now = Utc::now();
    PrintOrder {
        id: PrintOrder::new_id(now),
        user: app.state.hasher.hash(CredentialKind::UserKey, user),
        book_id: BookId::generate(),
        quantity: 1,
        address: Some(ShippingAddress {
            name: "Grandma Kim".into(),
            line1: "12 Maple Road".into(),
            line2: None,
            city: Some("Seoul".into()),
            state: None,
            postal_code: "04524".into(),
            country: "KR".into(),
            phone: None,
        }),
        quote: PrintPrices::default().quote("KR", 1).unwrap(),
        status: PrintStatus::PendingReview,
        provider_order_id: None,
        provider_total: None,
        provider_currency: None,
        tracking_number: None,
        idempotency_key: key.map(Into::into),
        created_at: now,
        updated_at: now,
    }
}

async fn orders_are_placed_once_per_key_within_the_open_limit(backend: Backend) {
    let app = TestApp::new(backend).await;
    let store = app.state.store.clone();
    let user = uuid::Uuid::new_v4().to_string();
    let first = order(&app, &user, Some("k1"));
    assert_eq!(
        store.place_print_order(&first, 2).await.unwrap(),
        Placed::New
    );
    assert_eq!(
        store.print_order(&first.id).await.unwrap(),
        Some(first.clone())
    );
    let retry = order(&app, &user, Some("k1"));
    assert_eq!(
        store.place_print_order(&retry, 2).await.unwrap(),
        Placed::Existing(Box::new(first.clone()))
    );
    assert_eq!(store.print_order(&retry.id).await.unwrap(), None);
    // Another user's same key is theirs.
    let other = order(&app, "someone else", Some("k1"));
    assert_eq!(
        store.place_print_order(&other, 2).await.unwrap(),
        Placed::New
    );

    let second = order(&app, &user, None);
    assert_eq!(
        store.place_print_order(&second, 2).await.unwrap(),
        Placed::New
    );
    let third = order(&app, &user, None);
    assert_eq!(
        store.place_print_order(&third, 2).await.unwrap(),
        Placed::TooManyOpen(2)
    );
    // An order that ended no longer counts, and forgets its address.
    let rejected = first.moved_to(PrintStatus::Rejected, Utc::now());
    assert!(store.replace_print_order(&first, &rejected).await.unwrap());
    assert!(
        !store.replace_print_order(&first, &rejected).await.unwrap(),
        "a replacement of what is no longer stored loses"
    );
    let stored = store.print_order(&first.id).await.unwrap().unwrap();
    assert_eq!(stored, rejected);
    assert_eq!(stored.address, None);
    assert_eq!(
        store.place_print_order(&third, 2).await.unwrap(),
        Placed::New
    );
}
async fn racing_orders_stay_within_the_open_limit(backend: Backend) {
    let app = std::sync::Arc::new(TestApp::new(backend).await);
    let user = uuid::Uuid::new_v4().to_string();
    let placed = futures::future::join_all((0..6).map(|i| {
        let (app, user) = (app.clone(), user.clone());
        tokio::spawn(async move {
            let order = order(&app, &user, Some(&format!("key-{i}")));
            app.state.store.place_print_order(&order, 2).await.unwrap()
        })
    }))
    .await;
    let new = placed
        .iter()
        .filter(|placed| *placed.as_ref().unwrap() == Placed::New)
        .count();
    assert_eq!(new, 2, "{placed:?}");
}
on_both_backends!(
    #[tokio::test]
    racing_orders_stay_within_the_open_limit,
    racing_orders_stay_within_the_open_limit
);

on_both_backends!(
    #[tokio::test]
    print_orders_once_per_key,
    orders_are_placed_once_per_key_within_the_open_limit
);
