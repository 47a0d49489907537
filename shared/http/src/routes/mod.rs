//! Handlers, one file per endpoint family.

pub mod admin;
pub mod books;
pub mod characters;
pub mod config;
pub mod consent;
pub mod credits;
pub mod daily;
pub mod health;
pub mod library;
pub mod pages;
pub mod print_orders;
pub mod profiles;
pub mod purchases;
pub mod settings;
pub mod shares;
pub mod spend;
pub mod streak;
pub mod studio;
pub mod subscriptions;
pub mod users;

/// RFC 3339 in UTC with milliseconds, as the app contract writes its timestamps.
pub fn timestamp(at: chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
