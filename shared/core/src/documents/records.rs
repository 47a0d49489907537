//! The small records kept as documents: a reading streak, a parent's settings, a provider's
//! circuit breaker, the kill switch.

use crate::domain::breaker::BreakerRecord;
use crate::domain::character::{Appearance, Character, CharacterId, Clothing, Origin};
use crate::domain::consent::{Consent, ConsentVersion};
use crate::domain::settings::{TimeZone, UserSettings};
use crate::domain::spend::KillSwitch;
use crate::domain::streak::Streak;
use crate::domain::user::UserId;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct StreakV1 {
    current: u32,
    longest: u32,
    total_days: u32,
    last_day: Option<NaiveDate>,
    #[serde(default)]
    last_read_at: Option<DateTime<Utc>>,
}

impl From<&Streak> for StreakV1 {
    fn from(s: &Streak) -> Self {
        StreakV1 {
            current: s.current,
            longest: s.longest,
            total_days: s.total_days,
            last_day: s.last_day,
            last_read_at: s.last_read_at,
        }
    }
}

impl From<StreakV1> for Streak {
    fn from(s: StreakV1) -> Self {
        Streak {
            current: s.current,
            longest: s.longest,
            total_days: s.total_days,
            last_day: s.last_day,
            last_read_at: s.last_read_at,
        }
    }
}

version_one!(Streak, "streak", StreakV1);

/// Version 1 of a parent's settings: a field missing from an older document takes its default.
#[derive(Serialize, Deserialize)]
#[serde(default)]
struct SettingsV1 {
    timezone: TimeZone,
    language: String,
    dark_mode: bool,
    bedtime_notification_enabled: bool,
    bedtime_notification_hour: u8,
    bedtime_notification_minute: u8,
    screen_time_enabled: bool,
    daily_limit_minutes: u16,
    sleep_mode_default_minutes: u16,
    allow_kakao_share: bool,
}

impl Default for SettingsV1 {
    fn default() -> Self {
        SettingsV1::from(&UserSettings::default())
    }
}

impl From<&UserSettings> for SettingsV1 {
    fn from(s: &UserSettings) -> Self {
        SettingsV1 {
            timezone: s.timezone,
            language: s.language.clone(),
            dark_mode: s.dark_mode,
            bedtime_notification_enabled: s.bedtime_notification_enabled,
            bedtime_notification_hour: s.bedtime_notification_hour,
            bedtime_notification_minute: s.bedtime_notification_minute,
            screen_time_enabled: s.screen_time_enabled,
            daily_limit_minutes: s.daily_limit_minutes,
            sleep_mode_default_minutes: s.sleep_mode_default_minutes,
            allow_kakao_share: s.allow_kakao_share,
        }
    }
}

impl From<SettingsV1> for UserSettings {
    fn from(s: SettingsV1) -> Self {
        UserSettings {
            timezone: s.timezone,
            language: s.language,
            dark_mode: s.dark_mode,
            bedtime_notification_enabled: s.bedtime_notification_enabled,
            bedtime_notification_hour: s.bedtime_notification_hour,
            bedtime_notification_minute: s.bedtime_notification_minute,
            screen_time_enabled: s.screen_time_enabled,
            daily_limit_minutes: s.daily_limit_minutes,
            sleep_mode_default_minutes: s.sleep_mode_default_minutes,
            allow_kakao_share: s.allow_kakao_share,
        }
    }
}

version_one!(UserSettings, "settings", SettingsV1);

#[derive(Serialize, Deserialize)]
struct BreakerV1 {
    failures: u32,
    window_started: Option<DateTime<Utc>>,
    open_until: Option<DateTime<Utc>>,
    probe_until: Option<DateTime<Utc>>,
}

impl From<&BreakerRecord> for BreakerV1 {
    fn from(b: &BreakerRecord) -> Self {
        BreakerV1 {
            failures: b.failures,
            window_started: b.window_started,
            open_until: b.open_until,
            probe_until: b.probe_until,
        }
    }
}

impl From<BreakerV1> for BreakerRecord {
    fn from(b: BreakerV1) -> Self {
        BreakerRecord {
            failures: b.failures,
            window_started: b.window_started,
            open_until: b.open_until,
            probe_until: b.probe_until,
        }
    }
}

version_one!(BreakerRecord, "breaker", BreakerV1);

#[derive(Serialize, Deserialize)]
struct KillSwitchV1 {
    on: bool,
    reason: String,
    by: String,
    at: DateTime<Utc>,
}

impl From<&KillSwitch> for KillSwitchV1 {
    fn from(k: &KillSwitch) -> Self {
        KillSwitchV1 {
            on: k.on,
            reason: k.reason.clone(),
            by: k.by.clone(),
            at: k.at,
        }
    }
}

impl From<KillSwitchV1> for KillSwitch {
    fn from(k: KillSwitchV1) -> Self {
        KillSwitch {
            on: k.on,
            reason: k.reason,
            by: k.by,
            at: k.at,
        }
    }
}

version_one!(KillSwitch, "kill switch", KillSwitchV1);

/// Version 1 of a consent record.
#[derive(Serialize, Deserialize)]
struct ConsentV1 {
    privacy: bool,
    data_processing: bool,
    photos: bool,
    version: String,
    granted_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
}

impl From<&Consent> for ConsentV1 {
    fn from(c: &Consent) -> Self {
        ConsentV1 {
            privacy: c.privacy,
            data_processing: c.data_processing,
            photos: c.photos,
            version: c.version.as_str().to_owned(),
            granted_at: c.granted_at,
            revoked_at: c.revoked_at,
        }
    }
}

impl TryFrom<ConsentV1> for Consent {
    type Error = crate::domain::Invalid;

    fn try_from(c: ConsentV1) -> Result<Self, Self::Error> {
        Ok(Consent {
            privacy: c.privacy,
            data_processing: c.data_processing,
            photos: c.photos,
            version: ConsentVersion::parse(&c.version)?,
            granted_at: c.granted_at,
            revoked_at: c.revoked_at,
        })
    }
}

version_one!(Consent, "consent", ConsentV1, checked);

/// Version 1 of a character.
#[derive(Serialize, Deserialize)]
struct CharacterV1 {
    id: String,
    user: UserId,
    name: String,
    master_description: String,
    appearance: AppearanceV1,
    clothing: ClothingV1,
    personality_traits: Vec<String>,
    distinctive_features: Option<Vec<String>>,
    visual_style_notes: String,
    origin: String,
    reference_key: Option<String>,
    /// Added after the first characters were stored: absent reads as none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    upload_fingerprint: Option<String>,
    created_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct AppearanceV1 {
    age_visual: String,
    face: String,
    hair: String,
    skin: String,
    body: String,
}

#[derive(Serialize, Deserialize)]
struct ClothingV1 {
    top: String,
    bottom: String,
    shoes: String,
    accessories: String,
}

impl From<&Character> for CharacterV1 {
    fn from(c: &Character) -> Self {
        let (a, w) = (&c.appearance, &c.clothing);
        CharacterV1 {
            id: c.id.as_str().to_owned(),
            user: c.user.clone(),
            name: c.name.clone(),
            master_description: c.master_description.clone(),
            appearance: AppearanceV1 {
                age_visual: a.age_visual.clone(),
                face: a.face.clone(),
                hair: a.hair.clone(),
                skin: a.skin.clone(),
                body: a.body.clone(),
            },
            clothing: ClothingV1 {
                top: w.top.clone(),
                bottom: w.bottom.clone(),
                shoes: w.shoes.clone(),
                accessories: w.accessories.clone(),
            },
            personality_traits: c.personality_traits.clone(),
            distinctive_features: c.distinctive_features.clone(),
            visual_style_notes: c.visual_style_notes.clone(),
            origin: c.origin.as_str().to_owned(),
            reference_key: c.reference_key.clone(),
            upload_fingerprint: c.upload_fingerprint.clone(),
            created_at: c.created_at,
        }
    }
}

impl TryFrom<CharacterV1> for Character {
    type Error = crate::domain::Invalid;

    fn try_from(c: CharacterV1) -> Result<Self, Self::Error> {
        let (a, w) = (c.appearance, c.clothing);
        Ok(Character {
            id: CharacterId::parse(&c.id)?,
            user: c.user,
            name: c.name,
            master_description: c.master_description,
            appearance: Appearance {
                age_visual: a.age_visual,
                face: a.face,
                hair: a.hair,
                skin: a.skin,
                body: a.body,
            },
            clothing: Clothing {
                top: w.top,
                bottom: w.bottom,
                shoes: w.shoes,
                accessories: w.accessories,
            },
            personality_traits: c.personality_traits,
            distinctive_features: c.distinctive_features,
            visual_style_notes: c.visual_style_notes,
            origin: Origin::parse(&c.origin)?,
            reference_key: c.reference_key,
            upload_fingerprint: c.upload_fingerprint,
            created_at: c.created_at,
        })
    }
}

version_one!(Character, "character", CharacterV1, checked);
