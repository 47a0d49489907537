//! Store purchases and plans, as the state store keeps them: each store payment claimed once,
//! forever (an erased account leaves the claim behind, owned by no one), and one plan per user.

use super::marketplace::StorePurchase;
use super::store_error::StoreError;
use crate::domain::credits::EntryKind;
use crate::domain::purchase::{Platform, Subscription, SubscriptionSource, SubscriptionStatus};
use crate::domain::user::UserId;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A confirmed purchase to redeem for `user`, and what it gives.
#[derive(Debug, Clone)]
pub struct Redemption {
    pub user: UserId,
    pub purchase: StorePurchase,
    pub reward: RedeemedAs,
    pub at: DateTime<Utc>,
}

/// What a redemption gives when it is the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedeemedAs {
    /// A credit pack's credits (a `purchase` ledger entry).
    Credits(i64),
    /// A plan: its subscription opened (or, for a renewal of the caller's own subscription,
    /// carried to the new period end) with one period's credits (a `subscription` entry). A
    /// subscription whose period already ended opens nothing and pays nothing.
    Plan(Subscription),
}

/// What redeeming did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redeemed {
    /// Claimed now, and its reward given: the credits it added now (0 for a plan whose period
    /// had ended).
    Granted { credits_added: i64 },
    /// The caller redeemed it before: nothing more.
    AlreadyYours,
    /// Another account redeemed it (the same store account on a new device): the claim moved to
    /// the caller and a subscription still running moved with it, its credits not paid again.
    Restored,
    /// The caller already has this plan running from another purchase: the claim is the
    /// caller's, nothing is given.
    AlreadySubscribed,
    /// Redeemed by an account since erased: never given again.
    RedeemedByErasedAccount,
}

/// Who holds a claimed store payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimOwner {
    User(UserId),
    /// The account that redeemed it was erased.
    Erased,
}

#[async_trait]
pub trait PurchaseStore: Send + Sync {
    /// Claims the purchase's store id for the user and gives its reward, in one atomic step:
    /// however many requests race (and whoever sends them), one claim and one reward.
    async fn redeem(&self, redemption: &Redemption) -> Result<Redeemed, StoreError>;

    /// Who claimed store payment `store_id` of `platform`, if anyone did.
    async fn claim_owner(
        &self,
        platform: Platform,
        store_id: &str,
    ) -> Result<Option<ClaimOwner>, StoreError>;

    /// The store subscription a claimed payment belongs to, if it was a plan's.
    async fn claimed_subscription(
        &self,
        platform: Platform,
        store_id: &str,
    ) -> Result<Option<String>, StoreError>;

    /// The user's plan, current or not; `None` when they never had one (or it was replaced).
    async fn subscription(&self, user: &UserId) -> Result<Option<Subscription>, StoreError>;

    /// Opens `subscription` for the user in place of the one they have, with one period's
    /// credits (a `subscription` entry referring to `reference`), in one atomic step; paid once
    /// per `reference`. Answers whether this call opened it.
    async fn open_subscription(
        &self,
        user: &UserId,
        subscription: &Subscription,
        reference: &str,
    ) -> Result<bool, StoreError>;

    /// Replaces the user's plan as it was read (`expected`): false when it changed meanwhile.
    async fn replace_subscription(
        &self,
        user: &UserId,
        expected: &Subscription,
        replacement: &Subscription,
    ) -> Result<bool, StoreError>;

    /// Who holds store subscription `subscription_id` now: the user whose plan names it.
    async fn subscription_holder(
        &self,
        platform: Platform,
        subscription_id: &str,
    ) -> Result<Option<UserId>, StoreError>;

    /// Store plans still running (not expired) whose period ended before `before`, the
    /// longest overdue first, at most `limit`: what the reconcile reads again from the stores.
    async fn subscriptions_due(
        &self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(UserId, Subscription)>, StoreError>;

    /// Takes back what store payment `store_id` paid, once, from the user it paid (not whoever
    /// holds the claim since): as much as their balance holds, the rest recorded as a shortfall
    /// (a `clawback` entry). A plan it opened is the caller's to end.
    async fn refund(
        &self,
        platform: Platform,
        store_id: &str,
        at: DateTime<Utc>,
    ) -> Result<Refunded, StoreError>;

    /// Gives back what the refund of `store_id` took, once: its refund was reversed.
    async fn reverse_refund(
        &self,
        platform: Platform,
        store_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Whether a store notification was applied before.
    async fn notification_seen(&self, platform: Platform, id: &str) -> Result<bool, StoreError>;

    /// Records a store notification as applied; false when it was before.
    async fn record_notification(
        &self,
        platform: Platform,
        id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

/// What a refund did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refunded {
    /// Taken back now: `taken` credits, and `shortfall` more the balance no longer held.
    TakenBack { taken: i64, shortfall: i64 },
    /// Refunded before: nothing more.
    AlreadyRefunded,
    /// Marked refunded; nothing to take (it paid nothing, or its payee was erased).
    NothingToTake,
    /// No one redeemed that payment here.
    Unknown,
}

/// The ledger description of a refund taken back.
pub fn refund_description(store_id: &str, shortfall: i64) -> String {
    if shortfall > 0 {
        format!("Store refund of {store_id} ({shortfall} credits already spent)")
    } else {
        format!("Store refund of {store_id}")
    }
}

/// What the store holds when a redemption is decided: read by the adapter inside its atomic
/// step (or checked by its conditions).
#[derive(Debug, Clone, Default)]
pub struct RedeemState {
    /// Who claimed the purchase's store id before, if anyone.
    pub claim: Option<ClaimOwner>,
    pub caller_subscription: Option<Subscription>,
    /// The subscription of the claim's owner, when that is another user.
    pub owner_subscription: Option<Subscription>,
}

/// The writes a redemption makes, decided here once for both adapters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedeemWrites {
    pub outcome: Redeemed,
    /// Whether the claim is written for the caller (new, or moved from its owner).
    pub claim: bool,
    /// Credits to add to the caller, and the ledger entry's kind.
    pub credits: Option<(i64, EntryKind)>,
    /// The caller's plan from now on.
    pub caller_subscription: Option<Subscription>,
    /// The previous owner's plan from now on (ended: it moved to the caller).
    pub owner_subscription: Option<Subscription>,
}

impl Redemption {
    /// The ledger entry's reference: the store and its payment id.
    pub fn reference(&self) -> String {
        format!(
            "{}:{}",
            self.purchase.platform.as_str(),
            self.purchase.store_id
        )
    }

    /// Decides what redeeming does over what the store holds.
    pub fn writes(&self, state: &RedeemState) -> RedeemWrites {
        let nothing = |outcome| RedeemWrites {
            outcome,
            claim: false,
            credits: None,
            caller_subscription: None,
            owner_subscription: None,
        };
        let same_source = |held: &Subscription, new: &Subscription| held.source == new.source;
        match (&state.claim, &self.reward) {
            (Some(ClaimOwner::Erased), _) => nothing(Redeemed::RedeemedByErasedAccount),
            (Some(ClaimOwner::User(owner)), _) if *owner == self.user => {
                nothing(Redeemed::AlreadyYours)
            }
            (Some(ClaimOwner::User(_)), RedeemedAs::Credits(_)) => RedeemWrites {
                claim: true,
                ..nothing(Redeemed::Restored)
            },
            (Some(ClaimOwner::User(_)), RedeemedAs::Plan(new)) => {
                // The subscription moves to the caller as the owner holds it (its latest paid
                // period, whichever payment names it), or as the store says if it runs.
                let held = state
                    .owner_subscription
                    .as_ref()
                    .filter(|held| same_source(held, new) && held.is_current(self.at));
                let taken_over = match held {
                    Some(held) => Some(Subscription {
                        period_end: held.period_end.max(new.period_end),
                        ..held.clone()
                    }),
                    None => (new.period_end > self.at).then(|| new.clone()),
                };
                RedeemWrites {
                    claim: true,
                    caller_subscription: taken_over,
                    owner_subscription: held.map(|held| Subscription {
                        status: SubscriptionStatus::Expired,
                        period_end: self.at,
                        ..held.clone()
                    }),
                    ..nothing(Redeemed::Restored)
                }
            }
            (None, RedeemedAs::Credits(credits)) => RedeemWrites {
                claim: true,
                credits: Some((*credits, EntryKind::Purchase)),
                ..nothing(Redeemed::Granted {
                    credits_added: *credits,
                })
            },
            (None, RedeemedAs::Plan(new)) => {
                let caller = state
                    .caller_subscription
                    .as_ref()
                    .filter(|held| held.is_current(self.at));
                if new.period_end <= self.at {
                    // An old period: on record, nothing more.
                    return RedeemWrites {
                        claim: true,
                        ..nothing(Redeemed::Granted { credits_added: 0 })
                    };
                }
                // Another store subscription of the same plan already runs: this payment is on
                // record, and gives nothing twice. An operator's plan gives way to a bought one.
                if let Some(held) = caller
                    && held.plan == new.plan
                    && held.status == SubscriptionStatus::Active
                    && matches!(held.source, SubscriptionSource::Store { .. })
                    && !same_source(held, new)
                {
                    return RedeemWrites {
                        claim: true,
                        ..nothing(Redeemed::AlreadySubscribed)
                    };
                }
                // A new plan, or the next period of the caller's own (a period verified late
                // never moves its end back).
                let credits = new.credits_per_period;
                let own = caller.filter(|held| same_source(held, new));
                RedeemWrites {
                    claim: true,
                    credits: Some((credits, EntryKind::Subscription)),
                    caller_subscription: Some(Subscription {
                        opened_at: own.map_or(new.opened_at, |held| held.opened_at),
                        period_end: own
                            .map_or(new.period_end, |held| held.period_end.max(new.period_end)),
                        ..new.clone()
                    }),
                    ..nothing(Redeemed::Granted {
                        credits_added: credits,
                    })
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::credential::CredentialHash;
    use crate::domain::purchase::StoreEnvironment;
    use crate::ports::marketplace::StorePurchase;
    use chrono::Duration;

    fn user(name: &str) -> UserId {
        CredentialHash::from_stored(format!("{name:0>64}"))
    }

    fn plan(source: Option<&str>, days: i64, at: DateTime<Utc>) -> Subscription {
        Subscription {
            plan: "basic".into(),
            credits_per_period: 10,
            status: SubscriptionStatus::Active,
            period_end: at + Duration::days(days),
            source: match source {
                Some(id) => SubscriptionSource::Store {
                    platform: Platform::Apple,
                    subscription_id: id.into(),
                },
                None => SubscriptionSource::Admin,
            },
            opened_at: at,
        }
    }

    fn redeeming(caller: &UserId, bought: &Subscription, at: DateTime<Utc>) -> Redemption {
        Redemption {
            user: caller.clone(),
            purchase: StorePurchase {
                platform: Platform::Apple,
                store_id: "2000".into(),
                product_id: "subscription_basic".into(),
                subscription_id: Some("1000".into()),
                expires_at: Some(bought.period_end),
                environment: StoreEnvironment::Production,
            },
            reward: RedeemedAs::Plan(bought.clone()),
            at,
        }
    }

    #[test]
    fn restoring_with_an_old_payment_moves_the_running_plan_whole() {
        let at = Utc::now();
        let (owner, caller) = (user("a"), user("b"));
        let running = plan(Some("1000"), 20, at);
        let state = RedeemState {
            claim: Some(ClaimOwner::User(owner)),
            caller_subscription: None,
            owner_subscription: Some(running.clone()),
        };
        let writes = redeeming(&caller, &plan(Some("1000"), -3, at), at).writes(&state);
        assert_eq!(writes.outcome, Redeemed::Restored);
        assert_eq!(writes.credits, None);
        assert_eq!(writes.caller_subscription, Some(running.clone()));
        let ended = writes.owner_subscription.unwrap();
        assert_eq!(ended.status, SubscriptionStatus::Expired);
        // Nothing running to move: nothing ended, nothing given.
        let nothing_held = RedeemState {
            owner_subscription: None,
            ..state
        };
        let writes = redeeming(&caller, &plan(Some("1000"), -3, at), at).writes(&nothing_held);
        assert_eq!(
            (writes.caller_subscription, writes.owner_subscription),
            (None, None)
        );
    }

    #[test]
    fn an_operators_plan_gives_way_to_a_bought_one() {
        let at = Utc::now();
        let caller = user("c");
        let state = RedeemState {
            caller_subscription: Some(plan(None, 10, at)),
            ..RedeemState::default()
        };
        let bought = plan(Some("1000"), 30, at);
        let writes = redeeming(&caller, &bought, at).writes(&state);
        assert_eq!(writes.outcome, Redeemed::Granted { credits_added: 10 });
        assert_eq!(writes.caller_subscription, Some(bought));
        // Another store subscription of the plan running: on record, nothing twice.
        let store_held = RedeemState {
            caller_subscription: Some(plan(Some("999"), 10, at)),
            ..RedeemState::default()
        };
        let writes = redeeming(&caller, &plan(Some("1000"), 30, at), at).writes(&store_held);
        assert_eq!(writes.outcome, Redeemed::AlreadySubscribed);
    }

    #[test]
    fn a_period_verified_late_never_moves_the_end_back() {
        let at = Utc::now();
        let caller = user("d");
        let held = plan(Some("1000"), 60, at);
        let state = RedeemState {
            caller_subscription: Some(held.clone()),
            ..RedeemState::default()
        };
        let writes = redeeming(&caller, &plan(Some("1000"), 30, at), at).writes(&state);
        assert_eq!(writes.outcome, Redeemed::Granted { credits_added: 10 });
        assert_eq!(
            writes.caller_subscription.unwrap().period_end,
            held.period_end
        );
    }
}
