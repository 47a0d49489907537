//! The HTTP API: one router, run by `lambda_http` in each function (its family's routes) and whole
//! by the local server, so the same request meets the same code in both.

pub mod auth;
pub mod context;
pub mod edges;
pub mod endpoints;
pub mod error;
pub mod extract;
pub mod lambda;
pub mod limiter;
pub mod limits;
mod rate_limit_headers;
pub mod request_id;
mod router;
mod routes;
pub mod smoke;
pub mod state;

pub use endpoints::{Endpoint, endpoints};
pub use router::{api, app, with_edges};
pub use state::AppState;
