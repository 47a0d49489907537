//! Print orders.
//!
//! | item | pk | sk |
//! | --- | --- | --- |
//! | an order | `PRINT#{order id}` | `ORDER`: `doc`; every replacement is conditioned on the `doc` read |
//! | its user's note of it | `USER#{user hash}` | `PRINT#{order id}`: `open` (1 or 0), counted on each new order; erasure deletes the order by it |
//! | its idempotency key | `USER#{user hash}` | `PRINTKEY#{X-Idempotency-Key}`: `order_id` |
//! | the user's open orders | `USER#{user hash}` | `PRINTOPEN`: `open`, a count |
//!
//! An order is placed in one transaction: the order and its key, each conditioned on not
//! existing (racing requests with one key save one order), its note, and the count of open
//! orders raised on condition that it is below the limit (racing requests with different keys
//! stay within it). The replacement that ends an order lowers the count in its transaction.

use super::*;
use storybook_core::domain::print::PrintOrder;
use storybook_core::ports::print_orders::{Placed, PrintOrderStore};

pub(super) const ORDER: &str = "ORDER";
/// The sort-key prefix of a user's notes of their orders.
pub(super) const NOTE_PREFIX: &str = "PRINT#";

pub(super) fn order_pk(id: &str) -> String {
    format!("PRINT#{id}")
}

/// The sort key of the count of a user's open orders.
const OPEN_SK: &str = "PRINTOPEN";

fn key_sk(key: &str) -> String {
    format!("PRINTKEY#{key}")
}

impl DynamoStore {
    async fn read_order(&self, id: &str) -> Result<Option<(PrintOrder, String)>, StoreError> {
        self.get(order_pk(id), ORDER)
            .await?
            .map(|item| {
                let doc = text(&item, "doc")?;
                Ok((PrintOrder::read(&doc)?, doc))
            })
            .transpose()
    }

    /// The user's note of `order`, with whether it is open.
    fn order_note(&self, order: &PrintOrder) -> Result<TransactWriteItem, StoreError> {
        let note = Put::builder()
            .table_name(&self.table)
            .item("pk", s(user_pk(&order.user)))
            .item("sk", s(format!("{NOTE_PREFIX}{}", order.id)))
            .item("open", n(i64::from(order.status.is_open())))
            .build()
            .map_err(StoreError::unavailable)?;
        Ok(TransactWriteItem::builder().put(note).build())
    }

    async fn place_once(&self, order: &PrintOrder, open_limit: u32) -> Result<Placed, Attempt> {
        if let Some(key) = &order.idempotency_key
            && let Some(item) = self.get(user_pk(&order.user), &key_sk(key)).await?
            && let Some((earlier, _)) = self.read_order(&text(&item, "order_id")?).await?
        {
            return Ok(Placed::Existing(Box::new(earlier)));
        }
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(order_pk(&order.id)))
            .item("sk", s(ORDER))
            .item("doc", s(order.write()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(StoreError::unavailable)?;
        let mut items = vec![
            self.open_orders_change(&order.user, 1, Some(open_limit))?,
            TransactWriteItem::builder().put(put).build(),
            self.order_note(order)?,
        ];
        if let Some(key) = &order.idempotency_key {
            let key = Put::builder()
                .table_name(&self.table)
                .item("pk", s(user_pk(&order.user)))
                .item("sk", s(key_sk(key)))
                .item("order_id", s(order.id.clone()))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(StoreError::unavailable)?;
            items.push(TransactWriteItem::builder().put(key).build());
        }
        let key_item = (order.idempotency_key.is_some()).then_some(items.len() - 1);
        match self.transact(items).await {
            Ok(()) => Ok(Placed::New),
            // The key was taken meanwhile: read again, and answer its order.
            Err(Attempt::Lost(failed)) if key_item.is_some_and(|key| failed.contains(&key)) => {
                Err(Attempt::Lost(Vec::new()))
            }
            // The count's condition (the first item) failed: the limit is reached.
            Err(Attempt::Lost(failed)) if failed.contains(&0) => {
                Ok(Placed::TooManyOpen(open_limit))
            }
            Err(other) => Err(other),
        }
    }

    /// The count of the user's open orders moved by `by`, on condition that it is below
    /// `limit` when one is given.
    fn open_orders_change(
        &self,
        user: &UserId,
        by: i64,
        limit: Option<u32>,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(user_pk(user)))
            .key("sk", s(OPEN_SK))
            .update_expression("ADD #open :by")
            .expression_attribute_names("#open", "open")
            .expression_attribute_values(":by", n(by));
        let update = match limit {
            Some(limit) => update
                .condition_expression("attribute_not_exists(#open) OR #open < :limit")
                .expression_attribute_values(":limit", n(i64::from(limit))),
            None => update,
        };
        Ok(TransactWriteItem::builder()
            .update(update.build().map_err(StoreError::unavailable)?)
            .build())
    }
}

#[async_trait]
impl PrintOrderStore for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all, fields(user = %order.user.truncated()))]
    async fn place_print_order(
        &self,
        order: &PrintOrder,
        open_limit: u32,
    ) -> Result<Placed, StoreError> {
        until_settled(|| self.place_once(order, open_limit)).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn print_order(&self, id: &str) -> Result<Option<PrintOrder>, StoreError> {
        Ok(self.read_order(id).await?.map(|(order, _)| order))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn replace_print_order(
        &self,
        expected: &PrintOrder,
        replacement: &PrintOrder,
    ) -> Result<bool, StoreError> {
        let Some((stored, doc)) = self.read_order(&expected.id).await? else {
            return Ok(false);
        };
        if stored != *expected {
            return Ok(false);
        }
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(order_pk(&expected.id)))
            .item("sk", s(ORDER))
            .item("doc", s(replacement.write()))
            .condition_expression("doc = :read")
            .expression_attribute_values(":read", s(doc))
            .build()
            .map_err(StoreError::unavailable)?;
        let mut items = vec![
            TransactWriteItem::builder().put(put).build(),
            self.order_note(replacement)?,
        ];
        if expected.status.is_open() && !replacement.status.is_open() {
            items.push(self.open_orders_change(&expected.user, -1, None)?);
        }
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(Attempt::Lost(_)) => Ok(false),
            Err(Attempt::Failed(error)) => Err(error),
        }
    }
}
