//! The state store on one DynamoDB table (`pk`, `sk` strings; TTL attribute `expires_at`).
//!
//! | item | pk | sk | read by |
//! | --- | --- | --- | --- |
//! | user | `USER#{user hash}` | `PROFILE` | GetItem on every app request |
//! | ledger entry | `USER#{user hash}` | `LEDGER#{seq, 12 digits}` | Query, newest first |
//! | grant | `GRANT#{transaction id}` | `GRANT` | conditional Put (once per transaction); holds no user |
//! | API key | `APIKEY#{key hash}` | `APIKEY` | GetItem on every admin request |
//! | limit counter | `LIMIT#{counter}#{window start}` | `LIMIT` | UpdateItem ADD, expires by TTL |
//! | book (and its job) | `BOOK#{book id}` | `BOOK` | Query of the partition by id (with its page assets); `doc` is the book as JSON, `version` guards every replacement |
//! | page asset | `BOOK#{book id}` | `ASSET#{page, 2 digits}#{image or audio}` | the same Query; conditional Put, once per page and kind, so parallel steps never write the book item |
//! | library entry | `USER#{user hash}` | `BOOK#{created at}#{book id}` | Query, newest first, then BatchGetItem of the books |
//! | unfinished book | `UNFINISHED` | `{created at}#{book id}` | Query `sk <` a cutoff (the stuck-book sweep); put with the book, removed by the write that finishes it |
//! | a user's unfinished book | `USER#{user hash}` | `UNFINISHED#{created at}#{book id}` | Query COUNT on every create (the cap on unfinished books); kept like the one above |
//! | idempotency record | `USER#{user hash}` | `IDEM#{X-Idempotency-Key}` | GetItem before a create; written in its transaction; answers retries for 24 h (`expires_at`) |
//! | settings | `USER#{user hash}` | `SETTINGS` | GetItem (time zone) on streak reads and book creates |
//! | streak | `USER#{user hash}` | `STREAK` | GetItem; `version` guards every replacement |
//! | circuit breaker | `BREAKER#{provider}` | `BREAKER` | GetItem before a provider call; `version` guards every replacement |
//! | reading session | `USER#{user hash}` | `READ#{local day}#{read at}#{id}` | Query BETWEEN two local days (calendar, history) |
//! | day's spend | `SPEND#{UTC day}` | `TOTAL` | GetItem on every book create and before every provider call; see `spend.rs` |
//! | a book's spend on a day | `SPEND#{UTC day}` | `BOOK#{book id}` | Query of the day (the admin's spend report) |
//! | a book's whole cost | `COST#{book id}` | `COST` | GetItem when the book finishes |
//! | kill switch | `SWITCH#kill` | `SWITCH` | GetItem on every book create and before every provider call |
//! | store payment, a user's plan | see `purchases.rs` | | |
//! | print order | see `print_orders.rs` | | |
//! | a family's child profiles | `USER#{user hash}` | `PROFILES`: `doc`, `version` | GetItem; Put on condition of the version read |
//!
//! A book is created in one transaction with its charge (balance update, `usage` ledger entry),
//! its library entry and its idempotency record; a failed book's refund is one transaction of the
//! book (version-guarded) and the balance. Generation steps replace the book document with a
//! version condition, so parallel steps never overwrite each other.
//!
//! Balance and ledger move together in one `TransactWriteItems`, guarded by the user's
//! `ledger_seq` (optimistic concurrency: a lost race re-reads and tries again). Items past their
//! `expires_at` are treated as absent when read: DynamoDB deletes them days late, moto never.

use crate::sdk::describe;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Put, ReturnValue, TransactWriteItem, Update,
};
use backon::{ExponentialBuilder, Retryable};
use chrono::NaiveDate;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::time::Duration;
use storybook_core::clock::Clock;
use storybook_core::documents::Document;
use storybook_core::domain::api_key::{ApiKeyRecord, KeyEnvironment, Scope};
use storybook_core::domain::audit::{AuditEntry, AuditEvent};
use storybook_core::domain::book::{Book, BookId, Idempotency, IdempotencyKey, RecordedAsset};
use storybook_core::domain::breaker::BreakerRecord;
use storybook_core::domain::character::{Character, CharacterId};
use storybook_core::domain::consent::Consent;
use storybook_core::domain::credential::CredentialHash;
use storybook_core::domain::credits::{EntryKind, Grant, GrantOutcome, LedgerEntry, LedgerPage};
use storybook_core::domain::settings::UserSettings;
use storybook_core::domain::streak::Reading;
use storybook_core::domain::user::{User, UserId, UserLookup};
use storybook_core::ports::store::{
    ApiKeyStore, AuditStore, BookStore, BreakerStore, CharacterStore, ConsentStore, CreateOutcome,
    CreditStore, KeyUsage, LimitDecision, LimitStore, SettingsStore, Settlement, Store, StoreError,
    StoredBook, StoredStreak, StreakAdvance, StreakStore, UserStore, Window,
};

mod audit;
mod book_items;
mod books;
mod breakers;
mod characters;
mod consents;
mod keys;
mod limits;
mod print_orders;
mod profiles;
mod purchases;
mod refunds;
mod settings;
mod shares;
mod spend;
mod streaks;
mod users;

type Item = HashMap<String, AttributeValue>;

const PROFILE: &str = "PROFILE";

#[derive(Clone)]
pub struct DynamoStore {
    client: crate::sdk::LazyClient<Client>,
    table: String,
    /// What "now" is when an item's time to live is read (DynamoDB deletes expired items only
    /// eventually, so reads check it themselves).
    clock: Clock,
}

impl DynamoStore {
    pub fn new(
        client: impl Into<crate::sdk::LazyClient<Client>>,
        table: impl Into<String>,
    ) -> Self {
        Self {
            client: client.into(),
            table: table.into(),
            clock: Clock::system(),
        }
    }

    /// The store reading time from `clock`.
    pub fn with_clock(self, clock: Clock) -> Self {
        Self { clock, ..self }
    }

    async fn get(&self, pk: String, sk: &str) -> Result<Option<Item>, StoreError> {
        let answer = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe(e)))?;
        Ok(answer.item)
    }

    async fn read_user(&self, id: &UserId) -> Result<Option<(User, i64)>, StoreError> {
        let Some(item) = self.get(user_pk(id), PROFILE).await? else {
            return Ok(None);
        };
        let user = User {
            id: id.clone(),
            credits: num(&item, "credits")?,
            total_purchased: num(&item, "total_purchased")?,
            total_used: num(&item, "total_used")?,
            created_at: time(&item, "created_at")?,
        };
        Ok(Some((user, num(&item, "ledger_seq")?)))
    }

    /// Moves a balance and appends its ledger entry in one transaction, guarded by the user's
    /// ledger sequence; `extra` joins the same transaction (a grant's once-only marker, a book).
    async fn append_entry(
        &self,
        user: &UserId,
        seen_seq: i64,
        delta: i64,
        balance_after: i64,
        entry: EntryFields<'_>,
        extra: Vec<TransactWriteItem>,
    ) -> Result<(), Attempt> {
        let seq = seen_seq + 1;
        let (purchased, used) = match entry.kind {
            EntryKind::Purchase | EntryKind::Subscription => (delta, 0),
            EntryKind::Usage => (0, -delta),
            _ => (0, 0),
        };
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", s(user_pk(user)))
            .key("sk", s(PROFILE))
            .update_expression(
                "SET credits = credits + :delta, ledger_seq = :seq, \
                 total_purchased = total_purchased + :purchased, total_used = total_used + :used",
            )
            .condition_expression("ledger_seq = :seen")
            .expression_attribute_values(":delta", n(delta))
            .expression_attribute_values(":seq", n(seq))
            .expression_attribute_values(":seen", n(seen_seq))
            .expression_attribute_values(":purchased", n(purchased))
            .expression_attribute_values(":used", n(used))
            .build()
            .map_err(|e| Attempt::Failed(StoreError::unavailable(e)))?;
        let mut items = extra;
        items.push(TransactWriteItem::builder().update(update).build());
        items.push(self.ledger_put(user, seq, delta, balance_after, entry)?);
        self.transact(items).await
    }

    fn ledger_put(
        &self,
        user: &UserId,
        seq: i64,
        delta: i64,
        balance_after: i64,
        entry: EntryFields<'_>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(user_pk(user)))
            .item("sk", s(ledger_sk(seq)))
            .item("seq", n(seq))
            .item("delta", n(delta))
            .item("balance_after", n(balance_after))
            .item("kind", s(entry.kind.as_str()))
            .item("description", s(entry.description))
            .item("created_at", s(entry.at.to_rfc3339()))
            .condition_expression("attribute_not_exists(pk)");
        if let Some(reference) = entry.reference {
            put = put.item("reference", s(reference));
        }
        let put = put.build().map_err(StoreError::unavailable)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<(), Attempt> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(SdkError::ServiceError(e)) => match e.err() {
                TransactWriteItemsError::TransactionCanceledException(cancelled) => {
                    Err(Attempt::cancelled(cancelled.cancellation_reasons()))
                }
                _ => Err(Attempt::Failed(StoreError::Unavailable(describe(
                    SdkError::ServiceError(e),
                )))),
            },
            Err(e) => Err(Attempt::Failed(StoreError::Unavailable(describe(e)))),
        }
    }
}

/// One try of a conditional write: lost a race (read again and retry) or failed for good.
#[derive(Debug)]
enum Attempt {
    /// Another writer came first: the items (by their place in the transaction) whose
    /// condition failed, empty when DynamoDB did not say (a conflict with a transaction in
    /// flight, or throttling, which are retried the same way).
    Lost(Vec<usize>),
    Failed(StoreError),
}

impl Attempt {
    /// What a cancelled transaction means, from its cancellation reasons (one per item, in
    /// order; `None` for an item that was not the cause): failed conditions and conflicts are
    /// races worth another try; a validation error or an item collection past its size limit
    /// will fail again however often it is tried.
    fn cancelled(reasons: &[CancellationReason]) -> Self {
        let mut failed_conditions = Vec::new();
        for (place, reason) in reasons.iter().enumerate() {
            match reason.code().unwrap_or("None") {
                "None" => {}
                "ConditionalCheckFailed" => failed_conditions.push(place),
                "TransactionConflict"
                | "ThrottlingError"
                | "ProvisionedThroughputExceeded"
                | "RequestLimitExceeded" => {}
                permanent => {
                    let message = reason.message().unwrap_or_default();
                    return Attempt::Failed(StoreError::unavailable(anyhow::anyhow!(
                        "transaction cancelled for item {place}: {permanent} {message}"
                    )));
                }
            }
        }
        Attempt::Lost(failed_conditions)
    }

    /// Whether the condition of the item at `place` is known to have failed.
    fn condition_failed_at(&self, place: usize) -> bool {
        matches!(self, Attempt::Lost(failed) if failed.contains(&place))
    }
}

impl From<StoreError> for Attempt {
    fn from(error: StoreError) -> Self {
        Attempt::Failed(error)
    }
}

/// The adapter's one retry policy, for lost races: short, jittered, bounded. Fifty writers on one
/// balance settle within it.
fn race_retries() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(2))
        .with_max_delay(Duration::from_millis(200))
        .with_factor(1.5)
        .with_jitter()
        .with_max_times(200)
}

/// Runs a conditional write until it stops losing races (within [`race_retries`]).
async fn until_settled<T, F, Fut>(attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Attempt>>,
{
    attempt
        .retry(race_retries())
        .when(|a: &Attempt| matches!(a, Attempt::Lost(_)))
        .await
        .map_err(|attempt| match attempt {
            Attempt::Failed(error) => error,
            Attempt::Lost(_) => {
                StoreError::unavailable(anyhow::anyhow!("too much contention on one item"))
            }
        })
}

#[derive(Clone, Copy)]
struct EntryFields<'a> {
    kind: EntryKind,
    description: &'a str,
    reference: Option<&'a str>,
    at: DateTime<Utc>,
}

fn user_pk(id: &UserId) -> String {
    format!("USER#{}", id.as_str())
}

fn ledger_sk(seq: i64) -> String {
    format!("LEDGER#{seq:012}")
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn text(item: &Item, name: &str) -> Result<String, StoreError> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Ok(value.clone()),
        _ => Err(StoreError::Corrupt(format!(
            "attribute {name} is not a string"
        ))),
    }
}

fn optional_text(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(value)) => Some(value.clone()),
        _ => None,
    }
}

/// A number attribute that older items may not have.
fn optional_num(item: &Item, name: &str) -> Result<Option<i64>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(_) => num(item, name).map(Some),
    }
}

fn num(item: &Item, name: &str) -> Result<i64, StoreError> {
    match item.get(name) {
        Some(AttributeValue::N(value)) => value
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("attribute {name} is not an integer"))),
        _ => Err(StoreError::Corrupt(format!(
            "attribute {name} is not a number"
        ))),
    }
}

fn parse_time(raw: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("time {raw:?}: {e}")))
}

fn time(item: &Item, name: &str) -> Result<DateTime<Utc>, StoreError> {
    parse_time(&text(item, name)?)
}

fn optional_time(item: &Item, name: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
    optional_text(item, name)
        .map(|raw| parse_time(&raw))
        .transpose()
}

fn asset_sk(page: u8, kind: &str) -> String {
    format!("ASSET#{page:02}#{kind}")
}

/// Whether a single-item write (put, update, delete) failed on its condition.
fn is_conditional_failure<E: aws_sdk_dynamodb::error::ProvideErrorMetadata, R>(
    error: &SdkError<E, R>,
) -> bool {
    matches!(error, SdkError::ServiceError(e) if e.err().code() == Some("ConditionalCheckFailedException"))
}

/// Whether a single-item conditional write (put, update, delete) happened: false when its
/// condition failed, an error when DynamoDB could not be asked.
fn conditionally_written<T, E, R>(result: Result<T, SdkError<E, R>>) -> Result<bool, StoreError>
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_conditional_failure(&e) => Ok(false),
        Err(e) => Err(StoreError::Unavailable(describe(e))),
    }
}

impl DynamoStore {
    /// Puts a versioned document (`doc`, `version`) if its stored version is still `read` (0:
    /// none stored yet); false when another writer moved it first.
    async fn put_versioned(
        &self,
        pk: String,
        sk: String,
        doc: String,
        read: u64,
    ) -> Result<bool, StoreError> {
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("sk", s(sk))
            .item("doc", s(doc))
            .item("version", n(read as i64 + 1));
        let put = if read == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("version = :read")
                .expression_attribute_values(":read", n(read as i64))
        };
        conditionally_written(put.send().await)
    }

    /// Writes and deletes in batches of 25 (BatchWriteItem), resending what DynamoDB leaves
    /// unprocessed.
    async fn write_batches(
        &self,
        requests: Vec<aws_sdk_dynamodb::types::WriteRequest>,
    ) -> Result<(), StoreError> {
        for chunk in requests.chunks(25) {
            let mut pending = Some(std::collections::HashMap::from([(
                self.table.clone(),
                chunk.to_vec(),
            )]));
            while let Some(items) = pending.take().filter(|p| !p.is_empty()) {
                let answer = self
                    .client
                    .batch_write_item()
                    .set_request_items(Some(items))
                    .send()
                    .await
                    .map_err(|e| StoreError::Unavailable(describe(e)))?;
                pending = answer.unprocessed_items;
            }
        }
        Ok(())
    }
}

/// Which sort keys of a partition a query reads.
enum SortKeys<'a> {
    Prefix(&'a str),
    /// Inclusive bounds.
    Between(String, String),
}

impl DynamoStore {
    /// Every item of a partition (whose sort keys start with `prefix`), in sort-key order.
    async fn query_all(
        &self,
        pk: String,
        prefix: &str,
        newest_first: bool,
    ) -> Result<Vec<Item>, StoreError> {
        self.query_keys(pk, SortKeys::Prefix(prefix), newest_first)
            .await
    }

    /// Every item of a partition whose sort key is in `keys`, in sort-key order.
    async fn query_keys(
        &self,
        pk: String,
        keys: SortKeys<'_>,
        newest_first: bool,
    ) -> Result<Vec<Item>, StoreError> {
        let mut items = Vec::new();
        let mut start = None;
        loop {
            let query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(pk.clone()));
            let query = match &keys {
                // DynamoDB refuses an empty prefix: no prefix means the whole partition.
                SortKeys::Prefix("") => query.key_condition_expression("pk = :pk"),
                SortKeys::Prefix(prefix) => query
                    .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                    .expression_attribute_values(":prefix", s(*prefix)),
                SortKeys::Between(low, high) => query
                    .key_condition_expression("pk = :pk AND sk BETWEEN :low AND :high")
                    .expression_attribute_values(":low", s(low.clone()))
                    .expression_attribute_values(":high", s(high.clone())),
            };
            let answer = query
                .scan_index_forward(!newest_first)
                .consistent_read(true)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(describe(e)))?;
            items.extend(answer.items.unwrap_or_default());
            start = answer.last_evaluated_key;
            if start.is_none() {
                return Ok(items);
            }
        }
    }
}

#[async_trait]
impl Store for DynamoStore {
    #[tracing::instrument(level = "debug", skip_all)]
    async fn ping(&self) -> Result<(), StoreError> {
        self.get("HEALTH".into(), "HEALTH").await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(codes: &[&str]) -> Vec<CancellationReason> {
        codes
            .iter()
            .map(|code| CancellationReason::builder().code(*code).build())
            .collect()
    }

    #[test]
    fn a_failed_condition_is_a_race_that_names_its_item() {
        let lost = Attempt::cancelled(&reasons(&["None", "ConditionalCheckFailed", "None"]));
        assert!(matches!(&lost, Attempt::Lost(failed) if failed == &[1]));
        assert!(lost.condition_failed_at(1) && !lost.condition_failed_at(0));
    }

    #[test]
    fn conflicts_and_throttling_are_retried_without_naming_an_item() {
        for code in [
            "TransactionConflict",
            "ThrottlingError",
            "ProvisionedThroughputExceeded",
        ] {
            let attempt = Attempt::cancelled(&reasons(&["None", code]));
            assert!(
                matches!(&attempt, Attempt::Lost(failed) if failed.is_empty()),
                "{code}"
            );
        }
        // Reasons DynamoDB left out say nothing either way.
        assert!(matches!(Attempt::cancelled(&[]), Attempt::Lost(failed) if failed.is_empty()));
    }

    #[test]
    fn a_validation_error_fails_for_good() {
        for code in ["ValidationError", "ItemCollectionSizeLimitExceeded"] {
            let attempt = Attempt::cancelled(&reasons(&["ConditionalCheckFailed", code]));
            assert!(matches!(attempt, Attempt::Failed(_)), "{code}");
        }
    }
}
