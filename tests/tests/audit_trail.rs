//! The audit trail against `wrangler dev`: a row edited directly in D1 (as an intruder with
//! access to the database file would) is named by `GET /api/v1/audit/verify`, and the
//! chain verifies again once the row is put back. Alone in its binary: `wrangler d1
//! execute` locks the database file while it writes, which would fail other tests' requests.

mod accounts;

use serde_json::json;
use valle_tests::Client;

use accounts::{audit_rows_about, call, decide, score, Who, REFERRED};

/// Runs one statement on the server's own D1 state, as an intruder with file access would.
fn edit_d1(sql: &str) {
    let state =
        std::env::var("VALLE_D1_STATE").expect("VALLE_D1_STATE is set by `cargo xtask test`");
    let wrangler =
        std::env::var("VALLE_WRANGLER").expect("VALLE_WRANGLER is set by `cargo xtask test`");
    // The server's own background work may hold the file for a moment: try a few times.
    for _ in 0..5 {
        let status = std::process::Command::new(&wrangler)
            .args([
                "d1",
                "execute",
                "DB",
                "--local",
                "--yes",
                "--persist-to",
                &state,
            ])
            .args(["--command", sql])
            .env("WRANGLER_SEND_METRICS", "false")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("wrangler runs");
        if status.success() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    panic!("wrangler d1 execute {sql} failed five times");
}

#[test]
fn an_edit_made_directly_in_d1_is_named_by_the_verification() {
    let client = Client::new();
    let (id, _) = score(&client, REFERRED);
    assert_eq!(
        decide(
            &client,
            Who::Officer,
            &id,
            "request_info",
            "missing_documents"
        )
        .status,
        200
    );
    let row = audit_rows_about(&client, &id)
        .into_iter()
        .next()
        .expect("the write's audit row");
    let seq = row["seq"].as_u64().expect("seq");
    let verify = || {
        call(
            &client,
            Some(Who::Auditor),
            "GET",
            "/api/v1/audit/verify",
            None,
        )
        .json()
    };
    let before = verify();
    assert_eq!(before["ok"], true, "{before}");
    assert!(before["rows_checked"].as_u64() >= Some(seq));

    let original = row["detail"].as_str().expect("detail").replace('\'', "''");
    edit_d1(&format!(
        "UPDATE audit_log SET detail = '{{\"state\":\"approved\"}}' WHERE seq = {seq}"
    ));
    let broken = verify();
    edit_d1(&format!(
        "UPDATE audit_log SET detail = '{original}' WHERE seq = {seq}"
    ));
    assert_eq!(broken["ok"], false, "{broken}");
    assert_eq!(
        broken["first_broken"],
        json!({ "seq": seq, "problem": "hash" })
    );
    assert_eq!(broken["rows_checked"].as_u64(), Some(seq - 1));
    assert_eq!(verify()["ok"], true, "restored");
}
