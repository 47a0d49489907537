//! One route set: the router's catalogue, `template.yaml`'s HttpApi events and `openapi.json`'s
//! paths name the same routes, and each route is served by the function of its family.

use serde_yaml::Value as Yaml;
use storybook_core::catalogue::Family;
use storybook_http::{Endpoint, endpoints};

/// Every catalogued route with its handler (building them checks that each has one).
fn catalogue() -> Vec<Endpoint> {
    endpoints(Family::ALL)
}
use std::collections::BTreeSet;

type Route = (String, String);

fn template() -> Yaml {
    let path = format!("{}/../template.yaml", env!("CARGO_MANIFEST_DIR"));
    serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// (method, path) → the binary its function builds.
fn template_routes() -> Vec<(Route, String)> {
    let template = template();
    let mut routes = Vec::new();
    for (_, resource) in template["Resources"].as_mapping().unwrap() {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .unwrap()
            .to_owned();
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for (_, event) in events {
            if event["Type"].as_str() == Some("HttpApi") {
                let properties = &event["Properties"];
                let route = (
                    properties["Method"].as_str().unwrap().to_uppercase(),
                    properties["Path"].as_str().unwrap().to_owned(),
                );
                routes.push((route, binary.clone()));
            }
        }
    }
    routes
}

fn catalogue_routes() -> BTreeSet<Route> {
    catalogue()
        .iter()
        .map(|e| (e.method.to_owned(), e.path.to_owned()))
        .collect()
}

#[test]
fn template_router_and_openapi_name_one_set_of_routes() {
    let from_template: Vec<Route> = template_routes().into_iter().map(|(r, _)| r).collect();
    let template_set: BTreeSet<Route> = from_template.iter().cloned().collect();
    assert_eq!(
        from_template.len(),
        template_set.len(),
        "a route is declared twice in template.yaml"
    );
    let openapi = crate::app_contract::ours();
    let openapi_set: BTreeSet<Route> = openapi["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), path.clone()))
        })
        .collect();
    let served = catalogue_routes();
    assert_eq!(
        served.len(),
        catalogue().len(),
        "a route is catalogued twice"
    );
    assert_eq!(template_set, served, "template.yaml and the router differ");
    assert_eq!(openapi_set, served, "openapi.json and the router differ");
}

#[test]
fn each_route_is_served_by_its_familys_function() {
    for ((method, path), binary) in template_routes() {
        let entry = catalogue()
            .into_iter()
            .find(|e| e.method == method && e.path == path)
            .unwrap();
        assert_eq!(entry.family.function(), binary, "{method} {path}");
    }
    // And every family has its binary in functions/.
    for family in Family::ALL {
        let source = format!(
            "{}/../functions/{}/src/main.rs",
            env!("CARGO_MANIFEST_DIR"),
            family.function()
        );
        assert!(
            std::path::Path::new(&source).exists(),
            "{source} is missing"
        );
    }
}

#[test]
fn each_route_path_is_written_once_in_the_code() {
    let sources = crate::harness::non_test_sources();
    let paths: BTreeSet<&str> = catalogue().iter().map(|e| e.path).collect();
    for path in paths {
        let quoted = format!("\"{path}\"");
        let places: Vec<String> = sources
            .iter()
            .flat_map(|(file, code)| {
                std::iter::repeat_n(file.display().to_string(), code.matches(&quoted).count())
            })
            .collect();
        assert_eq!(places.len(), 1, "{path} is written here: {places:?}");
    }
}

#[test]
fn each_function_is_granted_the_storage_its_family_uses() {
    let template = template();
    for family in Family::ALL {
        let function = template["Resources"]
            .as_mapping()
            .unwrap()
            .values()
            .find(|r| {
                r["Metadata"]["BuildProperties"]["Binary"].as_str() == Some(family.function())
            })
            .unwrap_or_else(|| panic!("{} is not in template.yaml", family.function()));
        let policies = serde_yaml::to_string(&function["Properties"]["Policies"]).unwrap();
        let (blobs, queue) = (policies.contains("s3:"), policies.contains("sqs:"));
        assert_eq!(
            blobs,
            family.uses_blobs(),
            "{family:?}: an s3: grant exactly where the family uses blobs"
        );
        assert_eq!(
            queue,
            family.uses_queue(),
            "{family:?}: an sqs: grant exactly where the family queues"
        );
    }
}

#[test]
fn the_step_queue_dead_letters_after_five_receives_and_outlasts_functions() {
    let template = template();
    let queue = &template["Resources"]["StepQueue"]["Properties"];
    assert_eq!(
        queue["RedrivePolicy"]["maxReceiveCount"].as_u64(),
        Some(u64::from(storybook_core::ports::queue::MAX_RECEIVES))
    );
    let visibility = queue["VisibilityTimeout"].as_u64().unwrap();
    let longest = template["Resources"]
        .as_mapping()
        .unwrap()
        .values()
        .filter(|r| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|r| {
            r["Properties"]["Timeout"]
                .as_u64()
                .unwrap_or(template["Globals"]["Function"]["Timeout"].as_u64().unwrap())
        })
        .max()
        .unwrap();
    assert!(
        visibility >= 6 * longest,
        "visibility {visibility} s < 6 x {longest} s"
    );
}

#[test]
fn the_step_worker_is_bounded_by_its_event_source_and_outlasts_a_picture() {
    let template = template();
    let worker = &template["Resources"]["StepWorkerFunction"]["Properties"];
    assert!(
        worker["ReservedConcurrentExecutions"].is_null(),
        "throttled receives would count against a step's last delivery"
    );
    let steps = &worker["Events"]["Steps"]["Properties"];
    assert!(!steps["ScalingConfig"]["MaximumConcurrency"].is_null());
    let providers = storybook_pipeline::providers::settings::ProviderSettings::default();
    let picture = providers.image_timeout + providers.fetch.timeout;
    assert!(
        worker["Timeout"].as_u64().unwrap() >= picture.as_secs(),
        "a picture and its download take up to {picture:?}"
    );
}

#[test]
fn stateful_resources_are_retained_and_every_function_logs_to_a_group_with_a_retention() {
    let template = template();
    let resources = template["Resources"].as_mapping().unwrap();
    for (name, resource) in resources {
        let kind = resource["Type"].as_str().unwrap_or_default();
        if matches!(
            kind,
            "AWS::DynamoDB::Table"
                | "AWS::S3::Bucket"
                | "AWS::SQS::Queue"
                | "AWS::Logs::LogGroup"
                | "AWS::SecretsManager::Secret"
        ) {
            for policy in ["DeletionPolicy", "UpdateReplacePolicy"] {
                assert_eq!(
                    resource[policy].as_str(),
                    Some("Retain"),
                    "{name:?} {policy}"
                );
            }
        }
        if kind == "AWS::Logs::LogGroup" {
            assert!(
                !resource["Properties"]["RetentionInDays"].is_null(),
                "{name:?}"
            );
        }
        if kind == "AWS::Serverless::Function" {
            // `!Ref X` reads as a value tagged `Ref`.
            let group = match &resource["Properties"]["LoggingConfig"]["LogGroup"] {
                Yaml::Tagged(tagged) if tagged.tag == "Ref" => tagged.value.as_str(),
                _ => None,
            }
            .unwrap_or_else(|| panic!("{name:?} names no log group"));
            assert_eq!(
                resources[group]["Type"].as_str(),
                Some("AWS::Logs::LogGroup")
            );
        }
    }
    let table = &template["Resources"]["StateTable"]["Properties"];
    assert_eq!(table["DeletionProtectionEnabled"].as_bool(), Some(true));
    let bucket = &template["Resources"]["AssetBucket"]["Properties"];
    assert_eq!(
        bucket["VersioningConfiguration"]["Status"].as_str(),
        Some("Enabled")
    );
    let rules = bucket["LifecycleConfiguration"]["Rules"]
        .as_sequence()
        .unwrap();
    assert!(
        rules
            .iter()
            .any(|r| !r["NoncurrentVersionExpiration"].is_null())
    );
    assert!(
        rules
            .iter()
            .any(|r| !r["AbortIncompleteMultipartUpload"].is_null())
    );
}

/// `!Ref X` reads as a value tagged `Ref`.
fn ref_to(value: &Yaml) -> Option<&str> {
    match value {
        Yaml::Tagged(tagged) if tagged.tag == "Ref" => tagged.value.as_str(),
        _ => None,
    }
}

#[test]
fn alarms_reach_someone_releases_undo_themselves_and_no_secret_is_in_the_environment() {
    let text = std::fs::read_to_string(format!("{}/../template.yaml", env!("CARGO_MANIFEST_DIR")))
        .unwrap();
    assert!(
        !text.contains("resolve:secretsmanager"),
        "a secret resolved into a function's configuration shows in GetFunctionConfiguration"
    );
    assert!(
        !text.contains("ReservedConcurrentExecutions"),
        "reserved concurrency fails the stack on an account with a low concurrency quota"
    );
    let template = template();
    let resources = template["Resources"].as_mapping().unwrap();
    assert_eq!(
        template["Globals"]["Function"]["AutoPublishAlias"].as_str(),
        Some("live"),
        "every function is published under an alias"
    );
    let mut alarms = 0;
    let mut hooks = BTreeSet::new();
    for (name, resource) in resources {
        let properties = &resource["Properties"];
        match resource["Type"].as_str().unwrap_or_default() {
            "AWS::CloudWatch::Alarm" => {
                alarms += 1;
                let actions = properties["AlarmActions"].as_sequence();
                assert!(
                    actions.is_some_and(|a| a.iter().any(|a| ref_to(a) == Some("AlertTopic"))),
                    "{name:?} notifies no one"
                );
            }
            "AWS::Serverless::Function" => {
                assert!(
                    properties["AutoPublishAlias"].is_null(),
                    "{name:?} overrides the alias"
                );
                let binary = resource["Metadata"]["BuildProperties"]["Binary"]
                    .as_str()
                    .unwrap();
                let source = format!(
                    "{}/../functions/{binary}/src/main.rs",
                    env!("CARGO_MANIFEST_DIR")
                );
                assert!(std::path::Path::new(&source).exists(), "{source}");
                let serves_api = properties["Events"].as_mapping().is_some_and(|events| {
                    events
                        .values()
                        .any(|e| e["Type"].as_str() == Some("HttpApi"))
                });
                if serves_api {
                    let preference = &properties["DeploymentPreference"];
                    assert!(
                        !preference.is_null(),
                        "{name:?} has no deployment preference"
                    );
                    assert!(
                        preference["Alarms"]
                            .as_sequence()
                            .is_some_and(|a| a.len() >= 2),
                        "{name:?}: the canary watches the 5xx and error alarms"
                    );
                    hooks.insert(
                        ref_to(&preference["Hooks"]["PreTraffic"])
                            .unwrap_or_else(|| panic!("{name:?} has no PreTraffic hook"))
                            .to_owned(),
                    );
                } else {
                    assert!(
                        properties["DeploymentPreference"].is_null(),
                        "{name:?}: only API functions shift by canary"
                    );
                }
            }
            _ => {}
        }
    }
    assert!(alarms >= 8, "{alarms} alarms");
    // One hook, which CodeDeploy's role may invoke (its name starts with CodeDeployHook_).
    assert_eq!(hooks.len(), 1);
    let hook = &template["Resources"][hooks.first().unwrap().as_str()];
    assert_eq!(
        hook["Metadata"]["BuildProperties"]["Binary"].as_str(),
        Some("deploy-check")
    );
    let hook_name = serde_yaml::to_string(&hook["Properties"]["FunctionName"]).unwrap();
    assert!(hook_name.contains("CodeDeployHook_"), "{hook_name}");
    // The alarms read the metrics the code writes.
    for alarm in ["SpendAlertAlarm", "SpendLimitAlarm", "ServerErrorsAlarm"] {
        let metric = template["Resources"][alarm]["Properties"]["MetricName"]
            .as_str()
            .unwrap();
        assert!(
            [
                storybook_core::metrics::SPEND_TODAY,
                storybook_core::metrics::SERVER_ERRORS
            ]
            .contains(&metric),
            "{alarm} reads {metric}"
        );
    }
    // The hard limit also invokes the budget guard.
    let limit_actions = serde_yaml::to_string(
        &template["Resources"]["SpendLimitAlarm"]["Properties"]["AlarmActions"],
    )
    .unwrap();
    assert!(
        limit_actions.contains("BudgetGuardFunction"),
        "{limit_actions}"
    );
    // The budget notifies at 80 and 100 percent.
    let budget = &template["Resources"]["MonthlyBudget"]["Properties"];
    let thresholds: Vec<u64> = budget["NotificationsWithSubscribers"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|n| n["Notification"]["Threshold"].as_u64().unwrap())
        .collect();
    assert_eq!(thresholds, [80, 100]);
}

#[test]
fn every_generation_route_is_throttled_tighter_and_the_api_logs_its_access() {
    let template = template();
    let api = &template["Resources"]["HttpApi"]["Properties"];
    assert!(!api["DefaultRouteSettings"]["ThrottlingRateLimit"].is_null());
    assert!(!api["AccessLogSettings"]["DestinationArn"].is_null());
    let format = api["AccessLogSettings"]["Format"].as_str().unwrap();
    serde_json::from_str::<serde_json::Value>(format).expect("access log lines are JSON");
    for entry in catalogue() {
        if entry.class == storybook_core::catalogue::RouteClass::Generation {
            let key = format!("{} {}", entry.method, entry.path);
            assert!(
                !api["RouteSettings"][key.as_str()]["ThrottlingRateLimit"].is_null(),
                "{key} has no throttle of its own"
            );
        }
    }
}

#[test]
fn the_dashboard_is_json_and_reads_the_metrics_the_code_writes() {
    let template = template();
    let body = match &template["Resources"]["OperationsDashboard"]["Properties"]["DashboardBody"] {
        Yaml::Tagged(tagged) if tagged.tag == "Sub" => tagged.value[0].as_str().unwrap().to_owned(),
        other => panic!("DashboardBody is not a !Sub: {other:?}"),
    };
    // Every ${Name} substituted, as CloudFormation would.
    let mut substituted = String::new();
    let mut rest = body.as_str();
    while let Some(start) = rest.find("${") {
        substituted.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        substituted.push('1');
        rest = &rest[end + 1..];
    }
    substituted.push_str(rest);
    let dashboard: serde_json::Value =
        serde_json::from_str(&substituted).expect("the dashboard body is JSON");
    assert_eq!(dashboard["widgets"].as_array().unwrap().len(), 5);
    for metric in [
        storybook_core::metrics::SPEND_TODAY,
        storybook_core::metrics::BOOKS_CREATED,
        storybook_core::metrics::BOOKS_FINISHED,
        storybook_core::metrics::BOOKS_FAILED,
        storybook_core::metrics::BOOK_LATENCY,
    ] {
        assert!(body.contains(&format!("\"{metric}\"")), "{metric}");
    }
}
