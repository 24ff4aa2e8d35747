//! Each rate-limit class counts its own key: public clients by address (IPv6 by its /64),
//! an applicant's routes by decision as well, officers by account, and refused credentials
//! by address.

mod support;

use serde_json::Value;
use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::ops::{RateClass, RateLimit};
use valle_shared::records::receipt::RECEIPT_HEADER;
use valle_worker::http::RequestHead;

use support::{events_body, ok_json, Harness, TOKEN, VALID};

const FEW: RateLimit = RateLimit {
    limit: 3,
    period_s: 60,
};

fn harness_limiting(class: RateClass) -> Harness {
    let mut harness = Harness::new(RateLimit::default());
    harness.backend.rate_limits.insert(class, FEW);
    harness
}

fn score_from(harness: &Harness, address: &str) -> u16 {
    let head = RequestHead::new("POST", "/api/v1/score")
        .with_header("content-type", "application/json")
        .with_header("cf-connecting-ip", address);
    harness.send(head, VALID).status
}

#[test]
fn ipv6_clients_are_counted_by_their_64() {
    let harness = harness_limiting(RateClass::Public);
    let statuses: Vec<u16> = [
        "2001:db8:7:1::1",
        "2001:db8:7:1::2",
        "2001:db8:7:1:ffff:ffff:ffff:ffff",
        "2001:db8:7:1:abcd::9",
        "2001:db8:7:2::1",
        "198.51.100.20",
        "::ffff:198.51.100.20",
    ]
    .iter()
    .map(|address| score_from(&harness, address))
    .collect();
    assert_eq!(statuses, [200, 200, 200, 429, 200, 200, 200]);
}

fn applicant_get(harness: &Harness, id: &str, receipt: &str, address: &str) -> u16 {
    let head = RequestHead::new("GET", &format!("/api/v1/decisions/{id}/applicant"))
        .with_header("cf-connecting-ip", address)
        .with_header(RECEIPT_HEADER, receipt);
    harness.send(head, "").status
}

#[test]
fn a_decision_flooded_from_many_addresses_is_refused_before_its_receipt_is_checked() {
    let harness = harness_limiting(RateClass::Decision);
    let mine = ok_json(&harness.score_body("mine", VALID));
    let receipt = mine["receipt"].as_str().expect("a receipt").to_owned();
    let theirs = ok_json(&harness.score_body("theirs", VALID));
    let their_receipt = theirs["receipt"].as_str().expect("a receipt").to_owned();
    let writes = harness.backend.d1.writes.get();
    let statuses: Vec<u16> = (0..5)
        .map(|i| applicant_get(&harness, "mine", "vr1_guess", &format!("203.0.113.{i}")))
        .collect();
    assert_eq!(statuses, [404, 404, 404, 429, 429]);
    assert_eq!(
        applicant_get(&harness, "mine", &receipt, "203.0.113.50"),
        429,
        "the limit holds for the receipt's holder too until the window ends"
    );
    assert_eq!(
        applicant_get(&harness, "theirs", &their_receipt, "203.0.113.0"),
        200,
        "another decision has its own count"
    );
    let review = RequestHead::new("POST", "/api/v1/decisions/mine/human-review")
        .with_header("cf-connecting-ip", "203.0.113.51")
        .with_header(RECEIPT_HEADER, &receipt);
    assert_eq!(harness.send(review, "").status, 429);
    assert_eq!(harness.backend.d1.writes.get(), writes, "nothing written");
    harness.advance(60_000);
    assert_eq!(
        applicant_get(&harness, "mine", &receipt, "203.0.113.50"),
        200
    );
}

fn kpis_with(harness: &Harness, token: &str, address: &str) -> (u16, Value) {
    let head = RequestHead::new("GET", "/api/v1/kpis")
        .with_header("authorization", &format!("Bearer {token}"))
        .with_header("cf-connecting-ip", address);
    let response = harness.send(head, "");
    (
        response.status,
        serde_json::from_slice(&response.body).unwrap_or(Value::Null),
    )
}

#[test]
fn refused_credentials_are_limited_per_address_and_a_valid_one_still_signs_in() {
    let harness = harness_limiting(RateClass::FailedCredentials);
    let statuses: Vec<u16> = (0..5)
        .map(|i| kpis_with(&harness, &format!("guess-{i}"), "192.0.2.8").0)
        .collect();
    assert_eq!(statuses, [401, 401, 401, 429, 429]);
    assert_eq!(kpis_with(&harness, "guess-5", "192.0.2.9").0, 401);
    assert_eq!(kpis_with(&harness, TOKEN, "192.0.2.8").0, 200);
}

#[test]
fn an_officers_credential_is_limited_per_account() {
    let harness = harness_limiting(RateClass::Officer);
    let statuses: Vec<u16> = (0..5)
        .map(|i| kpis_with(&harness, TOKEN, &format!("192.0.2.{i}")).0)
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    let (status, _) = kpis_with(&harness, "tok-auditor", "192.0.2.0");
    assert_eq!(status, 200, "another account has its own count");
    let (_, refused) = kpis_with(&harness, TOKEN, "192.0.2.0");
    assert_eq!(refused["error"]["code"], ErrorCode::RateLimited.as_str());
}

fn from_client(path: &str, id: &str) -> RequestHead {
    RequestHead::new("POST", path)
        .with_header("content-type", "application/json")
        .with_header("cf-connecting-ip", "203.0.113.88")
        .with_header("x-request-id", id)
}

#[test]
fn a_batch_costs_a_public_request_per_hundred_items_and_a_refused_one_keeps_nothing() {
    let harness = Harness::new(RateLimit {
        limit: 6,
        period_s: 60,
    });
    let applications = vec![VALID; 250].join(",");
    let batch = format!(r#"{{"applications":[{applications}]}}"#);
    let answered = harness.send(from_client("/api/v1/score/batch", "batch-1"), &batch);
    assert_eq!(answered.status, 200, "three of six");
    let stored = harness.backend.d1.decision_count();
    assert_eq!(stored, 250);
    let events = harness.send(
        from_client("/api/v1/events", "events-1"),
        &events_body(0..300),
    );
    assert_eq!(events.status, 202, "three more: six of six");
    let kept = harness.backend.d1.writes.get();
    let refused = harness.send(
        from_client("/api/v1/events", "events-2"),
        &events_body(301..302),
    );
    assert_eq!(
        refused.status,
        429,
        "{}",
        String::from_utf8_lossy(&refused.body)
    );
    assert_eq!(harness.backend.d1.writes.get(), kept, "nothing kept");
    assert_eq!(harness.backend.d1.decision_count(), stored);
}
