//! Blob storage for images, audio and PDFs.

use crate::domain::Invalid;
use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;
use std::pin::Pin;
use std::time::Duration;

pub type BlobStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// A stream of one chunk, for callers that already hold the bytes.
pub fn stream_of(bytes: impl Into<Bytes>) -> BlobStream {
    Box::pin(futures::stream::once(std::future::ready(Ok(bytes.into()))))
}

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("blob storage unavailable")]
    Unavailable(#[source] anyhow::Error),
    #[error("reading the blob's body failed")]
    Body(#[source] std::io::Error),
}

impl BlobError {
    pub fn unavailable(error: impl Into<anyhow::Error>) -> Self {
        Self::Unavailable(error.into())
    }
}

/// Where a blob lives: `/`-separated segments of `[A-Za-z0-9._-]`, no `..`, ending in an extension
/// we serve (it fixes the content type, so no adapter stores one).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobKey(String);

impl BlobKey {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.is_empty() || raw.len() > 512 {
            return Err(Invalid::new("a blob key is 1 to 512 characters"));
        }
        check_segments(raw)?;
        let key = Self(raw.to_owned());
        key.content_type_checked()?;
        Ok(key)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the key lies in `folder` (at any depth).
    pub fn is_in(&self, folder: &BlobFolder) -> bool {
        self.0
            .strip_prefix(folder.as_str())
            .is_some_and(|rest| rest.starts_with('/'))
    }

    pub fn content_type(&self) -> &'static str {
        self.content_type_checked().expect("checked when parsed")
    }

    /// The file extension (`png`, `pdf`...): every key has one, checked when parsed.
    pub fn extension(&self) -> &str {
        self.0.rsplit_once('.').map(|(_, e)| e).unwrap_or_default()
    }

    fn content_type_checked(&self) -> Result<&'static str, Invalid> {
        Ok(match self.extension() {
            "png" => "image/png",
            "jpg" | "jpeg" => "image/jpeg",
            "webp" => "image/webp",
            "wav" => "audio/wav",
            "mp3" => "audio/mpeg",
            "pdf" => "application/pdf",
            "json" => "application/json",
            "txt" => "text/plain; charset=utf-8",
            _ => {
                return Err(Invalid::new(
                    "a blob key ends in .png, .jpg, .jpeg, .webp, .wav, .mp3, .pdf, .json or .txt",
                ));
            }
        })
    }
}

/// Non-empty `/`-separated segments of `[A-Za-z0-9._-]`, none starting with `.` (so no `..`).
fn check_segments(raw: &str) -> Result<(), Invalid> {
    for segment in raw.split('/') {
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
        if segment.is_empty() || segment.starts_with('.') || !segment.chars().all(allowed) {
            return Err(Invalid::new(
                "a blob key has non-empty segments of letters, digits, '.', '_' and '-', none starting with '.'",
            ));
        }
    }
    Ok(())
}

/// A folder of blobs (`books/bk_1`): every blob one thing owns, deleted as one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobFolder(String);

impl BlobFolder {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        if raw.is_empty() || raw.len() > 500 {
            return Err(Invalid::new("a blob folder is 1 to 500 characters"));
        }
        check_segments(raw)?;
        Ok(Self(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores the stream under `key`, replacing what was there; readers never see half a blob.
    async fn put(&self, key: &BlobKey, body: BlobStream) -> Result<(), BlobError>;

    async fn get(&self, key: &BlobKey) -> Result<Option<Bytes>, BlobError>;

    /// Deleting a missing blob is not an error.
    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError>;

    /// Deletes every blob in `folder`, whatever its name: what one thing owns goes whole, even
    /// a file stored under a name no record holds. An empty or missing folder is not an error.
    async fn delete_folder(&self, folder: &BlobFolder) -> Result<(), BlobError>;

    /// An absolute URL that loads the blob without any header until `ttl` has passed.
    async fn signed_url(&self, key: &BlobKey, ttl: Duration) -> Result<String, BlobError>;

    async fn ping(&self) -> Result<(), BlobError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(
            BlobKey::parse("books/b1/page-1.png")
                .unwrap()
                .content_type(),
            "image/png"
        );
        for bad in [
            "",
            "/a.png",
            "a//b.png",
            "../a.png",
            "a/../b.png",
            "a/.hidden.png",
            "a.exe",
            "a b.png",
            "a\\b.png",
        ] {
            assert!(BlobKey::parse(bad).is_err(), "{bad} was accepted");
        }
    }
}
