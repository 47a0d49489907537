//! For operators: a day's provider spend against its limits, and the kill switch.

use super::{Refusal, Request, audit};
use crate::app::App;
use crate::domain::api_key::ApiKeyRecord;
use crate::domain::audit::AuditEvent;
use crate::domain::spend::{DaySpend, KillSwitch, spend_day};
use crate::spend::SpendGuard;
use chrono::NaiveDate;

/// A day's spend as the report shows it.
pub struct SpendReport {
    pub day: NaiveDate,
    pub spend: DaySpend,
    pub switch: Option<KillSwitch>,
    /// Seconds until the day's limits reset, when the day is today.
    pub resets_in: Option<u64>,
}

/// The spend of `day` (today, UTC, when `None`) and the kill switch.
#[tracing::instrument(skip_all)]
pub async fn spend_report(
    app: &App,
    request: &Request<ApiKeyRecord>,
    day: Option<NaiveDate>,
) -> Result<SpendReport, Refusal> {
    let (today, resets_in) = spend_day(request.now);
    let day = day.unwrap_or(today);
    let (spend, switch) = tokio::try_join!(app.store.day_spend(day), app.store.kill_switch())?;
    Ok(SpendReport {
        day,
        spend,
        switch,
        resets_in: (day == today).then_some(resets_in),
    })
}

/// Turns generation off (`on`) or on again, with the operator's reason; audited. While the
/// switch is on, new books are refused and workers stop before their next provider call.
#[tracing::instrument(skip_all)]
pub async fn set_kill_switch(
    app: &App,
    request: &Request<ApiKeyRecord>,
    on: bool,
    reason: &str,
) -> Result<KillSwitch, Refusal> {
    let by = &request.caller.key_id;
    let switch = SpendGuard::new(app).switch(on, reason, by).await?;
    let detail = format!(
        "{} by {by}{}",
        if switch.on { "on" } else { "off" },
        if reason.is_empty() {
            String::new()
        } else {
            format!(": {reason}")
        }
    );
    audit(
        app,
        request,
        AuditEvent::KillSwitchSet,
        Some(by.clone()),
        Some(detail),
    )
    .await;
    Ok(switch)
}
