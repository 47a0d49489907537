//! Spend and the kill switch on DynamoDB. An add is an atomic `ADD` to the day's total that
//! answers the total after it (so exactly one add sees a threshold crossed, and fifty workers on
//! one hot item never retry), then one transaction of the book's two records (for the day, and
//! its whole cost). A process that dies between the two leaves the call counted in the day's
//! total (what the hard limit reads) but not in its book's records: the limit never misses a
//! call.

use super::{Attempt, Document, DynamoStore, Item, n, num, s, text, until_settled};
use crate::sdk::describe;
use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, TransactWriteItem, Update};
use chrono::NaiveDate;
use storybook_core::domain::book::BookId;
use storybook_core::domain::spend::{
    BookSpend, DaySpend, ERASED_BOOK, KillSwitch, Microdollars, SpendCharge,
};
use storybook_core::ports::store::{SpendStore, StoreError};

const TOTAL: &str = "TOTAL";
const COST: &str = "COST";

fn day_text(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

fn day_pk(day: NaiveDate) -> String {
    format!("SPEND#{}", day_text(day))
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

    /// The book's two records, in one transaction (retried when it loses a race).
    async fn try_add_to_book(&self, charge: &SpendCharge) -> Result<(), Attempt> {
        // The whole cost also remembers its days, so that erasure finds the day records.
        let whole = Update::builder()
            .table_name(&self.table)
            .key("pk", s(cost_pk(&charge.book)))
            .key("sk", s(COST))
            .update_expression("ADD micros :cost, calls :one, days :day")
            .expression_attribute_values(":cost", n(charge.cost.0 as i64))
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":day", AttributeValue::Ss(vec![day_text(charge.day)]))
            .build()
            .map_err(StoreError::unavailable)?;
        let items = vec![
            self.add_update(
                day_pk(charge.day),
                format!("BOOK#{}", charge.book.as_str()),
                charge.cost,
            )?,
            TransactWriteItem::builder().update(whole).build(),
        ];
        self.transact(items).await
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
    #[tracing::instrument(level = "debug", skip_all, fields(book = ?charge.book))]
    async fn add_spend(&self, charge: &SpendCharge) -> Result<Microdollars, StoreError> {
        // The day's total first, by one atomic ADD that answers the total after it (exact, and
        // never a lost race, however many workers add at once); then the book's records.
        let answer = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(day_pk(charge.day)))
            .key("sk", s(TOTAL))
            .update_expression("ADD micros :cost, calls :one")
            .expression_attribute_values(":cost", n(charge.cost.0 as i64))
            .expression_attribute_values(":one", n(1))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe(e)))?;
        let total = micros(&answer.attributes.unwrap_or_default(), "micros")?;
        until_settled(|| self.try_add_to_book(charge)).await?;
        Ok(total)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%day))]
    async fn spent_on(&self, day: NaiveDate) -> Result<Microdollars, StoreError> {
        match self.get(day_pk(day), TOTAL).await? {
            Some(item) => micros(&item, "micros"),
            None => Ok(Microdollars::ZERO),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%day))]
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

    #[tracing::instrument(level = "debug", skip_all, fields(book = %book.as_str()))]
    async fn book_cost(&self, book: &BookId) -> Result<(Microdollars, u64), StoreError> {
        match self.get(cost_pk(book), COST).await? {
            Some(item) => Ok((micros(&item, "micros")?, count(&item, "calls")?)),
            None => Ok((Microdollars::ZERO, 0)),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%day, book = %book.as_str()))]
    async fn record_finished_book(
        &self,
        day: NaiveDate,
        book: &BookId,
    ) -> Result<bool, StoreError> {
        until_settled(|| self.try_finish(day, book)).await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(book = %book.as_str()))]
    async fn anonymise_book_spend(&self, book: &BookId) -> Result<(), StoreError> {
        let Some(whole) = self.get(cost_pk(book), COST).await? else {
            return Ok(());
        };
        let days = match whole.get("days") {
            Some(AttributeValue::Ss(days)) => days.clone(),
            _ => Vec::new(),
        };
        for day in days {
            let pk = format!("SPEND#{day}");
            let sk = format!("BOOK#{}", book.as_str());
            let Some(record) = self.get(pk.clone(), &sk).await? else {
                continue;
            };
            let cost = micros(&record, "micros")?;
            let calls = count(&record, "calls")?;
            let delete = aws_sdk_dynamodb::types::Delete::builder()
                .table_name(&self.table)
                .key("pk", s(pk.clone()))
                .key("sk", s(sk))
                .build()
                .map_err(StoreError::unavailable)?;
            let erased = Update::builder()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(format!("BOOK#{ERASED_BOOK}")))
                .update_expression("ADD micros :cost, calls :calls")
                .expression_attribute_values(":cost", n(cost.0 as i64))
                .expression_attribute_values(":calls", n(calls as i64))
                .build()
                .map_err(StoreError::unavailable)?;
            self.client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().delete(delete).build())
                .transact_items(TransactWriteItem::builder().update(erased).build())
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(describe(e)))?;
        }
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(cost_pk(book)))
            .key("sk", s(COST))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe(e)))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn kill_switch(&self) -> Result<Option<KillSwitch>, StoreError> {
        match self.get("SWITCH#kill".into(), "SWITCH").await? {
            Some(item) => Document::read(&text(&item, "doc")?).map(Some),
            None => Ok(None),
        }
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn put_kill_switch(&self, switch: &KillSwitch) -> Result<(), StoreError> {
        let doc = Document::write(switch);
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
