//! The small records kept as documents: a reading streak, a parent's settings, a provider's
//! circuit breaker, the kill switch.

use super::Document;
use crate::domain::breaker::BreakerRecord;
use crate::domain::consent::{Consent, ConsentVersion};
use crate::domain::settings::{TimeZone, UserSettings};
use crate::domain::spend::KillSwitch;
use crate::domain::streak::Streak;
use crate::ports::StoreError;
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

impl Document for Consent {
    const KIND: &'static str = "consent";

    fn write(&self) -> String {
        super::written(1, &ConsentV1::from(self))
    }

    fn read(doc: &str) -> Result<Self, StoreError> {
        match super::versioned(doc, Self::KIND)? {
            (1, fields) => super::decode::<ConsentV1>(fields, Self::KIND, 1)?
                .try_into()
                .map_err(|e: crate::domain::Invalid| StoreError::Corrupt(format!("consent: {e}"))),
            (version, _) => Err(super::unknown(Self::KIND, version)),
        }
    }
}
