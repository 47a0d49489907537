//! Lambda: the budget guard, invoked by the spend hard-limit alarm; turns the kill switch on.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::lambda::serve_budget_guard().await
}
