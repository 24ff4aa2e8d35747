//! The edge, as a client sees it, under `wrangler dev`: routes, statuses, headers, and
//! validation errors byte-identical to the shared validator's (and so to the browser's).

#[path = "../../shared/tests/support/mod.rs"]
mod support;

use valle_shared::api::ScoreResponse;
use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::errors::{ErrorBody, ErrorResponse};
use valle_tests::{Answer, Client};

const VALID: &str = r#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846}"#;

/// Checks the status and the error code (`None` for success) of one answer, and that every
/// answer from the API is Valle's JSON.
fn check(answer: &Answer, status: u16, code: Option<&str>, shown: &str) {
    assert_eq!(answer.status, status, "{shown}: {}", answer.text());
    assert_eq!(
        answer.header("content-type"),
        Some("application/json; charset=utf-8"),
        "{shown}"
    );
    assert_eq!(
        answer.json()["error"]["code"].as_str(),
        code,
        "{shown}: {}",
        answer.text()
    );
}

#[test]
fn every_recorded_case_gives_the_shared_validators_exact_answer() {
    let client = Client::new();
    for (index, case) in support::cases().iter().enumerate() {
        let request_id = format!("case-{index}");
        let answer = client.send(
            "POST",
            "/api/v1/score",
            &[
                ("content-type", "application/json"),
                ("x-request-id", &request_id),
            ],
            Some(&case.bytes()),
        );
        let shown = &case.name;
        match valle_shared::parse_application(&case.bytes()) {
            Ok(sent) => {
                assert_eq!(case.outcome.code, "OK", "{shown}");
                check(&answer, 200, None, shown);
                let score: ScoreResponse =
                    serde_json::from_slice(&answer.body).expect("score answer");
                assert_eq!(score.application, sent, "{shown}");
                // The decision after the policy rules, and the rules with their messages.
                assert_eq!(
                    Some(support::Decided::of(&score.score)),
                    case.outcome.decided,
                    "{shown}"
                );
            }
            Err(error) => {
                let status = if error.code() == ErrorCode::TooLarge.as_str() {
                    413
                } else {
                    400
                };
                check(&answer, status, Some(&case.outcome.code), shown);
                // The whole body, byte for byte, is what the shared code says locally.
                let expected = ErrorResponse {
                    error: ErrorBody {
                        code: error.code().to_owned(),
                        message: error.message(),
                        request_id: Some(request_id.clone()),
                        fields: case.outcome.fields.clone(),
                    },
                };
                let expected = serde_json::to_string(&expected).expect("serializes");
                assert_eq!(answer.text(), expected, "{shown}");
            }
        }
    }
}

#[test]
fn routes_methods_and_content_types() {
    let client = Client::new();
    let json = [("content-type", "application/json")];
    for (method, path, headers, body, status, code) in [
        ("GET", "/healthz", &[][..], None, 200, None),
        (
            "POST",
            "/healthz",
            &[][..],
            None,
            405,
            Some(ErrorCode::Method.as_str()),
        ),
        (
            "GET",
            "/api/v1/score",
            &[][..],
            None,
            405,
            Some(ErrorCode::Method.as_str()),
        ),
        (
            "PUT",
            "/api/v1/score",
            &json[..],
            Some(VALID),
            405,
            Some(ErrorCode::Method.as_str()),
        ),
        (
            "GET",
            "/api/v1/unknown",
            &[][..],
            None,
            404,
            Some(ErrorCode::NotFound.as_str()),
        ),
        (
            "POST",
            "/api/v1/score",
            &[][..],
            Some(VALID),
            415,
            Some(ErrorCode::ContentType.as_str()),
        ),
        (
            "POST",
            "/api/v1/score",
            &[("content-type", "text/plain")][..],
            Some(VALID),
            415,
            Some(ErrorCode::ContentType.as_str()),
        ),
        (
            "POST",
            "/api/v1/score",
            &[("content-type", "application/json; charset=utf-8")][..],
            Some(VALID),
            200,
            None,
        ),
        (
            "POST",
            "/api/v1/score",
            &json[..],
            Some("{\"age\": 30"),
            400,
            Some(ErrorCode::Json.as_str()),
        ),
    ] {
        let shown = format!("{method} {path}");
        let answer = client.send(method, path, headers, body.map(str::as_bytes));
        check(&answer, status, code, &shown);
    }
    let answer = client.send("DELETE", "/api/v1/score", &[], None);
    assert_eq!(answer.header("allow"), Some("POST"));
}

#[test]
fn health_names_the_service() {
    let answer = Client::new().get("/healthz");
    check(&answer, 200, None, "healthz");
    assert_eq!(answer.json()["status"], "ok");
    assert_eq!(answer.json()["service"], "valle-worker");
}

#[test]
fn request_ids_timing_and_safety_headers() {
    let client = Client::new();
    let answer = client.send(
        "POST",
        "/api/v1/score",
        &[
            ("content-type", "application/json"),
            ("x-request-id", "it-42"),
        ],
        Some(VALID.as_bytes()),
    );
    check(&answer, 200, None, "with request id");
    assert_eq!(answer.header("x-request-id"), Some("it-42"));
    assert_eq!(answer.json()["request_id"], "it-42");
    assert_eq!(answer.header("cache-control"), Some("no-store"));
    assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
    let timing = answer.header("server-timing").unwrap_or_default();
    for stage in ["read;dur=", "parse;dur=", "validate;dur=", "total;dur="] {
        assert!(timing.contains(stage), "{timing}");
    }

    let generated = client.post_json("/api/v1/score", VALID.as_bytes());
    let id = generated
        .header("x-request-id")
        .unwrap_or_default()
        .to_owned();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_ne!(
        id,
        client
            .post_json("/api/v1/score", VALID.as_bytes())
            .header("x-request-id")
            .unwrap_or_default()
    );

    let refused = client.send(
        "POST",
        "/api/v1/score",
        &[
            ("content-type", "application/json"),
            ("x-request-id", "no spaces allowed"),
        ],
        Some(VALID.as_bytes()),
    );
    check(
        &refused,
        400,
        Some(ErrorCode::RequestId.as_str()),
        "bad request id",
    );
}

#[test]
fn oversize_bodies_are_refused_and_the_server_stays_healthy() {
    let client = Client::new();
    let huge = vec![b' '; 10 * 1024 * 1024];
    let answer = client.post_json("/api/v1/score", &huge);
    check(
        &answer,
        413,
        Some(ErrorCode::TooLarge.as_str()),
        "10 MB body",
    );
    check(&client.get("/healthz"), 200, None, "healthz after 10 MB");
}

#[test]
fn the_page_and_its_wasm_are_served_by_the_same_server() {
    let client = Client::new();
    let page = client.get("/");
    assert_eq!(page.status, 200);
    assert!(page
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/html"));
    let html = page.text();
    let wasm = html
        .split(['"', '\''])
        .find(|part| part.ends_with("_bg.wasm"))
        .unwrap_or_else(|| panic!("no wasm referenced in {html}"))
        .to_owned();
    let module = client.get(&wasm);
    assert_eq!(module.status, 200, "{wasm}");
    assert_eq!(module.header("content-type"), Some("application/wasm"));
    assert_eq!(&module.body[..4], b"\0asm");
}
