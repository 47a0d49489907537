//! A parent's consent: the items they agreed to, under which version of the consent text, and
//! whether it was revoked. A child's photo or drawing is taken only under a standing consent that
//! includes photos (PIPA, COPPA); a grant supersedes the one before it.

use super::Invalid;
use chrono::{DateTime, Utc};

/// The consent text's version the app shows today, recorded when a grant names none.
pub const CURRENT_VERSION: &str = "2025-01";

/// One grant, as recorded: kept after it is superseded or revoked, as proof of what was agreed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub privacy: bool,
    pub data_processing: bool,
    pub photos: bool,
    pub version: ConsentVersion,
    pub granted_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

impl Consent {
    /// The required items (privacy and data processing) agreed to, and not revoked.
    pub fn is_granted(&self) -> bool {
        self.revoked_at.is_none() && self.privacy && self.data_processing
    }

    /// The photo gate: a standing consent that includes photos.
    pub fn allows_photos(&self) -> bool {
        self.is_granted() && self.photos
    }
}

/// Whether the photo gate is open under `consent` (the user's latest record, if any).
pub fn photos_allowed(consent: Option<&Consent>) -> bool {
    consent.is_some_and(Consent::allows_photos)
}

/// The version label of the consent text agreed to (`2025-01`, `v2.1`): 1 to 40 ASCII letters,
/// digits, `.`, `_` or `-`. A label is echoed back and shown to operators: no markup fits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentVersion(String);

impl ConsentVersion {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let label = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
        if raw.is_empty() || raw.len() > 40 || !raw.bytes().all(label) {
            return Err(Invalid::new(
                "consent_version must be 1 to 40 letters, digits, '.', '_' or '-'",
            ));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn current() -> Self {
        Self(CURRENT_VERSION.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn consent(privacy: bool, data_processing: bool, photos: bool) -> Consent {
        Consent {
            privacy,
            data_processing,
            photos,
            version: ConsentVersion::current(),
            granted_at: Utc::now(),
            revoked_at: None,
        }
    }

    #[test]
    fn the_photo_gate_needs_the_required_items_and_photos_unrevoked() {
        assert!(photos_allowed(Some(&consent(true, true, true))));
        assert!(!photos_allowed(Some(&consent(true, false, true))));
        assert!(!photos_allowed(Some(&consent(false, true, true))));
        assert!(!photos_allowed(Some(&consent(true, true, false))));
        assert!(!photos_allowed(None));
        let mut revoked = consent(true, true, true);
        revoked.revoked_at = Some(Utc::now());
        assert!(!photos_allowed(Some(&revoked)) && !revoked.is_granted());
    }

    #[test]
    fn versions_are_short_visible_text() {
        assert!(ConsentVersion::parse("2025-01").is_ok());
        for bad in ["", "a b", &"v".repeat(41), "é"] {
            assert!(ConsentVersion::parse(bad).is_err(), "{bad}");
        }
    }
}
