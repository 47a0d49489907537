//! Spend and the kill switch on SQLite: each add is one `IMMEDIATE` transaction over the day's
//! total, the book's record for the day and its whole cost.

use super::SqliteStore;
use async_trait::async_trait;
use chrono::NaiveDate;
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use storybook_core::documents::Document;
use storybook_core::domain::book::BookId;
use storybook_core::domain::spend::{
    BookSpend, DaySpend, ERASED_BOOK, KillSwitch, Microdollars, SpendCharge,
};
use storybook_core::ports::store::{SpendStore, StoreError};

const KILL_SWITCH: &str = "kill-switch";

fn day_text(day: NaiveDate) -> String {
    day.format("%Y-%m-%d").to_string()
}

#[async_trait]
impl SpendStore for SqliteStore {
    #[tracing::instrument(level = "debug", skip_all, fields(book = ?charge.book))]
    async fn add_spend(&self, charge: &SpendCharge) -> Result<Microdollars, StoreError> {
        let day = day_text(charge.day);
        let book = charge.book.as_str().to_owned();
        let micros = charge.cost.0 as i64;
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let total: i64 = tx.query_row(
                "INSERT INTO spend_days (day, micros, calls) VALUES (?1, ?2, 1)
                 ON CONFLICT (day) DO UPDATE SET micros = micros + ?2, calls = calls + 1
                 RETURNING micros",
                params![day, micros],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO spend_books (day, book_id, micros, calls) VALUES (?1, ?2, ?3, 1)
                 ON CONFLICT (day, book_id) DO UPDATE SET micros = micros + ?3, calls = calls + 1",
                params![day, book, micros],
            )?;
            tx.execute(
                "INSERT INTO book_costs (book_id, micros, calls) VALUES (?1, ?2, 1)
                 ON CONFLICT (book_id) DO UPDATE SET micros = micros + ?2, calls = calls + 1",
                params![book, micros],
            )?;
            tx.commit()?;
            Ok(Microdollars(total as u64))
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%day))]
    async fn spent_on(&self, day: NaiveDate) -> Result<Microdollars, StoreError> {
        let day = day_text(day);
        self.run(move |c| {
            let total: Option<i64> = c
                .query_row("SELECT micros FROM spend_days WHERE day = ?1", [day], |r| {
                    r.get(0)
                })
                .optional()?;
            Ok(Microdollars(total.unwrap_or(0) as u64))
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%day))]
    async fn day_spend(&self, day: NaiveDate) -> Result<DaySpend, StoreError> {
        let day = day_text(day);
        self.run(move |c| {
            let totals: Option<(i64, i64, i64, i64)> = c
                .query_row(
                    "SELECT micros, calls, finished_books, finished_micros FROM spend_days WHERE day = ?1",
                    [&day],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let Some((micros, calls, finished_books, finished_micros)) = totals else {
                return Ok(DaySpend::default());
            };
            let mut statement = c.prepare(
                "SELECT book_id, micros, calls FROM spend_books WHERE day = ?1
                 ORDER BY micros DESC, book_id",
            )?;
            let books = statement
                .query_map([&day], |r| {
                    Ok(BookSpend {
                        book: r.get(0)?,
                        cost: Microdollars(r.get::<_, i64>(1)? as u64),
                        calls: r.get::<_, i64>(2)? as u64,
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(DaySpend {
                total: Microdollars(micros as u64),
                calls: calls as u64,
                books,
                finished_books: finished_books as u64,
                finished_cost: Microdollars(finished_micros as u64),
            })
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(book = %book.as_str()))]
    async fn book_cost(&self, book: &BookId) -> Result<(Microdollars, u64), StoreError> {
        let book = book.as_str().to_owned();
        self.run(move |c| {
            let row: Option<(i64, i64)> = c
                .query_row(
                    "SELECT micros, calls FROM book_costs WHERE book_id = ?1",
                    [book],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let (micros, calls) = row.unwrap_or((0, 0));
            Ok((Microdollars(micros as u64), calls as u64))
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(%day, book = %book.as_str()))]
    async fn record_finished_book(
        &self,
        day: NaiveDate,
        book: &BookId,
    ) -> Result<bool, StoreError> {
        let day = day_text(day);
        let book = book.as_str().to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            // A book that cost nothing (offline providers) has no record yet: it gets one.
            tx.execute(
                "INSERT INTO book_costs (book_id, micros, calls) VALUES (?1, 0, 0)
                 ON CONFLICT (book_id) DO NOTHING",
                [&book],
            )?;
            let cost: Option<i64> = tx
                .query_row(
                    "UPDATE book_costs SET finished_day = ?2
                     WHERE book_id = ?1 AND finished_day IS NULL RETURNING micros",
                    params![book, day],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(cost) = cost else {
                return Ok(false);
            };
            tx.execute(
                "INSERT INTO spend_days (day, micros, calls, finished_books, finished_micros)
                 VALUES (?1, 0, 0, 1, ?2)
                 ON CONFLICT (day) DO UPDATE SET finished_books = finished_books + 1,
                     finished_micros = finished_micros + ?2",
                params![day, cost],
            )?;
            tx.commit()?;
            Ok(true)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all, fields(book = %book.as_str()))]
    async fn anonymise_book_spend(&self, book: &BookId) -> Result<(), StoreError> {
        let book = book.as_str().to_owned();
        self.run(move |c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            tx.execute(
                "INSERT INTO spend_books (day, book_id, micros, calls)
                 SELECT day, ?2, micros, calls FROM spend_books WHERE book_id = ?1
                 ON CONFLICT (day, book_id) DO UPDATE SET micros = micros + excluded.micros,
                     calls = calls + excluded.calls",
                params![book, ERASED_BOOK],
            )?;
            tx.execute("DELETE FROM spend_books WHERE book_id = ?1", [&book])?;
            tx.execute("DELETE FROM book_costs WHERE book_id = ?1", [&book])?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn kill_switch(&self) -> Result<Option<KillSwitch>, StoreError> {
        self.run(|c| {
            let doc: Option<String> = c
                .query_row(
                    "SELECT doc FROM switches WHERE name = ?1",
                    [KILL_SWITCH],
                    |r| r.get(0),
                )
                .optional()?;
            Ok(doc.map(|doc| Document::read(&doc)).transpose()?)
        })
        .await
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn put_kill_switch(&self, switch: &KillSwitch) -> Result<(), StoreError> {
        let doc = Document::write(switch);
        self.run(move |c| {
            c.execute(
                "INSERT INTO switches (name, doc) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET doc = ?2",
                params![KILL_SWITCH, doc],
            )?;
            Ok(())
        })
        .await
    }
}
