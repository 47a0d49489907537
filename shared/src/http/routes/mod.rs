//! Handlers, one file per endpoint family.

pub mod config;
pub mod credits;
pub mod health;
