//! The docs a newcomer reads, checked against the code: every environment variable the code
//! reads is in `docs/configuration.md` and nothing there is unread; the route guide names tests
//! that exist.

use crate::harness::{non_test_sources, rust_sources};
use std::collections::BTreeSet;

fn doc(path: &str) -> String {
    let path = format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The string literals of `code` that look like an environment variable's name (`UPPER_CASE`).
fn upper_case_literals(code: &str) -> BTreeSet<String> {
    code.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.len() >= 3
                && s.starts_with(|c: char| c.is_ascii_uppercase())
                && s.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_owned)
        .collect()
}

/// Whether a source file reads the environment: directly, or through the settings' `Lookup`.
fn reads_environment(code: &str) -> bool {
    code.contains("env::var") || code.contains("lookup: Lookup") || code.contains("dyn Lookup")
}

#[test]
fn the_configuration_doc_lists_exactly_the_variables_the_code_reads() {
    let mut read = BTreeSet::new();
    for (path, code) in non_test_sources() {
        // A build script reads cargo's variables while building, not the service's configuration.
        if path.ends_with("build.rs") {
            continue;
        }
        if reads_environment(&code) {
            read.extend(upper_case_literals(&code));
        }
    }
    let documented: BTreeSet<String> = doc("docs/configuration.md")
        .lines()
        .filter_map(|line| line.strip_prefix("| `"))
        .filter_map(|rest| rest.split('`').next())
        .map(str::to_owned)
        .collect();
    let undocumented: Vec<&String> = read.difference(&documented).collect();
    let unread: Vec<&String> = documented.difference(&read).collect();
    assert!(
        undocumented.is_empty() && unread.is_empty(),
        "read but not in docs/configuration.md: {undocumented:?}; documented but never read: {unread:?}"
    );
    assert!(
        read.len() > 50,
        "the scan found the settings ({})",
        read.len()
    );
}

/// Every `module::test` the route guide names as a guard exists (a test renamed or removed would
/// leave a newcomer a guard that is not there).
#[test]
fn the_route_guide_names_tests_that_exist() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let guide = doc("docs/adding-a-route.md");
    let sources: String = rust_sources(&["tests/suite", "shared"])
        .into_iter()
        .map(|(_, text)| text)
        .collect();
    let named: Vec<&str> = guide
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|s| {
            s.contains("::")
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == ':')
        })
        .collect();
    assert!(named.len() >= 8, "the guide names its guards: {named:?}");
    for path in named {
        let last = path.rsplit("::").next().unwrap();
        let module = root
            .join("tests/suite")
            .join(path.replace("::", "/") + ".rs");
        assert!(
            sources.contains(&format!("fn {last}(")) || module.exists(),
            "docs/adding-a-route.md names `{path}`, which is not a test here"
        );
    }
}
