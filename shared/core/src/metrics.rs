//! Metrics in CloudWatch's embedded metric format (EMF): one JSON line on standard output per
//! event, which CloudWatch Logs turns into metrics. No metric API call is made on the request
//! path. On Lambda the namespace comes from `METRICS_NAMESPACE` (set by `template.yaml`); without
//! it (local mode, tests) a metric is a debug log line.
//!
//! The names below are the ones `template.yaml`'s alarms and dashboard read: change both together.

use serde_json::{Map, Value, json};
use std::io::Write;
use std::sync::OnceLock;

pub const BOOKS_CREATED: &str = "BooksCreated";
pub const BOOKS_FINISHED: &str = "BooksFinished";
pub const BOOKS_FAILED: &str = "BooksFailed";
pub const PROVIDER_CALLS: &str = "ProviderCalls";
pub const PROVIDER_FAILURES: &str = "ProviderFailures";
pub const PROVIDER_LATENCY: &str = "ProviderLatency";
pub const SPEND: &str = "SpendUsd";
pub const SPEND_TODAY: &str = "SpendTodayUsd";
pub const SPEND_ALERT_CROSSED: &str = "SpendAlertCrossed";
pub const SPEND_LIMIT_REACHED: &str = "SpendLimitReached";
pub const CREDITS_CHARGED: &str = "CreditsCharged";
pub const CREDITS_REFUNDED: &str = "CreditsRefunded";
pub const RATE_LIMITED: &str = "RateLimitedRequests";
pub const BUDGET_REFUSED: &str = "BudgetRefusedRequests";
pub const BOOK_LATENCY: &str = "BookLatency";
/// 5xx answers of our own (not the kill switch's 503): what a release's canary watches.
pub const SERVER_ERRORS: &str = "ServerErrors";

/// A CloudWatch unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
    /// Dollars have no unit of their own in CloudWatch.
    None,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::None => "None",
        }
    }
}

static NAMESPACE: OnceLock<Option<String>> = OnceLock::new();

/// Reads `METRICS_NAMESPACE` once; Lambda start-up calls it, and the first metric otherwise.
pub fn init() {
    NAMESPACE.get_or_init(|| {
        std::env::var("METRICS_NAMESPACE")
            .ok()
            .filter(|n| !n.is_empty())
    });
}

/// One EMF document: the metrics' values at the root, their definitions under `_aws`, with one
/// dimension set (`dimensions`' names; empty: the metric with no dimension).
pub fn document(
    namespace: &str,
    metrics: &[(&str, f64, Unit)],
    dimensions: &[(&str, &str)],
    timestamp_ms: i64,
) -> Value {
    let mut root = Map::new();
    for (name, value) in dimensions {
        root.insert((*name).to_owned(), json!(value));
    }
    for (name, value, _) in metrics {
        root.insert((*name).to_owned(), json!(value));
    }
    let names: Vec<&str> = dimensions.iter().map(|(name, _)| *name).collect();
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, _, unit)| json!({"Name": name, "Unit": unit.as_str()}))
        .collect();
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [names],
                "Metrics": definitions,
            }],
        }),
    );
    Value::Object(root)
}

/// Emits `metrics` with `dimensions`.
pub fn emit(metrics: &[(&str, f64, Unit)], dimensions: &[(&str, &str)]) {
    init();
    match NAMESPACE.get().and_then(Option::as_deref) {
        Some(namespace) => {
            let line = document(
                namespace,
                metrics,
                dimensions,
                chrono::Utc::now().timestamp_millis(),
            );
            // One write of one line, so concurrent tasks never interleave within it.
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
        }
        None => {
            for (name, value, _) in metrics {
                tracing::debug!(metric = *name, value, ?dimensions, "metric");
            }
        }
    }
}

/// One count of `name`, with no dimension.
pub fn count(name: &str) {
    emit(&[(name, 1.0, Unit::Count)], &[]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_document_has_its_values_at_the_root_and_their_definitions_under_aws() {
        let doc = document(
            "AiStoryBook/test",
            &[(PROVIDER_LATENCY, 812.0, Unit::Milliseconds)],
            &[("Provider", "openai")],
            1_700_000_000_000,
        );
        assert_eq!(doc["ProviderLatency"], 812.0);
        assert_eq!(doc["Provider"], "openai");
        let definition = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(definition["Namespace"], "AiStoryBook/test");
        assert_eq!(definition["Dimensions"], json!([["Provider"]]));
        assert_eq!(
            definition["Metrics"],
            json!([{"Name": "ProviderLatency", "Unit": "Milliseconds"}])
        );
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000i64);
        let bare = document("n", &[(SPEND_TODAY, 1.5, Unit::None)], &[], 0);
        assert_eq!(
            bare["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([[]])
        );
    }
}
