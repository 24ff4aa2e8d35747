//! The OpenAPI description and the route table agree: the same operations with the same
//! permissions, every documented operation reaches its row, and every documented query
//! parameter is one the handler reads.

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::ops::RateLimit;
use valle_shared::contract::paths::OPENAPI_PATH;
use valle_shared::lending::officers::Permission;
use valle_shared::openapi::{operations, Method, Operation, Schemas};
use valle_worker::http::RequestHead;
use valle_worker::routes::table::ROUTES;
use valle_worker::routes::{route, Route};

use support::{Harness, TOKEN};

const REQUEST_ID: &str = "6f1c2b7e-3d4a-4e5f-8a9b-0c1d2e3f4a5b";

fn head(operation: &Operation) -> RequestHead {
    let path = operation
        .path
        .replace("{request_id}", REQUEST_ID)
        .replace("{applicant_id}", "SOC-1")
        .replace("{id}", "7");
    match operation.method {
        Method::Get => RequestHead::new("GET", &path),
        Method::Post => RequestHead::new("POST", &path)
            .with_header("content-type", "application/json")
            .with_header("content-length", "2"),
        Method::Delete => RequestHead::new("DELETE", &path),
    }
}

/// An operation as both sides name it: method, path template and permission.
type Key = (Method, String, Option<Permission>);

#[test]
fn the_route_table_and_the_documented_operations_are_equal() {
    let table: BTreeSet<Key> = ROUTES
        .iter()
        .map(|row| (row.method, row.path.template(), row.permission()))
        .collect();
    assert_eq!(table.len(), ROUTES.len(), "a row twice");
    let documented: BTreeSet<Key> = operations(&mut Schemas::default())
        .into_iter()
        // The description itself is a static file: the worker never sees its path.
        .filter(|operation| operation.path != OPENAPI_PATH)
        .map(|operation| (operation.method, operation.path, operation.permission))
        .collect();
    let undocumented: Vec<&Key> = table.difference(&documented).collect();
    let unrouted: Vec<&Key> = documented.difference(&table).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "rows without an operation: {undocumented:?}\noperations without a row: {unrouted:?}"
    );
}

#[test]
fn every_documented_operation_reaches_its_row() {
    for operation in operations(&mut Schemas::default()) {
        if operation.path == OPENAPI_PATH {
            continue;
        }
        let shown = format!("{:?} {}", operation.method, operation.path);
        match route(&head(&operation)) {
            Ok(Route::Api { row, .. }) => {
                assert_eq!(
                    (row.method, row.path.template()),
                    (operation.method, operation.path.clone()),
                    "{shown}"
                );
            }
            other => panic!("{shown}: {other:?}"),
        }
    }
}

/// A value of the parameter's schema that its handler can read.
fn example(schema: &Value) -> String {
    if let Some(first) = schema["enum"].as_array().and_then(|values| values.first()) {
        return first
            .as_str()
            .map_or_else(|| first.to_string(), str::to_owned);
    }
    match (schema["type"].as_str(), schema["format"].as_str()) {
        (Some("integer"), _) => schema["minimum"].as_u64().unwrap_or(1).to_string(),
        (Some("boolean"), _) => "true".to_owned(),
        (_, Some("date-time")) => "2026-11-01T00:00:00Z".to_owned(),
        _ => "principal".to_owned(),
    }
}

#[test]
fn every_documented_query_parameter_is_read_by_its_handler() {
    let harness = Harness::new(RateLimit::default());
    let mut checked = 0;
    for operation in operations(&mut Schemas::default()) {
        if operation.method != Method::Get || operation.path == OPENAPI_PATH {
            continue;
        }
        let target = operation.path.replace("{request_id}", REQUEST_ID);
        let query_parameters = operation
            .parameters
            .iter()
            .filter(|parameter| parameter["in"] == "query");
        for parameter in query_parameters {
            let name = parameter["name"].as_str().unwrap_or_default();
            let query = format!("{target}?{name}={}", example(&parameter["schema"]));
            let (status, body) = harness.as_account(TOKEN, "GET", &query, "");
            let unknown = body["error"]["fields"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|field| field["code"] == ErrorCode::UnknownField.as_str());
            assert!(!unknown, "{query}: {status} {body}");
            assert!(
                !matches!(status, 401 | 403 | 404 | 405),
                "{query}: {status} {body}"
            );
            checked += 1;
        }
        let (status, body) =
            harness.as_account(TOKEN, "GET", &format!("{target}?undocumented=1"), "");
        let takes_parameters = operation.parameters.iter().any(|p| p["in"] == "query");
        if takes_parameters {
            assert_eq!(
                (status, body["error"]["fields"][0]["code"].as_str()),
                (400, Some(ErrorCode::UnknownField.as_str())),
                "{target}?undocumented=1: {body}"
            );
        }
    }
    assert!(checked >= 30, "{checked} parameters checked");
}
