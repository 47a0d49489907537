use crate::sdk::describe;
use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use std::time::Duration;
use storybook_core::ports::blobs::{BlobError, BlobFolder, BlobKey, BlobStore, BlobStream};

/// S3's smallest multipart part; a blob below it goes up in one PutObject.
const PART_SIZE: usize = 8 * 1024 * 1024;

/// Blobs in one private S3 bucket, reached by presigned URLs.
#[derive(Clone)]
pub struct S3Blobs {
    client: crate::sdk::LazyClient<Client>,
    bucket: String,
}

impl S3Blobs {
    pub fn new(
        client: impl Into<crate::sdk::LazyClient<Client>>,
        bucket: impl Into<String>,
    ) -> Self {
        Self {
            client: client.into(),
            bucket: bucket.into(),
        }
    }

    /// Streams past [`PART_SIZE`] as a multipart upload, holding one part in memory at a time.
    async fn put_multipart(
        &self,
        key: &BlobKey,
        first: Bytes,
        mut body: BlobStream,
    ) -> Result<(), BlobError> {
        let started = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(key.content_type())
            .send()
            .await
            .map_err(|e| BlobError::Unavailable(describe(e)))?;
        let upload_id = started.upload_id.unwrap_or_default();
        let uploaded: Result<Vec<CompletedPart>, BlobError> = async {
            let mut parts = Vec::new();
            let mut buffer = BytesMut::from(first.as_ref());
            let mut finished = false;
            while !finished {
                while buffer.len() < PART_SIZE {
                    match body.next().await {
                        Some(chunk) => buffer.extend_from_slice(&chunk.map_err(BlobError::Body)?),
                        None => {
                            finished = true;
                            break;
                        }
                    }
                }
                if buffer.is_empty() {
                    break;
                }
                let number = parts.len() as i32 + 1;
                let part = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key.as_str())
                    .upload_id(&upload_id)
                    .part_number(number)
                    .body(ByteStream::from(buffer.split().freeze()))
                    .send()
                    .await
                    .map_err(|e| BlobError::Unavailable(describe(e)))?;
                parts.push(
                    CompletedPart::builder()
                        .part_number(number)
                        .set_e_tag(part.e_tag)
                        .build(),
                );
            }
            Ok(parts)
        }
        .await;
        let completed = match uploaded {
            Ok(parts) => self
                .client
                .complete_multipart_upload()
                .bucket(&self.bucket)
                .key(key.as_str())
                .upload_id(&upload_id)
                .multipart_upload(
                    CompletedMultipartUpload::builder()
                        .set_parts(Some(parts))
                        .build(),
                )
                .send()
                .await
                .map(|_| ())
                .map_err(|e| BlobError::Unavailable(describe(e))),
            Err(e) => Err(e),
        };
        if completed.is_err() {
            // Abandoned parts are billed until aborted.
            let _ = self
                .client
                .abort_multipart_upload()
                .bucket(&self.bucket)
                .key(key.as_str())
                .upload_id(&upload_id)
                .send()
                .await;
        }
        completed
    }
}

#[async_trait]
impl BlobStore for S3Blobs {
    #[tracing::instrument(level = "debug", skip_all, fields(blob = %key.as_str()))]
    async fn put(&self, key: &BlobKey, mut body: BlobStream) -> Result<(), BlobError> {
        let mut buffer = BytesMut::new();
        while let Some(chunk) = body.next().await {
            buffer.extend_from_slice(&chunk.map_err(BlobError::Body)?);
            if buffer.len() >= PART_SIZE {
                return self.put_multipart(key, buffer.freeze(), body).await;
            }
        }
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .content_type(key.content_type())
            .body(ByteStream::from(buffer.freeze()))
            .send()
            .await
            .map_err(|e| BlobError::Unavailable(describe(e)))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(blob = %key.as_str()))]
    async fn get(&self, key: &BlobKey) -> Result<Option<Bytes>, BlobError> {
        match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
        {
            Ok(object) => {
                let bytes = object
                    .body
                    .collect()
                    .await
                    .map_err(BlobError::unavailable)?;
                Ok(Some(bytes.into_bytes()))
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => Ok(None),
            Err(e) => Err(BlobError::Unavailable(describe(e))),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(blob = %key.as_str()))]
    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .send()
            .await
            .map_err(|e| BlobError::Unavailable(describe(e)))?;
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(folder = %folder.as_str()))]
    async fn delete_folder(&self, folder: &BlobFolder) -> Result<(), BlobError> {
        let prefix = format!("{}/", folder.as_str());
        // Listed again until nothing is left: a page of the listing at a time.
        loop {
            let listed = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(&prefix)
                .send()
                .await
                .map_err(|e| BlobError::Unavailable(describe(e)))?;
            let keys: Vec<String> = listed
                .contents()
                .iter()
                .filter_map(|object| object.key().map(str::to_owned))
                .collect();
            if keys.is_empty() {
                return Ok(());
            }
            for key in keys {
                self.client
                    .delete_object()
                    .bucket(&self.bucket)
                    .key(key)
                    .send()
                    .await
                    .map_err(|e| BlobError::Unavailable(describe(e)))?;
            }
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(blob = %key.as_str()))]
    async fn signed_url(&self, key: &BlobKey, ttl: Duration) -> Result<String, BlobError> {
        let config = PresigningConfig::expires_in(ttl).map_err(BlobError::unavailable)?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key.as_str())
            .presigned(config)
            .await
            .map_err(|e| BlobError::Unavailable(describe(e)))?;
        Ok(request.uri().to_owned())
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn ping(&self) -> Result<(), BlobError> {
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| BlobError::Unavailable(describe(e)))?;
        Ok(())
    }
}
