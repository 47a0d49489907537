//! One contract suite per port, each case run against the embedded and the AWS adapter.

mod blobs;
mod print_orders;
mod purchases;
mod queue;
mod store;
