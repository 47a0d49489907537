//! The studio: the provider calls an API function makes while the parent waits. It makes a
//! character's sheet from a parent's few words, a character from a child's photo or drawing
//! (checked, described, its reference drawn), and reads one page aloud on demand. The step
//! worker's providers serve it; functions that make no such call are given [`NotGiven`].
//!
//! [`NotGiven`]: super::not_given::NotGiven

use crate::domain::book::{Language, TargetAge};
use crate::domain::character::{Sheet, UploadKind, UploadRefusal};
use crate::domain::spend::Stopped;
use async_trait::async_trait;
use bytes::Bytes;

/// What a parent wrote about a character (`from-text`): the story model fills in the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharacterWords {
    pub name: String,
    pub age: String,
    pub traits: Vec<String>,
    pub style: String,
}

/// A child's photo or drawing as the app uploaded it. Never stored: it lives as long as the
/// request does.
#[derive(Clone)]
pub struct Upload {
    pub kind: UploadKind,
    pub bytes: Bytes,
    /// The parent's name for the character; the model suggests one when absent.
    pub name: Option<String>,
    pub style: String,
}

impl std::fmt::Debug for Upload {
    /// A picture of a child is never written to a log, not even its bytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upload")
            .field("kind", &self.kind)
            .field("bytes", &self.bytes.len())
            .finish_non_exhaustive()
    }
}

/// A character made from an upload: its sheet and its reference picture (a PNG without
/// metadata, drawn from the description).
#[derive(Debug, Clone)]
pub struct PictureCharacter {
    pub sheet: Sheet,
    pub reference: Bytes,
}

/// A page read aloud: the audio and its file extension (`mp3`, `wav`).
#[derive(Debug, Clone)]
pub struct PageSpeech {
    pub audio: Bytes,
    pub format: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum StudioError {
    /// The upload itself is refused; the parent is told why.
    #[error("{0}")]
    Upload(UploadRefusal),
    /// Generation is switched off or over today's budget: no provider is called.
    #[error("generation is stopped")]
    Stopped(Stopped),
    /// A provider's safety system refused.
    #[error("refused for safety")]
    Refused,
    /// A provider or a dependency failed; the caller may retry.
    #[error("the studio is unavailable")]
    Unavailable(#[source] anyhow::Error),
}

/// Each call's cost is counted in today's spend under `spent_on`: the id of the character or
/// the book it is made for.
#[async_trait]
pub trait Studio: Send + Sync {
    /// Refuses what a parent wrote when moderation refuses it: the local word list, then the
    /// moderation model, as a book's topic is judged ([`StudioError::Refused`]).
    async fn moderate(&self, words: &str, spent_on: &str) -> Result<(), StudioError>;

    /// A full sheet from the parent's words (moderated first).
    async fn sheet_from_words(
        &self,
        words: &CharacterWords,
        spent_on: &str,
    ) -> Result<Sheet, StudioError>;

    /// Checks the upload (type, declared size before decoding, decoding), describes it as a
    /// cartoon character and draws its reference picture. The upload is not kept.
    async fn character_from_upload(
        &self,
        upload: &Upload,
        spent_on: &str,
    ) -> Result<PictureCharacter, StudioError>;

    /// One page's text read aloud.
    async fn read_aloud(
        &self,
        text: &str,
        language: Language,
        age: TargetAge,
        spent_on: &str,
    ) -> Result<PageSpeech, StudioError>;
}
