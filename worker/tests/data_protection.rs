//! Erasure, subject access and the retention job over the in-memory backend: blocked data
//! leaves every ordinary read at once, destroyed data is gone, and every aggregate stays
//! what it was.

mod support;

use serde_json::{json, Value};
use valle_shared::contract::ops::RateLimit;
use valle_shared::lending::officers::Role;
use valle_shared::privacy::retention::{RetentionPolicy, DAY_MS, MONTH_MS};
use valle_shared::records::receipt::RECEIPT_HEADER;
use valle_worker::http::RequestHead;

use support::{ok_json, token_of, Harness, TOKEN};

fn policy() -> &'static RetentionPolicy {
    RetentionPolicy::committed().expect("models/retention.json parses")
}

/// An application of `applicant` at `branch`, its numbers moved by `n` so no two are alike.
fn application(applicant: &str, branch: &str, n: u32) -> String {
    let home = ["rent", "owner", "parents"][n as usize % 3];
    let marital = ["single", "married", "widow", "divorced"][n as usize % 4];
    let records = if n.is_multiple_of(7) { "yes" } else { "no" };
    let job = ["fixed", "partime", "freelance"][n as usize % 3];
    json!({
        "seniority_years": 1 + n % 20, "home": home, "term_months": 12 + (n % 5) * 12,
        "age": 35 + n % 40, "marital": marital, "records": records, "job": job,
        "expenses": 40 + n % 60, "income": 90 + (n * 37) % 400, "assets": (n * 1013) % 9000,
        "debt": (n * 71) % 900, "amount": 300 + (n * 97) % 2500, "price": 2900 + n % 400,
        "applicant_id": applicant, "branch": branch,
    })
    .to_string()
}

/// Every aggregate the officers read, as it answers now.
fn aggregates(harness: &Harness) -> Vec<(String, Value)> {
    [
        "/api/v1/kpis",
        "/api/v1/kpis/windows",
        "/api/v1/drift",
        "/api/v1/performance",
        "/api/v1/fairness",
        "/api/v1/challenger",
    ]
    .into_iter()
    .map(|path| {
        let (status, mut body) = harness.officer(path);
        assert_eq!(status, 200, "{path}: {body}");
        // How the KPI cache answered is about the cache, not the figures.
        if let Some(answer) = body.as_object_mut() {
            answer.remove("cache");
        }
        (path.to_owned(), body)
    })
    .collect()
}

struct Scored {
    id: String,
    applicant: String,
    receipt: String,
}

/// 60 applications of 12 applicants over three branches, and outcomes for half of them.
fn scored_book(harness: &Harness) -> Vec<Scored> {
    let mut scored = Vec::new();
    for n in 0..60u32 {
        let applicant = format!("SOC-{}", 100 + n % 12);
        let branch = ["principal", "norte", "sur"][n as usize % 3];
        let id = format!("app-{n}");
        let answer = ok_json(&harness.score_body(&id, &application(&applicant, branch, n)));
        scored.push(Scored {
            id,
            applicant,
            receipt: answer["receipt"].as_str().expect("a receipt").to_owned(),
        });
    }
    let outcomes: Vec<Value> = scored
        .iter()
        .step_by(2)
        .enumerate()
        .map(|(i, s)| {
            let status = if i.is_multiple_of(3) { "bad" } else { "good" };
            let observed_at =
                valle_shared::contract::time::format_rfc3339_ms(harness.backend.now_ms.get());
            json!({ "request_id": s.id, "status": status, "observed_at": observed_at })
        })
        .collect();
    let (status, body) = harness.as_account(
        token_of(Role::Integrator),
        "POST",
        "/api/v1/outcomes",
        &json!({ "outcomes": outcomes }).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    scored
}

fn dpo(harness: &Harness, method: &str, path: &str, body: &str) -> (u16, Value) {
    harness.as_account(token_of(Role::Dpo), method, path, body)
}

fn run_job(harness: &Harness, now_ms: i64) -> Value {
    let (status, run) = dpo(
        harness,
        "POST",
        "/api/v1/retention/run",
        &json!({ "now_ms": now_ms }).to_string(),
    );
    assert_eq!(status, 200, "{run}");
    run
}

#[test]
fn erasure_blocks_at_once_destruction_removes_and_every_aggregate_holds() {
    let harness = Harness::new(RateLimit::default());
    let book = scored_book(&harness);
    let before = aggregates(&harness);
    let erased = ["SOC-100", "SOC-101", "SOC-102"];
    for applicant in erased {
        let (status, answer) = dpo(
            &harness,
            "POST",
            &format!("/api/v1/applicants/{applicant}/erasure"),
            "",
        );
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["blocked_decisions"], 5, "{applicant}");
        assert!(!answer["erasure_id"].as_str().unwrap_or_default().is_empty());
    }
    // A repeat blocks nothing more.
    let (_, again) = dpo(&harness, "POST", "/api/v1/applicants/SOC-100/erasure", "");
    assert_eq!(again["blocked_decisions"], 0);
    let erased_ids: Vec<&Scored> = book
        .iter()
        .filter(|s| erased.contains(&s.applicant.as_str()))
        .collect();
    // Gone from every ordinary read at once.
    for scored in &erased_ids {
        assert_eq!(
            harness
                .officer(&format!("/api/v1/decisions/{}", scored.id))
                .0,
            404
        );
        assert_eq!(
            harness.officer(&format!("/api/v1/reviews/{}", scored.id)).0,
            404
        );
    }
    let (_, list) = harness.officer("/api/v1/decisions?limit=100");
    let listed = list["decisions"].as_array().expect("decisions");
    assert_eq!(listed.len(), book.len() - erased_ids.len());
    let text = list.to_string();
    for applicant in erased {
        assert!(!text.contains(applicant), "{applicant} is still listed");
    }
    let (status, simulated) = harness.as_account(
        TOKEN,
        "POST",
        "/api/v1/simulate",
        r#"{"model":"champion","policy":"committed"}"#,
    );
    assert_eq!(status, 200, "{simulated}");
    assert_eq!(
        simulated["rows"].as_u64(),
        Some((book.len() - erased_ids.len()) as u64),
        "{simulated}"
    );
    assert_eq!(
        aggregates(&harness),
        before,
        "blocking changes no aggregate"
    );
    // The dpo still sees blocked data, marked, in the audited export; nobody else can.
    let (status, export) = dpo(&harness, "GET", "/api/v1/applicants/SOC-100/export", "");
    assert_eq!(status, 200, "{export}");
    let decisions = export["decisions"].as_array().expect("decisions");
    assert_eq!(decisions.len(), 5);
    assert!(decisions
        .iter()
        .all(|d| d["blocked"]["blocked_by"] == "dpo"));
    assert_eq!(
        harness
            .as_account(TOKEN, "GET", "/api/v1/applicants/SOC-100/export", "")
            .0,
        403,
        "an admin is not the dpo"
    );
    assert_eq!(
        dpo(&harness, "GET", "/api/v1/decisions", "").0,
        403,
        "nor the dpo an officer"
    );
    // Destruction: only once the blocking period has passed.
    let now = harness.backend.now_ms.get();
    let early = run_job(&harness, now + DAY_MS);
    assert_eq!(early["destroyed"], 0, "{early}");
    let later = now + i64::from(policy().blocked_days) * DAY_MS + DAY_MS;
    let run = run_job(&harness, later);
    assert_eq!(run["destroyed"], 15, "{run}");
    assert_eq!(run["complete"], true);
    assert_eq!(run_job(&harness, later)["destroyed"], 0, "idempotent");
    assert_eq!(
        aggregates(&harness),
        before,
        "destruction changes no aggregate"
    );
    for applicant in erased {
        let (status, export) = dpo(
            &harness,
            "GET",
            &format!("/api/v1/applicants/{applicant}/export"),
            "",
        );
        assert_eq!(status, 200);
        assert_eq!(
            export["decisions"],
            json!([]),
            "nothing is held about {applicant}"
        );
    }
    for scored in &erased_ids {
        let record = harness
            .backend
            .d1
            .decision(&scored.id)
            .expect("the record stays");
        assert_eq!(record.applicant_id, None);
        assert_eq!(record.application.income, 0.0);
        assert!(harness.backend.d1.residue(&scored.id).is_some());
    }
    let audit = serde_json::to_string(&*harness.backend.d1.audit.borrow()).expect("json");
    for applicant in erased {
        assert!(
            !audit.contains(applicant),
            "the audit trail names {applicant}"
        );
    }
    let (_, verified) = harness.as_account(TOKEN, "GET", "/api/v1/audit/verify", "");
    assert_eq!(verified["ok"], true, "{verified}");
    // The id of a destroyed decision stays taken and answers nothing of it.
    let reused = harness.score_body(&erased_ids[0].id, &application("SOC-100", "norte", 0));
    assert_eq!(reused.status, 422);
}

#[test]
fn an_applicant_erases_exports_and_contests_their_own_decision_only() {
    let harness = Harness::new(RateLimit::default());
    let book = scored_book(&harness);
    let mine = &book[0];
    let same_applicant = book
        .iter()
        .skip(1)
        .find(|s| s.applicant == mine.applicant)
        .expect("another decision of the applicant");
    let as_applicant = |method: &str, path: &str, receipt: &str, body: &str| {
        let mut head = RequestHead::new(method, path)
            .with_header(RECEIPT_HEADER, receipt)
            .with_header("cf-connecting-ip", "203.0.113.7");
        if method == "POST" {
            head = head.with_header("content-type", "application/json");
        }
        let response = harness.send(head, body);
        (
            response.status,
            serde_json::from_slice::<Value>(&response.body).unwrap_or(Value::Null),
        )
    };
    let (status, export) = as_applicant(
        "GET",
        &format!("/api/v1/decisions/{}/export", mine.id),
        &mine.receipt,
        "",
    );
    assert_eq!(status, 200, "{export}");
    assert_eq!(export["decisions"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        export["decisions"][0]["decision"]["request_id"],
        mine.id.as_str()
    );
    assert_eq!(export["audit"], json!([]));
    assert!(export["how_decided"]["es"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    let (status, contested) = as_applicant(
        "POST",
        &format!("/api/v1/decisions/{}/contest", mine.id),
        &mine.receipt,
        r#"{"comment":"Mis ingresos subieron en marzo."}"#,
    );
    assert_eq!(status, 200, "{contested}");
    let (_, case) = harness.officer(&format!("/api/v1/reviews/{}", mine.id));
    assert_eq!(
        case["review"]["contest_comment"],
        "Mis ingresos subieron en marzo."
    );
    assert_eq!(case["review"]["state"], "pending");
    let (status, blank) = as_applicant(
        "POST",
        &format!("/api/v1/decisions/{}/contest", mine.id),
        &mine.receipt,
        r#"{"comment":"  "}"#,
    );
    assert_eq!(status, 400, "{blank}");
    assert_eq!(blank["error"]["fields"][0]["field"], "comment");
    let (status, erased) = as_applicant(
        "POST",
        &format!("/api/v1/decisions/{}/erasure", mine.id),
        &mine.receipt,
        "",
    );
    assert_eq!(status, 200, "{erased}");
    assert_eq!(
        erased["blocked_decisions"], 1,
        "the receipt reaches its own decision only"
    );
    assert_eq!(
        harness.officer(&format!("/api/v1/decisions/{}", mine.id)).0,
        404
    );
    assert_eq!(
        harness
            .officer(&format!("/api/v1/decisions/{}", same_applicant.id))
            .0,
        200
    );
    let (status, export) = as_applicant(
        "GET",
        &format!("/api/v1/decisions/{}/export", mine.id),
        &mine.receipt,
        "",
    );
    assert_eq!(status, 200);
    assert_eq!(export["decisions"][0]["blocked"]["blocked_by"], "applicant");
    // Erasing it also takes it out of the queue the contest put it in.
    let (_, queue) = harness.officer("/api/v1/reviews");
    assert!(!queue.to_string().contains(&mine.id));
}

#[test]
fn the_schedule_blocks_declines_first_and_loans_after_they_mature() {
    let harness = Harness::new(RateLimit::default());
    let book = scored_book(&harness);
    let now = harness.backend.now_ms.get();
    let decision_of = |id: &str| {
        harness
            .backend
            .d1
            .decision(id)
            .expect("stored")
            .score
            .decision
    };
    let declines = book
        .iter()
        .filter(|s| decision_of(&s.id) == valle_shared::decision::model::Decision::Decline)
        .count() as u64;
    assert!(
        declines > 0 && declines < book.len() as u64,
        "the book has both"
    );
    let policy = policy();
    let after_declines = now + i64::from(policy.readable_after_decline_days) * DAY_MS + 1;
    let run = run_job(&harness, after_declines);
    assert_eq!(run["blocked"].as_u64(), Some(declines), "{run}");
    assert_eq!(
        run_job(&harness, after_declines)["blocked"],
        0,
        "idempotent"
    );
    // The longest term is 60 months: after it and the period after maturity, all are.
    let after_loans =
        now + 60 * MONTH_MS + i64::from(policy.readable_after_maturity_days) * DAY_MS + 1;
    let run = run_job(&harness, after_loans);
    assert_eq!(
        run["blocked"].as_u64(),
        Some(book.len() as u64 - declines),
        "{run}"
    );
    // By then the declines' blocking period has passed too.
    assert_eq!(run["destroyed"].as_u64(), Some(declines), "{run}");
    let (_, list) = harness.officer("/api/v1/decisions");
    assert_eq!(list["decisions"], json!([]));
    // Past every period, the records themselves go.
    let end = after_loans
        + i64::from(policy.record_days) * DAY_MS
        + i64::from(policy.blocked_days) * DAY_MS;
    let run = run_job(&harness, end);
    assert_eq!(
        run["destroyed"].as_u64(),
        Some(book.len() as u64 - declines),
        "{run}"
    );
    assert_eq!(run["deleted"].as_u64(), Some(book.len() as u64), "{run}");
    assert_eq!(harness.backend.d1.decision_count(), 0);
}

#[test]
fn the_test_clock_is_the_local_environments_only() {
    let harness = Harness::new(RateLimit::default());
    let (status, run) = dpo(&harness, "POST", "/api/v1/retention/run", "{}");
    assert_eq!(status, 200, "{run}");
    assert_eq!(run["now_ms"].as_i64(), Some(harness.backend.now_ms.get()));
    let (status, _) = harness.as_account(TOKEN, "POST", "/api/v1/retention/run", "{}");
    assert_eq!(status, 403, "only the dpo runs it");
}

#[test]
fn a_subject_access_export_holds_each_decision_review_and_outcome_and_no_one_else() {
    let harness = Harness::new(RateLimit::default());
    let mut ids = Vec::new();
    for n in 0..3u32 {
        let id = format!("sa-{n}");
        ok_json(&harness.score_body(&id, &application("SOC-500", "norte", n)));
        ids.push(id);
    }
    ok_json(&harness.score_body("other-1", &application("SOC-501", "norte", 9)));
    let (status, case) = harness.as_account(
        token_of(Role::Officer),
        "POST",
        "/api/v1/reviews/sa-1",
        r#"{"action":"request_info","reason":"missing_documents","note":"nómina de marzo"}"#,
    );
    assert_eq!(status, 200, "{case}");
    let observed_at = valle_shared::contract::time::format_rfc3339_ms(harness.backend.now_ms.get());
    let outcome = json!({ "outcomes": [{ "request_id": "sa-2", "status": "good", "observed_at": observed_at }] });
    let (status, _) = harness.as_account(
        token_of(Role::Integrator),
        "POST",
        "/api/v1/outcomes",
        &outcome.to_string(),
    );
    assert_eq!(status, 200);
    let (status, export) = dpo(&harness, "GET", "/api/v1/applicants/SOC-500/export", "");
    assert_eq!(status, 200, "{export}");
    let decisions = export["decisions"].as_array().expect("decisions");
    let exported: Vec<&str> = decisions
        .iter()
        .filter_map(|d| d["decision"]["request_id"].as_str())
        .collect();
    assert_eq!(exported, ["sa-0", "sa-1", "sa-2"]);
    for decision in decisions {
        assert_eq!(
            decision["decision"]["application"]["applicant_id"],
            "SOC-500"
        );
        assert!(decision["decision"]["score"]["model_version"]["sha256"].is_string());
        assert!(decision["blocked"].is_null());
        assert!(!decision["webhook_events"]
            .as_array()
            .expect("events")
            .is_empty());
    }
    assert_eq!(decisions[1]["review"]["reason"], "missing_documents");
    assert_eq!(decisions[1]["review"]["note"], "nómina de marzo");
    assert_eq!(decisions[2]["outcome"]["status"], "good");
    let audited: Vec<&str> = export["audit"]
        .as_array()
        .expect("audit")
        .iter()
        .filter_map(|row| row["subject"].as_str())
        .collect();
    assert_eq!(audited, ["sa-1"], "the review's audit row, and no other");
    assert!(export["retention"]["en"]
        .as_str()
        .is_some_and(|t| t.contains("blocked")));
    let text = export.to_string();
    assert!(
        !text.contains("SOC-501") && !text.contains("other-1"),
        "{text}"
    );
    // The export itself is audited, without the applicant's id.
    let audit = serde_json::to_string(&*harness.backend.d1.audit.borrow()).expect("json");
    assert!(audit.contains("subject_exported"));
    assert!(!audit.contains("SOC-500"));
}

/// Every key of a JSON value, nested ones included.
fn keys(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::Object(object) => {
            for (key, inner) in object {
                found.push(key.clone());
                keys(inner, found);
            }
        }
        Value::Array(items) => items.iter().for_each(|item| keys(item, found)),
        _ => {}
    }
}

#[test]
fn no_audit_row_holds_an_application_field() {
    let harness = Harness::new(RateLimit::default());
    let book = scored_book(&harness);
    // Every kind of officer write on an applicant's decisions, and the dpo's requests.
    for (n, scored) in book.iter().take(6).enumerate() {
        let action = ["approve", "decline", "request_info"][n % 3];
        let body = json!({ "action": action, "reason": "policy_exception", "note": "" });
        harness.as_account(
            token_of(Role::Officer),
            "POST",
            &format!("/api/v1/reviews/{}", scored.id),
            &body.to_string(),
        );
    }
    let (status, _) = harness.as_account(TOKEN, "GET", "/api/v1/exports/decisions.csv", "");
    assert_eq!(status, 200);
    dpo(&harness, "GET", "/api/v1/applicants/SOC-103/export", "");
    dpo(&harness, "POST", "/api/v1/applicants/SOC-103/erasure", "");
    let audit = harness.backend.d1.audit.borrow();
    assert!(audit.len() >= 9, "the writes above are audited");
    let fields: Vec<&str> = valle_shared::intake::application::Field::ALL
        .iter()
        .map(|field| field.name())
        .collect();
    for entry in audit.iter() {
        let detail: Value = serde_json::from_str(&entry.event.detail).unwrap_or(Value::Null);
        let mut found = Vec::new();
        keys(&detail, &mut found);
        for key in &found {
            assert!(
                !fields.contains(&key.as_str()),
                "{key} in {}",
                entry.event.detail
            );
        }
        let row = serde_json::to_string(entry).expect("json");
        for scored in &book {
            assert!(
                !row.contains(&scored.applicant),
                "{} in {row}",
                scored.applicant
            );
        }
    }
}
