//! A family's child profiles: listed, made, changed and deleted by their own account only.
//! Each change reads the set, decides over it (the limit, the single default, unique names)
//! and replaces it as read, again on a lost race: twenty racing requests keep every rule.

use super::users::settings_of;
use super::{Refusal, Request};
use crate::app::App;
use crate::domain::profile::{Profile, ProfileFields, ProfileRefusal, Profiles};
use crate::domain::user::User;
use chrono::NaiveDate;

/// How many times a change reads and decides again when others keep changing the set.
const ATTEMPTS: usize = 40;

/// The account's profiles, oldest first.
#[tracing::instrument(skip_all)]
pub async fn profiles(app: &App, request: &Request<User>) -> Result<Vec<Profile>, Refusal> {
    Ok(app.store.profiles(&request.caller.id).await?.profiles.0)
}

/// Refuses a request scoped to a profile that is not one of the account's (400): what writes
/// under a profile (a book, a reading) check before they tag anything with it.
#[tracing::instrument(skip_all)]
pub async fn require_own_profile(app: &App, request: &Request<User>) -> Result<(), Refusal> {
    let Some(profile) = &request.profile else {
        return Ok(());
    };
    let stored = app.store.profiles(&request.caller.id).await?;
    if stored.profiles.0.iter().any(|p| &p.id == profile) {
        Ok(())
    } else {
        Err(Refusal::Invalid(
            "X-Profile-Id is not one of this account's child profiles".into(),
        ))
    }
}

/// The parent's local day, for age bands.
async fn today(app: &App, request: &Request<User>) -> Result<NaiveDate, Refusal> {
    let settings = settings_of(app, &request.caller).await?;
    Ok(settings.timezone.day_of(request.now))
}

/// Reads the set, applies `change` and stores the result as read, until it holds.
async fn changed<T>(
    app: &App,
    request: &Request<User>,
    change: impl Fn(&Profiles) -> Result<(Profiles, T), ProfileRefusal>,
) -> Result<T, Refusal> {
    let user = &request.caller.id;
    for _ in 0..ATTEMPTS {
        let stored = app.store.profiles(user).await?;
        let (set, answer) = change(&stored.profiles)?;
        if app
            .store
            .replace_profiles(user, stored.version, &set)
            .await?
        {
            return Ok(answer);
        }
    }
    Err(Refusal::unavailable(anyhow::anyhow!(
        "the profiles kept changing"
    )))
}

#[tracing::instrument(skip_all)]
pub async fn create_profile(
    app: &App,
    request: &Request<User>,
    fields: ProfileFields,
) -> Result<Profile, Refusal> {
    let today = today(app, request).await?;
    let id = Profile::new_id(request.now);
    changed(app, request, |set| {
        set.add(id.clone(), fields.clone(), today, request.now)
    })
    .await
}

#[tracing::instrument(skip_all)]
pub async fn update_profile(
    app: &App,
    request: &Request<User>,
    id: &str,
    fields: ProfileFields,
) -> Result<Profile, Refusal> {
    let today = today(app, request).await?;
    changed(app, request, |set| set.change(id, fields.clone(), today)).await
}

#[tracing::instrument(skip_all)]
pub async fn delete_profile(app: &App, request: &Request<User>, id: &str) -> Result<(), Refusal> {
    changed(app, request, |set| Ok((set.remove(id)?, ()))).await
}
