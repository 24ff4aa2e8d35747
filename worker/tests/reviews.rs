//! Officers as people, on the host: every route for every role, Access JWTs, the review
//! queue with override classes and four eyes, idempotent repeats and conflicts, the audit
//! trail and its verification, the CSV export and the applicant's human-review request.

mod support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::ops::RateLimit;
use valle_shared::lending::access::{Jwk, Jwks};
use valle_shared::lending::audit::{AuditAction, LinkProblem, VerifyReport};
use valle_shared::lending::officers::Role;
use valle_shared::lending::review::{Override, ReviewCase, ReviewPage, ReviewState};
use valle_shared::records::receipt::RECEIPT_HEADER;
use valle_worker::http::RequestHead;
use valle_worker::memory::block_on;
use valle_worker::memory::officers::fake_signature;
use valle_worker::routes::export_chunk;

use support::{ok_json, receipt_key, token_of, Harness, TOKEN, VALID};

/// A valid application the model approves ([`VALID`] it refers to review).
const APPROVED: &str = r#"{"seniority_years":20,"home":"owner","term_months":24,"age":45,"marital":"married","records":"no","job":"fixed","expenses":50,"income":300,"assets":20000,"debt":0,"amount":500,"price":1500}"#;
/// A valid application the model declines.
const DECLINED: &str = r#"{"seniority_years":0,"home":"rent","term_months":60,"age":22,"marital":"single","records":"yes","job":"partime","expenses":90,"income":80,"assets":0,"debt":2000,"amount":2000,"price":2100}"#;

fn scored(harness: &Harness, id: &str, body: &str) -> String {
    let response = harness.score_body(id, body);
    let answer = ok_json(&response);
    answer["score"]["decision"]
        .as_str()
        .expect("a decision")
        .to_owned()
}

fn decide(harness: &Harness, token: &str, id: &str, action: &str, reason: &str) -> (u16, Value) {
    let body = json!({ "action": action, "reason": reason, "note": "" }).to_string();
    harness.as_account(token, "POST", &format!("/api/v1/reviews/{id}"), &body)
}

fn approve(harness: &Harness, token: &str, id: &str, action: &str) -> (u16, Value) {
    let body = json!({ "action": action }).to_string();
    harness.as_account(
        token,
        "POST",
        &format!("/api/v1/reviews/{id}/approval"),
        &body,
    )
}

#[test]
fn every_route_for_every_role() {
    let harness = Harness::new(RateLimit::default());
    scored(&harness, "m-1", VALID);
    use Role::*;
    let all: &[Role] = &[Officer, Supervisor, Auditor, Admin];
    let every: &[Role] = &[Officer, Supervisor, Auditor, Admin, Integrator, Dpo];
    let outcomes_body =
        r#"{"outcomes":[{"request_id":"m-1","status":"open","observed_at":"2030-01-01"}]}"#;
    let decide_body = r#"{"action":"request_info","reason":"missing_documents"}"#;
    let routes: &[(&str, &str, &str, &[Role])] = &[
        ("GET", "/api/v1/me", "", every),
        ("GET", "/api/v1/decisions", "", all),
        ("GET", "/api/v1/decisions/m-1", "", all),
        ("GET", "/api/v1/kpis", "", all),
        ("GET", "/api/v1/kpis/windows", "", all),
        ("GET", "/api/v1/drift", "", all),
        ("GET", "/api/v1/reviews", "", all),
        ("GET", "/api/v1/reviews/m-1", "", all),
        (
            "POST",
            "/api/v1/reviews/m-1",
            decide_body,
            &[Officer, Supervisor, Admin],
        ),
        (
            "POST",
            "/api/v1/reviews/m-1/approval",
            r#"{"action":"confirm"}"#,
            &[Supervisor, Admin],
        ),
        ("GET", "/api/v1/dead-letters", "", &[Supervisor, Admin]),
        (
            "POST",
            "/api/v1/dead-letters/1/replay",
            "",
            &[Supervisor, Admin],
        ),
        ("GET", "/metrics", "", &[Supervisor, Admin]),
        ("GET", "/api/v1/audit", "", &[Auditor, Admin]),
        ("GET", "/api/v1/audit/verify", "", &[Auditor, Admin]),
        (
            "GET",
            "/api/v1/exports/decisions.csv",
            "",
            &[Supervisor, Auditor, Admin],
        ),
        (
            "GET",
            "/api/v1/reports/overrides",
            "",
            &[Supervisor, Auditor, Admin],
        ),
        (
            "POST",
            "/api/v1/outcomes",
            outcomes_body,
            &[Officer, Supervisor, Admin, Integrator],
        ),
        ("GET", "/api/v1/performance", "", all),
        ("GET", "/api/v1/fairness", "", all),
        ("GET", "/api/v1/challenger", "", all),
        (
            "POST",
            "/api/v1/simulate",
            r#"{"last":10}"#,
            &[Supervisor, Admin],
        ),
        ("GET", "/api/v1/applicants/SOC-1/export", "", &[Dpo]),
        ("POST", "/api/v1/applicants/SOC-1/erasure", "", &[Dpo]),
        ("POST", "/api/v1/retention/run", "{}", &[Dpo]),
    ];
    for (method, target, body, allowed) in routes {
        let head = RequestHead::new(method, target).with_header("content-type", "application/json");
        let anonymous = harness.send(head, body);
        assert_eq!(
            anonymous.status, 401,
            "{method} {target} without credentials"
        );
        let (status, _) = harness.as_account("not-a-token", method, target, body);
        assert_eq!(status, 401, "{method} {target} with an unknown token");
        for role in every {
            let (status, answer) = harness.as_account(token_of(*role), method, target, body);
            if allowed.contains(role) {
                assert!(
                    ![401, 403].contains(&status),
                    "{method} {target} as {role:?}: {status} {answer}"
                );
            } else {
                assert_eq!(status, 403, "{method} {target} as {role:?}: {answer}");
                assert_eq!(answer["error"]["code"], ErrorCode::Forbidden.as_str());
            }
        }
    }
    let (status, me) = harness.as_account(token_of(Auditor), "GET", "/api/v1/me", "");
    assert_eq!(status, 200);
    assert_eq!(me["account"]["email"], "olga@coop.example");
    assert_eq!(me["sign_in"], "token");
    assert_eq!(
        me["permissions"],
        json!(["account", "read", "audit", "export", "report"])
    );
}

#[test]
fn a_revoked_account_is_refused_and_nothing_is_written() {
    let harness = Harness::new(RateLimit::default());
    scored(&harness, "v-1", VALID);
    harness.backend.d1.revoke_account("ana@coop.example");
    let (status, answer) = decide(
        &harness,
        "tok-officer",
        "v-1",
        "decline",
        "high_debt_burden",
    );
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some(ErrorCode::Revoked.as_str()))
    );
    assert!(harness.backend.d1.reviews.borrow().is_empty());
    assert!(harness.backend.d1.audit.borrow().is_empty());
}

/// A token the fake RS256 check accepts: header, claims, and the fake signature.
fn jwt(key: &Jwk, kid: &str, claims: Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({ "alg": "RS256", "kid": kid }).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{header}.{payload}");
    let signature = URL_SAFE_NO_PAD.encode(fake_signature(key, signed.as_bytes()));
    format!("{signed}.{signature}")
}

#[test]
fn access_jwts_sign_in_by_email_and_bad_ones_are_refused() {
    let harness = Harness::new(RateLimit::default());
    let key = Jwk {
        kid: "k1".into(),
        kty: "RSA".into(),
        n: "modulus".into(),
        e: "AQAB".into(),
        alg: None,
    };
    let other = Jwk {
        n: "another".into(),
        ..key.clone()
    };
    *harness.backend.jwks.borrow_mut() = Jwks {
        keys: vec![key.clone()],
    };
    let now_s = harness.clock.0.get() as i64 / 1_000;
    let claims = |aud: &str, exp: i64, email: &str| json!({ "iss": harness.access.issuer, "aud": [aud], "exp": exp, "email": email });
    let send = |token: &str| {
        let head =
            RequestHead::new("GET", "/api/v1/me").with_header("cf-access-jwt-assertion", token);
        let response = harness.send(head, "");
        let body: Value = serde_json::from_slice(&response.body).expect("json");
        (response.status, body)
    };
    let (status, me) = send(&jwt(
        &key,
        "k1",
        claims("valle-aud", now_s + 60, "Sara@Coop.Example"),
    ));
    assert_eq!(status, 200, "{me}");
    assert_eq!(
        (me["account"]["role"].as_str(), me["sign_in"].as_str()),
        (Some("supervisor"), Some("access"))
    );
    let check = |token: String, code: ErrorCode| {
        let (status, body) = send(&token);
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (401, Some(code.as_str())),
            "{body}"
        );
    };
    // Each row: the signing key, the audience, seconds to expiry, the email, the refusal.
    let (sara, nadie) = ("sara@coop.example", "nadie@coop.example");
    let refusals = [
        (&other, "valle-aud", 60, sara, ErrorCode::AccessInvalid),
        (&key, "another-app", 60, sara, ErrorCode::AccessInvalid),
        (&key, "valle-aud", -120, sara, ErrorCode::AccessExpired),
        (&key, "valle-aud", 60, nadie, ErrorCode::UnknownAccount),
    ];
    for (signer, aud, expires_in, email, code) in refusals {
        let token = jwt(signer, "k1", claims(aud, now_s + expires_in, email));
        check(token, code);
    }
    let fetches = harness.backend.jwks_fetches.get();
    let unknown_key = claims("valle-aud", now_s + 60, sara);
    check(jwt(&key, "k9", unknown_key), ErrorCode::AccessInvalid);
    assert_eq!(
        harness.backend.jwks_fetches.get(),
        fetches + 1,
        "an unknown key is looked up again"
    );
    let tampered = jwt(
        &key,
        "k1",
        claims("valle-aud", now_s + 60, "olga@coop.example"),
    );
    let mut parts: Vec<&str> = tampered.split('.').collect();
    let forged =
        URL_SAFE_NO_PAD.encode(claims("valle-aud", now_s + 60, "admin@coop.example").to_string());
    parts[1] = &forged;
    check(parts.join("."), ErrorCode::AccessInvalid);
    // A bearer token wins over the JWT.
    let head = RequestHead::new("GET", "/api/v1/me")
        .with_header("cf-access-jwt-assertion", "garbage")
        .with_header("authorization", &format!("Bearer {TOKEN}"));
    assert_eq!(harness.send(head, "").status, 200);
}

#[test]
fn referred_applications_wait_in_the_queue_until_an_officer_decides() {
    let harness = Harness::new(RateLimit::default());
    let mut referred = Vec::new();
    for i in 0..12 {
        let id = format!("q-{i}");
        let body = if i % 2 == 0 { VALID } else { DECLINED };
        let decision = scored(&harness, &id, body);
        if decision == "review" {
            referred.push(id);
        }
    }
    let (_, page) = harness.officer("/api/v1/reviews?limit=200");
    let page: ReviewPage = serde_json::from_value(page).expect("a page");
    let queued: Vec<&str> = page
        .cases
        .iter()
        .map(|case| case.decision.request_id.as_str())
        .collect();
    assert_eq!(
        queued,
        referred.iter().map(String::as_str).collect::<Vec<_>>()
    );
    // Asking the applicant for information keeps it in the queue; declining takes it out.
    let Some(first) = referred.first() else {
        return;
    };
    assert_eq!(
        decide(
            &harness,
            "tok-officer",
            first,
            "request_info",
            "missing_documents"
        )
        .0,
        200
    );
    let (_, page) = harness.officer("/api/v1/reviews?state=info_requested");
    assert_eq!(page["cases"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        decide(
            &harness,
            "tok-officer",
            first,
            "decline",
            "missing_documents"
        )
        .0,
        200
    );
    let (_, page) = harness.officer("/api/v1/reviews?limit=200");
    assert_eq!(
        page["cases"].as_array().map(Vec::len),
        Some(referred.len() - 1)
    );
    let (status, bad) = harness.officer("/api/v1/reviews?state=approved&limit=0&x=1");
    assert_eq!(status, 400);
    let fields: Vec<&str> = bad["error"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|f| f["field"].as_str())
        .collect();
    assert_eq!(fields, ["state", "limit", "x"]);
}

#[test]
fn overrides_are_classified_and_low_side_approvals_need_four_eyes() {
    let harness = Harness::new(RateLimit::default());
    assert_eq!(scored(&harness, "lo-1", DECLINED), "decline");
    assert_eq!(scored(&harness, "hi-1", APPROVED), "approve");
    // High side: the model approves, the officer declines; final at once.
    let (status, case) = decide(
        &harness,
        "tok-officer",
        "hi-1",
        "decline",
        "adverse_payment_history",
    );
    let case: ReviewCase = serde_json::from_value(case).expect("case");
    assert_eq!(status, 200);
    assert_eq!(
        (case.review.override_kind, case.review.state),
        (Override::HighSide, ReviewState::Declined)
    );
    // A referral is no override either way.
    assert_eq!(scored(&harness, "mid-1", VALID), "review");
    let (_, case) = decide(
        &harness,
        "tok-officer-2",
        "mid-1",
        "decline",
        "insufficient_income",
    );
    assert_eq!(case["review"]["override_kind"], "none");
    // Low side: the model declines, the officer approves; it waits for another person.
    let (status, case) = decide(
        &harness,
        "tok-officer",
        "lo-1",
        "approve",
        "policy_exception",
    );
    let case: ReviewCase = serde_json::from_value(case).expect("case");
    assert_eq!(status, 200);
    assert_eq!(
        (case.review.override_kind, case.review.state),
        (Override::LowSide, ReviewState::AwaitingApproval)
    );
    assert_eq!(case.review.final_decision(), None);
    let (_, waiting) = harness.officer("/api/v1/reviews?state=awaiting_approval");
    assert_eq!(waiting["cases"][0]["decision"]["request_id"], "lo-1");
    // The officer role cannot confirm; a supervisor who decided it could not either.
    assert_eq!(approve(&harness, "tok-officer", "lo-1", "confirm").0, 403);
    let audit_rows = harness.backend.d1.audit.borrow().len();
    let (status, confirmed) = approve(&harness, "tok-supervisor", "lo-1", "confirm");
    assert_eq!(status, 200, "{confirmed}");
    assert_eq!(confirmed["review"]["state"], "approved");
    assert_eq!(confirmed["review"]["approved_by"], "sara@coop.example");
    assert_eq!(harness.backend.d1.audit.borrow().len(), audit_rows + 1);

    assert_eq!(scored(&harness, "lo-2", DECLINED), "decline");
    assert_eq!(
        decide(
            &harness,
            "tok-supervisor",
            "lo-2",
            "approve",
            "sufficient_collateral"
        )
        .0,
        200
    );
    let (status, same) = approve(&harness, "tok-supervisor", "lo-2", "confirm");
    assert_eq!(
        (status, same["error"]["code"].as_str()),
        (403, Some(ErrorCode::FourEyes.as_str()))
    );
    let (status, back) = approve(&harness, TOKEN, "lo-2", "reject");
    assert_eq!(
        (status, back["review"]["state"].as_str()),
        (200, Some("pending"))
    );

    let (status, report) =
        harness.as_account("tok-supervisor", "GET", "/api/v1/reports/overrides", "");
    assert_eq!(status, 200, "{report}");
    let low_side: u64 = report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter_map(|r| r["low_side"].as_u64())
        .sum();
    assert_eq!(low_side, 2);
    assert_eq!(
        (
            report["decided"].as_u64(),
            report["high_side"].as_u64(),
            report["low_side"].as_u64()
        ),
        (Some(4), Some(1), Some(2))
    );
}

#[test]
fn a_repeat_changes_nothing_and_a_different_late_decision_conflicts() {
    let harness = Harness::new(RateLimit::default());
    scored(&harness, "r-1", VALID);
    let first = decide(
        &harness,
        "tok-officer",
        "r-1",
        "decline",
        "high_debt_burden",
    );
    assert_eq!(first.0, 200);
    let rows = harness.backend.d1.audit.borrow().len();
    let again = decide(
        &harness,
        "tok-officer",
        "r-1",
        "decline",
        "high_debt_burden",
    );
    assert_eq!(again, first, "the same answer");
    assert_eq!(
        harness.backend.d1.audit.borrow().len(),
        rows,
        "nothing written"
    );
    let (status, conflict) = decide(
        &harness,
        "tok-officer-2",
        "r-1",
        "approve",
        "verified_income",
    );
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(conflict["error"]["code"], ErrorCode::Conflict.as_str());
    assert_eq!(conflict["current"]["decided_by"], "ana@coop.example");
    assert_eq!(conflict["current"]["state"], "declined");
    assert_eq!(harness.backend.d1.audit.borrow().len(), rows);
    let (status, invalid) = decide(&harness, "tok-officer", "r-1", "maybe", "verified_income");
    assert_eq!(
        (status, invalid["error"]["fields"][0]["code"].as_str()),
        (400, Some(ErrorCode::Enum.as_str()))
    );
    assert_eq!(
        decide(&harness, "tok-officer", "missing", "decline", "other").0,
        400
    );
    assert_eq!(
        decide(
            &harness,
            "tok-officer",
            "missing",
            "decline",
            "high_debt_burden"
        )
        .0,
        404
    );
}

#[test]
fn the_audit_trail_verifies_and_names_an_edited_row() {
    let harness = Harness::new(RateLimit::default());
    for i in 0..5 {
        let id = format!("a-{i}");
        scored(&harness, &id, VALID);
        assert_eq!(
            decide(
                &harness,
                "tok-officer",
                &id,
                "request_info",
                "missing_documents"
            )
            .0,
            200
        );
    }
    let verify = || {
        let (status, report) = harness.as_account("tok-auditor", "GET", "/api/v1/audit/verify", "");
        assert_eq!(status, 200);
        serde_json::from_value::<VerifyReport>(report).expect("a report")
    };
    assert_eq!(
        verify(),
        VerifyReport {
            ok: true,
            rows_checked: 5,
            first_broken: None
        }
    );
    let (_, page) = harness.as_account("tok-auditor", "GET", "/api/v1/audit?limit=2", "");
    assert_eq!(page["entries"][0]["seq"], 5);
    assert_eq!(
        page["entries"][0]["action"],
        AuditAction::ReviewDecided.as_str()
    );
    assert_eq!(page["entries"][0]["actor"], "ana@coop.example");
    assert_eq!(page["next_cursor"], 4);
    harness.backend.d1.audit.borrow_mut()[2].event.detail = r#"{"state":"approved"}"#.into();
    let report = verify();
    assert!(!report.ok);
    assert_eq!(report.rows_checked, 2);
    assert_eq!(
        report.first_broken.map(|link| (link.seq, link.problem)),
        Some((3, LinkProblem::Hash))
    );
}

#[test]
fn the_export_streams_pages_of_rows_with_the_final_decisions() {
    let harness = Harness::new(RateLimit::default());
    for i in 0..1_203 {
        harness
            .backend
            .d1
            .store(
                valle_worker::store::Outcomes {
                    decisions: &[support::record(&format!("e-{i:04}"))],
                    ..Default::default()
                },
                0,
            )
            .expect("stored");
    }
    scored(&harness, "e-late", VALID);
    assert_eq!(
        decide(
            &harness,
            "tok-officer",
            "e-late",
            "decline",
            "high_debt_burden"
        )
        .0,
        200
    );
    let head = RequestHead::new("GET", "/api/v1/exports/decisions.csv")
        .with_header("authorization", "Bearer tok-auditor");
    let response = harness.send(head, "");
    assert_eq!(response.status, 200);
    assert_eq!(
        response.header("content-type"),
        Some("text/csv; charset=utf-8")
    );
    let header = String::from_utf8(response.body.clone()).expect("utf-8");
    assert!(header.starts_with("request_id,received_at,"), "{header}");
    assert_eq!(header.lines().count(), 1);
    let stream = response.stream.expect("rows follow");
    let (mut after, mut pages, mut rows) = (0, 0, Vec::new());
    while let Some((chunk, last)) =
        block_on(export_chunk(&harness.backend, &stream.query, after)).expect("a page")
    {
        pages += 1;
        after = last;
        rows.extend(
            String::from_utf8(chunk)
                .expect("utf-8")
                .lines()
                .map(str::to_owned),
        );
    }
    assert_eq!((pages, rows.len()), (3, 1_204));
    let late = rows.last().expect("the last row");
    assert!(late.starts_with("e-late,"), "{late}");
    assert!(
        late.contains(",review,declined,decline,none,high_debt_burden,,ana@coop.example,"),
        "{late}"
    );
    let audit = harness.backend.d1.audit.borrow();
    let exported = audit.last().expect("the export is audited");
    assert_eq!(
        (exported.event.action, exported.event.actor.as_str()),
        (AuditAction::DecisionsExported, "olga@coop.example")
    );
    let (status, bad) = harness.as_account(
        "tok-auditor",
        "GET",
        "/api/v1/exports/decisions.csv?limit=5&from=ayer",
        "",
    );
    assert_eq!(status, 400, "{bad}");
}

#[test]
fn an_applicant_asks_for_a_human_review_once() {
    let harness = Harness::new(RateLimit::default());
    assert_eq!(scored(&harness, "h-1", DECLINED), "decline");
    let ask = || {
        let head = RequestHead::new("POST", "/api/v1/decisions/h-1/human-review")
            .with_header("cf-connecting-ip", "203.0.113.7")
            .with_header(RECEIPT_HEADER, &receipt_key().receipt("h-1"));
        let response = harness.send(head, "");
        (
            response.status,
            serde_json::from_slice::<Value>(&response.body).expect("json"),
        )
    };
    let (status, first) = ask();
    assert_eq!(status, 200, "{first}");
    assert!(first.get("review").is_none() && first["message"]["es"].is_string());
    assert_eq!(ask(), (status, first));
    let (_, page) = harness.officer("/api/v1/reviews");
    assert_eq!(
        page["cases"][0]["review"]["human_review_requested_at_ms"],
        harness.clock.0.get() as i64
    );
    assert!(
        harness.backend.d1.audit.borrow().is_empty(),
        "the applicant's request stays out of the officers' audit chain"
    );
    let head = RequestHead::new("POST", "/api/v1/decisions/nope/human-review");
    assert_eq!(harness.send(head, "").status, 404);
}
