//! Lambda: `/health*` and `/v1/config/capabilities`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve_api(shared::http::Family::Health).await
}
