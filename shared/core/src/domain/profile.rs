//! A family's child profiles: at most three per account, exactly one of them the default while
//! any exist, names unique within the account, an age band derived from the birth month in the
//! parent's own time zone. The rules are checked on the whole set at once, so that the store
//! can replace the set as it was read and racing requests cannot break them.

use super::Invalid;
use chrono::{DateTime, Datelike, NaiveDate, Utc};

/// The most profiles one account has.
pub const MAX_PROFILES: usize = 3;

/// The app's age bands.
pub const AGE_BANDS: &[&str] = &["3-5", "5-7", "7-9", "adult"];

/// One child's profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// `profile_<YYYYMMDD>_<8 hex>`.
    pub id: String,
    pub name: String,
    pub age_band: String,
    pub birth_year: Option<i32>,
    pub birth_month: Option<u32>,
    pub preferred_theme: Option<String>,
    pub avatar_url: Option<String>,
    pub is_default: bool,
    pub created_at: DateTime<Utc>,
}

impl Profile {
    pub fn new_id(now: DateTime<Utc>) -> String {
        let random = uuid::Uuid::new_v4().simple().to_string();
        format!("profile_{}_{}", now.format("%Y%m%d"), &random[..8])
    }
}

/// The band a child born in `year`-`month` is in on `today` (the parent's local day): whole
/// years from months elapsed, under 5 `3-5`, under 7 `5-7`, else `7-9` (never `adult`).
pub fn age_band_of(year: i32, month: u32, today: NaiveDate) -> &'static str {
    let months = (today.year() - year) * 12 + today.month() as i32 - month as i32;
    match months.max(0) / 12 {
        0..=4 => "3-5",
        5..=6 => "5-7",
        _ => "7-9",
    }
}

/// What a parent sends for a new profile or a change; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ProfileFields {
    pub name: Option<String>,
    pub age_band: Option<String>,
    pub birth_year: Option<i32>,
    pub birth_month: Option<u32>,
    pub preferred_theme: Option<String>,
    pub avatar_url: Option<String>,
    pub is_default: Option<bool>,
}

/// Why a change to the profiles is refused (400, or 404 for another account's id).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileRefusal {
    #[error("이름은 공백일 수 없습니다.")]
    BlankName,
    #[error("A profile named {0:?} exists already")]
    DuplicateName(String),
    #[error("An account has at most {MAX_PROFILES} profiles")]
    TooMany,
    #[error("The default profile stays the default until another one is made the default")]
    KeepDefault,
    #[error("age_band must be one of 3-5, 5-7, 7-9, adult")]
    AgeBand,
    #[error("No such profile")]
    NotFound,
}

impl From<Invalid> for ProfileRefusal {
    fn from(_: Invalid) -> Self {
        ProfileRefusal::AgeBand
    }
}

/// Trimmed, or `None` when blank.
fn text(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

/// The names compare as the parent sees them: trimmed, case-insensitive.
fn same_name(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// An account's profiles, oldest first, and the changes that keep their rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profiles(pub Vec<Profile>);

impl Profiles {
    fn name_taken(&self, name: &str, except: Option<&str>) -> bool {
        self.0
            .iter()
            .any(|p| Some(p.id.as_str()) != except && same_name(&p.name, name))
    }

    /// The set with `fields` added as a new profile `id`, and that profile.
    pub fn add(
        &self,
        id: String,
        fields: ProfileFields,
        today: NaiveDate,
        now: DateTime<Utc>,
    ) -> Result<(Profiles, Profile), ProfileRefusal> {
        let name = text(fields.name).ok_or(ProfileRefusal::BlankName)?;
        if self.0.len() >= MAX_PROFILES {
            return Err(ProfileRefusal::TooMany);
        }
        if self.name_taken(&name, None) {
            return Err(ProfileRefusal::DuplicateName(name));
        }
        let band = fields.age_band.unwrap_or_else(|| "5-7".into());
        if !AGE_BANDS.contains(&band.as_str()) {
            return Err(ProfileRefusal::AgeBand);
        }
        let age_band = match (fields.birth_year, fields.birth_month) {
            (Some(year), Some(month)) => age_band_of(year, month, today).to_owned(),
            _ => band,
        };
        let is_default = self.0.is_empty() || fields.is_default == Some(true);
        let profile = Profile {
            id,
            name,
            age_band,
            birth_year: fields.birth_year,
            birth_month: fields.birth_month,
            preferred_theme: text(fields.preferred_theme),
            avatar_url: text(fields.avatar_url),
            is_default,
            created_at: now,
        };
        let mut profiles: Vec<Profile> = self
            .0
            .iter()
            .cloned()
            .map(|mut p| {
                p.is_default &= !is_default;
                p
            })
            .collect();
        profiles.push(profile.clone());
        Ok((Profiles(profiles), profile))
    }

    /// The set with profile `id` changed as `fields` say, and that profile.
    pub fn change(
        &self,
        id: &str,
        fields: ProfileFields,
        today: NaiveDate,
    ) -> Result<(Profiles, Profile), ProfileRefusal> {
        let current = self
            .0
            .iter()
            .find(|p| p.id == id)
            .ok_or(ProfileRefusal::NotFound)?;
        let mut changed = current.clone();
        if let Some(name) = fields.name {
            let name = text(Some(name)).ok_or(ProfileRefusal::BlankName)?;
            if self.name_taken(&name, Some(id)) {
                return Err(ProfileRefusal::DuplicateName(name));
            }
            changed.name = name;
        }
        if let Some(band) = fields.age_band {
            if !AGE_BANDS.contains(&band.as_str()) {
                return Err(ProfileRefusal::AgeBand);
            }
            changed.age_band = band;
        }
        if fields.birth_year.is_some() {
            changed.birth_year = fields.birth_year;
        }
        if fields.birth_month.is_some() {
            changed.birth_month = fields.birth_month;
        }
        if let (Some(year), Some(month)) = (changed.birth_year, changed.birth_month) {
            changed.age_band = age_band_of(year, month, today).to_owned();
        }
        if fields.preferred_theme.is_some() {
            changed.preferred_theme = text(fields.preferred_theme);
        }
        if fields.avatar_url.is_some() {
            changed.avatar_url = text(fields.avatar_url);
        }
        match fields.is_default {
            Some(false) if current.is_default => return Err(ProfileRefusal::KeepDefault),
            Some(true) => changed.is_default = true,
            _ => {}
        }
        let profiles = self
            .0
            .iter()
            .map(|p| {
                if p.id == id {
                    changed.clone()
                } else {
                    Profile {
                        is_default: p.is_default && !changed.is_default,
                        ..p.clone()
                    }
                }
            })
            .collect();
        Ok((Profiles(profiles), changed))
    }

    /// The set without profile `id`; the oldest left becomes the default if it was.
    pub fn remove(&self, id: &str) -> Result<Profiles, ProfileRefusal> {
        let removed = self
            .0
            .iter()
            .find(|p| p.id == id)
            .ok_or(ProfileRefusal::NotFound)?;
        let mut profiles: Vec<Profile> = self.0.iter().filter(|p| p.id != id).cloned().collect();
        if removed.is_default
            && let Some(oldest) = profiles.first_mut()
        {
            oldest.is_default = true;
        }
        Ok(Profiles(profiles))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn bands_come_from_whole_years() {
        let today = day(2026, 12, 3);
        assert_eq!(age_band_of(2019, 3, today), "7-9", "the contract's case");
        assert_eq!(age_band_of(2022, 1, today), "3-5");
        assert_eq!(age_band_of(2021, 12, today), "5-7", "five this month");
        assert_eq!(age_band_of(2022, 1, day(2027, 1, 1)), "5-7");
        assert_eq!(
            age_band_of(2030, 1, today),
            "3-5",
            "not born yet is the youngest"
        );
    }

    fn named(name: &str) -> ProfileFields {
        ProfileFields {
            name: Some(name.into()),
            ..Default::default()
        }
    }

    #[test]
    fn three_profiles_one_default_unique_names() {
        let (today, now) = (day(2026, 12, 3), Utc::now());
        let (one, first) = Profiles::default()
            .add("p1".into(), named("Mina"), today, now)
            .unwrap();
        assert!(first.is_default, "the first is the default");
        assert_eq!(
            one.add("p2".into(), named(" mina "), today, now),
            Err(ProfileRefusal::DuplicateName("mina".into()))
        );
        assert_eq!(
            one.add("p2".into(), named("  "), today, now),
            Err(ProfileRefusal::BlankName)
        );
        let made_default = ProfileFields {
            is_default: Some(true),
            ..named("Jun")
        };
        let (two, jun) = one.add("p2".into(), made_default, today, now).unwrap();
        assert!(jun.is_default);
        assert_eq!(two.0.iter().filter(|p| p.is_default).count(), 1);
        let (three, _) = two.add("p3".into(), named("Ara"), today, now).unwrap();
        assert_eq!(
            three.add("p4".into(), named("Bo"), today, now),
            Err(ProfileRefusal::TooMany)
        );
        let keep = ProfileFields {
            is_default: Some(false),
            ..Default::default()
        };
        assert_eq!(
            three.change("p2", keep, today),
            Err(ProfileRefusal::KeepDefault)
        );
        let left = three.remove("p2").unwrap();
        assert_eq!(left.0.len(), 2);
        assert!(left.0[0].is_default, "the oldest left becomes the default");
        assert_eq!(three.remove("nope"), Err(ProfileRefusal::NotFound));
    }

    #[test]
    fn a_birth_month_decides_the_band() {
        let (today, now) = (day(2026, 12, 3), Utc::now());
        let fields = ProfileFields {
            age_band: Some("3-5".into()),
            birth_year: Some(2019),
            birth_month: Some(3),
            ..named("Mina")
        };
        let (set, mina) = Profiles::default()
            .add("p1".into(), fields, today, now)
            .unwrap();
        assert_eq!(mina.age_band, "7-9", "the band sent is ignored");
        let younger = ProfileFields {
            birth_year: Some(2022),
            ..Default::default()
        };
        let (_, changed) = set.change("p1", younger, today).unwrap();
        assert_eq!(changed.age_band, "3-5", "re-derived on a change");
    }
}
