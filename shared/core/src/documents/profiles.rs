//! An account's child profiles, kept as one document: the rules hold over the set, so the set
//! is replaced as a whole, as it was read.

use crate::domain::profile::{Profile, Profiles};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct ProfileV1 {
    id: String,
    name: String,
    age_band: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    birth_year: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    birth_month: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    preferred_theme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    avatar_url: Option<String>,
    is_default: bool,
    created_at: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct ProfilesV1 {
    profiles: Vec<ProfileV1>,
}

impl From<&Profiles> for ProfilesV1 {
    fn from(set: &Profiles) -> Self {
        ProfilesV1 {
            profiles: set
                .0
                .iter()
                .map(|p| ProfileV1 {
                    id: p.id.clone(),
                    name: p.name.clone(),
                    age_band: p.age_band.clone(),
                    birth_year: p.birth_year,
                    birth_month: p.birth_month,
                    preferred_theme: p.preferred_theme.clone(),
                    avatar_url: p.avatar_url.clone(),
                    is_default: p.is_default,
                    created_at: p.created_at,
                })
                .collect(),
        }
    }
}

impl From<ProfilesV1> for Profiles {
    fn from(doc: ProfilesV1) -> Self {
        Profiles(
            doc.profiles
                .into_iter()
                .map(|p| Profile {
                    id: p.id,
                    name: p.name,
                    age_band: p.age_band,
                    birth_year: p.birth_year,
                    birth_month: p.birth_month,
                    preferred_theme: p.preferred_theme,
                    avatar_url: p.avatar_url,
                    is_default: p.is_default,
                    created_at: p.created_at,
                })
                .collect(),
        )
    }
}

version_one!(Profiles, "profiles", ProfilesV1);
