//! Erasure against `wrangler dev`: 2,000 applications of 400 applicants over several
//! branches, with outcomes; 100 applicants erased by the dpo, then the retention job run
//! with its clock past the blocking period. Every aggregate answers as before to the last
//! digit, the audit trail verifies, and a dump of every table of the server's D1 finds
//! none of the erased applicants' ids or values. Alone in its binary, which `cargo xtask
//! test` runs after every other server test: the dump reads the database file, the
//! aggregates must not move under other tests' writes, and blocked decisions leave the
//! reads that other tests recompute count windows from.

mod accounts;

use std::collections::BTreeMap;

use serde_json::{json, Value};
use valle_shared::monitoring::kpi::View;
use valle_shared::privacy::retention::{RetentionPolicy, DAY_MS};
use valle_tests::{decisions_where, now_ms, random_uuid, Client};

use accounts::{call, Who};

const APPLICANTS: usize = 400;
const PER_APPLICANT: usize = 5;
const ERASED: usize = 100;
const BATCH: usize = 200;

/// Application `n` of applicant `applicant`: every personal value is the applicant's own,
/// so a search for them finds only what is left of that applicant.
fn application(applicant: &str, branch: &str, n: usize) -> Value {
    let a = n / PER_APPLICANT;
    let home = ["rent", "owner", "parents", "other"][a % 4];
    let marital = ["single", "married", "widow", "divorced", "separated"][a % 5];
    let records = if a.is_multiple_of(6) { "yes" } else { "no" };
    let job = ["fixed", "partime", "freelance", "others"][a % 4];
    json!({
        "seniority_years": 1 + a % 19,
        "home": home,
        "term_months": 12 + (n % 5) * 12,
        "age": 35 + a % 40,
        "marital": marital,
        "records": records,
        "job": job,
        "expenses": 35 + (a % 50),
        // Cents make each applicant's income a value no one else has.
        "income": format!("{}.{:02}", 100 + a, 1 + n % PER_APPLICANT).parse::<f64>().unwrap_or(100.0),
        "assets": 1000 * (a % 9),
        "debt": 10 * (a % 30),
        "amount": 400 + 25 * (n % 40),
        "price": 1900 + 3 * (n % 97),
        "applicant_id": applicant,
        "branch": branch,
    })
}

struct Book {
    branches: Vec<String>,
    /// Applicant ids, in order; the first [`ERASED`] are erased.
    applicants: Vec<String>,
    /// Request id and applicant of every decision.
    decisions: Vec<(String, String)>,
    /// Each applicant's incomes, a value only they have.
    incomes: BTreeMap<String, Vec<String>>,
}

fn score_book(client: &Client) -> Book {
    let run = &random_uuid()[..8];
    let branches: Vec<String> = (0..4).map(|b| format!("er{run}-{b}")).collect();
    let applicants: Vec<String> = (0..APPLICANTS).map(|a| format!("ER{run}A{a:03}")).collect();
    let mut items = Vec::new();
    let mut incomes: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in 0..APPLICANTS * PER_APPLICANT {
        let applicant = &applicants[n / PER_APPLICANT];
        let branch = &branches[n % branches.len()];
        let item = application(applicant, branch, n);
        incomes
            .entry(applicant.clone())
            .or_default()
            .push(item["income"].to_string());
        items.push((applicant.clone(), item));
    }
    let mut decisions = Vec::new();
    for chunk in items.chunks(BATCH) {
        let id = random_uuid();
        let body =
            json!({ "applications": chunk.iter().map(|(_, item)| item).collect::<Vec<_>>() });
        let answer = client.send(
            "POST",
            "/api/v1/score/batch",
            &[("content-type", "application/json"), ("x-request-id", &id)],
            Some(body.to_string().as_bytes()),
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        let results = answer.json()["results"].clone();
        for (index, (applicant, _)) in chunk.iter().enumerate() {
            let result = &results[index];
            let request_id = result["request_id"].as_str().expect("stored").to_owned();
            decisions.push((request_id, applicant.clone()));
        }
    }
    let observed_at = valle_shared::contract::time::format_rfc3339_ms(now_ms());
    for chunk in decisions.chunks(1000) {
        let outcomes: Vec<Value> = chunk
            .iter()
            .enumerate()
            .map(|(i, (id, _))| {
                let status = if i.is_multiple_of(4) { "bad" } else { "good" };
                json!({ "request_id": id, "status": status, "observed_at": observed_at })
            })
            .collect();
        let answer = call(
            client,
            Some(Who::Integrator),
            "POST",
            "/api/v1/outcomes",
            Some(&json!({ "outcomes": outcomes }).to_string()),
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
    }
    Book {
        branches,
        applicants,
        decisions,
        incomes,
    }
}

/// Waits until the KPI object has counted every decision of the branches.
fn wait_until_counted(client: &Client, book: &Book) {
    valle_tests::eventually(120, "the KPI object to count the book", || {
        book.branches
            .iter()
            .all(|branch| {
                decisions_where(client, &format!("branch={branch}"))
                    .is_ok_and(|all| all.iter().all(|d| d.kpi_seq.is_some()))
            })
            .then_some(())
    });
}

/// Every aggregate the officers read about the book's branches, and the count windows
/// closed so far (by index). A KPI view's points are compared where they counted
/// something: its empty minutes move with the clock.
fn aggregates(client: &Client, book: &Book) -> Vec<(String, Value)> {
    let mut answers = Vec::new();
    for branch in &book.branches {
        for path in [
            format!("/api/v1/performance?branch={branch}"),
            format!("/api/v1/fairness?branch={branch}"),
            format!("/api/v1/challenger?branch={branch}"),
            format!("/api/v1/drift?branch={branch}"),
            format!(
                "/api/v1/kpis?window={}&branch={branch}",
                View::OneDay.as_str()
            ),
        ] {
            let answer = client.officer_get(&path);
            assert_eq!(answer.status, 200, "{path}: {}", answer.text());
            let mut body = answer.json();
            if path.contains("/kpis") {
                let points: Vec<Value> = body["view"]["series"]
                    .as_array()
                    .map(|series| {
                        series
                            .iter()
                            .filter(|point| point["decisions"].as_u64() > Some(0))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                body = json!({ "series": points, "summary": body["view"]["summary"] });
            }
            if let Some(drift) = body.as_object_mut().filter(|_| path.contains("/drift")) {
                // The report's span is the last 24 hours up to now, which moves.
                drift.remove("from_ms");
                drift.remove("to_ms");
            }
            answers.push((path, body));
        }
    }
    let windows = client.officer_get("/api/v1/kpis/windows?limit=1000").json();
    for window in windows["windows"].as_array().into_iter().flatten() {
        answers.push((format!("window {}", window["index"]), window.clone()));
    }
    answers
}

/// Whether every answer of `before` is in `after`, byte for byte (windows closed since are
/// new answers, not changed ones).
fn unchanged(before: &[(String, Value)], after: &[(String, Value)]) -> Result<(), String> {
    for (what, answer) in before {
        let Some((_, now)) = after.iter().find(|(other, _)| other == what) else {
            return Err(format!("{what} is gone"));
        };
        // The answers' text, so a float that moved in its last digit is a change.
        let (was, is) = (answer.to_string(), now.to_string());
        if was != is {
            return Err(format!("{what} changed:\n{was}\n{is}"));
        }
    }
    Ok(())
}

/// Every row of every table of the server's D1, as text.
fn dump_d1() -> String {
    let state =
        std::env::var("VALLE_D1_STATE").expect("VALLE_D1_STATE is set by `cargo xtask test`");
    let wrangler =
        std::env::var("VALLE_WRANGLER").expect("VALLE_WRANGLER is set by `cargo xtask test`");
    let execute = |sql: &str| -> Value {
        let output = std::process::Command::new(&wrangler)
            .args([
                "d1",
                "execute",
                "DB",
                "--local",
                "--json",
                "--persist-to",
                &state,
            ])
            .args(["--command", sql])
            .env("WRANGLER_SEND_METRICS", "false")
            .output()
            .expect("wrangler runs");
        assert!(
            output.status.success(),
            "wrangler d1 execute {sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("wrangler answers JSON")
    };
    let tables = execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%'");
    let names: Vec<String> = tables[0]["results"]
        .as_array()
        .expect("tables")
        .iter()
        .filter_map(|row| row["name"].as_str().map(str::to_owned))
        .collect();
    assert!(names.iter().any(|name| name == "decisions"), "{names:?}");
    let selects: Vec<String> = names
        .iter()
        .map(|name| format!("SELECT * FROM \"{name}\""))
        .collect();
    execute(&selects.join("; ")).to_string()
}

#[test]
fn erased_applicants_leave_every_table_and_every_aggregate_holds() {
    let client = Client::new();
    let book = score_book(&client);
    wait_until_counted(&client, &book);
    let before = aggregates(&client, &book);
    let erased: Vec<&String> = book.applicants.iter().take(ERASED).collect();
    for applicant in &erased {
        let answer = call(
            &client,
            Some(Who::Dpo),
            "POST",
            &format!("/api/v1/applicants/{applicant}/erasure"),
            None,
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.json()["blocked_decisions"], PER_APPLICANT as u64);
    }
    // Blocked: out of every ordinary read at once, for officers and admins alike.
    let (first_erased, _) = book
        .decisions
        .iter()
        .find(|(_, applicant)| applicant == erased[0])
        .expect("a decision of the first erased applicant");
    for who in [Who::Admin, Who::Officer, Who::Supervisor] {
        let answer = call(
            &client,
            Some(who),
            "GET",
            &format!("/api/v1/decisions/{first_erased}"),
            None,
        );
        assert_eq!(answer.status, 404, "{who:?}");
    }
    let export = call(
        &client,
        Some(Who::Admin),
        "GET",
        &format!("/api/v1/applicants/{}/export", erased[0]),
        None,
    );
    assert_eq!(export.status, 403, "an admin is not the dpo");
    let export = call(
        &client,
        Some(Who::Dpo),
        "GET",
        &format!("/api/v1/applicants/{}/export", erased[0]),
        None,
    );
    assert_eq!(export.status, 200, "{}", export.text());
    let held = export.json();
    assert_eq!(
        held["decisions"].as_array().map(Vec::len),
        Some(PER_APPLICANT)
    );
    assert!(held["decisions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|d| d["blocked"]["blocked_by"] == "dpo"));
    if let Err(change) = unchanged(&before, &aggregates(&client, &book)) {
        panic!("blocking changed an aggregate: {change}");
    }
    // Destroyed: the job's clock past the blocking period, one branch at a time so the
    // decisions of the tests beside it are not touched.
    let policy = RetentionPolicy::committed().expect("models/retention.json parses");
    let later = now_ms() + (i64::from(policy.blocked_days) + 1) * DAY_MS;
    let mut destroyed = 0;
    for branch in &book.branches {
        let answer = call(
            &client,
            Some(Who::Dpo),
            "POST",
            "/api/v1/retention/run",
            Some(&json!({ "now_ms": later, "branch": branch }).to_string()),
        );
        assert_eq!(answer.status, 200, "{}", answer.text());
        assert_eq!(answer.json()["complete"], true, "{}", answer.text());
        destroyed += answer.json()["destroyed"].as_u64().unwrap_or_default();
    }
    assert_eq!(destroyed, (ERASED * PER_APPLICANT) as u64);
    if let Err(change) = unchanged(&before, &aggregates(&client, &book)) {
        panic!("destruction changed an aggregate: {change}");
    }
    let verified = call(
        &client,
        Some(Who::Auditor),
        "GET",
        "/api/v1/audit/verify",
        None,
    );
    assert_eq!(verified.json()["ok"], true, "{}", verified.text());
    let export = call(
        &client,
        Some(Who::Dpo),
        "GET",
        &format!("/api/v1/applicants/{}/export", erased[0]),
        None,
    );
    assert_eq!(export.json()["decisions"], json!([]));
    let dump = dump_d1();
    let kept = &book.applicants[ERASED];
    assert!(
        dump.contains(kept.as_str()),
        "the dump holds the applicants who were not erased"
    );
    let kept_income = format!("\\\"income\\\":{}", book.incomes[kept][0]);
    assert!(
        dump.contains(&kept_income),
        "the search finds what is there: {kept_income}"
    );
    for applicant in &erased {
        assert!(
            !dump.contains(applicant.as_str()),
            "{applicant} is still in D1"
        );
        for income in &book.incomes[*applicant] {
            // Applications are JSON text inside the dump's JSON: `\"income\":117.03`.
            let field = format!("\\\"income\\\":{income}");
            assert!(
                !dump.contains(&field),
                "{applicant}'s income {income} is still in D1"
            );
        }
    }
}
