//! What a stranger cannot do with an id alone: a request id is bound to its body, and what
//! only the applicant may do needs the receipt their answer carried.

mod support;

use serde_json::{json, Value};
use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::ops::RateLimit;
use valle_shared::records::receipt::RECEIPT_HEADER;
use valle_worker::http::RequestHead;

use support::{events_body, ok_json, Harness, VALID};

fn harness() -> Harness {
    Harness::new(RateLimit::default())
}

fn json_of(response: &valle_worker::http::HttpResponse) -> Value {
    serde_json::from_slice(&response.body).expect("json")
}

/// An application unlike [`VALID`] in every personal field.
const OTHER: &str = r#"{"seniority_years":2,"home":"owner","term_months":36,"age":52,"marital":"widow","records":"yes","job":"fixed","expenses":91,"income":377,"assets":6150,"debt":25,"amount":1350,"price":1799,"applicant_id":"SOC-77","branch":"sur"}"#;

#[test]
fn a_reused_request_id_with_another_body_is_refused_and_told_nothing() {
    let harness = harness();
    let first = ok_json(&harness.score_body("shared-id", OTHER));
    let stored_before = harness.backend.d1.decision_count();
    let writes_before = harness.backend.d1.writes.get();
    let reused = harness.score_body("shared-id", VALID);
    assert_eq!(reused.status, 422);
    let refusal = json_of(&reused);
    assert_eq!(
        refusal["error"]["code"],
        ErrorCode::IdempotencyMismatch.as_str()
    );
    let text = String::from_utf8_lossy(&reused.body).into_owned();
    for value in [
        "SOC-77", "377", "6150", "1799", "widow", "owner", "sur", "52",
    ] {
        assert!(!text.contains(value), "{value} leaked: {text}");
    }
    let probability = first["score"]["probability"].to_string();
    assert!(!text.contains(&probability[..6]), "{text}");
    assert_eq!(harness.backend.d1.decision_count(), stored_before);
    assert_eq!(harness.backend.d1.writes.get(), writes_before + 1);
    // The same body, in another key order, is the same request: the stored decision.
    let reordered: Value = serde_json::from_str(OTHER).expect("json");
    let again = ok_json(&harness.score_body("shared-id", &reordered.to_string()));
    assert_eq!(again["replayed"], true);
    assert_eq!(again["score"], first["score"]);
    assert_eq!(again["receipt"], first["receipt"]);
}

fn batch(harness: &Harness, id: &str, items: &[&str]) -> valle_worker::http::HttpResponse {
    let body = format!(r#"{{"applications":[{}]}}"#, items.join(","));
    let head = RequestHead::new("POST", "/api/v1/score/batch")
        .with_header("content-type", "application/json")
        .with_header("x-request-id", id);
    harness.send(head, &body)
}

#[test]
fn a_batch_is_bound_to_all_of_its_items_and_a_refused_one_stores_nothing() {
    let harness = harness();
    let invalid = VALID.replace(r#""age":30"#, r#""age":17"#);
    let first = batch(&harness, "b-1", &[VALID, &invalid]);
    assert_eq!(first.status, 200);
    assert_eq!(harness.backend.d1.decision_count(), 1);
    // The same items again: every stored item answers as a replay.
    let again = json_of(&batch(&harness, "b-1", &[VALID, &invalid]));
    assert_eq!(again["results"][0]["replayed"], true);
    // The invalid item corrected: another batch under the same id, refused whole, and the
    // corrected item is not stored under `b-1:1`.
    let corrected = batch(&harness, "b-1", &[VALID, VALID]);
    assert_eq!(
        corrected.status,
        422,
        "{}",
        String::from_utf8_lossy(&corrected.body)
    );
    assert_eq!(harness.backend.d1.decision_count(), 1);
    assert!(harness.backend.d1.decision("b-1:1").is_none());
    // An item's id used alone is another request.
    assert_eq!(harness.score_body("b-1:0", VALID).status, 422);
}

#[test]
fn an_event_id_taken_by_another_body_is_refused_and_not_queued() {
    let harness = harness();
    let first = accepted(&harness.post_events(&events_body(1..2)));
    assert_eq!(first["accepted"], 1);
    assert!(first["results"][0]["receipt"]
        .as_str()
        .is_some_and(|r| r.starts_with("vr1_")));
    let queued = harness.backend.queued.borrow().len();
    // The same event again is accepted (and deduplicated downstream).
    let same = accepted(&harness.post_events(&events_body(1..2)));
    assert_eq!(same["accepted"], 1);
    let changed = events_body(1..2).replace(r#""income":129"#, r#""income":999"#);
    let refused = accepted(&harness.post_events(&changed));
    assert_eq!(
        (refused["accepted"].clone(), refused["rejected"].clone()),
        (json!(0), json!(1))
    );
    assert_eq!(
        refused["results"][0]["error"]["code"],
        ErrorCode::IdempotencyMismatch.as_str()
    );
    assert!(refused["results"][0].get("receipt").is_none());
    assert_eq!(
        harness.backend.queued.borrow().len(),
        queued + 1,
        "only the repeat was queued"
    );
    // Once it is a decision, another body is still refused.
    support::drain(&harness.backend);
    let after = accepted(&harness.post_events(&changed));
    assert_eq!(after["accepted"], 0);
}

/// The 202 of `POST /api/v1/events`.
fn accepted(response: &valle_worker::http::HttpResponse) -> Value {
    assert_eq!(
        response.status,
        202,
        "{}",
        String::from_utf8_lossy(&response.body)
    );
    json_of(response)
}

fn applicant(harness: &Harness, method: &str, path: &str, receipt: Option<&str>) -> (u16, Value) {
    let mut head = RequestHead::new(method, path).with_header("cf-connecting-ip", "203.0.113.7");
    if let Some(receipt) = receipt {
        head = head.with_header(RECEIPT_HEADER, receipt);
    }
    let body = if path.ends_with("/contest") {
        head = head.with_header("content-type", "application/json");
        r#"{"comment":"Mis ingresos han cambiado."}"#
    } else {
        ""
    };
    let response = harness.send(head, body);
    (response.status, json_of(&response))
}

#[test]
fn only_the_receipt_opens_an_applicants_decision() {
    let harness = harness();
    let scored = ok_json(&harness.score_body("mine", OTHER));
    let receipt = scored["receipt"].as_str().expect("a receipt").to_owned();
    let other = ok_json(&harness.score_body("theirs", VALID));
    let their_receipt = other["receipt"].as_str().expect("a receipt").to_owned();
    let unknown = applicant(
        &harness,
        "GET",
        "/api/v1/decisions/no-such-id/applicant",
        None,
    );
    assert_eq!(unknown.0, 404);
    let without_body = |value: &Value| {
        let mut value = value.clone();
        value["error"]["request_id"] = Value::Null;
        value
    };
    for path in [
        "/api/v1/decisions/mine/applicant",
        "/api/v1/decisions/mine/export",
        "/api/v1/decisions/mine/human-review",
        "/api/v1/decisions/mine/contest",
        "/api/v1/decisions/mine/erasure",
    ] {
        let method = if path.ends_with("applicant") || path.ends_with("export") {
            "GET"
        } else {
            "POST"
        };
        for shown in [
            None,
            Some(their_receipt.as_str()),
            Some("vr1_AAAA"),
            Some(""),
        ] {
            let (status, answer) = applicant(&harness, method, path, shown);
            assert_eq!(status, 404, "{path} {shown:?}");
            assert_eq!(
                without_body(&answer),
                without_body(&unknown.1),
                "{path} {shown:?}"
            );
        }
    }
    let (status, mine) = applicant(
        &harness,
        "GET",
        "/api/v1/decisions/mine/applicant",
        Some(&receipt),
    );
    assert_eq!(status, 200, "{mine}");
    assert_eq!(mine["application"]["applicant_id"], "SOC-77");
    assert_eq!(mine["score"], scored["score"]);
    assert_eq!(mine["human_review_requested_at_ms"], Value::Null);
    let (status, asked) = applicant(
        &harness,
        "POST",
        "/api/v1/decisions/mine/human-review",
        Some(&receipt),
    );
    assert_eq!(status, 200, "{asked}");
    let (_, mine) = applicant(
        &harness,
        "GET",
        "/api/v1/decisions/mine/applicant",
        Some(&receipt),
    );
    assert_eq!(
        mine["human_review_requested_at_ms"],
        asked["requested_at_ms"]
    );
    assert_eq!(mine["review_state"], "pending");
}

#[test]
fn without_a_receipt_key_nothing_an_applicant_needs_is_answered_or_stored() {
    let harness = harness();
    *harness.receipts.borrow_mut() = None;
    let response = harness.score("no-key");
    assert_eq!(response.status, 500);
    assert_eq!(harness.backend.d1.decision_count(), 0);
    assert_eq!(harness.post_events(&events_body(1..2)).status, 500);
    assert!(harness.backend.d1.inbox.borrow().is_empty());
    let health = harness.send(RequestHead::new("GET", "/healthz"), "");
    let health = json_of(&health);
    let check = health["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|check| check["name"] == "receipt_key"))
        .expect("the receipt check");
    assert_eq!(check["ok"], false);
    assert!(health["checks"]
        .as_array()
        .is_some_and(|checks| checks.iter().all(|c| c.get("error").is_none())));
}
