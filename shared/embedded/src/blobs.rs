use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use std::path::PathBuf;
use std::time::Duration;
use storybook_core::domain::credential::{CredentialHasher, CredentialKind};
use storybook_core::ports::blobs::{BlobError, BlobFolder, BlobKey, BlobStore, BlobStream};
use tokio::io::AsyncWriteExt;

/// Signs and checks the URLs local mode serves its blobs under (`/local/blobs/{key}`), so that a
/// URL works without headers, for a while, and only for the blob it names.
#[derive(Clone, Debug)]
pub struct LocalUrlSigner {
    hasher: CredentialHasher,
    public_base_url: String,
}

/// The path local mode serves blobs under; not an API route (see the route catalogue).
pub const LOCAL_BLOB_PATH: &str = "/local/blobs";

impl LocalUrlSigner {
    pub fn new(hasher: CredentialHasher, public_base_url: &str) -> Self {
        Self {
            hasher,
            public_base_url: public_base_url.trim_end_matches('/').to_owned(),
        }
    }

    fn signature(&self, key: &BlobKey, expires: i64) -> String {
        let message = format!("{}\n{expires}", key.as_str());
        hex::encode(
            self.hasher
                .mac(CredentialKind::BlobUrlSigning, message.as_bytes()),
        )
    }

    pub fn sign(&self, key: &BlobKey, ttl: Duration, now: chrono::DateTime<chrono::Utc>) -> String {
        let expires = now.timestamp() + ttl.as_secs() as i64;
        format!(
            "{}{LOCAL_BLOB_PATH}/{}?expires={expires}&signature={}",
            self.public_base_url,
            key.as_str(),
            self.signature(key, expires)
        )
    }

    /// True when the signature is ours for this key and time, and the time has not passed.
    pub fn verify(
        &self,
        key: &BlobKey,
        expires: i64,
        signature: &str,
        now: chrono::DateTime<chrono::Utc>,
    ) -> bool {
        let expected = self.signature(key, expires);
        // Constant-time comparison: a timing difference must not reveal a valid prefix.
        let same = expected.len() == signature.len()
            && expected
                .bytes()
                .zip(signature.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        same && now.timestamp() <= expires
    }
}

/// A deletion's outcome: deleting what is not there is not an error.
fn already_gone_is_fine(removed: std::io::Result<()>) -> Result<(), BlobError> {
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(BlobError::unavailable(e)),
        _ => Ok(()),
    }
}

/// Blobs as files in a folder, written through a temporary file and renamed, so a reader never
/// sees half a blob.
#[derive(Clone)]
pub struct FolderBlobs {
    root: PathBuf,
    signer: LocalUrlSigner,
}

impl FolderBlobs {
    pub fn new(root: PathBuf, signer: LocalUrlSigner) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&root)?;
        Ok(Self { root, signer })
    }

    fn path(&self, key: &BlobKey) -> PathBuf {
        // BlobKey admits no `..`, no leading `/` and no empty segment, so this stays under root.
        self.root.join(key.as_str())
    }

    /// Removes `folder` and each parent left empty, up to the root: a deleted thing leaves no
    /// folder named after it. A folder that is not empty (a file landed meanwhile) stays.
    async fn prune(&self, mut folder: &std::path::Path) {
        while folder != self.root && folder.starts_with(&self.root) {
            if tokio::fs::remove_dir(folder).await.is_err() {
                return;
            }
            match folder.parent() {
                Some(parent) => folder = parent,
                None => return,
            }
        }
    }
}

#[async_trait]
impl BlobStore for FolderBlobs {
    #[tracing::instrument(level = "debug", skip_all, fields(blob = %key.as_str()))]
    async fn put(&self, key: &BlobKey, mut body: BlobStream) -> Result<(), BlobError> {
        let path = self.path(key);
        let parent = path.parent().expect("a blob path has a parent").to_owned();
        let partial = parent.join(format!(".partial-{}", uuid::Uuid::new_v4()));
        // A delete may prune the folder between its making and the file's: made again then.
        let mut made = None;
        for _ in 0..3 {
            tokio::fs::create_dir_all(&parent)
                .await
                .map_err(BlobError::unavailable)?;
            match tokio::fs::File::create(&partial).await {
                Ok(file) => {
                    made = Some(file);
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(BlobError::unavailable(e)),
            }
        }
        let mut file = made.ok_or_else(|| {
            BlobError::unavailable(anyhow::anyhow!("the blob's folder kept going away"))
        })?;
        let written: Result<(), BlobError> = async {
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(BlobError::Body)?;
                file.write_all(&chunk)
                    .await
                    .map_err(BlobError::unavailable)?;
            }
            file.sync_all().await.map_err(BlobError::unavailable)
        }
        .await;
        if let Err(error) = written {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(error);
        }
        tokio::fs::rename(&partial, &path)
            .await
            .map_err(BlobError::unavailable)
    }

    #[tracing::instrument(level = "debug", skip_all, fields(blob = %key.as_str()))]
    async fn get(&self, key: &BlobKey) -> Result<Option<Bytes>, BlobError> {
        match tokio::fs::read(self.path(key)).await {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(BlobError::unavailable(e)),
        }
    }

    #[tracing::instrument(level = "debug", skip_all, fields(blob = %key.as_str()))]
    async fn delete(&self, key: &BlobKey) -> Result<(), BlobError> {
        let path = self.path(key);
        already_gone_is_fine(tokio::fs::remove_file(&path).await)?;
        if let Some(parent) = path.parent() {
            self.prune(parent).await;
        }
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(folder = %folder.as_str()))]
    async fn delete_folder(&self, folder: &BlobFolder) -> Result<(), BlobError> {
        // BlobFolder admits no `..` nor a leading `/`: this stays under root.
        let path = self.root.join(folder.as_str());
        already_gone_is_fine(tokio::fs::remove_dir_all(&path).await)?;
        if let Some(parent) = path.parent() {
            self.prune(parent).await;
        }
        Ok(())
    }

    #[tracing::instrument(level = "debug", skip_all, fields(blob = %key.as_str()))]
    async fn signed_url(&self, key: &BlobKey, ttl: Duration) -> Result<String, BlobError> {
        Ok(self.signer.sign(key, ttl, chrono::Utc::now()))
    }

    #[tracing::instrument(level = "debug", skip_all)]
    async fn ping(&self) -> Result<(), BlobError> {
        tokio::fs::metadata(&self.root)
            .await
            .map(|_| ())
            .map_err(BlobError::unavailable)
    }
}
