//! Lambda: the generation steps (story, illustrate, narrate, assemble) from the step queue.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    shared::lambda::serve_steps().await
}
