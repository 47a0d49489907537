//! How the code is kept small enough to live in: no Rust file outside `tests/` over 600 lines
//! (a file past it is split by concern, as `dynamodb/purchases.rs` and `refunds.rs` were).

use crate::harness::rust_sources;

#[test]
fn no_rust_file_outside_the_tests_is_over_600_lines() {
    let long: Vec<String> = rust_sources(&["shared", "functions"])
        .into_iter()
        .filter(|(_, text)| text.lines().count() > 600)
        .map(|(path, text)| format!("{} ({} lines)", path.display(), text.lines().count()))
        .collect();
    assert!(long.is_empty(), "split these by concern: {long:?}");
}
