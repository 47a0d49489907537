//! The one SQLite database of local mode: state and the step queue, its schema and migrations.

use rusqlite::Connection;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The one SQLite connection of the process. A std `Mutex`, not tokio's: no `.await` happens
/// while it is held, and every use runs on the blocking pool.
#[derive(Clone)]
pub struct Database {
    connection: Arc<Mutex<Connection>>,
}

impl Database {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        Self::prepare(Connection::open(path)?)
    }

    /// A private in-memory database, for tests and benchmarks.
    pub fn in_memory() -> anyhow::Result<Self> {
        Self::prepare(Connection::open_in_memory()?)
    }

    fn prepare(connection: Connection) -> anyhow::Result<Self> {
        // WAL keeps readers off the writer's back. NORMAL sync in WAL mode survives any crash of
        // the process (every committed transaction is in the log); only a power loss can drop
        // the last few, which a laptop's local mode accepts. FULL would fsync every request's
        // rate-limit count.
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        connection.busy_timeout(std::time::Duration::from_secs(5))?;
        connection.execute_batch(SCHEMA)?;
        migrate(&connection)?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    /// Runs `work` with the connection on the blocking pool.
    pub(crate) async fn run<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> anyhow::Result<T> + Send + 'static,
    {
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock poisons it; the connection itself is still sound
            // (SQLite rolls back the open transaction), so carry on with it.
            let mut guard = connection
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut guard)
        })
        .await?
    }
}

/// Schema changes after the first, in order; `PRAGMA user_version` counts the ones applied, so a
/// data folder from an older build is brought up to date when opened.
const MIGRATIONS: &[&str] = &[
    r#"
ALTER TABLE api_keys ADD COLUMN allowed_ips TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN rotated_to TEXT;
CREATE TABLE IF NOT EXISTS key_usage (
    key_id       TEXT NOT NULL,
    day          TEXT NOT NULL,
    route        TEXT NOT NULL,
    count        INTEGER NOT NULL,
    last_used_at TEXT NOT NULL,
    PRIMARY KEY (key_id, day, route)
);
CREATE TABLE IF NOT EXISTS audit_log (
    id         TEXT PRIMARY KEY,
    at         TEXT NOT NULL,
    event      TEXT NOT NULL,
    credential TEXT,
    client_ip  TEXT NOT NULL,
    route      TEXT NOT NULL,
    detail     TEXT,
    expires_at INTEGER NOT NULL
);
"#,
    r#"
ALTER TABLE idempotency ADD COLUMN fingerprint TEXT NOT NULL DEFAULT '';
ALTER TABLE idempotency ADD COLUMN expires_at INTEGER NOT NULL DEFAULT 0;
"#,
    r#"
CREATE TABLE IF NOT EXISTS settings (
    user_id TEXT PRIMARY KEY,
    doc     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS streaks (
    user_id TEXT PRIMARY KEY,
    doc     TEXT NOT NULL,
    version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS readings (
    user_id      TEXT NOT NULL,
    day          TEXT NOT NULL,
    read_at      TEXT NOT NULL,
    id           TEXT NOT NULL,
    book_id      TEXT NOT NULL,
    reading_time INTEGER NOT NULL,
    completed    INTEGER NOT NULL,
    PRIMARY KEY (user_id, day, read_at, id)
);
"#,
    r#"
ALTER TABLE books ADD COLUMN unfinished INTEGER NOT NULL DEFAULT 0;
UPDATE books SET unfinished = 1 WHERE json_extract(doc, '$.state') IN ('queued', 'running');
CREATE INDEX IF NOT EXISTS books_unfinished ON books (created_at) WHERE unfinished = 1;
"#,
    r#"
CREATE TABLE IF NOT EXISTS breakers (
    provider TEXT PRIMARY KEY,
    doc      TEXT NOT NULL,
    version  INTEGER NOT NULL
);
"#,
    r#"
CREATE TABLE IF NOT EXISTS page_assets (
    book_id TEXT NOT NULL,
    page    INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    doc     TEXT NOT NULL,
    at      TEXT NOT NULL,
    PRIMARY KEY (book_id, page, kind)
);
"#,
    r#"
CREATE TABLE IF NOT EXISTS spend_days (
    day             TEXT PRIMARY KEY,
    micros          INTEGER NOT NULL,
    calls           INTEGER NOT NULL,
    finished_books  INTEGER NOT NULL DEFAULT 0,
    finished_micros INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS spend_books (
    day     TEXT NOT NULL,
    book_id TEXT NOT NULL,
    micros  INTEGER NOT NULL,
    calls   INTEGER NOT NULL,
    PRIMARY KEY (day, book_id)
);
CREATE TABLE IF NOT EXISTS book_costs (
    book_id      TEXT PRIMARY KEY,
    micros       INTEGER NOT NULL,
    calls        INTEGER NOT NULL,
    finished_day TEXT
);
CREATE TABLE IF NOT EXISTS switches (
    name TEXT PRIMARY KEY,
    doc  TEXT NOT NULL
);
"#,
    // A parent's consent records, the latest deciding.
    r#"
CREATE TABLE IF NOT EXISTS consents (
    user_id    TEXT NOT NULL,
    granted_at TEXT NOT NULL,
    doc        TEXT NOT NULL,
    PRIMARY KEY (user_id, granted_at)
);
"#,
    // A parent's characters.
    r#"
CREATE TABLE IF NOT EXISTS characters (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    created_at TEXT NOT NULL,
    doc        TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS characters_by_user ON characters (user_id, created_at);
"#,
    // Store payments, each claimed once for good (an erased owner leaves `user_id` NULL), and
    // each user's plan.
    r#"
CREATE TABLE IF NOT EXISTS purchases (
    platform        TEXT NOT NULL,
    store_id        TEXT NOT NULL,
    user_id         TEXT,
    product_id      TEXT NOT NULL,
    claimed_at      TEXT NOT NULL,
    subscription_id TEXT,
    paid_to         TEXT,
    credits         INTEGER NOT NULL DEFAULT 0,
    refunded        INTEGER NOT NULL DEFAULT 0,
    clawed          INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (platform, store_id)
);
CREATE INDEX IF NOT EXISTS purchases_by_user ON purchases (user_id);
CREATE INDEX IF NOT EXISTS purchases_by_payee ON purchases (paid_to);
CREATE TABLE IF NOT EXISTS subscriptions (
    user_id         TEXT PRIMARY KEY,
    platform        TEXT,
    subscription_id TEXT,
    doc             TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS subscriptions_by_store ON subscriptions (platform, subscription_id);
CREATE TABLE IF NOT EXISTS store_notifications (
    platform   TEXT NOT NULL,
    id         TEXT NOT NULL,
    applied_at TEXT NOT NULL,
    PRIMARY KEY (platform, id)
);
"#,
    // The reconcile's reading: running store plans by the end of their period.
    r#"
CREATE INDEX IF NOT EXISTS subscriptions_due ON subscriptions
    (julianday(json_extract(doc, '$.period_end')))
    WHERE platform IS NOT NULL AND json_extract(doc, '$.status') != 'expired';
"#,
    // Print orders: one per user and idempotency key; a user's open ones counted.
    r#"
CREATE TABLE IF NOT EXISTS print_orders (
    id              TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    idempotency_key TEXT,
    open            INTEGER NOT NULL,
    doc             TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS print_orders_by_key ON print_orders (user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX IF NOT EXISTS print_orders_open ON print_orders (user_id) WHERE open = 1;
"#,
    // A family's child profiles: one set per account, replaced by version.
    r#"
CREATE TABLE IF NOT EXISTS profiles (
    user_id TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    doc     TEXT NOT NULL
);
"#,
    // Profile scope over streaks; shared books, by the hash of their token, revoked a book at
    // a time by moving its generation.
    r#"
CREATE TABLE IF NOT EXISTS profile_streaks (
    user_id    TEXT NOT NULL,
    profile_id TEXT NOT NULL,
    doc        TEXT NOT NULL,
    version    INTEGER NOT NULL,
    PRIMARY KEY (user_id, profile_id)
);
ALTER TABLE readings ADD COLUMN profile_id TEXT;
CREATE TABLE IF NOT EXISTS shares (
    token_hash TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    book_id    TEXT NOT NULL,
    generation INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT
);
CREATE INDEX IF NOT EXISTS shares_by_user ON shares (user_id);
CREATE TABLE IF NOT EXISTS share_generations (
    user_id    TEXT NOT NULL,
    book_id    TEXT NOT NULL,
    generation INTEGER NOT NULL,
    PRIMARY KEY (user_id, book_id)
);
"#,
];

fn migrate(connection: &Connection) -> anyhow::Result<()> {
    let applied: usize = connection.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (index, migration) in MIGRATIONS.iter().enumerate().skip(applied) {
        connection.execute_batch(&format!(
            "BEGIN; {migration} PRAGMA user_version = {}; COMMIT;",
            index + 1
        ))?;
    }
    Ok(())
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS users (
    id              TEXT PRIMARY KEY,
    credits         INTEGER NOT NULL CHECK (credits >= 0),
    total_purchased INTEGER NOT NULL,
    total_used      INTEGER NOT NULL,
    ledger_seq      INTEGER NOT NULL,
    created_at      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger (
    user_id       TEXT NOT NULL REFERENCES users(id),
    seq           INTEGER NOT NULL,
    delta         INTEGER NOT NULL,
    balance_after INTEGER NOT NULL,
    kind          TEXT NOT NULL,
    description   TEXT,
    reference     TEXT,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (user_id, seq)
);
CREATE TABLE IF NOT EXISTS grants (
    transaction_id TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL,
    amount         INTEGER NOT NULL,
    created_at     TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    hash           TEXT PRIMARY KEY,
    key_id         TEXT NOT NULL UNIQUE,
    name           TEXT NOT NULL,
    display_prefix TEXT NOT NULL,
    environment    TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    expires_at     TEXT,
    revoked_at     TEXT
);
CREATE TABLE IF NOT EXISTS limit_counters (
    counter      TEXT NOT NULL,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    PRIMARY KEY (counter, window_start)
);
CREATE TABLE IF NOT EXISTS queue_messages (
    id            TEXT PRIMARY KEY,
    sent_order    INTEGER NOT NULL,
    body          TEXT NOT NULL,
    visible_at_ms INTEGER NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT,
    dead          INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS books (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL,
    doc        TEXT NOT NULL,
    version    INTEGER NOT NULL,
    created_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS books_by_user ON books (user_id, created_at);
CREATE TABLE IF NOT EXISTS idempotency (
    user_id TEXT NOT NULL,
    key     TEXT NOT NULL,
    book_id TEXT NOT NULL,
    PRIMARY KEY (user_id, key)
);
CREATE INDEX IF NOT EXISTS queue_ready ON queue_messages (dead, visible_at_ms, sent_order);
"#;
