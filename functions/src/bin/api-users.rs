//! Lambda: `DELETE /v1/users/me` (erasure of a user's data).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve_api(shared::http::Family::Users).await
}
