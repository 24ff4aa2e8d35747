//! What a stranger gets with someone else's ids, against `wrangler dev` and its real D1: a
//! reused request id with another body is refused and told nothing, and what only the
//! applicant may do answers the 404 of an unknown id without the decision's receipt.

use serde_json::{json, Value};
use valle_shared::contract::codes::ErrorCode;
use valle_shared::records::receipt::RECEIPT_HEADER;
use valle_tests::{now_ms, random_uuid, Answer, Client};

mod accounts;

use accounts::{call, decide, Who};

/// An application whose every personal value is easy to find in an answer's text.
const THEIRS: &str = r#"{"seniority_years":13,"home":"owner","term_months":36,"age":57,"marital":"widow","records":"no","job":"fixed","expenses":61,"income":377,"assets":6150,"debt":25,"amount":1350,"price":1799,"applicant_id":"SOC-4417","branch":"sur"}"#;
const MINE: &str = r#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846}"#;

fn post(client: &Client, path: &str, id: &str, body: &str) -> Answer {
    client.send(
        "POST",
        path,
        &[("content-type", "application/json"), ("x-request-id", id)],
        Some(body.as_bytes()),
    )
}

/// None of the stored application's values, nor its score, appear in `answer` (its
/// request id aside: a fresh UUID may hold any digits).
fn tells_nothing_of(answer: &Answer, stored: &Value) {
    let mut body = answer.json();
    body["error"]["request_id"] = Value::Null;
    let text = body.to_string();
    for value in [
        "SOC-4417", "377", "6150", "1799", "widow", "owner", "\"sur\"", "57",
    ] {
        assert!(!text.contains(value), "{value} leaked: {text}");
    }
    let probability = stored["score"]["probability"].to_string();
    assert!(
        !text.contains(&probability),
        "the probability leaked: {text}"
    );
}

#[test]
fn a_reused_request_id_with_another_body_is_refused_and_tells_nothing() {
    let client = Client::new();
    let id = random_uuid();
    let first = post(&client, "/api/v1/score", &id, THEIRS);
    assert_eq!(first.status, 200, "{}", first.text());
    let stored = first.json();
    let reused = post(&client, "/api/v1/score", &id, MINE);
    assert_eq!(reused.status, 422, "{}", reused.text());
    assert_eq!(
        reused.json()["error"]["code"],
        ErrorCode::IdempotencyMismatch.as_str()
    );
    tells_nothing_of(&reused, &stored);
    // One field changed is refused the same way, with the same text.
    let one_field = post(
        &client,
        "/api/v1/score",
        &id,
        &THEIRS.replace(r#""income":377"#, r#""income":378"#),
    );
    assert_eq!(one_field.status, 422);
    assert_eq!(
        one_field.json()["error"]["message"],
        reused.json()["error"]["message"]
    );
    // The decision is still the first one, and the same body is still a replay.
    let again = post(&client, "/api/v1/score", &id, THEIRS);
    assert_eq!(again.json()["replayed"], true);
    assert_eq!(again.json()["score"], stored["score"]);
    assert_eq!(again.json()["receipt"], stored["receipt"]);
    // A batch item's id used for a single score is another request too.
    let batch_id = random_uuid();
    let batch = post(
        &client,
        "/api/v1/score/batch",
        &batch_id,
        &format!(r#"{{"applications":[{THEIRS}]}}"#),
    );
    assert_eq!(batch.status, 200, "{}", batch.text());
    let item = post(&client, "/api/v1/score", &format!("{batch_id}:0"), MINE);
    assert_eq!(item.status, 422);
    tells_nothing_of(&item, &batch.json()["results"][0]);
    let other_batch = post(
        &client,
        "/api/v1/score/batch",
        &batch_id,
        &format!(r#"{{"applications":[{MINE}]}}"#),
    );
    assert_eq!(other_batch.status, 422);
    tells_nothing_of(&other_batch, &batch.json()["results"][0]);
}

#[test]
fn an_event_id_taken_by_another_body_is_refused() {
    let client = Client::new();
    let event = |application: &str, event_id: &str| {
        json!({ "events": [{
            "event_id": event_id,
            "event_time": "2026-11-23T10:00:00Z",
            "application": serde_json::from_str::<Value>(application).expect("json"),
        }]})
        .to_string()
    };
    let event_id = random_uuid();
    let first = post(
        &client,
        "/api/v1/events",
        &random_uuid(),
        &event(THEIRS, &event_id),
    );
    assert_eq!(first.status, 202, "{}", first.text());
    assert_eq!(first.json()["results"][0]["accepted"], true);
    assert!(first.json()["results"][0]["receipt"].is_string());
    let taken = post(
        &client,
        "/api/v1/events",
        &random_uuid(),
        &event(MINE, &event_id),
    );
    assert_eq!(taken.status, 202);
    let ack = &taken.json()["results"][0];
    assert_eq!(ack["accepted"], false, "{ack}");
    assert_eq!(
        ack["error"]["code"],
        ErrorCode::IdempotencyMismatch.as_str()
    );
    assert!(ack.get("receipt").is_none());
    let same = post(
        &client,
        "/api/v1/events",
        &random_uuid(),
        &event(THEIRS, &event_id),
    );
    assert_eq!(same.json()["results"][0]["accepted"], true);
}

fn applicant(client: &Client, method: &str, path: &str, receipt: Option<&str>) -> Answer {
    let mut headers: Vec<(&str, &str)> = receipt.map(|r| (RECEIPT_HEADER, r)).into_iter().collect();
    // A contest is a JSON body; the others have none.
    let body = path.ends_with("/contest").then(|| {
        headers.push(("content-type", "application/json"));
        r#"{"comment":"Revisen mis ingresos, por favor."}"#.as_bytes()
    });
    client.send(method, path, &headers, body)
}

/// An answer's body without its request id, which differs per request.
fn without_request_id(answer: &Answer) -> Value {
    let mut body = answer.json();
    body["error"]["request_id"] = Value::Null;
    body
}

#[test]
fn what_only_the_applicant_may_do_needs_the_decisions_receipt() {
    let client = Client::new();
    let id = random_uuid();
    let mine = post(&client, "/api/v1/score", &id, THEIRS).json();
    let receipt = mine["receipt"].as_str().expect("a receipt").to_owned();
    let someone_else = post(&client, "/api/v1/score", &random_uuid(), MINE).json();
    let their_receipt = someone_else["receipt"]
        .as_str()
        .expect("a receipt")
        .to_owned();
    let unknown = applicant(
        &client,
        "GET",
        &format!("/api/v1/decisions/{}/applicant", random_uuid()),
        Some(&receipt),
    );
    assert_eq!(unknown.status, 404);
    for (method, suffix) in [
        ("GET", "applicant"),
        ("GET", "export"),
        ("POST", "human-review"),
        ("POST", "contest"),
        ("POST", "erasure"),
    ] {
        let path = format!("/api/v1/decisions/{id}/{suffix}");
        for shown in [
            None,
            Some(their_receipt.as_str()),
            Some("vr1_AAAAAAAA"),
            Some(""),
        ] {
            let answer = applicant(&client, method, &path, shown);
            assert_eq!(answer.status, 404, "{method} {path} {shown:?}");
            assert_eq!(without_request_id(&answer), without_request_id(&unknown));
        }
    }
    let read = applicant(
        &client,
        "GET",
        &format!("/api/v1/decisions/{id}/applicant"),
        Some(&receipt),
    );
    assert_eq!(read.status, 200, "{}", read.text());
    assert_eq!(read.json()["application"]["applicant_id"], "SOC-4417");
    assert_eq!(read.json()["score"], mine["score"]);
    let asked = applicant(
        &client,
        "POST",
        &format!("/api/v1/decisions/{id}/human-review"),
        Some(&receipt),
    );
    assert_eq!(asked.status, 200, "{}", asked.text());
    let read = applicant(
        &client,
        "GET",
        &format!("/api/v1/decisions/{id}/applicant"),
        Some(&receipt),
    );
    assert_eq!(
        read.json()["human_review_requested_at_ms"],
        asked.json()["requested_at_ms"]
    );
}

#[test]
fn healthz_names_its_checks_and_no_error_text() {
    let answer = Client::new().get("/healthz");
    assert_eq!(answer.status, 200, "{}", answer.text());
    let checks = answer.json()["checks"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(checks
        .iter()
        .any(|check| check["name"] == "receipt_key" && check["ok"] == true));
    for check in &checks {
        let keys: Vec<&String> = check
            .as_object()
            .map(|o| o.keys().collect())
            .unwrap_or_default();
        assert_eq!(keys, ["name", "ok"], "{check}");
    }
}

#[test]
fn a_subject_access_export_holds_each_decision_review_and_outcome_and_no_one_else() {
    let client = Client::new();
    let applicant_id = format!("SA-{}", &random_uuid()[..8]);
    let other_id = format!("SB-{}", &random_uuid()[..8]);
    let with_applicant = |id: &str| {
        let mut application: Value = serde_json::from_str(MINE).expect("json");
        application["applicant_id"] = json!(id);
        application.to_string()
    };
    let ids: Vec<String> = (0..3)
        .map(|_| {
            let id = random_uuid();
            let answer = post(
                &client,
                "/api/v1/score",
                &id,
                &with_applicant(&applicant_id),
            );
            assert_eq!(answer.status, 200, "{}", answer.text());
            id
        })
        .collect();
    let other = post(
        &client,
        "/api/v1/score",
        &random_uuid(),
        &with_applicant(&other_id),
    );
    assert_eq!(other.status, 200);
    let decided = decide(
        &client,
        Who::Officer,
        &ids[1],
        "request_info",
        "missing_documents",
    );
    assert_eq!(decided.status, 200, "{}", decided.text());
    let observed_at = valle_shared::contract::time::format_rfc3339_ms(now_ms());
    let outcome = json!({ "outcomes": [{ "request_id": ids[2], "status": "good", "observed_at": observed_at }] });
    let recorded = call(
        &client,
        Some(Who::Integrator),
        "POST",
        "/api/v1/outcomes",
        Some(&outcome.to_string()),
    );
    assert_eq!(recorded.status, 200, "{}", recorded.text());
    let export = call(
        &client,
        Some(Who::Dpo),
        "GET",
        &format!("/api/v1/applicants/{applicant_id}/export"),
        None,
    );
    assert_eq!(export.status, 200, "{}", export.text());
    let export = export.json();
    let decisions = export["decisions"].as_array().expect("decisions");
    let exported: Vec<&str> = decisions
        .iter()
        .filter_map(|d| d["decision"]["request_id"].as_str())
        .collect();
    assert_eq!(exported, ids.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(decisions[1]["review"]["reason"], "missing_documents");
    assert_eq!(decisions[2]["outcome"]["status"], "good");
    let audited: Vec<&str> = export["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .filter_map(|row| row["subject"].as_str())
        .collect();
    assert_eq!(audited, [ids[1].as_str()]);
    let text = export.to_string();
    assert!(
        !text.contains(&other_id),
        "another applicant is in the export: {text}"
    );
    let admin = call(
        &client,
        Some(Who::Admin),
        "GET",
        &format!("/api/v1/applicants/{applicant_id}/export"),
        None,
    );
    assert_eq!(admin.status, 403);
}
