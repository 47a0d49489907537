//! The documents the stores keep, each its own versioned type, apart from the domain's types:
//! the domain may change freely, a stored shape only with a new version, and reading knows every
//! version ever written. A document is JSON, `{"v": N, ...its fields}`; one without `v` was
//! written before versions and is version 1, the same shape.
//!
//! Both adapters store documents only through [`Document`], so they cannot drift apart.

/// A domain type kept as version 1 of its document `$doc`, through `From` conversions both ways
/// (or, with `checked`, `TryFrom` from the document where its fields are validated again).
macro_rules! version_one {
    ($domain:ty, $kind:literal, $doc:ident) => {
        version_one!(@impl $domain, $kind, $doc, |doc: $doc| Ok(doc.into()));
    };
    ($domain:ty, $kind:literal, $doc:ident, checked) => {
        version_one!(@impl $domain, $kind, $doc, |doc: $doc| doc.try_into().map_err(
            |e: $crate::domain::Invalid| $crate::ports::StoreError::Corrupt(format!("{}: {e}", $kind))
        ));
    };
    (@impl $domain:ty, $kind:literal, $doc:ident, $convert:expr) => {
        impl $crate::documents::Document for $domain {
            const KIND: &'static str = $kind;

            fn write(&self) -> String {
                $crate::documents::written(1, &$doc::from(self))
            }

            fn read(doc: &str) -> Result<Self, $crate::ports::StoreError> {
                match $crate::documents::versioned(doc, Self::KIND)? {
                    (1, fields) => {
                        let convert: fn($doc) -> Result<Self, $crate::ports::StoreError> = $convert;
                        convert($crate::documents::decode::<$doc>(fields, Self::KIND, 1)?)
                    }
                    (version, _) => Err($crate::documents::unknown(Self::KIND, version)),
                }
            }
        }
    };
}

mod book;
mod print;
mod profiles;
mod purchases;
mod records;

use crate::ports::StoreError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// A domain value kept as one stored document.
pub trait Document: Sized {
    /// What the document holds, for errors.
    const KIND: &'static str;
    /// The document, at the current version.
    fn write(&self) -> String;
    /// The value of a document of any version written so far.
    fn read(doc: &str) -> Result<Self, StoreError>;
}

/// `body` with its version.
fn written<T: Serialize>(version: u64, body: &T) -> String {
    let mut value = serde_json::to_value(body).expect("documents serialise");
    if let Value::Object(fields) = &mut value {
        fields.insert("v".into(), Value::from(version));
    }
    value.to_string()
}

/// A document's version and its fields.
fn versioned(doc: &str, kind: &str) -> Result<(u64, Value), StoreError> {
    let mut value: Value = serde_json::from_str(doc)
        .map_err(|e| StoreError::Corrupt(format!("{kind} document: {e}")))?;
    let version = match &mut value {
        Value::Object(fields) => fields.remove("v").and_then(|v| v.as_u64()).unwrap_or(1),
        _ => {
            return Err(StoreError::Corrupt(format!(
                "{kind} document is not an object"
            )));
        }
    };
    Ok((version, value))
}

/// The fields of one version, as its type.
fn decode<T: DeserializeOwned>(fields: Value, kind: &str, version: u64) -> Result<T, StoreError> {
    serde_json::from_value(fields)
        .map_err(|e| StoreError::Corrupt(format!("{kind} document v{version}: {e}")))
}

/// A version this code does not know: written by a newer release.
fn unknown(kind: &str, version: u64) -> StoreError {
    StoreError::Corrupt(format!(
        "{kind} document v{version} is newer than this release reads"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::book::{Book, JobState, PageAsset};
    use crate::domain::settings::UserSettings;

    /// A book as stored before documents had versions: no `v`, and none of the fields added
    /// since (characters, cover scene, reference, refusal, sweep).
    const BOOK_BEFORE_VERSIONS: &str = r#"{"id":"bk_1","user":"u","state":"done","title":"T",
        "request":{"topic":"t","target_age":"5-7","style":"cartoon","language":"en",
            "page_count":4,"protagonist":"Mina","character_appearance":null,
            "forbidden_elements":["spiders"],"theme":null,"narration":true},
        "pages":[{"number":1,"text":"Once","image_key":"books/bk_1/page-01.png",
            "image_state":"generated","audio_key":null,"audio_state":"missing"}],
        "pending_assets":0,"total_assets":1,"pdf_key":"books/bk_1/book.pdf",
        "warnings":[{"code":"AUDIO_MISSING","message":"m","asset":"audio","page_number":1}],
        "failure":null,"charged":1,"refunded":false,
        "created_at":"2026-01-02T03:04:05Z","updated_at":"2026-01-02T03:04:06Z"}"#;

    #[test]
    fn a_document_from_before_versions_reads_as_version_one() {
        let book = Book::read(BOOK_BEFORE_VERSIONS).unwrap();
        assert_eq!(book.state, JobState::Done);
        assert_eq!(book.request.hero(), "Mina");
        assert_eq!(book.pages[0].scene, "");
        assert_eq!(
            book.warnings[0].code,
            crate::domain::book::WarningCode::AudioMissing
        );
        assert!(book.characters.is_empty() && book.swept_at.is_none());
    }

    #[test]
    fn a_written_document_carries_its_version_and_reads_back_the_same() {
        let book = Book::read(BOOK_BEFORE_VERSIONS).unwrap();
        let doc = book.write();
        let fields: Value = serde_json::from_str(&doc).unwrap();
        assert_eq!(fields["v"], 1);
        assert_eq!(Book::read(&doc).unwrap(), book);
        let settings = UserSettings::default();
        assert_eq!(UserSettings::read(&settings.write()).unwrap(), settings);
        let asset = PageAsset::Audio {
            key: None,
            state: crate::domain::book::AudioState::Missing,
            warning: None,
        };
        assert_eq!(PageAsset::read(&asset.write()).unwrap(), asset);
    }

    #[test]
    fn a_newer_version_is_refused_not_misread() {
        let newer = BOOK_BEFORE_VERSIONS.replacen('{', r#"{"v":2,"#, 1);
        let refused = Book::read(&newer).unwrap_err().to_string();
        assert!(refused.contains("v2"), "{refused}");
        assert!(Book::read("[]").is_err() && Book::read("not json").is_err());
    }
}
