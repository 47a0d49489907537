//! The restore drill (an operator's tool, not deployed): restores the state table to a point in
//! time into a new table, checks that every balance equals its ledger there, prints the counts.
//!
//! `cargo run -p functions --bin restore-drill -- --table <StateTableName> [--at 2026-12-01T09:00:00Z] [--keep]`
//!
//! AWS credentials and region come from the environment, as for the AWS CLI (`AWS_ENDPOINT_URL`
//! points it at moto_server). The drill table is deleted afterwards unless `--keep`. Exits 1 when
//! a balance does not match its ledger.

use storybook_aws::restore::restore_and_reconcile;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let source =
        value("--table").ok_or_else(|| anyhow::anyhow!("--table <StateTableName> is required"))?;
    let at = value("--at")
        .map(|raw| raw.parse::<chrono::DateTime<chrono::Utc>>())
        .transpose()?;
    let target = format!(
        "{source}-drill-{}",
        chrono::Utc::now().format("%Y%m%d%H%M%S")
    );
    let config = storybook_aws::sdk_config().await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    println!(
        "restoring {source} ({}) into {target}",
        at.map_or("latest restorable time".to_owned(), |t| t.to_rfc3339())
    );
    let report = restore_and_reconcile(&client, &source, &target, at).await?;
    println!(
        "{}: {} items, {} users, {} ledger entries, {} books; {} balances do not match their ledgers",
        report.table,
        report.items,
        report.users,
        report.ledger_entries,
        report.books,
        report.unreconciled.len()
    );
    for user in &report.unreconciled {
        println!("  unreconciled: {user}…");
    }
    if !args.iter().any(|a| a == "--keep") {
        client.delete_table().table_name(&target).send().await?;
        println!("{target} deleted (--keep keeps it)");
    }
    if !report.unreconciled.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
