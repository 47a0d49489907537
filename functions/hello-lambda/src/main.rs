//! The start-up bench's baseline (`cargo bench -p functions --bench startup`): the smallest
//! `lambda_http` function. Not in `template.yaml`; never deployed.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_http::run(lambda_http::service_fn(
        |_request: lambda_http::Request| async { Ok::<_, lambda_http::Error>("hello") },
    ))
    .await
}
