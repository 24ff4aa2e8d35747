//! The OpenAPI description and the router agree: every documented operation reaches its
//! route with the documented permission, every route is documented, and every documented
//! query parameter is one the handler reads.

mod support;

use std::collections::BTreeSet;

use serde_json::Value;
use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::ops::RateLimit;
use valle_shared::contract::paths::OPENAPI_PATH;
use valle_shared::openapi::{operations, Method, Operation, Schemas};
use valle_worker::http::RequestHead;
use valle_worker::routes::{route, Route};

use support::{Harness, TOKEN};

const REQUEST_ID: &str = "6f1c2b7e-3d4a-4e5f-8a9b-0c1d2e3f4a5b";

/// The route's name, which every route has once.
fn name(route: &Route) -> &'static str {
    match route {
        Route::Score => "score",
        Route::ScoreBatch => "score_batch",
        Route::Health => "health",
        Route::Events => "events",
        Route::Decisions => "decisions",
        Route::Decision(_) => "decision",
        Route::DeadLetters => "dead_letters",
        Route::DeadLetterReplay(_) => "dead_letter_replay",
        Route::Kpis => "kpis",
        Route::KpiWindows => "kpi_windows",
        Route::Drift => "drift",
        Route::Metrics => "metrics",
        Route::Me => "me",
        Route::ReviewQueue => "review_queue",
        Route::Review(_) => "review",
        Route::Decide(_) => "decide",
        Route::Approval(_) => "approval",
        Route::HumanReview(_) => "human_review",
        Route::ApplicantDecision(_) => "applicant_decision",
        Route::Contest(_) => "contest",
        Route::DecisionErasure(_) => "decision_erasure",
        Route::DecisionExport(_) => "decision_export",
        Route::ApplicantErasure(_) => "applicant_erasure",
        Route::ApplicantExport(_) => "applicant_export",
        Route::RetentionRun => "retention_run",
        Route::Audit => "audit",
        Route::AuditVerify => "audit_verify",
        Route::Export => "export",
        Route::OverridesReport => "overrides_report",
        Route::Outcomes => "outcomes",
        Route::Performance => "performance",
        Route::Fairness => "fairness",
        Route::Simulate => "simulate",
        Route::Challenger => "challenger",
        Route::Subscriptions => "subscriptions",
        Route::Subscribe => "subscribe",
        Route::Unsubscribe(_) => "unsubscribe",
        Route::WebhookDeadLetters => "webhook_dead_letters",
        Route::WebhookReplay(_) => "webhook_replay",
        Route::Preflight => "preflight",
    }
}

/// Every route but the CORS preflight, which answers any path the API has.
const DOCUMENTED: usize = 39;

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

#[test]
fn every_documented_operation_reaches_its_route_with_its_permission() {
    let mut routes = BTreeSet::new();
    for operation in operations(&mut Schemas::default()) {
        // The description itself is a static file: the worker never sees its path.
        if operation.path == OPENAPI_PATH {
            continue;
        }
        let shown = format!("{:?} {}", operation.method, operation.path);
        let found = route(&head(&operation)).unwrap_or_else(|error| panic!("{shown}: {error:?}"));
        assert_eq!(found.permission(), operation.permission, "{shown}");
        assert!(routes.insert(name(&found)), "{shown}: documented twice");
    }
    assert_eq!(routes.len(), DOCUMENTED, "documented: {routes:?}");
    assert!(!routes.contains("preflight"));
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
