//! Officers as people against `wrangler dev` and its real D1: every route for every role,
//! Access JWTs signed by the test team's key, override classes, four eyes, the 409 race,
//! idempotent repeats, the applicant's human-review request, and a streamed export of 10,000
//! decisions. `cargo xtask test` creates the accounts and passes their tokens
//! (`VALLE_TOKEN_*`). The audit trail's verification after an edit made in D1 is
//! `audit_trail.rs`, alone, since editing D1 from outside locks it.

mod accounts;

use std::sync::Barrier;
use valle_shared::contract::codes::ErrorCode;
use valle_shared::records::receipt::RECEIPT_HEADER;

use serde_json::{json, Value};
use valle_tests::{random_uuid, Client};

use accounts::{
    audit_rows_about, call, case, code, confirm, decide, score, score_with_receipt, Who, APPROVED,
    DECLINED, REFERRED,
};

/// The fixture tokens of the test Access team (tests/fixtures/access/make.sh).
const ACCESS_TOKENS: &str = include_str!("../fixtures/access/tokens.json");

/// The newest audit row's number.
fn audit_head(client: &Client) -> u64 {
    let answer = call(
        client,
        Some(Who::Auditor),
        "GET",
        "/api/v1/audit?limit=1",
        None,
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    answer.json()["entries"][0]["seq"].as_u64().unwrap_or(0)
}

#[test]
fn every_route_answers_each_role_as_the_role_table_says() {
    let client = Client::new();
    let (id, _) = score(&client, REFERRED);
    use Who::*;
    let all: &[Who] = &[Admin, Officer, Supervisor, Auditor];
    let every: &[Who] = &[Admin, Officer, Supervisor, Auditor, Integrator, Dpo];
    let nobody = format!("/api/v1/applicants/NADIE-{}", &random_uuid()[..8]);
    let (nobodys_export, nobodys_erasure) =
        (format!("{nobody}/export"), format!("{nobody}/erasure"));
    let empty_branch_run = format!(r#"{{"branch":"nadie-{}"}}"#, &random_uuid()[..8]);
    let open_outcome = format!(
        r#"{{"outcomes":[{{"request_id":"{id}","status":"open","observed_at":"2000-01-01"}}]}}"#
    );
    let request_info = r#"{"action":"request_info","reason":"missing_documents"}"#;
    let review = format!("/api/v1/reviews/{id}");
    let approval = format!("/api/v1/reviews/{id}/approval");
    let decision = format!("/api/v1/decisions/{id}");
    let routes: Vec<(&str, &str, Option<&str>, &[Who])> = vec![
        ("GET", "/api/v1/me", None, every),
        ("GET", "/api/v1/decisions?limit=1", None, all),
        ("GET", &decision, None, all),
        ("GET", "/api/v1/kpis", None, all),
        ("GET", "/api/v1/kpis/windows", None, all),
        ("GET", "/api/v1/drift", None, all),
        ("GET", "/api/v1/reviews?limit=1", None, all),
        ("GET", &review, None, all),
        (
            "POST",
            &review,
            Some(request_info),
            &[Admin, Officer, Supervisor],
        ),
        (
            "POST",
            &approval,
            Some(r#"{"action":"confirm"}"#),
            &[Admin, Supervisor],
        ),
        (
            "GET",
            "/api/v1/dead-letters?limit=1",
            None,
            &[Admin, Supervisor],
        ),
        (
            "POST",
            "/api/v1/dead-letters/999999999/replay",
            None,
            &[Admin, Supervisor],
        ),
        ("GET", "/metrics", None, &[Admin, Supervisor]),
        ("GET", "/api/v1/audit?limit=1", None, &[Admin, Auditor]),
        ("GET", "/api/v1/audit/verify", None, &[Admin, Auditor]),
        (
            "GET",
            "/api/v1/exports/decisions.csv?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z",
            None,
            &[Admin, Supervisor, Auditor],
        ),
        (
            "GET",
            "/api/v1/reports/overrides",
            None,
            &[Admin, Supervisor, Auditor],
        ),
        (
            "POST",
            "/api/v1/outcomes",
            Some(&open_outcome),
            &[Admin, Officer, Supervisor, Integrator],
        ),
        ("GET", "/api/v1/performance", None, all),
        ("GET", "/api/v1/fairness", None, all),
        ("GET", "/api/v1/challenger", None, all),
        (
            "POST",
            "/api/v1/simulate",
            Some(r#"{"last":10}"#),
            &[Admin, Supervisor],
        ),
        ("GET", &nobodys_export, None, &[Dpo]),
        ("POST", &nobodys_erasure, None, &[Dpo]),
        (
            "POST",
            "/api/v1/retention/run",
            Some(&empty_branch_run),
            &[Dpo],
        ),
    ];
    for (method, path, body, allowed) in routes {
        let anonymous = call(&client, None, method, path, body);
        assert_eq!(
            (anonymous.status, code(&anonymous).as_deref()),
            (401, Some(ErrorCode::Unauthorized.as_str())),
            "{method} {path}"
        );
        let revoked = call(&client, Some(Revoked), method, path, body);
        assert_eq!(
            (revoked.status, code(&revoked).as_deref()),
            (401, Some(ErrorCode::Revoked.as_str())),
            "{method} {path}"
        );
        let unknown = client.send(
            method,
            path,
            &[
                ("authorization", "Bearer valle_unknown"),
                ("content-type", "application/json"),
            ],
            body.map(str::as_bytes),
        );
        assert_eq!(
            (unknown.status, code(&unknown).as_deref()),
            (401, Some(ErrorCode::Unauthorized.as_str())),
            "{method} {path}"
        );
        for who in every {
            let answer = call(&client, Some(*who), method, path, body);
            if allowed.contains(who) {
                assert!(
                    ![401, 403].contains(&answer.status) && answer.status < 500,
                    "{method} {path} as {who:?}: {} {}",
                    answer.status,
                    answer.text()
                );
            } else {
                assert_eq!(
                    (answer.status, code(&answer).as_deref()),
                    (403, Some(ErrorCode::Forbidden.as_str())),
                    "{method} {path} as {who:?}"
                );
            }
        }
    }
}

#[test]
fn access_jwts_are_verified_against_the_teams_keys() {
    let client = Client::new();
    let tokens: Value = serde_json::from_str(ACCESS_TOKENS).expect("the fixture tokens");
    let me = |name: &str| {
        let jwt = tokens[name].as_str().expect("a fixture token");
        client.send(
            "GET",
            "/api/v1/me",
            &[("cf-access-jwt-assertion", jwt)],
            None,
        )
    };
    let valid = me("valid");
    assert_eq!(valid.status, 200, "{}", valid.text());
    let body = valid.json();
    assert_eq!(
        (body["account"]["email"].as_str(), body["sign_in"].as_str()),
        (tokens["email"].as_str(), Some("access"))
    );
    assert_eq!(body["account"]["role"], "supervisor");
    for (name, expected) in [
        ("wrong_signature", ErrorCode::AccessInvalid.as_str()),
        ("wrong_audience", ErrorCode::AccessInvalid.as_str()),
        ("expired", ErrorCode::AccessExpired.as_str()),
        ("unknown_key", ErrorCode::AccessInvalid.as_str()),
        ("unknown_email", ErrorCode::UnknownAccount.as_str()),
    ] {
        let answer = me(name);
        assert_eq!(
            (answer.status, code(&answer).as_deref()),
            (401, Some(expected)),
            "{name}: {}",
            answer.text()
        );
    }
    let garbage = client.send(
        "GET",
        "/api/v1/me",
        &[("cf-access-jwt-assertion", "a.b.c")],
        None,
    );
    assert_eq!(
        (garbage.status, code(&garbage).as_deref()),
        (401, Some(ErrorCode::AccessInvalid.as_str()))
    );
}

#[test]
fn overrides_are_classified_and_low_side_approvals_need_a_second_person() {
    let client = Client::new();
    // Each row: the application, the model's decision, the officer's action and reason,
    // and the override and state that follow.
    let cases = [
        (
            APPROVED,
            "approve",
            "decline",
            "adverse_payment_history",
            "high_side",
            "declined",
        ),
        (
            REFERRED,
            "review",
            "approve",
            "verified_income",
            "none",
            "approved",
        ),
        (
            DECLINED,
            "decline",
            "approve",
            "policy_exception",
            "low_side",
            "awaiting_approval",
        ),
    ];
    let mut decided = Vec::new();
    for (application, model, action, reason, override_kind, state) in cases {
        let (id, decision) = score(&client, application);
        assert_eq!(decision, model);
        let review = decide(&client, Who::Officer, &id, action, reason);
        assert_eq!(review.status, 200, "{}", review.text());
        let review = &review.json()["review"];
        assert_eq!(
            (review["override_kind"].as_str(), review["state"].as_str()),
            (Some(override_kind), Some(state)),
            "{application}"
        );
        decided.push(id);
    }
    let declined = decided.pop().expect("the low-side case");
    assert_eq!(
        confirm(&client, Who::Officer, &declined, "confirm").status,
        403
    );
    let waiting = call(
        &client,
        Some(Who::Supervisor),
        "GET",
        "/api/v1/reviews?state=awaiting_approval&limit=200",
        None,
    )
    .json();
    assert!(waiting["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .any(|case| case["decision"]["request_id"] == declined.as_str()));
    let confirmed = confirm(&client, Who::Supervisor, &declined, "confirm");
    assert_eq!(confirmed.status, 200, "{}", confirmed.text());
    assert_eq!(
        (
            confirmed.json()["review"]["state"].as_str(),
            confirmed.json()["review"]["approved_by"].as_str()
        ),
        (Some("approved"), Some("supervisora@valle.test"))
    );

    // The supervisor who made a low-side approval cannot also confirm it.
    let (own, _) = score(&client, DECLINED);
    assert_eq!(
        decide(
            &client,
            Who::Supervisor,
            &own,
            "approve",
            "sufficient_collateral"
        )
        .status,
        200
    );
    let same = confirm(&client, Who::Supervisor, &own, "confirm");
    assert_eq!(
        (same.status, code(&same).as_deref()),
        (403, Some(ErrorCode::FourEyes.as_str()))
    );
    let rejected = confirm(&client, Who::Admin, &own, "reject");
    assert_eq!(rejected.json()["review"]["state"], "pending");

    let report = call(
        &client,
        Some(Who::Auditor),
        "GET",
        "/api/v1/reports/overrides",
        None,
    )
    .json();
    let officer_rows: Vec<&Value> = report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|row| row["officer"] == "oficial@valle.test")
        .collect();
    let sum = |key: &str| {
        officer_rows
            .iter()
            .filter_map(|row| row[key].as_u64())
            .sum::<u64>()
    };
    assert!(
        sum("high_side") >= 1 && sum("low_side") >= 1 && sum("decided") >= 3,
        "{report}"
    );
}

#[test]
fn two_officers_at_once_one_wins_and_the_other_gets_the_current_state() {
    let client = Client::new();
    for _ in 0..5 {
        let (id, _) = score(&client, REFERRED);
        let barrier = Barrier::new(2);
        let (first, second) = std::thread::scope(|scope| {
            let run = |who: Who, action: &'static str| {
                let (barrier, id) = (&barrier, &id);
                scope.spawn(move || {
                    let client = Client::new();
                    barrier.wait();
                    decide(&client, who, id, action, "verified_income")
                })
            };
            let first = run(Who::Officer, "approve");
            let second = run(Who::Officer2, "decline");
            (
                first.join().expect("a thread"),
                second.join().expect("a thread"),
            )
        });
        let mut statuses = [first.status, second.status];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "{} / {}", first.text(), second.text());
        let (winner, loser) = if first.status == 200 {
            (first, second)
        } else {
            (second, first)
        };
        assert_eq!(code(&loser).as_deref(), Some(ErrorCode::Conflict.as_str()));
        assert_eq!(
            loser.json()["current"],
            winner.json()["review"],
            "the loser sees the winner's review"
        );
        let stored = case(&client, Who::Auditor, &id);
        assert_eq!(stored["review"], winner.json()["review"]);
    }
}

/// The KPI consumer stamps a decision's KPI slot after the answer, so two
/// reads of the same review may differ in that slot and nothing else.
fn without_kpi_slot(mut body: Value) -> Value {
    if let Some(decision) = body["decision"].as_object_mut() {
        decision.remove("kpi_seq");
        decision.remove("kpi_window");
    }
    body
}

#[test]
fn repeating_an_action_changes_nothing() {
    let client = Client::new();
    let (id, _) = score(&client, REFERRED);
    let first = decide(&client, Who::Officer, &id, "decline", "high_debt_burden");
    assert_eq!(first.status, 200, "{}", first.text());
    let head = audit_head(&client);
    let again = decide(&client, Who::Officer, &id, "decline", "high_debt_burden");
    assert_eq!(
        (again.status, without_kpi_slot(again.json())),
        (200, without_kpi_slot(first.json()))
    );
    assert_eq!(
        audit_rows_about(&client, &id).len(),
        1,
        "one audit row for two identical requests"
    );
    assert!(audit_head(&client) >= head);
    let invalid = decide(&client, Who::Officer, &id, "perhaps", "high_debt_burden");
    assert_eq!(
        (
            invalid.status,
            invalid.json()["error"]["fields"][0]["code"].as_str()
        ),
        (400, Some(ErrorCode::Enum.as_str()))
    );
}

#[test]
fn an_applicant_can_ask_for_a_human_review() {
    let client = Client::new();
    let (id, decision, receipt) = score_with_receipt(&client, DECLINED);
    assert_eq!(decision, "decline");
    let path = format!("/api/v1/decisions/{id}/human-review");
    let with_receipt = [(RECEIPT_HEADER, receipt.as_str())];
    let first = client.send("POST", &path, &with_receipt, None);
    assert_eq!(first.status, 200, "{}", first.text());
    assert!(
        first.json().get("review").is_none(),
        "the applicant sees no officer's notes"
    );
    assert_eq!(
        client.send("POST", &path, &with_receipt, None).json(),
        first.json()
    );
    let asked = case(&client, Who::Officer, &id);
    assert_eq!(asked["review"]["state"], "pending");
    assert_eq!(
        asked["review"]["human_review_requested_at_ms"],
        first.json()["requested_at_ms"]
    );
    assert_eq!(
        client
            .send(
                "POST",
                "/api/v1/decisions/no-such-decision/human-review",
                &[],
                None
            )
            .status,
        404
    );
}

fn worker_memory(client: &Client) -> u64 {
    let metrics = call(client, Some(Who::Admin), "GET", "/metrics", None).text();
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("valle_wasm_memory_bytes{instance=\"worker\"} "))
        .and_then(|value| value.trim().parse::<f64>().ok())
        .map(|bytes| bytes as u64)
        .expect("the worker's memory in /metrics")
}

#[test]
fn an_export_of_ten_thousand_decisions_streams_with_flat_memory() {
    let client = Client::new();
    // A branch of its own, so the export holds exactly these decisions.
    let branch = format!("export-{}", &random_uuid()[..8]);
    // Approved by the model, so the review queue does not grow by 10,000 referrals.
    let application: Value = serde_json::from_str(APPROVED).expect("json");
    for _ in 0..10 {
        let items: Vec<Value> = (0..1_000)
            .map(|_| {
                let mut item = application.clone();
                item["branch"] = branch.clone().into();
                item
            })
            .collect();
        let body = json!({ "applications": items }).to_string();
        let answer = client.send(
            "POST",
            "/api/v1/score/batch",
            &[
                ("content-type", "application/json"),
                ("x-request-id", &random_uuid()),
            ],
            Some(body.as_bytes()),
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    let path = format!("/api/v1/exports/decisions.csv?branch={branch}");
    let before = worker_memory(&client);
    let export = call(&client, Some(Who::Auditor), "GET", &path, None);
    let after = worker_memory(&client);
    assert_eq!(export.status, 200);
    assert_eq!(
        export.header("content-type"),
        Some("text/csv; charset=utf-8")
    );
    let text = export.text();
    assert_eq!(text.lines().count(), 10_001, "a header and 10,000 rows");
    assert!(text.lines().skip(1).all(|line| line.contains(&branch)));
    let size = export.body.len() as u64;
    eprintln!("export: {size} bytes; worker memory {before} -> {after} bytes");
    assert!(size > 4_000_000, "{size}");
    assert!(
        after - before < 1_048_576,
        "the worker's memory grew by {} bytes for a {size}-byte export",
        after - before
    );
}

/// What 1,000 applicants' requests at once leave for the officers: 40 applicants each send
/// human-review requests and read-backs with their receipt and with guessed ones, from
/// addresses of their own, while an officer decides 20 referred cases. Every officer's
/// decision succeeds; the applicants get only 200, 404 or 429, and no audit row; the audit
/// chain verifies.
#[test]
fn officers_decide_while_a_thousand_applicant_requests_arrive() {
    const APPLICANTS: usize = 40;
    const REQUESTS: usize = 1_000;
    const SENDERS: usize = 8;
    const CASES: usize = 20;
    let client = Client::new();
    let applicants: Vec<(String, String)> = (0..APPLICANTS)
        .map(|_| {
            let (id, _, receipt) = score_with_receipt(&client, DECLINED);
            (id, receipt)
        })
        .collect();
    let cases: Vec<String> = (0..CASES).map(|_| score(&client, REFERRED).0).collect();
    let (applicant_statuses, officer_statuses) = std::thread::scope(|scope| {
        let senders: Vec<_> = (0..SENDERS)
            .map(|sender| {
                let applicants = &applicants;
                scope.spawn(move || {
                    let client = Client::new();
                    (sender..REQUESTS)
                        .step_by(SENDERS)
                        .map(|n| {
                            let (id, receipt) = &applicants[n % APPLICANTS];
                            let address = format!("198.18.{}.{}", n % APPLICANTS, sender + 1);
                            // An applicant asks in rounds: POST, GET, POST, ...; every
                            // fifth round guesses the receipt.
                            let round = n / APPLICANTS;
                            let shown = if round % 5 == 4 {
                                "vr1_guessed"
                            } else {
                                receipt
                            };
                            let (method, path) = if round.is_multiple_of(2) {
                                ("POST", format!("/api/v1/decisions/{id}/human-review"))
                            } else {
                                ("GET", format!("/api/v1/decisions/{id}/applicant"))
                            };
                            let headers = [
                                ("cf-connecting-ip", address.as_str()),
                                (RECEIPT_HEADER, shown),
                            ];
                            client.send(method, &path, &headers, None).status
                        })
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        let officer = scope.spawn(|| {
            let client = Client::new();
            cases
                .iter()
                .map(|id| decide(&client, Who::Officer, id, "approve", "verified_income").status)
                .collect::<Vec<u16>>()
        });
        let applicant_statuses: Vec<u16> = senders
            .into_iter()
            .flat_map(|sender| sender.join().expect("a sender"))
            .collect();
        (applicant_statuses, officer.join().expect("the officer"))
    });
    assert_eq!(applicant_statuses.len(), REQUESTS);
    assert_eq!(officer_statuses, vec![200; CASES], "every officer's write");
    let count = |status: u16| applicant_statuses.iter().filter(|s| **s == status).count();
    assert_eq!(
        count(200) + count(404) + count(429),
        REQUESTS,
        "{applicant_statuses:?}"
    );
    assert_eq!(count(404), REQUESTS / 5, "every guessed receipt");
    eprintln!(
        "applicants: {} answered, {} refused 404, {} limited; officers: {CASES} of {CASES}",
        count(200),
        count(404),
        count(429)
    );
    for (id, _) in &applicants {
        let asked = case(&client, Who::Officer, id);
        assert_eq!(asked["review"]["state"], "pending", "{id}");
        assert!(
            asked["review"]["human_review_requested_at_ms"].is_i64(),
            "{id}"
        );
        assert_eq!(
            audit_rows_about(&client, id),
            Vec::<Value>::new(),
            "the applicant's requests stay out of the officers' audit chain"
        );
        // Decided, the case leaves the queue of requests the browser tests look through.
        let decided = decide(
            &client,
            Who::Officer,
            id,
            "decline",
            "adverse_payment_history",
        );
        assert_eq!(decided.status, 200, "{}", decided.text());
    }
    let verified = call(
        &client,
        Some(Who::Auditor),
        "GET",
        "/api/v1/audit/verify",
        None,
    )
    .json();
    assert_eq!(verified["ok"], true, "{verified}");
}
