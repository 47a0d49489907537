//! The one integration test binary (one link of the AWS SDK): contract suites for every port on
//! both adapters, the HTTP API against the app contract, the template and route set, Lambda
//! event fixtures, and local mode end to end.

mod harness;
mod health_detailed;

mod api_credits;
mod api_edges;
mod app_contract;
mod books;
mod characters;
mod code;
mod consent;
mod contract;
mod daily;
mod docs;
mod fuzz;
mod hostile;
mod lambda_events;
mod layers;
mod local_mode;
mod local_server;
mod money;
mod operations;
mod pages;
mod print_lulu;
mod print_orders;
mod profiles;
mod providers;
mod purchases;
mod routes;
mod security;
mod series;
mod share_browser;
mod shares;
mod spend;
mod streaks;
mod uploads;
