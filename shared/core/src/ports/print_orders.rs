//! Print orders: saved once per idempotency key, within a user's limit of open orders, replaced
//! only as read.

use super::store_error::StoreError;
use crate::domain::print::PrintOrder;
use async_trait::async_trait;

/// What placing an order did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placed {
    /// Saved as given.
    New,
    /// The user's idempotency key named this order before: it is the answer, unchanged.
    Existing(Box<PrintOrder>),
    /// The user has this many open orders already.
    TooManyOpen(u32),
}

#[async_trait]
pub trait PrintOrderStore: Send + Sync {
    /// Saves a new order, unless its user's idempotency key named an order before (that one is
    /// answered) or the user has `open_limit` open orders already. Racing requests with one key
    /// save one order.
    async fn place_print_order(
        &self,
        order: &PrintOrder,
        open_limit: u32,
    ) -> Result<Placed, StoreError>;

    /// The order `id`, whoever's it is (the caller checks).
    async fn print_order(&self, id: &str) -> Result<Option<PrintOrder>, StoreError>;

    /// Replaces `expected` by `replacement` if it is still as read; false otherwise.
    async fn replace_print_order(
        &self,
        expected: &PrintOrder,
        replacement: &PrintOrder,
    ) -> Result<bool, StoreError>;
}
