//! The restore drill: the state table restored to a point in time into a new table, and the
//! money checked there: every balance must equal its ledger (the reconciliation the admin route
//! runs for one user, here for all). Run by `cargo run -p functions --bin restore-drill`.

use super::DynamoStore;
use crate::sdk::describe;
use aws_sdk_dynamodb::types::{AttributeValue, TableStatus};
use chrono::{DateTime, Utc};
use std::time::Duration;
use storybook_core::domain::credential::CredentialHash;
use storybook_core::domain::credits::ledger_reconciles;
use storybook_core::ports::store::UserStore;
use storybook_core::ports::store::whole_ledger;

/// What the restored table holds, and which balances do not match their ledgers.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DrillReport {
    pub table: String,
    pub items: u64,
    pub users: u64,
    pub ledger_entries: u64,
    pub books: u64,
    /// Users whose balance is not the sum of their ledger (truncated ids).
    pub unreconciled: Vec<String>,
}

/// Restores `source` as it was at `at` (the latest restorable time when `None`) into `target`,
/// waits until it is active, and reconciles every user in it.
pub async fn restore_and_reconcile(
    client: &aws_sdk_dynamodb::Client,
    source: &str,
    target: &str,
    at: Option<DateTime<Utc>>,
) -> anyhow::Result<DrillReport> {
    let restore = client
        .restore_table_to_point_in_time()
        .source_table_name(source)
        .target_table_name(target);
    let restore = match at {
        Some(at) => restore.restore_date_time(aws_sdk_dynamodb::primitives::DateTime::from_secs(
            at.timestamp(),
        )),
        None => restore.use_latest_restorable_time(true),
    };
    restore.send().await.map_err(describe)?;
    // A real restore takes minutes to hours, by the table's size.
    loop {
        let table = client
            .describe_table()
            .table_name(target)
            .send()
            .await
            .map_err(describe)?;
        if table.table.and_then(|t| t.table_status) == Some(TableStatus::Active) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    reconcile_table(client, target).await
}

/// Counts a table's items and reconciles every user's balance with their ledger.
pub async fn reconcile_table(
    client: &aws_sdk_dynamodb::Client,
    table: &str,
) -> anyhow::Result<DrillReport> {
    let mut report = DrillReport {
        table: table.to_owned(),
        ..DrillReport::default()
    };
    let mut users = Vec::new();
    let mut start = None;
    loop {
        let page = client
            .scan()
            .table_name(table)
            .projection_expression("pk, sk")
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(describe)?;
        for item in page.items.unwrap_or_default() {
            report.items += 1;
            let text = |name: &str| match item.get(name) {
                Some(AttributeValue::S(value)) => value.as_str(),
                _ => "",
            };
            let (pk, sk) = (text("pk"), text("sk"));
            if sk == "PROFILE"
                && let Some(user) = pk.strip_prefix("USER#")
            {
                users.push(user.to_owned());
            } else if sk.starts_with("LEDGER#") {
                report.ledger_entries += 1;
            } else if sk == "BOOK" && pk.starts_with("BOOK#") {
                report.books += 1;
            }
        }
        start = page.last_evaluated_key;
        if start.is_none() {
            break;
        }
    }
    let store = DynamoStore::new(client.clone(), table);
    for raw in users {
        report.users += 1;
        let id = CredentialHash::from_stored(raw);
        let Some(user) = store.find_user(&id).await? else {
            continue;
        };
        let entries = whole_ledger(&store, &id).await?;
        if !ledger_reconciles(user.credits, &entries) {
            report.unreconciled.push(id.truncated().to_owned());
        }
    }
    Ok(report)
}
