//! One route set: the router's catalogue, `template.yaml`'s HttpApi events and `openapi.json`'s
//! paths name the same routes, and each route is served by the function of its family.

use serde_yaml::Value as Yaml;
use shared::http::{Family, catalogue};
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
    let openapi = crate::seed_contract::ours();
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
            "{}/../functions/src/bin/{}.rs",
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
fn the_step_queue_dead_letters_after_five_receives_and_outlasts_functions() {
    let template = template();
    let queue = &template["Resources"]["StepQueue"]["Properties"];
    assert_eq!(
        queue["RedrivePolicy"]["maxReceiveCount"].as_u64(),
        Some(u64::from(shared::ports::queue::MAX_RECEIVES))
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
    let providers = shared::providers::settings::ProviderSettings::default();
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
            "AWS::DynamoDB::Table" | "AWS::S3::Bucket" | "AWS::SQS::Queue" | "AWS::Logs::LogGroup"
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
