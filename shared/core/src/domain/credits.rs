//! Credits: a balance per user and a ledger of every change to it.

use super::Invalid;
use super::user::UserId;
use chrono::{DateTime, Utc};

/// The largest grant one request may make: a typo of extra zeros is refused, not paid out.
pub const MAX_GRANT: i64 = 1_000_000;

/// Why a balance changed; the names are the app's ledger `transaction_type`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// Opening credits of a new user.
    Bonus,
    /// A book charged.
    Usage,
    /// A failed book's charge given back.
    Refund,
    /// Credits bought (an admin grant with an external `transaction_id`).
    Purchase,
    Subscription,
    /// A refund taken back because the book finished after all.
    Clawback,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Bonus => "bonus",
            EntryKind::Usage => "usage",
            EntryKind::Refund => "refund",
            EntryKind::Purchase => "purchase",
            EntryKind::Subscription => "subscription",
            EntryKind::Clawback => "clawback",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Ok(match raw {
            "bonus" => EntryKind::Bonus,
            "usage" => EntryKind::Usage,
            "refund" => EntryKind::Refund,
            "purchase" => EntryKind::Purchase,
            "subscription" => EntryKind::Subscription,
            "clawback" => EntryKind::Clawback,
            other => return Err(Invalid::new(format!("unknown ledger entry kind {other:?}"))),
        })
    }
}

/// One change of a balance, written in the same atomic step as the balance itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Per user, 1, 2, 3, … in the order the changes happened.
    pub seq: i64,
    pub delta: i64,
    pub balance_after: i64,
    pub kind: EntryKind,
    pub description: Option<String>,
    /// The book (job) or external transaction the change belongs to.
    pub reference: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// A positive number of credits to add, at most [`MAX_GRANT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GrantAmount(i64);

impl GrantAmount {
    pub fn parse(raw: i64) -> Result<Self, Invalid> {
        if raw <= 0 {
            return Err(Invalid::new("amount must be greater than 0"));
        }
        if raw > MAX_GRANT {
            return Err(Invalid::new(format!("amount must be at most {MAX_GRANT}")));
        }
        Ok(Self(raw))
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// An external payment system's id for a purchase: it makes a grant happen once.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransactionId(String);

impl TransactionId {
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let trimmed = raw.trim();
        if trimmed.is_empty() {
            return Err(Invalid::new("transaction_id is required"));
        }
        if trimmed.len() > 128 {
            return Err(Invalid::new(
                "transaction_id must be at most 128 characters",
            ));
        }
        if !trimmed.chars().all(|c| c.is_ascii_graphic()) {
            return Err(Invalid::new(
                "transaction_id may hold only visible ASCII characters",
            ));
        }
        Ok(Self(trimmed.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Credits added to (or, negative, taken from) one user for one transaction.
#[derive(Debug, Clone)]
pub struct Grant {
    pub user: UserId,
    pub delta: i64,
    pub transaction_id: TransactionId,
    pub kind: EntryKind,
    /// Why, in the ledger's description; the kind and transaction id when absent.
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

impl Grant {
    pub fn description(&self) -> String {
        match &self.reason {
            Some(reason) => reason.clone(),
            None => format!("{} {}", self.kind.as_str(), self.transaction_id.as_str()),
        }
    }
}

/// What a grant did: applied now, applied before under the same transaction id, or refused
/// because a deduction would take the balance below zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantOutcome {
    Applied { balance: i64 },
    AlreadyProcessed { balance: i64 },
    InsufficientCredits { balance: i64 },
}

/// A page of the ledger: newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerPage {
    pub limit: u32,
    pub offset: u32,
}

impl LedgerPage {
    pub fn parse(limit: i64, offset: i64) -> Result<Self, Invalid> {
        if !(1..=100).contains(&limit) {
            return Err(Invalid::new("limit must be between 1 and 100"));
        }
        if !(0..=1_000_000).contains(&offset) {
            return Err(Invalid::new("offset must be between 0 and 1000000"));
        }
        Ok(Self {
            limit: limit as u32,
            offset: offset as u32,
        })
    }
}

/// True when the balances and ledgers agree: each balance is the sum of its entries and every
/// entry's `balance_after` is the running sum. Used by tests and by operators' checks.
pub fn ledger_reconciles(balance: i64, entries_oldest_first: &[LedgerEntry]) -> bool {
    let mut running = 0;
    for entry in entries_oldest_first {
        running += entry.delta;
        if entry.balance_after != running {
            return false;
        }
    }
    running == balance
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grant_amount_bounds() {
        assert!(GrantAmount::parse(0).is_err());
        assert!(GrantAmount::parse(-5).is_err());
        assert!(GrantAmount::parse(MAX_GRANT + 1).is_err());
        assert_eq!(GrantAmount::parse(5).unwrap().get(), 5);
    }

    #[test]
    fn transaction_ids() {
        assert!(TransactionId::parse("  ").is_err());
        assert!(TransactionId::parse("a b").is_err());
        assert!(TransactionId::parse(&"x".repeat(129)).is_err());
        assert_eq!(
            TransactionId::parse(" pay_123 ").unwrap().as_str(),
            "pay_123"
        );
    }

    #[test]
    fn entry_kinds_round_trip() {
        for kind in [
            EntryKind::Bonus,
            EntryKind::Usage,
            EntryKind::Refund,
            EntryKind::Purchase,
            EntryKind::Subscription,
            EntryKind::Clawback,
        ] {
            assert_eq!(EntryKind::parse(kind.as_str()).unwrap(), kind);
        }
    }
}
