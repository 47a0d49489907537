//! A book shared by link: the parent makes and revokes links; anyone holding an active one
//! reads the book's title, text and pictures, and nothing else of the family's.

use super::books::owned_book;
use super::{Refusal, Request};
use crate::app::App;
use crate::domain::book::Book;
use crate::domain::share::{Share, ShareToken, expiry};
use crate::domain::user::User;
use bytes::Bytes;
use chrono::{DateTime, Utc};

/// A new link: its token (shown once, never stored) and when it ends.
pub struct Shared {
    pub token: ShareToken,
    pub expires_at: DateTime<Utc>,
}

/// Makes a new link to the caller's finished book, living `days` (0: the default); earlier
/// links stay valid until revoked.
#[tracing::instrument(skip_all)]
pub async fn share_book(
    app: &App,
    request: &Request<User>,
    raw_id: &str,
    days: i64,
) -> Result<Shared, Refusal> {
    let book = owned_book(app, &request.caller, raw_id, "book").await?;
    if !book.is_readable() {
        return Err(Refusal::Conflict(format!(
            "The book is {}: only a finished book is shared",
            book.state.as_str()
        )));
    }
    let expires_at = expiry(days, request.now)
        .ok_or_else(|| Refusal::Invalid("expires_in_days must be 0 to 365".into()))?;
    let token = ShareToken::generate();
    let generation = app.store.share_generation(&book.user, &book.id).await?;
    app.store
        .put_share(&Share {
            token_hash: token.hash(),
            user: book.user.clone(),
            book: book.id.clone(),
            generation,
            created_at: request.now,
            expires_at,
        })
        .await?;
    tracing::info!(book = book.id.as_str(), "book shared");
    Ok(Shared { token, expires_at })
}

/// Ends every link of the caller's book at once (none is fine).
#[tracing::instrument(skip_all)]
pub async fn revoke_shares(
    app: &App,
    request: &Request<User>,
    raw_id: &str,
) -> Result<(), Refusal> {
    let book = owned_book(app, &request.caller, raw_id, "book").await?;
    app.store.revoke_shares(&book.user, &book.id).await?;
    tracing::info!(book = book.id.as_str(), "book's links revoked");
    Ok(())
}

/// The book an active link opens at `now`: `None` for a malformed, unknown, expired or revoked
/// token, and for a book deleted or no longer readable.
#[tracing::instrument(skip_all)]
pub async fn shared_book(
    app: &App,
    raw_token: &str,
    now: DateTime<Utc>,
) -> Result<Option<Book>, Refusal> {
    let Some(token) = ShareToken::parse(raw_token) else {
        return Ok(None);
    };
    let Some((share, current)) = app.store.find_share(&token.hash()).await? else {
        return Ok(None);
    };
    if !share.is_active(current, now) {
        return Ok(None);
    }
    Ok(app
        .store
        .find_book(&share.book)
        .await?
        .map(|stored| stored.book)
        .filter(|book| book.user == share.user && book.is_readable()))
}

/// One of a shared book's pictures: where it is stored, and what it is.
pub struct SharedPicture {
    key: crate::ports::BlobKey,
    pub content_type: &'static str,
}

impl SharedPicture {
    /// A validator that changes whenever the picture does (a page made again has a new key),
    /// and says nothing of where it is stored.
    pub fn etag(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(self.key.as_str().as_bytes());
        format!("\"{}\"", &hex::encode(digest)[..32])
    }
}

/// A picture of the book an active link opens (page 0 is the cover), by the key the book
/// recorded in our own store; `None` when there is none.
#[tracing::instrument(skip_all)]
pub async fn shared_picture(
    app: &App,
    raw_token: &str,
    page: u32,
    now: DateTime<Utc>,
) -> Result<Option<SharedPicture>, Refusal> {
    let Some(book) = shared_book(app, raw_token, now).await? else {
        return Ok(None);
    };
    let Some(key) = book
        .pages
        .iter()
        .find(|p| u32::from(p.number) == page)
        .and_then(|p| p.image_key.as_deref())
    else {
        return Ok(None);
    };
    let key = super::stored_key(key)?;
    Ok(Some(SharedPicture {
        content_type: key.content_type(),
        key,
    }))
}

/// The picture's bytes, read from our own store (never fetched from a URL); `None` when the
/// file is gone.
#[tracing::instrument(skip_all)]
pub async fn picture_bytes(app: &App, picture: &SharedPicture) -> Result<Option<Bytes>, Refusal> {
    Ok(app.blobs.get(&picture.key).await?)
}
