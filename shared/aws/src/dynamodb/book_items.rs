//! A book's items: the book document, its library entry, its entries in the indexes of unfinished books, and their conversions.

use super::*;

pub(super) fn idempotency_sk(key: &IdempotencyKey) -> String {
    format!("IDEM#{}", key.as_str())
}

pub(super) fn book_pk(id: &BookId) -> String {
    format!("BOOK#{}", id.as_str())
}

pub(super) fn library_sk(book: &Book) -> String {
    format!("BOOK#{}#{}", book.created_at.to_rfc3339(), book.id.as_str())
}

/// The index of unfinished books: one partition (two writes a book, far below a partition's
/// thousand writes a second), sorted by creation time so the sweep reads only the old ones.
pub(super) const UNFINISHED_PK: &str = "UNFINISHED";

/// The library entry's sort key without its `BOOK#`: erasure finds one from the other.
pub(super) fn unfinished_sk(book: &Book) -> String {
    format!("{}#{}", book.created_at.to_rfc3339(), book.id.as_str())
}

impl DynamoStore {
    pub(super) fn book_put(
        &self,
        book: &Book,
        version: u64,
        condition: Option<u64>,
    ) -> Result<TransactWriteItem, StoreError> {
        let mut put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(book_pk(&book.id)))
            .item("sk", s("BOOK"))
            .item("user", s(book.user.as_str()))
            .item("doc", s(Document::write(book)))
            .item("version", n(version as i64));
        put = match condition {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(expected) => put
                .condition_expression("version = :expected")
                .expression_attribute_values(":expected", n(expected as i64)),
        };
        Ok(TransactWriteItem::builder()
            .put(put.build().map_err(StoreError::unavailable)?)
            .build())
    }

    /// The writes that store `book` at `version`: the book itself, and once it is finished the
    /// removal of its entry in the index of unfinished books.
    pub(super) fn book_writes(
        &self,
        book: &Book,
        version: u64,
        condition: Option<u64>,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        let mut writes = vec![self.book_put(book, version, condition)?];
        if book.is_finished() {
            writes.extend(self.unfinished_deletes(book)?);
        }
        Ok(writes)
    }

    /// The book's entries in the index of unfinished books and in its user's.
    pub(super) fn unfinished_puts(
        &self,
        book: &Book,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        Ok(vec![
            self.plain_put(UNFINISHED_PK.into(), unfinished_sk(book), &book.id)?,
            self.plain_put(
                user_pk(&book.user),
                format!("UNFINISHED#{}", unfinished_sk(book)),
                &book.id,
            )?,
        ])
    }

    pub(super) fn unfinished_deletes(
        &self,
        book: &Book,
    ) -> Result<Vec<TransactWriteItem>, StoreError> {
        [
            (UNFINISHED_PK.to_owned(), unfinished_sk(book)),
            (
                user_pk(&book.user),
                format!("UNFINISHED#{}", unfinished_sk(book)),
            ),
        ]
        .into_iter()
        .map(|(pk, sk)| {
            let delete = aws_sdk_dynamodb::types::Delete::builder()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .build()
                .map_err(StoreError::unavailable)?;
            Ok(TransactWriteItem::builder().delete(delete).build())
        })
        .collect()
    }

    pub(super) fn plain_put(
        &self,
        pk: String,
        sk: String,
        book: &BookId,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .item("pk", s(pk))
            .item("sk", s(sk))
            .item("book_id", s(book.as_str()))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(StoreError::unavailable)?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    pub(super) fn parse_book(item: &Item) -> Result<StoredBook, StoreError> {
        let book = Document::read(&text(item, "doc")?)?;
        Ok(StoredBook {
            book,
            version: num(item, "version")? as u64,
        })
    }

    /// A conditional write of the book alone (and `extra`), reporting a lost race as `false`.
    pub(super) async fn swap(&self, items: Vec<TransactWriteItem>) -> Result<bool, StoreError> {
        match self.transact(items).await {
            Ok(()) => Ok(true),
            Err(Attempt::Lost(_)) => Ok(false),
            Err(Attempt::Failed(e)) => Err(e),
        }
    }
}
