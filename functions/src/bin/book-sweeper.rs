//! Lambda: the stuck-book sweep, on a schedule. Fails and refunds books that made no progress.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::lambda::serve_sweeper().await
}
