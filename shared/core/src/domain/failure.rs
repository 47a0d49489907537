//! Why a book failed, as stored with it. The app's contract names the codes it knows
//! (`ErrorCode`); the internal ones are shown to it as `UNKNOWN`.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FailureCode {
    /// Moderation refused the request (its reason is kept beside it).
    SafetyInput,
    /// Moderation refused the story, twice.
    SafetyOutput,
    LlmTimeout,
    LlmJsonInvalid,
    ImageTimeout,
    ImageRateLimit,
    ImageFailed,
    StorageUploadFailed,
    DbWriteFailed,
    QueueFailed,
    Unknown,
    /// Internal: the kill switch or the day's hard limit stopped it.
    GenerationStopped,
    /// Internal: the sweep found it without progress for too long.
    Stuck,
}

impl FailureCode {
    pub const ALL: [FailureCode; 13] = [
        FailureCode::SafetyInput,
        FailureCode::SafetyOutput,
        FailureCode::LlmTimeout,
        FailureCode::LlmJsonInvalid,
        FailureCode::ImageTimeout,
        FailureCode::ImageRateLimit,
        FailureCode::ImageFailed,
        FailureCode::StorageUploadFailed,
        FailureCode::DbWriteFailed,
        FailureCode::QueueFailed,
        FailureCode::Unknown,
        FailureCode::GenerationStopped,
        FailureCode::Stuck,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureCode::SafetyInput => "SAFETY_INPUT",
            FailureCode::SafetyOutput => "SAFETY_OUTPUT",
            FailureCode::LlmTimeout => "LLM_TIMEOUT",
            FailureCode::LlmJsonInvalid => "LLM_JSON_INVALID",
            FailureCode::ImageTimeout => "IMAGE_TIMEOUT",
            FailureCode::ImageRateLimit => "IMAGE_RATE_LIMIT",
            FailureCode::ImageFailed => "IMAGE_FAILED",
            FailureCode::StorageUploadFailed => "STORAGE_UPLOAD_FAILED",
            FailureCode::DbWriteFailed => "DB_WRITE_FAILED",
            FailureCode::QueueFailed => "QUEUE_FAILED",
            FailureCode::Unknown => "UNKNOWN",
            FailureCode::GenerationStopped => "GENERATION_STOPPED",
            FailureCode::Stuck => "STUCK",
        }
    }

    /// The code the app is shown: its contract's, or `UNKNOWN` for the internal ones.
    pub fn for_app(self) -> &'static str {
        match self {
            FailureCode::GenerationStopped | FailureCode::Stuck => "UNKNOWN",
            known => known.as_str(),
        }
    }
}

impl std::fmt::Display for FailureCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_as_their_names() {
        for code in FailureCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<FailureCode>(&json).unwrap(), code);
        }
        assert_eq!(FailureCode::Stuck.for_app(), "UNKNOWN");
        assert_eq!(FailureCode::QueueFailed.for_app(), "QUEUE_FAILED");
    }
}
