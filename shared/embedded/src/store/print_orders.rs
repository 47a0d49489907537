//! Print orders: the print_orders table.

use super::*;
use storybook_core::documents::Document;
use storybook_core::domain::print::PrintOrder;
use storybook_core::ports::print_orders::{Placed, PrintOrderStore};

fn read_order(connection: &Connection, id: &str) -> anyhow::Result<Option<PrintOrder>> {
    let doc: Option<String> = connection
        .query_row("SELECT doc FROM print_orders WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(doc.map(|doc| PrintOrder::read(&doc)).transpose()?)
}

#[async_trait]
impl PrintOrderStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(user = %order.user.truncated()))]
    async fn place_print_order(
        &self,
        order: &PrintOrder,
        open_limit: u32,
    ) -> Result<Placed, StoreError> {
        let order = order.clone();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let user = order.user.as_str();
            if let Some(key) = &order.idempotency_key {
                let earlier: Option<String> = tx
                    .query_row(
                        "SELECT doc FROM print_orders WHERE user_id = ?1 AND idempotency_key = ?2",
                        params![user, key],
                        |r| r.get(0),
                    )
                    .optional()?;
                if let Some(doc) = earlier {
                    return Ok(Placed::Existing(Box::new(PrintOrder::read(&doc)?)));
                }
            }
            let open: u32 = tx.query_row(
                "SELECT COUNT(*) FROM print_orders WHERE user_id = ?1 AND open = 1",
                [user],
                |r| r.get(0),
            )?;
            if open >= open_limit {
                return Ok(Placed::TooManyOpen(open));
            }
            tx.execute(
                "INSERT INTO print_orders (id, user_id, idempotency_key, open, doc)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    order.id,
                    user,
                    order.idempotency_key,
                    order.status.is_open(),
                    order.write()
                ],
            )?;
            tx.commit()?;
            Ok(Placed::New)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn print_order(&self, id: &str) -> Result<Option<PrintOrder>, StoreError> {
        let id = id.to_owned();
        self.run(move |c| read_order(c, &id)).await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn replace_print_order(
        &self,
        expected: &PrintOrder,
        replacement: &PrintOrder,
    ) -> Result<bool, StoreError> {
        let (expected, replacement) = (expected.clone(), replacement.clone());
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            if read_order(&tx, &expected.id)?.as_ref() != Some(&expected) {
                return Ok(false);
            }
            tx.execute(
                "UPDATE print_orders SET open = ?2, doc = ?3 WHERE id = ?1",
                params![
                    expected.id,
                    replacement.status.is_open(),
                    replacement.write()
                ],
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }
}
