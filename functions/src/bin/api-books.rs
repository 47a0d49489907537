//! Lambda: `POST /v1/books`, `GET /v1/books/{job_id}`, the detail and the PDF.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::serve_api(shared::http::Family::Books).await
}
