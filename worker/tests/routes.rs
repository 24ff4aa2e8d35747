//! The router and error mapping on the host: every route, method, content type and body class.

mod support;

use valle_shared::contract::codes::ErrorCode;

use serde_json::Value;
use valle_shared::api::{BatchResponse, Health, ScoreResponse};
use valle_shared::contract::errors::ErrorResponse;
use valle_shared::contract::ops::RateLimit;
use valle_shared::contract::request::Stage;
use valle_shared::{parse_application, Model};
use valle_worker::body::BodyError;
use valle_worker::cors::CorsPolicy;
use valle_worker::http::{HttpResponse, RequestHead};

use support::{Harness, VALID};

/// A fresh harness for each request: the kiosk's origin allowed, no shadow challenger, and
/// a clock that moves a quarter millisecond at every reading, so each stage has a time.
fn harness() -> Harness {
    let mut harness = Harness::new(RateLimit::default());
    harness.cors = CorsPolicy::parse(KIOSK).0;
    harness.shadow.set(false);
    harness.clock.1.set(0.25);
    harness
}

fn send(head: RequestHead, body: &[u8]) -> HttpResponse {
    harness().send_read(head, Ok(body.to_vec()))
}

fn json_post(body: &str) -> RequestHead {
    RequestHead::new("POST", "/api/v1/score")
        .with_header("Content-Type", "application/json")
        .with_header("Content-Length", &body.len().to_string())
}

/// Sends one request and checks the status and the error code (`None` for success).
fn check(head: RequestHead, body: &str, status: u16, code: Option<&str>) {
    let shown = format!("{} {}", head.method, head.path);
    let response = send(head, body.as_bytes());
    assert_eq!(
        response.status,
        status,
        "{shown}: {}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(
        response.header("content-type"),
        Some("application/json; charset=utf-8"),
        "{shown}"
    );
    let json: Value = serde_json::from_slice(&response.body).expect("JSON body");
    assert_eq!(json["error"]["code"].as_str(), code, "{shown}: {json}");
    if code.is_some() {
        assert!(json["error"]["message"]["es"].is_string(), "{shown}");
        assert!(json["error"]["message"]["en"].is_string(), "{shown}");
    }
}

#[test]
fn routes_methods_and_content_types() {
    check(json_post(VALID), VALID, 200, None);
    check(RequestHead::new("GET", "/healthz"), "", 200, None);
    check(RequestHead::new("HEAD", "/healthz"), "", 200, None);
    check(
        RequestHead::new("POST", "/healthz"),
        "",
        405,
        Some(ErrorCode::Method.as_str()),
    );
    check(
        RequestHead::new("GET", "/api/v1/score"),
        "",
        405,
        Some(ErrorCode::Method.as_str()),
    );
    check(
        RequestHead::new("DELETE", "/api/v1/score"),
        "",
        405,
        Some(ErrorCode::Method.as_str()),
    );
    check(
        RequestHead::new("GET", "/api/v1/nothing"),
        "",
        404,
        Some(ErrorCode::NotFound.as_str()),
    );
    check(
        RequestHead::new("GET", "/api/v1/score/"),
        "",
        404,
        Some(ErrorCode::NotFound.as_str()),
    );
    check(
        RequestHead::new("POST", "/api/v1/score"),
        VALID,
        415,
        Some(ErrorCode::ContentType.as_str()),
    );
    let text = RequestHead::new("POST", "/api/v1/score").with_header("content-type", "text/plain");
    check(text, VALID, 415, Some(ErrorCode::ContentType.as_str()));
    let charset = RequestHead::new("POST", "/api/v1/score")
        .with_header("content-type", "Application/JSON; charset=utf-8");
    check(charset, VALID, 200, None);
}

#[test]
fn bodies() {
    check(
        json_post("{}"),
        "{}",
        400,
        Some(ErrorCode::Validation.as_str()),
    );
    check(
        json_post("nope"),
        "nope",
        400,
        Some(ErrorCode::Json.as_str()),
    );
    check(
        json_post("[]"),
        "[]",
        400,
        Some(ErrorCode::NotObject.as_str()),
    );
    let big = format!("{VALID:<20000}");
    check(
        json_post(&big),
        &big,
        413,
        Some(ErrorCode::TooLarge.as_str()),
    );
    // A declared length over the limit is refused before the body is read.
    let declared = RequestHead::new("POST", "/api/v1/score")
        .with_header("content-type", "application/json")
        .with_header("content-length", "10485760");
    check(declared, "", 413, Some(ErrorCode::TooLarge.as_str()));
    // A body larger than declared (or sent chunked) is still caught after reading.
    let chunked =
        RequestHead::new("POST", "/api/v1/score").with_header("content-type", "application/json");
    check(chunked, &big, 413, Some(ErrorCode::TooLarge.as_str()));
}

#[test]
fn request_ids_are_echoed_or_generated() {
    let response = send(
        json_post(VALID).with_header("X-Request-ID", "abc-123"),
        VALID.as_bytes(),
    );
    assert_eq!(response.header("x-request-id"), Some("abc-123"));
    let answer: ScoreResponse = serde_json::from_slice(&response.body).expect("score body");
    assert_eq!(answer.request_id, "abc-123");
    assert_eq!(answer.application.amount, 800.0);

    let response = send(json_post(VALID), VALID.as_bytes());
    assert_eq!(response.header("x-request-id"), Some("gen-1"));

    let response = send(
        json_post(VALID).with_header("x-request-id", "bad id;"),
        VALID.as_bytes(),
    );
    assert_eq!(response.status, 400);
    let answer: ErrorResponse = serde_json::from_slice(&response.body).expect("error body");
    assert_eq!(answer.error.code, ErrorCode::RequestId.as_str());
    assert_eq!(answer.error.request_id.as_deref(), Some("gen-1"));
}

#[test]
fn headers_on_every_answer() {
    let response = send(json_post(VALID), VALID.as_bytes());
    assert_eq!(response.header("cache-control"), Some("no-store"));
    assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
    // The stepping clock advances a quarter millisecond at every reading.
    assert_eq!(
        response.header("server-timing"),
        Some("read;dur=0.250, throttle;dur=0.500, parse;dur=0.250, validate;dur=0.250, decide;dur=0.750, respond;dur=0.250, total;dur=2.250")
    );
    let answer: ScoreResponse = serde_json::from_slice(&response.body).expect("score body");
    let names: Vec<&str> = answer
        .timing
        .iter()
        .map(|stage| stage.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            Stage::Read,
            Stage::Throttle,
            Stage::Parse,
            Stage::Validate,
            Stage::Decide,
            Stage::Total
        ]
        .map(Stage::as_str)
    );

    let response = send(RequestHead::new("PUT", "/api/v1/score"), b"");
    assert_eq!(response.header("allow"), Some("POST"));
    let response = send(RequestHead::new("POST", "/api/v1/score"), b"");
    assert_eq!(response.header("accept-post"), Some("application/json"));
}

#[test]
fn validation_errors_are_the_shared_validators_own() {
    let body = r#"{"age": 17, "home": "castle", "salary": 1}"#;
    let response = send(json_post(body), body.as_bytes());
    let answer: ErrorResponse = serde_json::from_slice(&response.body).expect("error body");
    let expected = match valle_shared::parse_application(body.as_bytes()) {
        Err(error) => error.field_errors().to_vec(),
        Ok(_) => Vec::new(),
    };
    assert!(!expected.is_empty());
    assert_eq!(answer.error.fields, expected);
}

#[test]
fn a_failed_body_read_is_an_internal_error_without_details() {
    let response = harness().send_read(
        json_post(VALID),
        Err(BodyError::Unreadable("socket closed".to_owned())),
    );
    assert_eq!(response.status, 500);
    let answer: ErrorResponse = serde_json::from_slice(&response.body).expect("error body");
    assert_eq!(answer.error.code, ErrorCode::Internal.as_str());
    assert!(!answer.error.message.en.contains("socket"));
}

/// The edge stops reading a body past its route's limit ([`valle_worker::body`]); the
/// answer is 413 before any credential is looked at, and nothing is stored.
#[test]
fn a_body_past_its_limit_is_refused_before_credentials() {
    for (path, limit) in [
        (
            "/api/v1/score",
            valle_shared::intake::validation::MAX_BODY_BYTES,
        ),
        (
            "/api/v1/outcomes",
            valle_shared::outcomes::loan_outcomes::MAX_OUTCOMES_BYTES,
        ),
        (
            "/api/v1/webhooks",
            valle_shared::webhooks::MAX_SUBSCRIPTION_BYTES,
        ),
    ] {
        let chunked =
            RequestHead::new("POST", path).with_header("content-type", "application/json");
        let harness = harness();
        let response = harness.send_read(
            chunked,
            Err(BodyError::TooLarge {
                limit,
                read: limit + 1,
            }),
        );
        assert_eq!(response.status, 413, "{path}");
        let answer: ErrorResponse = serde_json::from_slice(&response.body).expect("error body");
        assert_eq!(answer.error.code, ErrorCode::TooLarge.as_str());
        assert_eq!(harness.backend.d1.decision_count(), 0);
    }
}

fn batch_post(body: &str) -> RequestHead {
    RequestHead::new("POST", "/api/v1/score/batch")
        .with_header("content-type", "application/json")
        .with_header("content-length", &body.len().to_string())
}

#[test]
fn a_score_is_the_shared_models_score() {
    let response = send(json_post(VALID), VALID.as_bytes());
    let answer: ScoreResponse = serde_json::from_slice(&response.body).expect("score body");
    let model = Model::embedded().expect("model loads");
    let expected = model
        .score(&parse_application(VALID.as_bytes()).expect("valid"))
        .expect("scores");
    assert_eq!(answer.score, expected);
    assert_eq!(answer.score.model_version, *model.version());
}

#[test]
fn batches_score_each_item_alone() {
    let invalid = r#"{"age": 17}"#;
    let body = format!(r#"{{"applications":[{VALID},{invalid},{VALID}]}}"#);
    let response = send(batch_post(&body), body.as_bytes());
    assert_eq!(response.status, 200);
    let answer: BatchResponse = serde_json::from_slice(&response.body).expect("batch body");
    assert_eq!((answer.accepted, answer.rejected), (2, 1));
    let indexes: Vec<usize> = answer.results.iter().map(|item| item.index).collect();
    assert_eq!(indexes, [0, 1, 2]);
    let single = send(json_post(VALID), VALID.as_bytes());
    let single: ScoreResponse = serde_json::from_slice(&single.body).expect("score body");
    // The same score, less the recourse only an applicant waiting online is given.
    let mut without_recourse = single.score.clone();
    without_recourse.recourse.clear();
    assert!(!single.score.recourse.is_empty());
    assert_eq!(answer.results[0].score.as_ref(), Some(&without_recourse));
    let error = answer.results[1].error.as_ref().expect("item error");
    let alone = send(json_post(invalid), invalid.as_bytes());
    let alone: ErrorResponse = serde_json::from_slice(&alone.body).expect("error body");
    assert_eq!(error.code, alone.error.code);
    assert_eq!(error.fields, alone.error.fields);
    assert_eq!(error.request_id, None);
}

#[test]
fn batch_envelopes_and_limits() {
    for (body, status, code) in [
        (
            r#"{"applications":[]}"#.to_owned(),
            400,
            ErrorCode::BatchSize.as_str(),
        ),
        (
            r#"{"items":[]}"#.to_owned(),
            400,
            ErrorCode::BatchEnvelope.as_str(),
        ),
        ("{".to_owned(), 400, ErrorCode::Json.as_str()),
        (
            format!(r#"{{"applications":[{}]}}"#, vec![VALID; 1001].join(",")),
            400,
            ErrorCode::BatchSize.as_str(),
        ),
    ] {
        check(batch_post(&body), &body, status, Some(code));
    }
    let declared = RequestHead::new("POST", "/api/v1/score/batch")
        .with_header("content-type", "application/json")
        .with_header("content-length", "2000000");
    check(declared, "", 413, Some(ErrorCode::TooLarge.as_str()));
}

#[test]
fn health_reports_the_model_version() {
    let response = send(RequestHead::new("GET", "/healthz"), b"");
    let answer: Health = serde_json::from_slice(&response.body).expect("health body");
    assert_eq!(answer.model_version.name, "valle-logit");
}

const KIOSK: &str = "https://ventanilla.example.coop";

/// Sends one request with `ALLOWED_ORIGINS` set to the kiosk's origin and checks the status,
/// the error code and the origin granted (`None`: no `Access-Control-Allow-Origin`).
fn check_cors(head: RequestHead, status: u16, code: Option<&str>, granted: Option<&str>) {
    let shown = format!("{} {} {:?}", head.method, head.path, head.header("origin"));
    let response = send(head, VALID.as_bytes());
    assert_eq!(response.status, status, "{shown}");
    assert_eq!(
        response.header("access-control-allow-origin"),
        granted,
        "{shown}"
    );
    assert_eq!(response.header("vary"), Some("Origin"), "{shown}");
    if status != 204 {
        let json: Value = serde_json::from_slice(&response.body).expect("JSON body");
        assert_eq!(json["error"]["code"].as_str(), code, "{shown}: {json}");
    }
}

fn preflight(origin: &str, method: &str, headers: &str) -> RequestHead {
    RequestHead::new("OPTIONS", "/api/v1/score")
        .with_header("origin", origin)
        .with_header("access-control-request-method", method)
        .with_header("access-control-request-headers", headers)
}

#[test]
fn only_listed_origins_get_a_cross_origin_grant() {
    let kiosk = Some(KIOSK);
    let evil = "https://evil.example";
    check_cors(
        preflight(KIOSK, "POST", "content-type, X-Request-ID"),
        204,
        None,
        kiosk,
    );
    check_cors(
        preflight("HTTPS://Ventanilla.Example.Coop/", "GET", ""),
        204,
        None,
        kiosk,
    );
    check_cors(
        preflight(evil, "POST", "content-type"),
        403,
        Some(ErrorCode::Origin.as_str()),
        None,
    );
    check_cors(
        preflight("null", "POST", ""),
        403,
        Some(ErrorCode::Origin.as_str()),
        None,
    );
    check_cors(
        preflight(KIOSK, "DELETE", ""),
        403,
        Some(ErrorCode::Origin.as_str()),
        kiosk,
    );
    check_cors(
        preflight(KIOSK, "POST", "content-type, x-evil"),
        403,
        Some(ErrorCode::Origin.as_str()),
        kiosk,
    );
    check_cors(
        json_post(VALID).with_header("origin", KIOSK),
        200,
        None,
        kiosk,
    );
    check_cors(
        json_post(VALID).with_header("origin", evil),
        200,
        None,
        None,
    );
    check_cors(json_post(VALID), 200, None, None);
    // A listed origin's page can read the errors it gets, too.
    let officer = RequestHead::new("GET", "/api/v1/kpis").with_header("origin", KIOSK);
    check_cors(officer, 401, Some(ErrorCode::Unauthorized.as_str()), kiosk);

    let answer = send(preflight(KIOSK, "POST", "authorization"), b"");
    assert_eq!(
        answer.header("access-control-allow-methods"),
        Some("GET, HEAD, POST")
    );
    assert_eq!(
        answer.header("access-control-allow-headers"),
        Some("authorization, content-type, x-request-id")
    );
    assert_eq!(answer.header("access-control-max-age"), Some("600"));
    let scored = send(
        json_post(VALID).with_header("origin", KIOSK),
        VALID.as_bytes(),
    );
    assert!(scored
        .header("access-control-expose-headers")
        .is_some_and(|exposed| exposed.contains("x-request-id")));
    // A plain OPTIONS is not a preflight: the route's methods answer it.
    check(
        RequestHead::new("OPTIONS", "/api/v1/score"),
        "",
        405,
        Some(ErrorCode::Method.as_str()),
    );
}

#[test]
fn origin_lists_keep_only_exact_origins() {
    let (policy, skipped) = CorsPolicy::parse(
        "https://a.example, http://localhost:8080 * https://b.example/path ftp://c.example https://a.example https://x@evil.example",
    );
    assert!(policy.allows("https://a.example"));
    assert!(policy.allows("http://localhost:8080"));
    for refused in [
        "https://a.example.evil.example",
        "http://a.example",
        "https://localhost:8080",
        "https://b.example",
        "*",
        "",
    ] {
        assert!(!policy.allows(refused), "{refused}");
    }
    assert_eq!(
        skipped,
        [
            "*",
            "https://b.example/path",
            "ftp://c.example",
            "https://x@evil.example"
        ]
    );
    // Without a list (the default), answers carry no CORS header at all.
    let response = HttpResponse::json(200, &serde_json::json!({}), "id");
    let head = RequestHead::new("GET", "/healthz").with_header("origin", "https://a.example");
    assert_eq!(
        CorsPolicy::default().apply(&head, response.clone()),
        response
    );
}
