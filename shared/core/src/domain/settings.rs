//! A parent's app settings, above all their time zone: days (streaks, the daily book cap) are
//! counted from local midnight to local midnight.

use super::Invalid;
use super::Window;
use chrono::{DateTime, Days, NaiveDate, TimeZone as _, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// An IANA time zone name (`Asia/Seoul`, `America/Los_Angeles`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(Tz);

impl TimeZone {
    /// The app's default for a parent who never chose one.
    pub const DEFAULT: TimeZone = TimeZone(chrono_tz::Asia::Seoul);

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        // `Tz` also knows lower-case and legacy spellings; the stored name is its canonical one.
        raw.parse::<Tz>()
            .map(Self)
            .map_err(|_| Invalid::new("timezone must be an IANA time zone name, e.g. Asia/Seoul"))
    }

    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// The local calendar day `at` falls on.
    pub fn day_of(self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.0).date_naive()
    }

    /// When the local `day` begins, in UTC. Where a daylight-saving change skips midnight the day
    /// begins at the first local time that exists.
    pub fn start_of(self, day: NaiveDate) -> DateTime<Utc> {
        let mut local = day.and_hms_opt(0, 0, 0).expect("midnight is a time");
        // Gaps are at most a few hours; each step moves past part of one.
        for _ in 0..24 {
            if let Some(start) = self.0.from_local_datetime(&local).earliest() {
                return start.with_timezone(&Utc);
            }
            local += chrono::Duration::minutes(30);
        }
        unreachable!("no time zone skips a whole day's first twelve hours")
    }

    /// The local day `now` falls in, as a window from its local midnight to the next one (23, 24
    /// or 25 hours long).
    pub fn today(self, now: DateTime<Utc>) -> Window {
        let day = self.day_of(now);
        let next = day.checked_add_days(Days::new(1)).expect("a day after");
        Window {
            start: self.start_of(day),
            end: self.start_of(next),
            now,
        }
    }
}

impl Serialize for TimeZone {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for TimeZone {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        TimeZone::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// Everything `PATCH /v1/settings` can set, with the values a new parent starts with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(default)]
pub struct UserSettings {
    pub timezone: TimeZone,
    pub language: String,
    pub dark_mode: bool,
    pub bedtime_notification_enabled: bool,
    pub bedtime_notification_hour: u8,
    pub bedtime_notification_minute: u8,
    pub screen_time_enabled: bool,
    pub daily_limit_minutes: u16,
    pub sleep_mode_default_minutes: u16,
    /// Sharing is off until a parent turns it on.
    pub allow_kakao_share: bool,
}

impl Default for UserSettings {
    fn default() -> Self {
        Self {
            timezone: TimeZone::DEFAULT,
            language: "ko".into(),
            dark_mode: false,
            bedtime_notification_enabled: false,
            bedtime_notification_hour: 20,
            bedtime_notification_minute: 30,
            screen_time_enabled: false,
            daily_limit_minutes: 60,
            sleep_mode_default_minutes: 30,
            allow_kakao_share: false,
        }
    }
}

/// The app contract's `SettingsPatchRequest`: a field left out or `null` keeps its value.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSettingsPatch {
    pub timezone: Option<String>,
    pub language: Option<String>,
    pub dark_mode: Option<bool>,
    pub bedtime_notification_enabled: Option<bool>,
    pub bedtime_notification_hour: Option<i64>,
    pub bedtime_notification_minute: Option<i64>,
    pub screen_time_enabled: Option<bool>,
    pub daily_limit_minutes: Option<i64>,
    pub sleep_mode_default_minutes: Option<i64>,
    pub allow_kakao_share: Option<bool>,
}

/// A refused field of a patch: its name and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRefusal {
    pub field: &'static str,
    pub reason: String,
}

impl UserSettingsPatch {
    /// The settings with the patch applied, or every field it refuses (the app contract's bounds).
    pub fn apply(self, current: &UserSettings) -> Result<UserSettings, Vec<FieldRefusal>> {
        let mut next = current.clone();
        let mut refused = Vec::new();
        let mut bounded = |field: &'static str, value: Option<i64>, low: i64, high: i64| {
            let value = value?;
            if (low..=high).contains(&value) {
                Some(value)
            } else {
                refused.push(FieldRefusal {
                    field,
                    reason: format!("Input should be between {low} and {high}"),
                });
                None
            }
        };
        if let Some(hour) = bounded(
            "bedtime_notification_hour",
            self.bedtime_notification_hour,
            0,
            23,
        ) {
            next.bedtime_notification_hour = hour as u8;
        }
        if let Some(minute) = bounded(
            "bedtime_notification_minute",
            self.bedtime_notification_minute,
            0,
            59,
        ) {
            next.bedtime_notification_minute = minute as u8;
        }
        if let Some(minutes) = bounded("daily_limit_minutes", self.daily_limit_minutes, 30, 120) {
            next.daily_limit_minutes = minutes as u16;
        }
        if let Some(minutes) = bounded(
            "sleep_mode_default_minutes",
            self.sleep_mode_default_minutes,
            10,
            60,
        ) {
            next.sleep_mode_default_minutes = minutes as u16;
        }
        if let Some(raw) = self.timezone {
            match TimeZone::parse(&raw) {
                Ok(zone) if raw.len() <= 40 => next.timezone = zone,
                _ => refused.push(FieldRefusal {
                    field: "timezone",
                    reason: "timezone must be an IANA time zone name, e.g. Asia/Seoul".into(),
                }),
            }
        }
        if let Some(language) = self.language {
            if matches!(language.as_str(), "ko" | "en" | "ja") {
                next.language = language;
            } else {
                refused.push(FieldRefusal {
                    field: "language",
                    reason: "language must be one of ko, en, ja".into(),
                });
            }
        }
        let flags = [
            (self.dark_mode, &mut next.dark_mode),
            (
                self.bedtime_notification_enabled,
                &mut next.bedtime_notification_enabled,
            ),
            (self.screen_time_enabled, &mut next.screen_time_enabled),
            (self.allow_kakao_share, &mut next.allow_kakao_share),
        ];
        for (value, slot) in flags {
            if let Some(value) = value {
                *slot = value;
            }
        }
        if refused.is_empty() {
            Ok(next)
        } else {
            Err(refused)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(raw: &str) -> DateTime<Utc> {
        raw.parse().unwrap()
    }

    #[test]
    fn days_are_local() {
        let seoul = TimeZone::DEFAULT;
        // 15:00Z is midnight in Seoul.
        assert_eq!(
            seoul.day_of(at("2026-07-06T14:59:59Z")).to_string(),
            "2026-07-06"
        );
        assert_eq!(
            seoul.day_of(at("2026-07-06T15:00:00Z")).to_string(),
            "2026-07-07"
        );
        let la = TimeZone::parse("America/Los_Angeles").unwrap();
        assert_eq!(
            la.day_of(at("2026-07-07T06:59:00Z")).to_string(),
            "2026-07-06"
        );
    }

    #[test]
    fn days_across_daylight_saving_are_23_and_25_hours() {
        let la = TimeZone::parse("America/Los_Angeles").unwrap();
        let spring = la.today(at("2026-03-08T12:00:00Z"));
        assert_eq!((spring.end - spring.start).num_hours(), 23);
        let autumn = la.today(at("2026-11-01T12:00:00Z"));
        assert_eq!((autumn.end - autumn.start).num_hours(), 25);
    }

    #[test]
    fn a_day_whose_midnight_is_skipped_begins_at_its_first_hour() {
        // Santiago moved its clocks from 00:00 to 01:00 on 2026-09-06.
        let santiago = TimeZone::parse("America/Santiago").unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 9, 6).unwrap();
        assert_eq!(santiago.start_of(day), at("2026-09-06T04:00:00Z"));
    }

    #[test]
    fn names_are_iana() {
        assert!(TimeZone::parse("Mars/Olympus").is_err());
        assert!(TimeZone::parse("").is_err());
        assert_eq!(
            TimeZone::parse("Europe/Berlin").unwrap().name(),
            "Europe/Berlin"
        );
    }

    #[test]
    fn a_patch_changes_what_it_names_and_refuses_out_of_bounds() {
        let patch = UserSettingsPatch {
            timezone: Some("America/New_York".into()),
            dark_mode: Some(true),
            ..Default::default()
        };
        let next = patch.apply(&UserSettings::default()).unwrap();
        assert_eq!(next.timezone.name(), "America/New_York");
        assert!(next.dark_mode);
        assert_eq!(next.language, "ko");
        let refused = UserSettingsPatch {
            timezone: Some("Nowhere/Else".into()),
            daily_limit_minutes: Some(5),
            ..Default::default()
        }
        .apply(&UserSettings::default())
        .unwrap_err();
        let fields: Vec<_> = refused.iter().map(|r| r.field).collect();
        assert_eq!(fields, ["daily_limit_minutes", "timezone"]);
    }
}
