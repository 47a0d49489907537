//! Lambda: `/v1/library` and `/v1/library/{book_id}`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve_api(shared::http::Family::Library).await
}
