//! What the officers' HTTP tests share: the accounts `cargo xtask test` creates (their
//! tokens in `VALLE_TOKEN_*`), applications the model approves, refers and declines, and
//! calls made as one of them.
#![allow(dead_code)]

use serde_json::json;
use valle_tests::{officer_token, random_uuid, Answer, Client};

pub const APPROVED: &str = r#"{"seniority_years":20,"home":"owner","term_months":24,"age":45,"marital":"married","records":"no","job":"fixed","expenses":50,"income":300,"assets":20000,"debt":0,"amount":500,"price":1500}"#;
pub const REFERRED: &str = r#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846}"#;
pub const DECLINED: &str = r#"{"seniority_years":0,"home":"rent","term_months":60,"age":22,"marital":"single","records":"yes","job":"partime","expenses":90,"income":80,"assets":0,"debt":2000,"amount":2000,"price":2100}"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    Admin,
    Officer,
    Officer2,
    Supervisor,
    Auditor,
    Integrator,
    Dpo,
    Revoked,
}

pub fn token(who: Who) -> String {
    let variable = match who {
        Who::Admin => return officer_token(),
        Who::Officer => "VALLE_TOKEN_OFFICER",
        Who::Officer2 => "VALLE_TOKEN_OFFICER_2",
        Who::Supervisor => "VALLE_TOKEN_SUPERVISOR",
        Who::Auditor => "VALLE_TOKEN_AUDITOR",
        Who::Integrator => "VALLE_TOKEN_INTEGRATOR",
        Who::Dpo => "VALLE_TOKEN_DPO",
        Who::Revoked => "VALLE_TOKEN_REVOKED",
    };
    std::env::var(variable).unwrap_or_else(|_| {
        panic!("{variable} is set by `cargo xtask test`, which creates the account")
    })
}

pub fn call(
    client: &Client,
    who: Option<Who>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Answer {
    let auth = who.map(|who| format!("Bearer {}", token(who)));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("authorization", auth));
    }
    client.send(method, path, &headers, body.map(str::as_bytes))
}

/// Scores `application` under a fresh id; the id and the model's decision.
pub fn score(client: &Client, application: &str) -> (String, String) {
    let (id, decision, _) = score_with_receipt(client, application);
    (id, decision)
}

/// Scores `application` under a fresh id; the id, the model's decision and the
/// applicant's receipt.
#[allow(dead_code)]
pub fn score_with_receipt(client: &Client, application: &str) -> (String, String, String) {
    let id = random_uuid();
    let answer = client.send(
        "POST",
        "/api/v1/score",
        &[("content-type", "application/json"), ("x-request-id", &id)],
        Some(application.as_bytes()),
    );
    assert_eq!(answer.status, 200, "{}", answer.text());
    let decision = answer.json()["score"]["decision"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let receipt = answer.json()["receipt"]
        .as_str()
        .expect("the applicant's receipt")
        .to_owned();
    (id, decision, receipt)
}

pub fn decide(client: &Client, who: Who, id: &str, action: &str, reason: &str) -> Answer {
    let body = json!({ "action": action, "reason": reason, "note": "revisado" }).to_string();
    call(
        client,
        Some(who),
        "POST",
        &format!("/api/v1/reviews/{id}"),
        Some(&body),
    )
}

pub fn confirm(client: &Client, who: Who, id: &str, action: &str) -> Answer {
    let body = json!({ "action": action }).to_string();
    call(
        client,
        Some(who),
        "POST",
        &format!("/api/v1/reviews/{id}/approval"),
        Some(&body),
    )
}

pub fn code(answer: &Answer) -> Option<String> {
    answer.json()["error"]["code"].as_str().map(str::to_owned)
}

/// The case of decision `id` as `who` reads it: the decision and its review.
pub fn case(client: &Client, who: Who, id: &str) -> serde_json::Value {
    call(
        client,
        Some(who),
        "GET",
        &format!("/api/v1/reviews/{id}"),
        None,
    )
    .json()
}

/// The audit rows about `subject` among the newest 500, newest first.
pub fn audit_rows_about(client: &Client, subject: &str) -> Vec<serde_json::Value> {
    let page = call(
        client,
        Some(Who::Auditor),
        "GET",
        "/api/v1/audit?limit=500",
        None,
    );
    assert_eq!(page.status, 200, "{}", page.text());
    page.json()["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|entry| entry["subject"] == subject)
        .cloned()
        .collect()
}
