//! Where a book's files live in blob storage, and how a step of a book is queued: what the HTTP
//! layer, the pipeline and erasure agree on.

use crate::domain::book::{Book, BookId, Step};
use crate::ports::queue::StepMessage;
use crate::ports::{BlobError, BlobFolder, BlobKey, BlobStore, StepQueue};

/// Where a page's picture lives in blob storage, by the kind of image it is.
pub fn image_key_as(book: &BookId, page: u8, extension: &str) -> BlobKey {
    BlobKey::parse(&format!(
        "books/{}/page-{page:02}.{extension}",
        book.as_str()
    ))
    .expect("a valid key")
}

/// A page's picture as a PNG (placeholders, offline pictures).
pub fn image_key(book: &BookId, page: u8) -> BlobKey {
    image_key_as(book, page, "png")
}

/// A page's picture made again: each version under its own name, so that the one before stays
/// readable until the new one has landed.
pub fn page_version_key(book: &BookId, page: u8, version: u32, extension: &str) -> BlobKey {
    BlobKey::parse(&format!(
        "books/{}/page-{page:02}-v{version}.{extension}",
        book.as_str()
    ))
    .expect("a valid key")
}

pub fn audio_key(book: &BookId, page: u8, extension: &str) -> BlobKey {
    BlobKey::parse(&format!(
        "books/{}/page-{page:02}.{extension}",
        book.as_str()
    ))
    .expect("a valid key")
}

/// Where a character's reference picture lives.
pub fn character_reference_key(
    character: &crate::domain::character::CharacterId,
    extension: &str,
) -> BlobKey {
    BlobKey::parse(&format!(
        "characters/{}/reference.{extension}",
        character.as_str()
    ))
    .expect("a valid key")
}

pub fn reference_key(book: &BookId, extension: &str) -> BlobKey {
    BlobKey::parse(&format!("books/{}/reference.{extension}", book.as_str())).expect("a valid key")
}

/// A print-ready file (`interior` or `cover`) made for print order `order`.
pub fn print_file_key(book: &BookId, order: &str, file: &str) -> BlobKey {
    BlobKey::parse(&format!("books/{}/print/{order}/{file}.pdf", book.as_str()))
        .expect("a valid key")
}

pub fn pdf_key(book: &BookId) -> BlobKey {
    BlobKey::parse(&format!("books/{}/book.pdf", book.as_str())).expect("a valid key")
}

/// Every blob a book may have, for deletion: the ones it recorded, and the usual names of any a
/// step stored but did not get to record.
pub fn blob_keys(book: &Book) -> Vec<BlobKey> {
    let recorded = book
        .pages
        .iter()
        .flat_map(|p| [p.image_key.as_deref(), p.audio_key.as_deref()])
        .chain([book.reference_key.as_deref(), book.pdf_key.as_deref()])
        .flatten()
        .filter_map(|key| BlobKey::parse(key).ok());
    let usual = (0..=book.request.page_count.get()).flat_map(|page| {
        [
            image_key(&book.id, page),
            audio_key(&book.id, page, "wav"),
            audio_key(&book.id, page, "mp3"),
        ]
    });
    let mut keys: Vec<BlobKey> = recorded
        .chain(usual)
        .chain([reference_key(&book.id, "png"), pdf_key(&book.id)])
        .collect();
    keys.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    keys.dedup();
    keys
}

/// The folder every file of a book is stored in (`books/<id>`).
pub fn book_folder(book: &BookId) -> BlobFolder {
    BlobFolder::parse(&format!("books/{}", book.as_str())).expect("a valid folder")
}

/// The folder of a character's files (`characters/<id>`).
pub fn character_folder(character: &crate::domain::character::CharacterId) -> BlobFolder {
    BlobFolder::parse(&format!("characters/{}", character.as_str())).expect("a valid folder")
}

/// Deletes every file of `book`: its whole folder (whatever a step stored there, recorded or
/// not, under any version's name) and any file it records elsewhere. Run once the record is
/// gone, nothing a step stores afterwards outlives it: each step that finds its book gone
/// deletes what it stored.
pub async fn delete_book_files(blobs: &dyn BlobStore, book: &Book) -> Result<(), BlobError> {
    let folder = book_folder(&book.id);
    for key in blob_keys(book) {
        if !key.is_in(&folder) {
            blobs.delete(&key).await?;
        }
    }
    blobs.delete_folder(&folder).await
}

/// Enqueues one step of one book.
pub async fn enqueue_step(
    queue: &dyn StepQueue,
    book: &BookId,
    step: Step,
) -> Result<(), crate::ports::QueueError> {
    let message = StepMessage::new(book.clone(), step);
    queue
        .send(&serde_json::to_string(&message).expect("step messages serialise"))
        .await
        .map(|_| ())
}
