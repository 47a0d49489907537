//! Lambda: `/v1/admin/*` (API keys, usage, credits for a user, the audit log).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve_api(shared::http::Family::Admin).await
}
