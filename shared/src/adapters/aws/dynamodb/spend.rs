//! Spend and the kill switch on DynamoDB. An add is one transaction of three updates (the day's
//! total, the book's record for the day, the book's whole cost), guarded by the total it read:
//! the total after it is then known exactly, so exactly one add sees the alert threshold
//! crossed. A lost race reads again and retries ([`until_settled`]).

use super::{Attempt, DynamoStore, Item, describe, n, num, s, text, until_settled};
use crate::domain::book::BookId;
use crate::domain::spend::{BookSpend, DaySpend, KillSwitch, Microdollars, SpendCharge};
use crate::ports::store::{SpendStore, StoreError};
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use chrono::NaiveDate;

const TOTAL: &str = "TOTAL";
const COST: &str = "COST";

fn day_pk(day: NaiveDate) -> String {
    format!("SPEND#{}", day.format("%Y-%m-%d"))
}

fn cost_pk(book: &BookId) -> String {
    format!("COST#{}", book.as_str())
}

fn micros(item: &Item, name: &str) -> Result<Microdollars, StoreError> {
    if !item.contains_key(name) {
        return Ok(Microdollars::ZERO);
    }
    Ok(Microdollars(num(item, name)?.max(0) as u64))
}

fn count(item: &Item, name: &str) -> Result<u64, StoreError> {
    Ok(micros(item, name)?.0)
}

impl DynamoStore {
    /// `ADD micros :cost, calls :one` on one item, as a transaction member.
    fn add_update(
        &self,
        pk: String,
        sk: String,
        cost: Microdollars,
    ) -> Result<TransactWriteItem, StoreError> {
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .update_expression("ADD micros :cost, calls :one")
            .expression_attribute_values(":cost", n(cost.0 as i64))
            .expression_attribute_values(":one", n(1))
            .build()
            .map_err(StoreError::unavailable)?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    async fn try_add(&self, charge: &SpendCharge) -> Result<Microdollars, Attempt> {
        let pk = day_pk(charge.day);
        let seen = match self.get(pk.clone(), TOTAL).await? {
            Some(item) => micros(&item, "micros")?,
            None => Microdollars::ZERO,
        };
        let guard = if seen == Microdollars::ZERO {
            "attribute_not_exists(micros) OR micros = :seen"
        } else {
            "micros = :seen"
        };
        let total = Update::builder()
            .table_name(&self.table)
            .key("pk", s(pk.clone()))
            .key("sk", s(TOTAL))
            .update_expression("ADD micros :cost, calls :one")
            .condition_expression(guard)
            .expression_attribute_values(":cost", n(charge.cost.0 as i64))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":seen", n(seen.0 as i64))
            .build()
            .map_err(StoreError::unavailable)?;
        let items = vec![
            TransactWriteItem::builder().update(total).build(),
            self.add_update(pk, format!("BOOK#{}", charge.book.as_str()), charge.cost)?,
            self.add_update(cost_pk(&charge.book), COST.into(), charge.cost)?,
        ];
        self.transact(items).await?;
        Ok(seen.saturating_add(charge.cost))
    }

    async fn try_finish(&self, day: NaiveDate, book: &BookId) -> Result<bool, Attempt> {
        let cost = match self.get(cost_pk(book), COST).await? {
            Some(item) if item.contains_key("finished_day") => return Ok(false),
            Some(item) => micros(&item, "micros")?,
            None => Microdollars::ZERO,
        };
        let mark = Update::builder()
            .table_name(&self.table)
            .key("pk", s(cost_pk(book)))
            .key("sk", s(COST))
            .update_expression("SET finished_day = :day")
            .condition_expression("attribute_not_exists(finished_day)")
            .expression_attribute_values(":day", s(day.format("%Y-%m-%d").to_string()))
            .build()
            .map_err(StoreError::unavailable)?;
        let count = Update::builder()
            .table_name(&self.table)
            .key("pk", s(day_pk(day)))
            .key("sk", s(TOTAL))
            .update_expression("ADD finished_books :one, finished_micros :cost")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":cost", n(cost.0 as i64))
            .build()
            .map_err(StoreError::unavailable)?;
        // A lost race (someone else marked it, or added to its cost) reads again.
        self.transact(vec![
            TransactWriteItem::builder().update(mark).build(),
            TransactWriteItem::builder().update(count).build(),
        ])
        .await?;
        Ok(true)
    }
}

#[async_trait]
impl SpendStore for DynamoStore {
    async fn add_spend(&self, charge: &SpendCharge) -> Result<Microdollars, StoreError> {
        until_settled(|| self.try_add(charge)).await
    }

    async fn spent_on(&self, day: NaiveDate) -> Result<Microdollars, StoreError> {
        match self.get(day_pk(day), TOTAL).await? {
            Some(item) => micros(&item, "micros"),
            None => Ok(Microdollars::ZERO),
        }
    }

    async fn day_spend(&self, day: NaiveDate) -> Result<DaySpend, StoreError> {
        let mut spend = DaySpend::default();
        for item in self.query_all(day_pk(day), "", false).await? {
            let sk = text(&item, "sk")?;
            if sk == TOTAL {
                spend.total = micros(&item, "micros")?;
                spend.calls = count(&item, "calls")?;
                spend.finished_books = count(&item, "finished_books")?;
                spend.finished_cost = micros(&item, "finished_micros")?;
            } else if let Some(book) = sk.strip_prefix("BOOK#") {
                spend.books.push(BookSpend {
                    book: book.to_owned(),
                    cost: micros(&item, "micros")?,
                    calls: count(&item, "calls")?,
                });
            }
        }
        spend
            .books
            .sort_by(|a, b| b.cost.cmp(&a.cost).then_with(|| a.book.cmp(&b.book)));
        Ok(spend)
    }

    async fn book_cost(&self, book: &BookId) -> Result<(Microdollars, u64), StoreError> {
        match self.get(cost_pk(book), COST).await? {
            Some(item) => Ok((micros(&item, "micros")?, count(&item, "calls")?)),
            None => Ok((Microdollars::ZERO, 0)),
        }
    }

    async fn record_finished_book(
        &self,
        day: NaiveDate,
        book: &BookId,
    ) -> Result<bool, StoreError> {
        until_settled(|| self.try_finish(day, book)).await
    }

    async fn kill_switch(&self) -> Result<Option<KillSwitch>, StoreError> {
        match self.get("SWITCH#kill".into(), "SWITCH").await? {
            Some(item) => serde_json::from_str(&text(&item, "doc")?)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("kill switch: {e}"))),
            None => Ok(None),
        }
    }

    async fn put_kill_switch(&self, switch: &KillSwitch) -> Result<(), StoreError> {
        let doc = serde_json::to_string(switch).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s("SWITCH#kill"))
            .item("sk", s("SWITCH"))
            .item("doc", s(doc))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe(e)))?;
        Ok(())
    }
}
