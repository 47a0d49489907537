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
