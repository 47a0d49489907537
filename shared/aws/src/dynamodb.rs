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
//!
//! A book is created in one transaction with its charge (balance update, `usage` ledger entry),
//! its library entry and its idempotency record; a failed book's refund is one transaction of the
//! book (version-guarded) and the balance. Generation steps replace the book document with a
//! version condition, so parallel steps never overwrite each other.
//!
//! Balance and ledger move together in one `TransactWriteItems`, guarded by the user's
//! `ledger_seq` (optimistic concurrency: a lost race re-reads and tries again). Items past their
//! `expires_at` are treated as absent when read: DynamoDB deletes them days late, moto never.

use crate::domain::api_key::{ApiKeyRecord, KeyEnvironment, Scope};
use crate::domain::audit::{AuditEntry, AuditEvent};
use crate::domain::book::{Book, BookId, Idempotency, IdempotencyKey, RecordedAsset};
use crate::domain::breaker::BreakerRecord;
use crate::domain::credential::CredentialHash;
use crate::domain::credits::{EntryKind, Grant, GrantOutcome, LedgerEntry, LedgerPage};
use crate::domain::settings::UserSettings;
use crate::domain::streak::Reading;
use crate::domain::user::{User, UserId, UserLookup};
use crate::ports::store::{
    ApiKeyStore, AuditStore, BookStore, BreakerStore, CreateOutcome, CreditStore, KeyUsage,
    LimitDecision, LimitStore, SettingsStore, Settlement, Store, StoreError, StoredBook,
    StoredStreak, StreakAdvance, StreakStore, UserStore, Window,
};
use crate::sdk::describe;
use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem, Update};
use backon::{ExponentialBuilder, Retryable};
use chrono::NaiveDate;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::time::Duration;

mod spend;

type Item = HashMap<String, AttributeValue>;

const PROFILE: &str = "PROFILE";

#[derive(Clone)]
pub struct DynamoStore {
    client: crate::sdk::LazyClient<Client>,
    table: String,
}

impl DynamoStore {
    pub fn new(
        client: impl Into<crate::sdk::LazyClient<Client>>,
        table: impl Into<String>,
    ) -> Self {
        Self {
            client: client.into(),
            table: table.into(),
        }
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
            Err(SdkError::ServiceError(e))
                if matches!(
                    e.err(),
                    TransactWriteItemsError::TransactionCanceledException(_)
                ) =>
            {
                Err(Attempt::Lost)
            }
            Err(e) => Err(Attempt::Failed(StoreError::Unavailable(describe(e)))),
        }
    }
}

/// One try of an optimistic write: lost a race (read again and retry) or failed for good.
#[derive(Debug)]
enum Attempt {
    Lost,
    Failed(StoreError),
}

impl From<StoreError> for Attempt {
    fn from(error: StoreError) -> Self {
        Attempt::Failed(error)
    }
}

/// Retries for lost races: short, jittered, bounded. Fifty writers on one balance settle within it.
fn race_retries() -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(2))
        .with_max_delay(Duration::from_millis(200))
        .with_factor(1.5)
        .with_jitter()
        .with_max_times(200)
}

/// Runs an optimistic write until it stops losing races (within [`race_retries`]).
async fn until_settled<T, F, Fut>(attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Attempt>>,
{
    attempt
        .retry(race_retries())
        .when(|a: &Attempt| matches!(a, Attempt::Lost))
        .await
        .map_err(|attempt| match attempt {
            Attempt::Failed(error) => error,
            Attempt::Lost => {
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

fn is_conditional_failure<R>(
    error: &SdkError<aws_sdk_dynamodb::operation::put_item::PutItemError, R>,
) -> bool {
    matches!(error, SdkError::ServiceError(e) if e.err().is_conditional_check_failed_exception())
}

impl DynamoStore {
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

#[async_trait]
impl UserStore for DynamoStore {
    async fn erase_user(&self, id: &UserId) -> Result<u64, StoreError> {
        use aws_sdk_dynamodb::types::{DeleteRequest, PutRequest, WriteRequest};
        let anonymous = format!("ERASED#{}", uuid::Uuid::new_v4().simple());
        let mut requests = Vec::new();
        let mut kept = 0;
        for item in self.query_all(user_pk(id), "", false).await? {
            let sk = text(&item, "sk")?;
            if sk == PROFILE || sk.starts_with("LEDGER#") {
                // Kept, under an id that leads back to no one, without its free text.
                let mut copy: Item = item.clone();
                copy.insert("pk".into(), s(anonymous.clone()));
                copy.remove("description");
                copy.remove("reference");
                kept += u64::from(sk != PROFILE);
                let put = PutRequest::builder()
                    .set_item(Some(copy))
                    .build()
                    .map_err(StoreError::unavailable)?;
                requests.push(WriteRequest::builder().put_request(put).build());
            }
            if let Some(created_and_id) = sk.strip_prefix("BOOK#") {
                let book = text(&item, "book_id")?;
                // The book with its page assets, and its entry in the index of unfinished books
                // if it has one.
                let mut keys: Vec<(String, String)> = self
                    .query_all(format!("BOOK#{book}"), "", false)
                    .await?
                    .iter()
                    .filter_map(|item| optional_text(item, "sk"))
                    .map(|sk| (format!("BOOK#{book}"), sk))
                    .collect();
                keys.push((UNFINISHED_PK.to_owned(), created_and_id.to_owned()));
                for (pk, sk) in keys {
                    let delete = DeleteRequest::builder()
                        .key("pk", s(pk))
                        .key("sk", s(sk))
                        .build()
                        .map_err(StoreError::unavailable)?;
                    requests.push(WriteRequest::builder().delete_request(delete).build());
                }
            }
            let delete = DeleteRequest::builder()
                .key("pk", s(user_pk(id)))
                .key("sk", s(sk))
                .build()
                .map_err(StoreError::unavailable)?;
            requests.push(WriteRequest::builder().delete_request(delete).build());
        }
        self.write_batches(requests).await?;
        Ok(kept)
    }

    async fn find_user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        Ok(self.read_user(id).await?.map(|(user, _)| user))
    }

    async fn create_user(
        &self,
        id: &UserId,
        opening_credits: i64,
        at: DateTime<Utc>,
    ) -> Result<UserLookup, StoreError> {
        let seq = i64::from(opening_credits > 0);
        let profile = Put::builder()
            .table_name(&self.table)
            .item("pk", s(user_pk(id)))
            .item("sk", s(PROFILE))
            .item("credits", n(opening_credits))
            .item("total_purchased", n(0))
            .item("total_used", n(0))
            .item("ledger_seq", n(seq))
            .item("created_at", s(at.to_rfc3339()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(StoreError::unavailable)?;
        let mut items = vec![TransactWriteItem::builder().put(profile).build()];
        if seq == 1 {
            let entry = EntryFields {
                kind: EntryKind::Bonus,
                description: "Welcome credits",
                reference: None,
                at,
            };
            items.push(self.ledger_put(id, 1, opening_credits, opening_credits, entry)?);
        }
        let attempt = || async {
            match self.transact(items.clone()).await {
                Ok(()) => Ok(true),
                // Cancelled: another request made this user first (theirs stands), or a
                // transaction conflict that the next attempt settles.
                Err(Attempt::Lost) if self.read_user(id).await?.is_some() => Ok(false),
                Err(other) => Err(other),
            }
        };
        let created = until_settled(attempt).await?;
        let (user, _) = self
            .read_user(id)
            .await?
            .ok_or(StoreError::Missing("user"))?;
        Ok(UserLookup { user, created })
    }
}

#[async_trait]
impl CreditStore for DynamoStore {
    async fn grant(&self, grant: &Grant) -> Result<GrantOutcome, StoreError> {
        let grant_pk = format!("GRANT#{}", grant.transaction_id.as_str());
        let description = grant.description();
        let attempt = || async {
            if self.get(grant_pk.clone(), "GRANT").await?.is_some() {
                let (user, _) = self
                    .read_user(&grant.user)
                    .await?
                    .ok_or(StoreError::Missing("user"))?;
                return Ok(GrantOutcome::AlreadyProcessed {
                    balance: user.credits,
                });
            }
            let (user, seq) = self
                .read_user(&grant.user)
                .await?
                .ok_or(StoreError::Missing("user"))?;
            let marker = Put::builder()
                .table_name(&self.table)
                .item("pk", s(grant_pk.clone()))
                .item("sk", s("GRANT"))
                // No user: the marker only makes the transaction once, and erasure must not
                // leave the user's hash behind (the ledger entry names the transaction).
                .item("amount", n(grant.delta))
                .item("created_at", s(grant.at.to_rfc3339()))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(StoreError::unavailable)?;
            let balance = user.credits + grant.delta;
            if balance < 0 {
                return Ok(GrantOutcome::InsufficientCredits {
                    balance: user.credits,
                });
            }
            let entry = EntryFields {
                kind: grant.kind,
                description: &description,
                reference: Some(grant.transaction_id.as_str()),
                at: grant.at,
            };
            let marker = TransactWriteItem::builder().put(marker).build();
            self.append_entry(&grant.user, seq, grant.delta, balance, entry, vec![marker])
                .await?;
            Ok(GrantOutcome::Applied { balance })
        };
        // A lost race is either another grant on this balance or this very grant applied
        // concurrently; the next attempt's first read tells which.
        until_settled(attempt).await
    }

    async fn ledger(
        &self,
        user: &UserId,
        page: LedgerPage,
    ) -> Result<Vec<LedgerEntry>, StoreError> {
        let wanted = (page.offset + page.limit) as usize;
        let mut items: Vec<Item> = Vec::with_capacity(wanted);
        let mut start = None;
        loop {
            let answer = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :ledger)")
                .expression_attribute_values(":pk", s(user_pk(user)))
                .expression_attribute_values(":ledger", s("LEDGER#"))
                .scan_index_forward(false)
                .consistent_read(true)
                .limit((wanted - items.len()).min(1000) as i32)
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(describe(e)))?;
            items.extend(answer.items.unwrap_or_default());
            start = answer.last_evaluated_key;
            if start.is_none() || items.len() >= wanted {
                break;
            }
        }
        items
            .iter()
            .skip(page.offset as usize)
            .take(page.limit as usize)
            .map(|item| {
                Ok(LedgerEntry {
                    seq: num(item, "seq")?,
                    delta: num(item, "delta")?,
                    balance_after: num(item, "balance_after")?,
                    kind: EntryKind::parse(&text(item, "kind")?)
                        .map_err(|e| StoreError::Corrupt(e.0))?,
                    description: optional_text(item, "description"),
                    reference: optional_text(item, "reference"),
                    created_at: time(item, "created_at")?,
                })
            })
            .collect()
    }
}

/// Which sort keys of a partition a query reads.
enum SortKeys<'a> {
    Prefix(&'a str),
    /// Inclusive bounds.
    Between(String, String),
}

fn api_key_pk(hash: &CredentialHash) -> String {
    format!("APIKEY#{}", hash.as_str())
}

/// The index of keys by id: one partition, small (operators' keys, not users').
const KEY_INDEX_PK: &str = "APIKEYS";

impl DynamoStore {
    fn api_key_put(&self, r: &ApiKeyRecord) -> aws_sdk_dynamodb::types::builders::PutBuilder {
        let list = |values: &[String]| {
            AttributeValue::L(values.iter().cloned().map(AttributeValue::S).collect())
        };
        let scopes: Vec<String> = r.scopes.iter().map(|s| s.as_str().to_owned()).collect();
        let mut put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(api_key_pk(&r.hash)))
            .item("sk", s("APIKEY"))
            .item("key_id", s(&r.key_id))
            .item("name", s(&r.name))
            .item("display_prefix", s(&r.display_prefix))
            .item("environment", s(r.environment.as_str()))
            .item("scopes", list(&scopes))
            .item("allowed_ips", list(&r.allowed_ips))
            .item("created_at", s(r.created_at.to_rfc3339()));
        if let Some(at) = r.expires_at {
            // Not the TTL attribute: an expired key must stay readable, to be refused as expired.
            put = put.item("expires_at_text", s(at.to_rfc3339()));
        }
        if let Some(at) = r.revoked_at {
            put = put.item("revoked_at", s(at.to_rfc3339()));
        }
        if let Some(next) = &r.rotated_to {
            put = put.item("rotated_to", s(next));
        }
        put
    }

    fn parse_api_key(item: &Item) -> Result<ApiKeyRecord, StoreError> {
        let corrupt = |e: crate::domain::Invalid| StoreError::Corrupt(e.0);
        let strings = |name: &str| -> Result<Vec<String>, StoreError> {
            match item.get(name) {
                None => Ok(Vec::new()),
                Some(AttributeValue::L(values)) => values
                    .iter()
                    .map(|v| match v {
                        AttributeValue::S(raw) => Ok(raw.clone()),
                        _ => Err(StoreError::Corrupt(format!("{name} holds a non-string"))),
                    })
                    .collect(),
                _ => Err(StoreError::Corrupt(format!("{name} is not a list"))),
            }
        };
        let hash = text(item, "pk")?;
        Ok(ApiKeyRecord {
            key_id: text(item, "key_id")?,
            name: text(item, "name")?,
            hash: CredentialHash::from_stored(hash.trim_start_matches("APIKEY#").to_owned()),
            display_prefix: text(item, "display_prefix")?,
            environment: KeyEnvironment::parse(&text(item, "environment")?).map_err(corrupt)?,
            scopes: strings("scopes")?
                .iter()
                .map(|s| Scope::parse(s))
                .collect::<Result<_, _>>()
                .map_err(corrupt)?,
            created_at: time(item, "created_at")?,
            expires_at: optional_time(item, "expires_at_text")?,
            revoked_at: optional_time(item, "revoked_at")?,
            allowed_ips: strings("allowed_ips")?,
            rotated_to: optional_text(item, "rotated_to"),
        })
    }

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
impl ApiKeyStore for DynamoStore {
    async fn put_api_key(&self, r: &ApiKeyRecord) -> Result<(), StoreError> {
        let record = self
            .api_key_put(r)
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(StoreError::unavailable)?;
        let index = Put::builder()
            .table_name(&self.table)
            .item("pk", s(KEY_INDEX_PK))
            .item("sk", s(format!("KEY#{}", r.key_id)))
            .item("hash", s(r.hash.as_str()))
            .item("created_at", s(r.created_at.to_rfc3339()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(StoreError::unavailable)?;
        // A key stored before (same hash) cancels the transaction: the first record stands.
        self.swap(vec![
            TransactWriteItem::builder().put(record).build(),
            TransactWriteItem::builder().put(index).build(),
        ])
        .await
        .map(|_| ())
    }

    async fn find_api_key(
        &self,
        hash: &CredentialHash,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        self.get(api_key_pk(hash), "APIKEY")
            .await?
            .as_ref()
            .map(Self::parse_api_key)
            .transpose()
    }

    async fn find_api_key_by_id(&self, key_id: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let Some(index) = self
            .get(KEY_INDEX_PK.into(), &format!("KEY#{key_id}"))
            .await?
        else {
            return Ok(None);
        };
        self.find_api_key(&CredentialHash::from_stored(text(&index, "hash")?))
            .await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let mut keys = Vec::new();
        for index in self.query_all(KEY_INDEX_PK.into(), "KEY#", false).await? {
            if let Some(key) = self
                .find_api_key(&CredentialHash::from_stored(text(&index, "hash")?))
                .await?
            {
                keys.push(key);
            }
        }
        keys.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.key_id.cmp(&a.key_id))
        });
        Ok(keys)
    }

    async fn update_api_key(&self, r: &ApiKeyRecord) -> Result<(), StoreError> {
        let put = self
            .api_key_put(r)
            .build()
            .map_err(StoreError::unavailable)?;
        let answer = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(put.item))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await;
        match answer {
            Ok(_) => Ok(()),
            Err(e) if is_conditional_failure(&e) => Err(StoreError::Missing("api key")),
            Err(e) => Err(StoreError::Unavailable(describe(e))),
        }
    }

    async fn record_key_use(
        &self,
        key_id: &str,
        route: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let expires =
            (at + chrono::Duration::days(crate::domain::audit::RETENTION_DAYS)).timestamp();
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(format!("USAGE#{key_id}")))
            .key("sk", s(format!("{}#{route}", at.format("%Y-%m-%d"))))
            .update_expression("ADD #count :one SET last_used_at = :at, expires_at = :expires")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":at", s(at.to_rfc3339()))
            .expression_attribute_values(":expires", n(expires))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe(e)))?;
        Ok(())
    }

    async fn key_usage(&self, key_id: &str) -> Result<Vec<KeyUsage>, StoreError> {
        let now = Utc::now().timestamp();
        let mut usage = Vec::new();
        for item in self.query_all(format!("USAGE#{key_id}"), "", true).await? {
            if num(&item, "expires_at")? < now {
                continue;
            }
            let sk = text(&item, "sk")?;
            let (day, route) = sk
                .split_once('#')
                .ok_or_else(|| StoreError::Corrupt("usage key".into()))?;
            usage.push(KeyUsage {
                day: day.to_owned(),
                route: route.to_owned(),
                count: num(&item, "count")? as u64,
                last_used_at: time(&item, "last_used_at")?,
            });
        }
        // Newest day first, routes in order within a day.
        usage.sort_by(|a, b| b.day.cmp(&a.day).then_with(|| a.route.cmp(&b.route)));
        Ok(usage)
    }
}

fn audit_day_pk(day: chrono::NaiveDate) -> String {
    format!("AUDIT#{}", day.format("%Y-%m-%d"))
}

#[async_trait]
impl AuditStore for DynamoStore {
    async fn append_audit(&self, e: &AuditEntry) -> Result<(), StoreError> {
        let expires =
            (e.at + chrono::Duration::days(crate::domain::audit::RETENTION_DAYS)).timestamp();
        let mut put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(audit_day_pk(e.at.date_naive())))
            .item("sk", s(&e.id))
            .item("at", s(e.at.to_rfc3339()))
            .item("event", s(e.event.as_str()))
            .item("client_ip", s(&e.client_ip))
            .item("route", s(&e.route))
            .item("expires_at", n(expires));
        if let Some(credential) = &e.credential {
            put = put.item("credential", s(credential));
        }
        if let Some(detail) = &e.detail {
            put = put.item("detail", s(detail));
        }
        put.send()
            .await
            .map_err(|e| StoreError::Unavailable(describe(e)))?;
        Ok(())
    }

    async fn audit_log(
        &self,
        limit: u32,
        before: Option<&str>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        // One partition a day; walk back day by day from the cursor's day (or today).
        let now = Utc::now();
        let start_day = before
            .and_then(|id| chrono::NaiveDate::parse_from_str(id.get(..8)?, "%Y%m%d").ok())
            .unwrap_or_else(|| now.date_naive());
        let mut entries = Vec::new();
        for back in 0..=crate::domain::audit::RETENTION_DAYS {
            let day = start_day - chrono::Duration::days(back);
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .expression_attribute_values(":pk", s(audit_day_pk(day)))
                .scan_index_forward(false)
                .limit((limit as usize - entries.len()) as i32);
            query = match before {
                Some(id) => query
                    .key_condition_expression("pk = :pk AND sk < :before")
                    .expression_attribute_values(":before", s(id)),
                None => query.key_condition_expression("pk = :pk"),
            };
            let answer = query
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(describe(e)))?;
            for item in answer.items.unwrap_or_default() {
                if num(&item, "expires_at")? < now.timestamp() {
                    continue;
                }
                let event = AuditEvent::parse(&text(&item, "event")?)
                    .ok_or_else(|| StoreError::Corrupt("audit event".into()))?;
                entries.push(AuditEntry {
                    id: text(&item, "sk")?,
                    at: time(&item, "at")?,
                    event,
                    credential: optional_text(&item, "credential"),
                    client_ip: text(&item, "client_ip")?,
                    route: text(&item, "route")?,
                    detail: optional_text(&item, "detail"),
                });
            }
            if entries.len() >= limit as usize {
                break;
            }
        }
        Ok(entries)
    }
}

/// One counter's item for one window.
fn limit_pk(counter: &str, window: Window) -> String {
    format!("LIMIT#{counter}#{}", window.start.timestamp())
}

#[async_trait]
impl LimitStore for DynamoStore {
    async fn peek(&self, counter: &str, window: Window) -> Result<u32, StoreError> {
        match self.get(limit_pk(counter, window), "LIMIT").await? {
            Some(item) if num(&item, "expires_at")? >= Utc::now().timestamp() => {
                Ok(u32::try_from(num(&item, "count")?).unwrap_or(u32::MAX))
            }
            _ => Ok(0),
        }
    }

    async fn give_back(&self, counter: &str, window: Window) -> Result<(), StoreError> {
        let given = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(limit_pk(counter, window)))
            .key("sk", s("LIMIT"))
            .update_expression("ADD #count :minus")
            .condition_expression("#count > :zero")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":minus", n(-1))
            .expression_attribute_values(":zero", n(0))
            .send()
            .await;
        match given {
            Ok(_) => Ok(()),
            // Nothing left to give back.
            Err(SdkError::ServiceError(e)) if e.err().is_conditional_check_failed_exception() => {
                Ok(())
            }
            Err(e) => Err(StoreError::Unavailable(describe(e))),
        }
    }

    async fn take(
        &self,
        counter: &str,
        limit: u32,
        window: Window,
    ) -> Result<LimitDecision, StoreError> {
        let answer = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(limit_pk(counter, window)))
            .key("sk", s("LIMIT"))
            .update_expression("ADD #count :one SET expires_at = :expires")
            .expression_attribute_names("#count", "count")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":expires", n(window.end.timestamp()))
            .return_values(ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe(e)))?;
        let count = num(&answer.attributes.unwrap_or_default(), "count")?;
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        Ok(LimitDecision {
            allowed: count <= limit,
            limit,
            remaining: limit.saturating_sub(count),
            reset_after: window.reset_after(),
        })
    }
}

#[async_trait]
impl BreakerStore for DynamoStore {
    async fn breaker(&self, provider: &str) -> Result<(BreakerRecord, u64), StoreError> {
        match self.get(format!("BREAKER#{provider}"), "BREAKER").await? {
            Some(item) => {
                let record = serde_json::from_str(&text(&item, "doc")?)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                Ok((record, num(&item, "version")? as u64))
            }
            None => Ok((BreakerRecord::default(), 0)),
        }
    }

    async fn put_breaker(
        &self,
        provider: &str,
        record: &BreakerRecord,
        expected: u64,
    ) -> Result<bool, StoreError> {
        let doc = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(format!("BREAKER#{provider}")))
            .item("sk", s("BREAKER"))
            .item("doc", s(doc))
            .item("version", n(expected as i64 + 1));
        let put = if expected == 0 {
            put.condition_expression("attribute_not_exists(pk)")
        } else {
            put.condition_expression("version = :expected")
                .expression_attribute_values(":expected", n(expected as i64))
        };
        match put.send().await {
            Ok(_) => Ok(true),
            Err(e) if is_conditional_failure(&e) => Ok(false),
            Err(e) => Err(StoreError::Unavailable(describe(e))),
        }
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn ping(&self) -> Result<(), StoreError> {
        self.get("HEALTH".into(), "HEALTH").await.map(|_| ())
    }
}

fn idempotency_sk(key: &IdempotencyKey) -> String {
    format!("IDEM#{}", key.as_str())
}

fn book_pk(id: &BookId) -> String {
    format!("BOOK#{}", id.as_str())
}

fn library_sk(book: &Book) -> String {
    format!("BOOK#{}#{}", book.created_at.to_rfc3339(), book.id.as_str())
}

/// The index of unfinished books: one partition (two writes a book, far below a partition's
/// thousand writes a second), sorted by creation time so the sweep reads only the old ones.
const UNFINISHED_PK: &str = "UNFINISHED";

/// The library entry's sort key without its `BOOK#`: erasure finds one from the other.
fn unfinished_sk(book: &Book) -> String {
    format!("{}#{}", book.created_at.to_rfc3339(), book.id.as_str())
}

impl DynamoStore {
    fn book_put(
        &self,
        book: &Book,
        version: u64,
        condition: Option<u64>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(book_pk(&book.id)))
            .item("sk", s("BOOK"))
            .item("user", s(book.user.as_str()))
            .item(
                "doc",
                s(serde_json::to_string(book).map_err(StoreError::unavailable)?),
            )
            .item("version", n(version as i64));
        put = match condition {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(expected) => put
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", n(expected as i64)),
        };
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(StoreError::unavailable)?)
            .build())
    }

    /// The writes that store `book` at `version`: the book itself, and once it is finished the
    /// removal of its entry in the index of unfinished books.
    fn book_writes(
        &self,
        book: &Book,
        version: u64,
        condition: Option<u64>,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut writes = vec![self.book_put(book, version, condition)?];
        if book.is_finished() {
            writes.extend(self.unfinished_deletes(book)?);
        }
        Ok(writes)
    }

    /// The book's entries in the index of unfinished books and in its user's.
    fn unfinished_puts(&self, book: &Book) -> Result<Vec<TransactWriteItem>, StoreError> {
        Ok(vec![
            self.plain_put(UNFINISHED_PK.into(), unfinished_sk(book), &book.id)?,
            self.plain_put(
                user_pk(&book.user),
                format!("UNFINISHED#{}", unfinished_sk(book)),
                &book.id,
            )?,
        ])
    }

    fn unfinished_deletes(&self, book: &Book) -> Result<Vec<TransactWriteItem>, StoreError> {
        [
            (UNFINISHED_PK.to_owned(), unfinished_sk(book)),
            (
                user_pk(&book.user),
                format!("UNFINISHED#{}", unfinished_sk(book)),
            ),
        ]
        .into_iter()
        .map(|(pk, sk)| {
            let delete = aws_sdk_dynamodb::types::Delete::builder()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .build()
                .map_err(StoreError::unavailable)?;
            Ok(TransactWriteItem::builder().delete(delete).build())
        })
        .collect()
    }

    fn plain_put(
        &self,
        pk: String,
        sk: String,
        book: &BookId,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("sk", s(sk))
            .item("book_id", s(book.as_str()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(StoreError::unavailable)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn parse_book(item: &Item) -> Result<StoredBook, StoreError> {
        let book = serde_json::from_str(&text(item, "doc")?)
            .map_err(|e| StoreError::Corrupt(format!("book: {e}")))?;
        Ok(StoredBook {
            book,
            version: num(item, "version")? as u64,
        })
    }

    /// A conditional write of the book alone (and `extra`), reporting a lost race as `false`.
    async fn swap(&self, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(Attempt::Lost) => Ok(false),
            Err(Attempt::Failed(e)) => Err(e),
        }
    }
}

#[async_trait]
impl BookStore for DynamoStore {
    async fn create_book(
        &self,
        book: &Book,
        idempotency: Option<&Idempotency>,
        unfinished_cap: u32,
    ) -> Result<CreateOutcome, StoreError> {
        let idempotency_sk = idempotency.map(|r| idempotency_sk(&r.key));
        let attempt = || async {
            let now = Utc::now().timestamp();
            if let (Some(sk), Some(record)) = (&idempotency_sk, idempotency)
                && let Some(earlier) = self.get(user_pk(&book.user), sk).await?
                // Past its 24 hours the record is as good as absent (TTL deletes it days late).
                && num(&earlier, "expires_at")? > now
            {
                if optional_text(&earlier, "fingerprint").as_deref()
                    != Some(record.fingerprint.as_str())
                {
                    return Ok(CreateOutcome::KeyReused);
                }
                let id = BookId::parse(&text(&earlier, "book_id")?)
                    .map_err(|e| StoreError::Corrupt(e.0))?;
                let stored = self
                    .find_book(&id)
                    .await?
                    .ok_or(StoreError::Missing("book"))?;
                return Ok(CreateOutcome::Replayed(stored));
            }
            let profile = self
                .get(user_pk(&book.user), PROFILE)
                .await?
                .ok_or(StoreError::Missing("user"))?;
            let (credits, seq) = (num(&profile, "credits")?, num(&profile, "ledger_seq")?);
            // The count is read after the user's item, and the write below is guarded by that
            // item (its ledger sequence, or for a free book its count of books made), so a book
            // another request made in between makes this attempt lose and count again.
            if self.count_unfinished_books(&book.user).await? >= unfinished_cap {
                return Ok(CreateOutcome::TooManyUnfinished);
            }
            if credits < book.charged {
                return Ok(CreateOutcome::InsufficientCredits { balance: credits });
            }
            let mut items = vec![
                self.book_put(book, 1, None)?,
                self.plain_put(user_pk(&book.user), library_sk(book), &book.id)?,
            ];
            if !book.is_finished() {
                items.extend(self.unfinished_puts(book)?);
            }
            if let (Some(sk), Some(record)) = (&idempotency_sk, idempotency) {
                let put = Put::builder()
                    .table_name(&self.table)
                    .item("pk", s(user_pk(&book.user)))
                    .item("sk", s(sk.clone()))
                    .item("book_id", s(book.id.as_str()))
                    .item("fingerprint", s(&record.fingerprint))
                    .item("expires_at", n(record.expires_at.timestamp()))
                    .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
                    .expression_attribute_values(":now", n(now))
                    .build()
                    .map_err(StoreError::unavailable)?;
                items.push(TransactWriteItem::builder().put(put).build());
            }
            if book.charged > 0 {
                let entry = EntryFields {
                    kind: EntryKind::Usage,
                    description: "Book",
                    reference: Some(book.id.as_str()),
                    at: book.created_at,
                };
                self.append_entry(
                    &book.user,
                    seq,
                    -book.charged,
                    credits - book.charged,
                    entry,
                    items,
                )
                .await?;
            } else {
                let made = optional_num(&profile, "books_made")?.unwrap_or(0);
                let guard = Update::builder()
                    .table_name(&self.table)
                    .key("pk", s(user_pk(&book.user)))
                    .key("sk", s(PROFILE))
                    .update_expression("SET books_made = :next")
                    .condition_expression(
                        "ledger_seq = :seq AND (attribute_not_exists(books_made) OR books_made = :made)",
                    )
                    .expression_attribute_values(":next", n(made + 1))
                    .expression_attribute_values(":made", n(made))
                    .expression_attribute_values(":seq", n(seq))
                    .build()
                    .map_err(StoreError::unavailable)?;
                items.push(TransactWriteItem::builder().update(guard).build());
                self.transact(items).await?;
            }
            Ok(CreateOutcome::Created(StoredBook {
                book: book.clone(),
                version: 1,
            }))
        };
        until_settled(attempt).await
    }

    async fn find_book(&self, id: &BookId) -> Result<Option<StoredBook>, StoreError> {
        // The book and its recorded page assets share a partition: one Query reads them all.
        let items = self.query_all(book_pk(id), "", false).await?;
        let Some(book) = items
            .iter()
            .find(|item| optional_text(item, "sk").as_deref() == Some("BOOK"))
        else {
            return Ok(None);
        };
        let mut stored = Self::parse_book(book)?;
        let recorded = items
            .iter()
            .filter(|item| optional_text(item, "sk").is_some_and(|sk| sk.starts_with("ASSET#")))
            .map(|item| {
                Ok(RecordedAsset {
                    page: u8::try_from(num(item, "page")?)
                        .map_err(|_| StoreError::Corrupt("a page number".into()))?,
                    asset: serde_json::from_str(&text(item, "doc")?)
                        .map_err(|e| StoreError::Corrupt(format!("page asset: {e}")))?,
                    at: DateTime::parse_from_rfc3339(&text(item, "at")?)
                        .map_err(|e| StoreError::Corrupt(format!("page asset time: {e}")))?
                        .with_timezone(&Utc),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        stored.book = stored.book.with_assets(recorded);
        Ok(Some(stored))
    }

    async fn record_page_asset(
        &self,
        book: &BookId,
        recorded: &RecordedAsset,
    ) -> Result<bool, StoreError> {
        let doc = serde_json::to_string(&recorded.asset).map_err(StoreError::unavailable)?;
        // Only beside a book that still exists: a step finishing after its book was deleted
        // (its user erased) must leave no item naming it.
        let book_exists = aws_sdk_dynamodb::types::ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", s(book_pk(book)))
            .key("sk", s("BOOK"))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(StoreError::unavailable)?;
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(book_pk(book)))
            .item("sk", s(asset_sk(recorded.page, recorded.asset.kind())))
            .item("page", n(i64::from(recorded.page)))
            .item("doc", s(doc))
            .item("at", s(recorded.at.to_rfc3339()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(StoreError::unavailable)?;
        match self
            .transact(vec![
                TransactWriteItem::builder()
                    .condition_check(book_exists)
                    .build(),
                TransactWriteItem::builder().put(put).build(),
            ])
            .await
        {
            Ok(()) => Ok(true),
            // The book is gone or the asset was recorded before: either way nothing to record.
            Err(Attempt::Lost) => Ok(false),
            Err(Attempt::Failed(error)) => Err(error),
        }
    }

    async fn forget_idempotency(
        &self,
        user: &UserId,
        key: &IdempotencyKey,
    ) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", s(user_pk(user)))
            .key("sk", s(idempotency_sk(key)))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe(e)))?;
        Ok(())
    }

    async fn replace_book(&self, book: &Book, expected_version: u64) -> Result<bool, StoreError> {
        self.swap(self.book_writes(book, expected_version + 1, Some(expected_version))?)
            .await
    }

    async fn replace_and_settle(
        &self,
        book: &Book,
        expected_version: u64,
        settlement: Settlement,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let attempt = || async {
            let (user, seq) = self
                .read_user(&book.user)
                .await?
                .ok_or(StoreError::Missing("user"))?;
            let writes = self.book_writes(book, expected_version + 1, Some(expected_version))?;
            let delta = settlement.delta(book.charged, user.credits);
            let entry = EntryFields {
                kind: settlement.entry_kind(),
                description: settlement.description(),
                reference: Some(book.id.as_str()),
                at,
            };
            let written = if delta == 0 {
                self.transact(writes).await
            } else {
                self.append_entry(&book.user, seq, delta, user.credits + delta, entry, writes)
                    .await
            };
            match written {
                Ok(()) => Ok(true),
                // Lost to a balance change, or to another writer of the book: only the first is
                // worth another try.
                Err(Attempt::Lost) => match self.find_book(&book.id).await? {
                    Some(now) if now.version == expected_version => Err(Attempt::Lost),
                    _ => Ok(false),
                },
                Err(failed) => Err(failed),
            }
        };
        until_settled(attempt).await
    }

    async fn books_of(&self, user: &UserId) -> Result<Vec<Book>, StoreError> {
        let ids = self
            .query_all(user_pk(user), "BOOK#", true)
            .await?
            .iter()
            .map(|item| text(item, "book_id"))
            .collect::<Result<Vec<_>, _>>()?;
        // A hundred books a round trip (BatchGetItem), put back in the library's order.
        let mut found: HashMap<String, Book> = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(100) {
            let keys = chunk
                .iter()
                .map(|id| {
                    HashMap::from([
                        ("pk".to_owned(), s(format!("BOOK#{id}"))),
                        ("sk".to_owned(), s("BOOK")),
                    ])
                })
                .collect();
            let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(StoreError::unavailable)?;
            let mut pending = Some(HashMap::from([(self.table.clone(), request)]));
            while let Some(request) = pending.take().filter(|p| !p.is_empty()) {
                let answer = self
                    .client
                    .batch_get_item()
                    .set_request_items(Some(request))
                    .send()
                    .await
                    .map_err(|e| StoreError::Unavailable(describe(e)))?;
                for item in answer
                    .responses
                    .unwrap_or_default()
                    .remove(&self.table)
                    .unwrap_or_default()
                {
                    let stored = Self::parse_book(&item)?;
                    found.insert(stored.book.id.as_str().to_owned(), stored.book);
                }
                pending = answer.unprocessed_keys;
            }
        }
        // A pointer whose book is gone (deleted between the two writes' readers) is skipped.
        Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
    }

    async fn count_unfinished_books(&self, user: &UserId) -> Result<u32, StoreError> {
        let answer = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :unfinished)")
            .expression_attribute_values(":pk", s(user_pk(user)))
            .expression_attribute_values(":unfinished", s("UNFINISHED#"))
            .select(aws_sdk_dynamodb::types::Select::Count)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe(e)))?;
        Ok(answer.count.max(0) as u32)
    }

    async fn delete_book(&self, book: &Book, expected_version: u64) -> Result<bool, StoreError> {
        let delete = |pk: String, sk: String| {
            aws_sdk_dynamodb::types::Delete::builder()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
        };
        let guarded = delete(book_pk(&book.id), "BOOK".into())
            .condition_expression("version = :expected")
            .expression_attribute_values(":expected", n(expected_version as i64))
            .build()
            .map_err(StoreError::unavailable)?;
        let pointer = delete(user_pk(&book.user), library_sk(book))
            .build()
            .map_err(StoreError::unavailable)?;
        // Its recorded page assets: at most 2 x 13 items, within a transaction's 100.
        let assets = (0..=book.request.page_count.get())
            .flat_map(|page| ["image", "audio"].map(|kind| asset_sk(page, kind)))
            .map(|sk| {
                delete(book_pk(&book.id), sk)
                    .build()
                    .map(|d| TransactWriteItem::builder().delete(d).build())
                    .map_err(StoreError::unavailable)
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.swap(
            vec![
                TransactWriteItem::builder().delete(guarded).build(),
                TransactWriteItem::builder().delete(pointer).build(),
            ]
            .into_iter()
            .chain(self.unfinished_deletes(book)?)
            .chain(assets)
            .collect(),
        )
        .await
    }

    async fn unfinished_books(
        &self,
        created_before: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<StoredBook>, StoreError> {
        let answer = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND sk < :before")
            .expression_attribute_values(":pk", s(UNFINISHED_PK))
            .expression_attribute_values(":before", s(created_before.to_rfc3339()))
            .limit(limit.clamp(1, 1000) as i32)
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe(e)))?;
        let mut books = Vec::new();
        for item in answer.items.unwrap_or_default() {
            let id =
                BookId::parse(&text(&item, "book_id")?).map_err(|e| StoreError::Corrupt(e.0))?;
            // An entry whose book is gone (its user erased) or finished is skipped; the book's
            // own writes remove entries, so these are rare.
            match self.find_book(&id).await? {
                Some(stored) if !stored.book.is_finished() => books.push(stored),
                _ => {}
            }
        }
        Ok(books)
    }
}

#[async_trait]
impl SettingsStore for DynamoStore {
    async fn find_settings(&self, user: &UserId) -> Result<Option<UserSettings>, StoreError> {
        self.get(user_pk(user), "SETTINGS")
            .await?
            .map(|item| {
                serde_json::from_str(&text(&item, "doc")?)
                    .map_err(|e| StoreError::Corrupt(format!("settings: {e}")))
            })
            .transpose()
    }

    async fn put_settings(&self, user: &UserId, settings: &UserSettings) -> Result<(), StoreError> {
        let doc = serde_json::to_string(settings).map_err(StoreError::unavailable)?;
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", s(user_pk(user)))
            .item("sk", s("SETTINGS"))
            .item("doc", s(doc))
            .send()
            .await
            .map_err(|e| StoreError::Unavailable(describe(e)))?;
        Ok(())
    }
}

fn reading_sk(reading: &Reading, id: &str) -> String {
    format!("READ#{}#{}#{id}", reading.day, reading.read_at.to_rfc3339())
}

#[async_trait]
impl StreakStore for DynamoStore {
    async fn find_streak(&self, user: &UserId) -> Result<StoredStreak, StoreError> {
        let Some(item) = self.get(user_pk(user), "STREAK").await? else {
            return Ok(StoredStreak::default());
        };
        Ok(StoredStreak {
            streak: serde_json::from_str(&text(&item, "doc")?)
                .map_err(|e| StoreError::Corrupt(format!("streak: {e}")))?,
            version: num(&item, "version")? as u64,
        })
    }

    async fn record_reading(
        &self,
        user: &UserId,
        reading: &Reading,
        advance: Option<&StreakAdvance>,
    ) -> Result<bool, StoreError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let reading_put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(user_pk(user)))
            .item("sk", s(reading_sk(reading, &id)))
            .item("day", s(reading.day.to_string()))
            .item("read_at", s(reading.read_at.to_rfc3339()))
            .item("book_id", s(reading.book_id.as_str()))
            .item("reading_time", n(i64::from(reading.reading_time)))
            .item("completed", AttributeValue::Bool(reading.completed))
            .build()
            .map_err(StoreError::unavailable)?;
        let Some(advance) = advance else {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(reading_put.item))
                .send()
                .await
                .map_err(|e| StoreError::Unavailable(describe(e)))?;
            return Ok(true);
        };
        let expected = advance.expected_version as i64;
        let streak_put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(user_pk(user)))
            .item("sk", s("STREAK"))
            .item(
                "doc",
                s(serde_json::to_string(&advance.streak).map_err(StoreError::unavailable)?),
            )
            .item("version", n(expected + 1));
        let streak_put = if expected == 0 {
            streak_put.condition_expression("attribute_not_exists(pk)")
        } else {
            streak_put
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", n(expected))
        }
        .build()
        .map_err(StoreError::unavailable)?;
        let items = vec![
            TransactWriteItem::builder().put(streak_put).build(),
            TransactWriteItem::builder().put(reading_put).build(),
        ];
        let attempt = || async {
            let written = if advance.reward > 0 {
                let (balance, seq) = self
                    .read_user(user)
                    .await?
                    .ok_or(StoreError::Missing("user"))?;
                let entry = EntryFields {
                    kind: EntryKind::Bonus,
                    description: &advance.reward_description,
                    reference: None,
                    at: reading.read_at,
                };
                let after = balance.credits + advance.reward;
                self.append_entry(user, seq, advance.reward, after, entry, items.clone())
                    .await
            } else {
                self.transact(items.clone()).await
            };
            match written {
                Ok(()) => Ok(true),
                // Lost to another read of this streak (theirs counts the day), or only to a
                // balance change: only the second is worth another try.
                Err(Attempt::Lost)
                    if self.find_streak(user).await?.version == advance.expected_version =>
                {
                    Err(Attempt::Lost)
                }
                Err(Attempt::Lost) => Ok(false),
                Err(failed) => Err(failed),
            }
        };
        until_settled(attempt).await
    }

    async fn readings(
        &self,
        user: &UserId,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<Vec<Reading>, StoreError> {
        // `~` sorts after every character of a time and an id: the whole of the last day.
        let keys = SortKeys::Between(format!("READ#{first}"), format!("READ#{last}#~"));
        self.query_keys(user_pk(user), keys, false)
            .await?
            .iter()
            .map(|item| {
                let day = text(item, "day")?;
                Ok(Reading {
                    book_id: BookId::parse(&text(item, "book_id")?)
                        .map_err(|e| StoreError::Corrupt(e.0))?,
                    read_at: time(item, "read_at")?,
                    day: day
                        .parse()
                        .map_err(|e| StoreError::Corrupt(format!("day {day}: {e}")))?,
                    reading_time: num(item, "reading_time")? as u32,
                    completed: matches!(item.get("completed"), Some(AttributeValue::Bool(true))),
                })
            })
            .collect()
    }
}
