//! Creates the table, bucket and queues as `template.yaml` declares them, for tests against
//! `moto_server` (in AWS, SAM creates them).

use crate::sdk::{describe, s3_client};
use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use storybook_core::config::AwsResources;

/// Makes a fresh set of resources whose names start with `prefix` (lower-case letters, digits, -).
pub async fn provision(config: &SdkConfig, prefix: &str) -> anyhow::Result<AwsResources> {
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let table = format!("{prefix}-state");
    let key = |name: &str, kind| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
    };
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
    };
    dynamodb
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(key("pk", KeyType::Hash)?)
        .key_schema(key("sk", KeyType::Range)?)
        .attribute_definitions(attribute("pk")?)
        .attribute_definitions(attribute("sk")?)
        .send()
        .await
        .map_err(describe)?;
    dynamodb
        .update_time_to_live()
        .table_name(&table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .attribute_name("expires_at")
                .enabled(true)
                .build()?,
        )
        .send()
        .await
        .map_err(describe)?;

    let bucket = format!("{prefix}-blobs");
    s3_client(config)
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .map_err(describe)?;

    let sqs = aws_sdk_sqs::Client::new(config);
    let dead_letter_url = sqs
        .create_queue()
        .queue_name(format!("{prefix}-steps-dlq"))
        .send()
        .await
        .map_err(describe)?
        .queue_url
        .unwrap_or_default();
    let dead_letter_arn = sqs
        .get_queue_attributes()
        .queue_url(&dead_letter_url)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .map_err(describe)?
        .attributes
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .ok_or_else(|| anyhow::anyhow!("the dead-letter queue has no ARN"))?;
    let redrive = serde_json::json!({
        "deadLetterTargetArn": dead_letter_arn,
        "maxReceiveCount": storybook_core::ports::queue::MAX_RECEIVES,
    });
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("{prefix}-steps"))
        .attributes(QueueAttributeName::RedrivePolicy, redrive.to_string())
        .send()
        .await
        .map_err(describe)?
        .queue_url
        .unwrap_or_default();
    Ok(AwsResources {
        table,
        bucket,
        step_queue_url: queue_url,
        step_dead_letter_url: dead_letter_url,
    })
}
