//! The smoke checks for a deployment: `VALLE_BASE_URL=https://… VALLE_OFFICER_TOKEN=…
//! cargo xtask smoke` after `cargo xtask deploy`. Read-only, except one score under a fixed
//! request id, which stores at most one decision (branch `smoke`) however often it runs.
//! `cargo xtask test` runs them against its local server too.

use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::paths::{HEALTH_PATH, KPIS_PATH, METRICS_PATH, SCORE_PATH};
use valle_tests::{officer_token, Client};

const VALID: &str = r#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846,"branch":"smoke"}"#;

/// The one request id the smoke checks score under, on every run and every deployment.
const SMOKE_REQUEST_ID: &str = "5a0e0000-0000-4000-8000-000000000001";

#[test]
fn the_service_is_healthy_and_serves_both_pages() {
    let client = Client::new();
    let health = client.get(HEALTH_PATH);
    assert_eq!(health.status, 200, "{}", health.text());
    assert_eq!(health.json()["status"], "ok");
    for (path, marker) in [("/", "data-prerendered"), ("/panel/", "valle-panel-")] {
        let page = client.get(path);
        assert_eq!(page.status, 200, "{path}");
        assert!(page.text().contains(marker), "{path} is not Valle's page");
        assert!(
            page.header("content-security-policy")
                .is_some_and(|policy| policy.contains("default-src 'self'")),
            "{path} has no CSP"
        );
    }
}

#[test]
fn a_bad_application_is_refused_with_field_codes() {
    let answer = Client::new().send(
        "POST",
        SCORE_PATH,
        &[("content-type", "application/json")],
        Some(br#"{"age":17,"home":"castle"}"#),
    );
    assert_eq!(answer.status, 400, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["error"]["code"], ErrorCode::Validation.as_str());
    let fields = body["error"]["fields"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        fields.iter().any(|field| field["field"] == "age")
            && fields.iter().any(|field| field["field"] == "home"),
        "{body}"
    );
}

#[test]
fn scoring_the_same_request_twice_gives_one_decision() {
    let client = Client::new();
    let headers = [
        ("content-type", "application/json"),
        ("x-request-id", SMOKE_REQUEST_ID),
    ];
    let first = client.send("POST", SCORE_PATH, &headers, Some(VALID.as_bytes()));
    let second = client.send("POST", SCORE_PATH, &headers, Some(VALID.as_bytes()));
    for answer in [&first, &second] {
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.json()["request_id"], SMOKE_REQUEST_ID);
    }
    assert_eq!(first.json()["score"], second.json()["score"]);
}

#[test]
fn officer_endpoints_want_the_token_and_answer_with_it() {
    let client = Client::new();
    assert_eq!(client.get(KPIS_PATH).status, 401);
    // `cargo xtask smoke` insists on VALLE_OFFICER_TOKEN; `officer_token` reads it.
    assert!(!officer_token().is_empty());
    for path in [KPIS_PATH, METRICS_PATH] {
        let answer = client.officer_get(path);
        assert_eq!(answer.status, 200, "{path}: {}", answer.text());
    }
}
