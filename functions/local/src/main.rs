//! Local mode: the whole API on 127.0.0.1:$PORT over SQLite and a folder under $DATA_DIR.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    storybook_local::run().await
}
