//! A parent's consent: read, granted (superseding the one before) and revoked, each audited.

use super::{Refusal, Request, audit};
use crate::app::App;
use crate::domain::audit::AuditEvent;
use crate::domain::consent::{Consent, ConsentVersion};
use crate::domain::user::User;
use crate::usecases::characters::drop_photo_characters;

/// The user's latest consent record, revoked or not; `None` while they never gave one.
#[tracing::instrument(skip_all)]
pub async fn consent(app: &App, request: &Request<User>) -> Result<Option<Consent>, Refusal> {
    Ok(app.store.latest_consent(&request.caller.id).await?)
}

/// The items of a grant, as the parent ticked them.
pub struct ConsentGrant {
    pub privacy: bool,
    pub data_processing: bool,
    pub photos: bool,
    /// The consent text's version; the current one when the app names none.
    pub version: Option<ConsentVersion>,
}

/// Records a grant, which supersedes the standing one (kept as proof); audited with its items.
#[tracing::instrument(skip_all)]
pub async fn grant_consent(
    app: &App,
    request: &Request<User>,
    grant: ConsentGrant,
) -> Result<Consent, Refusal> {
    let consent = Consent {
        privacy: grant.privacy,
        data_processing: grant.data_processing,
        photos: grant.photos,
        version: grant.version.unwrap_or_else(ConsentVersion::current),
        granted_at: request.now,
        revoked_at: None,
    };
    app.store.add_consent(&request.caller.id, &consent).await?;
    let items: Vec<&str> = [
        ("privacy", consent.privacy),
        ("data_processing", consent.data_processing),
        ("photos", consent.photos),
    ]
    .iter()
    .filter(|(_, agreed)| *agreed)
    .map(|(item, _)| *item)
    .collect();
    let detail = format!("{} ({})", items.join(","), consent.version.as_str());
    let credential = Some(request.caller.id.truncated().to_owned());
    audit(
        app,
        request,
        AuditEvent::ConsentGranted,
        credential,
        Some(detail),
    )
    .await;
    if !consent.photos {
        drop_photo_characters(app, request).await?;
    }
    Ok(consent)
}

/// Revokes the standing consent, if any, and deletes every character made from a photo or a
/// drawing at once (again on a repeated call, in case an earlier one failed half-way); answers
/// the record as it now stands. Audited.
#[tracing::instrument(skip_all)]
pub async fn revoke_consent(
    app: &App,
    request: &Request<User>,
) -> Result<Option<Consent>, Refusal> {
    let user = &request.caller.id;
    let Some(mut latest) = app.store.latest_consent(user).await? else {
        drop_photo_characters(app, request).await?;
        return Ok(None);
    };
    if latest.revoked_at.is_none()
        && app
            .store
            .revoke_consent(user, latest.granted_at, request.now)
            .await?
    {
        latest.revoked_at = Some(request.now);
        let credential = Some(user.truncated().to_owned());
        audit(app, request, AuditEvent::ConsentRevoked, credential, None).await;
    }
    drop_photo_characters(app, request).await?;
    Ok(app.store.latest_consent(user).await?.or(Some(latest)))
}
