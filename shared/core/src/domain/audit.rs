//! The audit log: who tried what, with which credential (a truncated hash, never the
//! credential), from where. Entries expire after [`RETENTION_DAYS`].

use chrono::{DateTime, Utc};

pub const RETENTION_DAYS: i64 = 90;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditEvent {
    MissingKey,
    BadFormat,
    UnknownKey,
    ExpiredKey,
    RevokedKey,
    IpRefused,
    ScopeRefused,
    RateLimited,
    SecurityViolation,
    KeyCreated,
    KeyUpdated,
    KeyRotated,
    KeyRevoked,
    CreditsGranted,
    UserCreated,
    UserErased,
    KillSwitchSet,
    ConsentGranted,
    ConsentRevoked,
    PhotoCharactersDeleted,
    PurchaseRedeemed,
    PurchaseRefunded,
    SubscriptionGranted,
    PrintOrderApproved,
}

impl AuditEvent {
    pub const ALL: &'static [AuditEvent] = &[
        AuditEvent::MissingKey,
        AuditEvent::BadFormat,
        AuditEvent::UnknownKey,
        AuditEvent::ExpiredKey,
        AuditEvent::RevokedKey,
        AuditEvent::IpRefused,
        AuditEvent::ScopeRefused,
        AuditEvent::RateLimited,
        AuditEvent::SecurityViolation,
        AuditEvent::KeyCreated,
        AuditEvent::KeyUpdated,
        AuditEvent::KeyRotated,
        AuditEvent::KeyRevoked,
        AuditEvent::CreditsGranted,
        AuditEvent::UserCreated,
        AuditEvent::UserErased,
        AuditEvent::KillSwitchSet,
        AuditEvent::ConsentGranted,
        AuditEvent::ConsentRevoked,
        AuditEvent::PhotoCharactersDeleted,
        AuditEvent::PurchaseRedeemed,
        AuditEvent::PurchaseRefunded,
        AuditEvent::SubscriptionGranted,
        AuditEvent::PrintOrderApproved,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AuditEvent::MissingKey => "missing_key",
            AuditEvent::BadFormat => "bad_format",
            AuditEvent::UnknownKey => "unknown_key",
            AuditEvent::ExpiredKey => "expired_key",
            AuditEvent::RevokedKey => "revoked_key",
            AuditEvent::IpRefused => "ip_refused",
            AuditEvent::ScopeRefused => "scope_refused",
            AuditEvent::RateLimited => "rate_limited",
            AuditEvent::SecurityViolation => "security_violation",
            AuditEvent::KeyCreated => "key_created",
            AuditEvent::KeyUpdated => "key_updated",
            AuditEvent::KeyRotated => "key_rotated",
            AuditEvent::KeyRevoked => "key_revoked",
            AuditEvent::CreditsGranted => "credits_granted",
            AuditEvent::UserCreated => "user_created",
            AuditEvent::UserErased => "user_erased",
            AuditEvent::KillSwitchSet => "kill_switch_set",
            AuditEvent::ConsentGranted => "consent_granted",
            AuditEvent::ConsentRevoked => "consent_revoked",
            AuditEvent::PhotoCharactersDeleted => "photo_characters_deleted",
            AuditEvent::PurchaseRedeemed => "purchase_redeemed",
            AuditEvent::PurchaseRefunded => "purchase_refunded",
            AuditEvent::SubscriptionGranted => "subscription_granted",
            AuditEvent::PrintOrderApproved => "print_order_approved",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|e| e.as_str() == raw)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Unique and ordered by time: what the log pages by.
    pub id: String,
    pub at: DateTime<Utc>,
    pub event: AuditEvent,
    /// A truncated hash of the credential involved, or the key id for key events.
    pub credential: Option<String>,
    pub client_ip: String,
    pub route: String,
    pub detail: Option<String>,
}

impl AuditEntry {
    pub fn new(
        event: AuditEvent,
        credential: Option<String>,
        client_ip: &str,
        route: &str,
        detail: Option<String>,
        at: DateTime<Utc>,
    ) -> Self {
        // Sortable: the time to the nanosecond, then a random tail against ties.
        let id = format!(
            "{}-{}",
            at.format("%Y%m%dT%H%M%S%.9fZ"),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Self {
            id,
            at,
            event,
            credential,
            client_ip: client_ip.to_owned(),
            route: route.to_owned(),
            detail,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_round_trip_and_ids_sort_by_time() {
        for event in AuditEvent::ALL {
            assert_eq!(AuditEvent::parse(event.as_str()), Some(*event));
        }
        let first = AuditEntry::new(
            AuditEvent::UnknownKey,
            None,
            "1.2.3.4",
            "/v1/admin/api-keys",
            None,
            Utc::now(),
        );
        std::thread::sleep(std::time::Duration::from_millis(2));
        let second = AuditEntry::new(
            AuditEvent::UnknownKey,
            None,
            "1.2.3.4",
            "/v1/admin/api-keys",
            None,
            Utc::now(),
        );
        assert!(second.id > first.id);
    }
}
