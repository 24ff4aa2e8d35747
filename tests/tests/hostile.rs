//! Hostile input against `wrangler dev`: the fuzzing regression corpus (tests/corpus/),
//! huge and odd bodies, wrong content types, injection-looking text, and paths that try to
//! leave the page's assets. Every answer is a 4xx with Valle's JSON error body (never a
//! 5xx), nothing refused is stored, and the server is healthy afterwards.

use std::collections::BTreeMap;
use std::path::PathBuf;
use valle_shared::contract::codes::ErrorCode;

use serde_json::Value;
use valle_tests::{officer_token, random_uuid, Answer, Client, ALLOWED_ORIGIN};

/// This test's own client address, so its requests do not use up another test's budget.
const CLIENT: &str = "203.0.113.66";

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

fn post(client: &Client, path: &str, content_type: Option<&str>, id: &str, body: &[u8]) -> Answer {
    let mut headers = vec![("cf-connecting-ip", CLIENT), ("x-request-id", id)];
    if let Some(content_type) = content_type {
        headers.push(("content-type", content_type));
    }
    client.send("POST", path, &headers, Some(body))
}

/// A refusal as the API promises it: a 4xx, JSON, with a stable code.
fn check_refused(answer: &Answer, status: u16, code: Option<&str>, shown: &str) {
    assert_eq!(answer.status, status, "{shown}: {}", answer.text());
    assert_eq!(
        answer.header("content-type"),
        Some("application/json; charset=utf-8"),
        "{shown}"
    );
    let got = answer.json()["error"]["code"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_default();
    assert!(got.starts_with("E_"), "{shown}: {}", answer.text());
    if let Some(code) = code {
        assert_eq!(got, code, "{shown}");
    }
}

fn stored(client: &Client, request_id: &str) -> bool {
    let answer = client.officer_get(&format!("/api/v1/decisions/{request_id}"));
    assert!(matches!(answer.status, 200 | 404), "{}", answer.text());
    answer.status == 200
}

#[test]
fn the_fuzzing_corpus_gets_its_recorded_codes_and_refused_bodies_store_nothing() {
    let client = Client::new();
    let expected: BTreeMap<String, String> = serde_json::from_str(
        &std::fs::read_to_string(corpus().join("expected.json")).expect("expected.json"),
    )
    .expect("a map of file name to code");
    for (name, want) in &expected {
        let body = std::fs::read(corpus().join(name)).expect("corpus file");
        let id = random_uuid();
        if let Some(file) = name.strip_prefix("applications/") {
            let answer = post(
                &client,
                "/api/v1/score",
                Some("application/json"),
                &id,
                &body,
            );
            if want == "OK" {
                assert_eq!(answer.status, 200, "{file}: {}", answer.text());
                assert!(
                    stored(&client, &id),
                    "{file}: the accepted decision is stored"
                );
            } else {
                let status = if want == ErrorCode::TooLarge.as_str() {
                    413
                } else {
                    400
                };
                check_refused(&answer, status, Some(want), file);
                assert!(
                    !stored(&client, &id),
                    "{file}: nothing stored for a refusal"
                );
            }
        } else {
            let answer = post(
                &client,
                "/api/v1/events",
                Some("application/json"),
                &id,
                &body,
            );
            if want.contains(',') || want == "OK" {
                assert_eq!(answer.status, 202, "{name}: {}", answer.text());
                let codes: Vec<String> = answer.json()["results"]
                    .as_array()
                    .expect("results")
                    .iter()
                    .map(|ack| match ack["accepted"] {
                        Value::Bool(true) => "OK".to_owned(),
                        _ => ack["error"]["code"].as_str().unwrap_or("?").to_owned(),
                    })
                    .collect();
                assert_eq!(&codes.join(","), want, "{name}");
            } else {
                let status = if want == ErrorCode::TooLarge.as_str() {
                    413
                } else {
                    400
                };
                check_refused(&answer, status, Some(want), name);
            }
        }
    }
    assert_eq!(client.get("/healthz").status, 200);
}

#[test]
fn huge_odd_and_mistyped_requests_are_refused_cleanly() {
    let client = Client::new();
    let valid = std::fs::read(corpus().join("applications/valid.json")).expect("valid.json");
    let ten_megabytes = {
        let mut body = b"{\"branch\":\"".to_vec();
        body.resize(10 * 1024 * 1024, b'a');
        body.extend_from_slice(b"\"}");
        body
    };
    let too_many_items = format!(
        r#"{{"applications":[{}]}}"#,
        vec![String::from_utf8_lossy(&valid).into_owned(); 1_001].join(",")
    );
    let injected = String::from_utf8_lossy(&valid).replacen(
        '{',
        r#"{"applicant_id":"1; DROP TABLE decisions","branch":"' OR '1'='1","#,
        1,
    );
    for (path, content_type, body, status, code, shown) in [
        (
            "/api/v1/score",
            Some("application/json"),
            ten_megabytes.clone(),
            413,
            Some(ErrorCode::TooLarge.as_str()),
            "10 MB score",
        ),
        (
            "/api/v1/events",
            Some("application/json"),
            ten_megabytes.clone(),
            413,
            Some(ErrorCode::TooLarge.as_str()),
            "10 MB events",
        ),
        (
            "/api/v1/score/batch",
            Some("application/json"),
            ten_megabytes,
            413,
            Some(ErrorCode::TooLarge.as_str()),
            "10 MB batch",
        ),
        (
            "/api/v1/score/batch",
            Some("application/json"),
            too_many_items.into_bytes(),
            400,
            None,
            "1,001 batch items",
        ),
        (
            "/api/v1/score",
            None,
            valid.clone(),
            415,
            Some(ErrorCode::ContentType.as_str()),
            "no content type",
        ),
        (
            "/api/v1/score",
            Some("text/plain"),
            valid.clone(),
            415,
            Some(ErrorCode::ContentType.as_str()),
            "text/plain",
        ),
        (
            "/api/v1/score",
            Some("application/json"),
            br#"{"income": NaN}"#.to_vec(),
            400,
            Some(ErrorCode::Json.as_str()),
            "NaN literal",
        ),
        (
            "/api/v1/score",
            Some("application/json"),
            br#"{"income": "Infinity"}"#.to_vec(),
            400,
            Some(ErrorCode::Validation.as_str()),
            "Infinity string",
        ),
        (
            "/api/v1/score",
            Some("application/json"),
            injected.into_bytes(),
            400,
            Some(ErrorCode::Validation.as_str()),
            "SQL in text fields",
        ),
        (
            "/api/v1/score",
            Some("application/json"),
            b"\x00\x01\x02".to_vec(),
            400,
            Some(ErrorCode::Json.as_str()),
            "binary",
        ),
    ] {
        let id = random_uuid();
        let answer = post(&client, path, content_type, &id, &body);
        check_refused(&answer, status, code, shown);
        assert!(!stored(&client, &id), "{shown}: nothing stored");
    }
    // The decisions table is still there and answering after the injection attempts.
    let listed = client.officer_get("/api/v1/decisions?limit=1");
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert_eq!(client.get("/healthz").status, 200);
}

#[test]
fn asset_paths_cannot_reach_outside_the_page() {
    let client = Client::new();
    for path in [
        "/../wrangler.toml",
        "/%2e%2e/wrangler.toml",
        "/..%2fwrangler.toml",
        "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/.dev.vars",
        "/worker/src/lib.rs",
        "/dist/../Cargo.toml",
        "/panel/../../.dev.vars",
    ] {
        let answer = client.get(path);
        assert!(
            (400..500).contains(&answer.status) || answer.status == 200,
            "{path}: {}",
            answer.status
        );
        let text = answer.text();
        for secret in [
            "[build]",
            "VALLE_OFFICER_TOKEN",
            "root:x:",
            "[workspace]",
            &officer_token(),
        ] {
            assert!(!text.contains(secret), "{path} leaked {secret}");
        }
        // A 200 can only be the page itself (the asset server normalises the path).
        if answer.status == 200 {
            assert!(text.contains("<noscript>"), "{path}: {text}");
        }
    }
}

#[test]
fn the_page_and_the_api_carry_security_headers_and_grant_only_the_configured_origin() {
    let client = Client::new();
    for path in ["/", "/panel/"] {
        let page = client.get(path);
        assert_eq!(page.status, 200, "{path}");
        let policy = page.header("content-security-policy").unwrap_or_default();
        for directive in [
            "default-src 'self'",
            "'wasm-unsafe-eval'",
            "'sha256-",
            "object-src 'none'",
            "frame-ancestors 'none'",
        ] {
            assert!(
                policy.contains(directive),
                "{path}: {directive} in {policy:?}"
            );
        }
        assert!(!policy.contains("unsafe-inline"), "{path}: {policy}");
        assert_eq!(
            page.header("x-content-type-options"),
            Some("nosniff"),
            "{path}"
        );
        assert_eq!(
            page.header("referrer-policy"),
            Some("no-referrer"),
            "{path}"
        );
    }
    // Another site's page may send a request, but it is never allowed to read the answer.
    let id = random_uuid();
    let valid = std::fs::read(corpus().join("applications/valid.json")).expect("valid.json");
    let answer = client.send(
        "POST",
        "/api/v1/score",
        &[
            ("content-type", "application/json"),
            ("origin", "https://evil.example"),
            ("cf-connecting-ip", CLIENT),
            ("x-request-id", &id),
        ],
        Some(&valid),
    );
    assert_eq!(answer.header("access-control-allow-origin"), None);
    assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
    let preflight = client.send(
        "OPTIONS",
        "/api/v1/score",
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "POST"),
        ],
        None,
    );
    assert_eq!(preflight.status, 403);
    assert_eq!(
        preflight.json()["error"]["code"],
        ErrorCode::Origin.as_str()
    );
    assert_eq!(preflight.header("access-control-allow-origin"), None);
    // The origin `cargo xtask test` lists in ALLOWED_ORIGINS passes its preflight and reads
    // its answers, errors included.
    let preflight = client.send(
        "OPTIONS",
        "/api/v1/score",
        &[
            ("origin", ALLOWED_ORIGIN),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "content-type, x-request-id",
            ),
        ],
        None,
    );
    assert_eq!(preflight.status, 204);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some(ALLOWED_ORIGIN)
    );
    assert_eq!(preflight.header("access-control-max-age"), Some("600"));
    let id = random_uuid();
    let answer = client.send(
        "POST",
        "/api/v1/score",
        &[
            ("content-type", "application/json"),
            ("origin", ALLOWED_ORIGIN),
            ("cf-connecting-ip", CLIENT),
            ("x-request-id", &id),
        ],
        Some(&valid),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(
        answer.header("access-control-allow-origin"),
        Some(ALLOWED_ORIGIN)
    );
    let refused = client.send("GET", "/api/v1/kpis", &[("origin", ALLOWED_ORIGIN)], None);
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.header("access-control-allow-origin"),
        Some(ALLOWED_ORIGIN)
    );
}
