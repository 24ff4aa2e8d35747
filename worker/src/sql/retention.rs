//! Blocking, destruction and subject access over `decisions` and the tables that carry a
//! decision's personal data (reviews' free text, webhook and event dead letters, the event
//! inbox). Every write is idempotent: it touches only rows not yet in the state it sets.

use serde::Deserialize;
use valle_shared::decision::model::Decision;
use valle_shared::intake::application::Application;
use valle_shared::lending::review::ReviewState;
use valle_shared::privacy::retention::{BlockedBy, DueDecision, Residue};
use valle_shared::privacy::subject_access::Blocked;

use super::decisions::DESTROYED_FINGERPRINT;
use super::{json, json_strings, JsonText, SqlValue, Statement};
use crate::retention::{Blocking, Destroyable, DueSettled, Run, Subject};

/// The decisions of a subject, as a condition over `decisions d` with its parameter at ?1.
/// Destroyed decisions have no applicant id any more, so none is ever found again.
fn of_subject(subject: &Subject) -> (&'static str, SqlValue) {
    match subject {
        Subject::Applicant(id) => ("d.applicant_id = ?1", id.as_str().into()),
        Subject::Decision(id) => (
            "d.request_id = ?1 AND d.destroyed_at IS NULL",
            id.as_str().into(),
        ),
    }
}

/// Drops the webhook dead letters that carry any of the decisions the subquery names:
/// their bodies hold the decision as it was answered, application included.
fn forget_webhook_letters(decisions: &str) -> String {
    format!("DELETE FROM webhook_dead_letters WHERE body ->> '$.data.request_id' IN ({decisions})")
}

/// Blocks a subject's decisions not blocked yet (answering their ids), drops the webhook
/// dead letters that carry them, and answers where the subject's decisions now stand
/// ([`HeldRow`]), in one batch.
pub fn block(subject: &Subject, blocking: Blocking) -> Vec<Statement> {
    let (condition, value) = of_subject(subject);
    let params = vec![
        value,
        blocking.at_ms.into(),
        blocking.by.as_str().into(),
        blocking.destroy_after_ms.into(),
    ];
    vec![
        Statement::new(
            format!(
                "UPDATE decisions AS d SET blocked_at = ?2, blocked_by = ?3, destroy_after = ?4 \
                 WHERE {condition} AND d.blocked_at IS NULL RETURNING request_id"
            ),
            params.clone(),
        ),
        Statement::new(
            forget_webhook_letters(&format!(
                "SELECT d.request_id FROM decisions AS d WHERE {condition}"
            )),
            vec![params[0].clone()],
        ),
        Statement::new(
            format!(
                "SELECT COUNT(*) AS held, MIN(d.destroy_after) AS destroy_after \
                 FROM decisions AS d WHERE {condition}"
            ),
            vec![params[0].clone()],
        ),
    ]
}

/// The last row of [`block`].
#[derive(Clone, Copy, Debug, Deserialize)]
pub struct HeldRow {
    pub held: u64,
    #[serde(default)]
    pub destroy_after: Option<i64>,
}

/// A row naming one decision.
#[derive(Clone, Debug, Deserialize)]
pub struct IdRow {
    pub request_id: String,
}

/// The run's branch, if it has one, as a condition on `d` with its parameter at ?3.
const IN_RUN: &str = "(?3 IS NULL OR d.branch = ?3)";

fn run_branch(run: &Run<'_>) -> SqlValue {
    run.branch.map(str::to_owned).into()
}

/// Decisions not blocked whose stamped readable period ended by ?1, oldest stamp first.
pub fn due_for_blocking(run: &Run<'_>, limit: usize) -> Statement {
    Statement::new(
        format!(
            "SELECT d.request_id AS request_id, d.received_at AS received_at, \
             json_extract(d.application, '$.term_months') AS term_months, \
             d.decision AS decision, r.state AS review \
             FROM decisions AS d LEFT JOIN reviews AS r ON r.request_id = d.request_id \
             WHERE d.blocked_at IS NULL AND d.readable_until <= ?1 AND {IN_RUN} \
             ORDER BY d.readable_until LIMIT ?2"
        ),
        vec![run.now_ms.into(), (limit as i64).into(), run_branch(run)],
    )
}

#[derive(Clone, Debug, Deserialize)]
pub struct DueRow {
    request_id: String,
    received_at: i64,
    /// Absent in an application that no longer reads as one: the shortest period applies.
    #[serde(default)]
    term_months: Option<u32>,
    decision: Decision,
    #[serde(default)]
    review: Option<ReviewState>,
}

impl From<DueRow> for DueDecision {
    fn from(row: DueRow) -> DueDecision {
        DueDecision {
            request_id: row.request_id,
            received_at_ms: row.received_at,
            term_months: row.term_months.unwrap_or(0),
            decision: row.decision,
            review: row.review,
        }
    }
}

/// Blocks the due decisions and stamps the others with their new readable-until time (one
/// batch).
pub fn settle_due(settled: &DueSettled<'_>) -> Vec<Statement> {
    let ids = || SqlValue::from(json_strings(settled.block.iter().map(String::as_str)));
    let blocking = settled.blocking;
    let mut statements = Vec::new();
    if !settled.block.is_empty() {
        statements.push(Statement::new(
            "UPDATE decisions SET blocked_at = ?2, blocked_by = ?3, destroy_after = ?4 \
             WHERE request_id IN (SELECT value FROM json_each(?1)) AND blocked_at IS NULL",
            vec![
                ids(),
                blocking.at_ms.into(),
                BlockedBy::Retention.as_str().into(),
                blocking.destroy_after_ms.into(),
            ],
        ));
        statements.push(Statement::new(
            forget_webhook_letters("SELECT value FROM json_each(?1)"),
            vec![ids()],
        ));
    }
    if !settled.look_again.is_empty() {
        statements.push(Statement::new(
            "UPDATE decisions SET readable_until = j.value ->> '$[1]' FROM json_each(?1) AS j \
             WHERE decisions.request_id = j.value ->> '$[0]' AND decisions.blocked_at IS NULL",
            vec![json(&settled.look_again).into()],
        ));
    }
    statements
}

/// Blocked decisions whose blocking period ended by ?1, the earliest first.
pub fn due_for_destruction(run: &Run<'_>, limit: usize) -> Statement {
    Statement::new(
        format!(
            "SELECT d.request_id AS request_id, d.application AS application, \
             d.probability AS probability FROM decisions AS d \
             WHERE d.blocked_at IS NOT NULL AND d.destroyed_at IS NULL \
             AND d.destroy_after <= ?1 AND {IN_RUN} ORDER BY d.destroy_after LIMIT ?2"
        ),
        vec![run.now_ms.into(), (limit as i64).into(), run_branch(run)],
    )
}

#[derive(Clone, Debug, Deserialize)]
pub struct DestroyableRow {
    request_id: String,
    application: JsonText<Application>,
    probability: f32,
}

impl From<DestroyableRow> for Destroyable {
    fn from(row: DestroyableRow) -> Destroyable {
        Destroyable {
            request_id: row.request_id,
            application: row.application.0,
            probability: row.probability,
        }
    }
}

/// Destroys the personal data of these decisions (one batch): the application becomes its
/// residue, the applicant id, recourse and fingerprint go, and so do the reviews' free text
/// and the event inbox's and dead letters' copies of the application.
pub fn destroy(residues: &[(String, Residue)], now_ms: i64) -> Vec<Statement> {
    let pairs = json(&residues);
    let ids = "SELECT value ->> '$[0]' FROM json_each(?1)";
    vec![
        Statement::new(
            "UPDATE decisions SET application = '{}', residue = j.value ->> '$[1]', \
             applicant_id = NULL, recourse = NULL, fingerprint = ?3, destroyed_at = ?2 \
             FROM json_each(?1) AS j \
             WHERE decisions.request_id = j.value ->> '$[0]' AND decisions.destroyed_at IS NULL",
            vec![
                pairs.clone().into(),
                now_ms.into(),
                DESTROYED_FINGERPRINT.into(),
            ],
        ),
        Statement::new(
            format!(
                "UPDATE reviews SET note = '', approval_note = '', contest_comment = NULL \
                 WHERE request_id IN ({ids})"
            ),
            vec![pairs.clone().into()],
        ),
        Statement::new(
            format!("DELETE FROM event_inbox WHERE event_id IN ({ids})"),
            vec![pairs.clone().into()],
        ),
        Statement::new(
            format!("DELETE FROM dead_letters WHERE event_id IN ({ids})"),
            vec![pairs.into()],
        ),
    ]
}

/// Destroyed records of decisions made before ?1, at most ?2 of them, with their reviews,
/// outcomes and late-event marks (one batch; the last statement answers the deleted ids).
pub fn delete_records(run: &Run<'_>, before_ms: i64, limit: usize) -> Vec<Statement> {
    let expired = format!(
        "SELECT d.request_id FROM decisions AS d WHERE d.destroyed_at IS NOT NULL \
         AND d.received_at < ?1 AND {IN_RUN} ORDER BY d.received_at LIMIT ?2"
    );
    let params = || {
        vec![
            SqlValue::from(before_ms),
            SqlValue::from(limit as i64),
            run_branch(run),
        ]
    };
    let mut statements: Vec<Statement> = ["reviews", "loan_outcomes", "late_events"]
        .into_iter()
        .map(|table| {
            Statement::new(
                format!("DELETE FROM {table} WHERE request_id IN ({expired})"),
                params(),
            )
        })
        .collect();
    statements.push(Statement::new(
        format!(
            "DELETE FROM decisions WHERE request_id IN ({expired}) \
             RETURNING request_id AS request_id"
        ),
        params(),
    ));
    statements
}

/// Everything held about a subject (one batch): its decisions with where their blocking
/// stands, their reviews, their outcomes, and the audit rows naming them.
pub fn subject(subject: &Subject) -> Vec<Statement> {
    let (condition, value) = of_subject(subject);
    let ids = format!("SELECT d.request_id FROM decisions AS d WHERE {condition}");
    vec![
        Statement::new(
            format!("SELECT d.* FROM decisions AS d WHERE {condition} ORDER BY d.seq"),
            vec![value.clone()],
        ),
        Statement::new(
            format!(
                "SELECT {} FROM reviews r WHERE r.request_id IN ({ids})",
                super::reviews::REVIEW_COLUMNS
            ),
            vec![value.clone()],
        ),
        Statement::new(
            format!(
                "SELECT request_id, status, observed_at AS observed_at_ms FROM loan_outcomes \
                 WHERE request_id IN ({ids})"
            ),
            vec![value.clone()],
        ),
        Statement::new(
            format!("SELECT * FROM audit_log WHERE subject IN ({ids}) ORDER BY seq"),
            vec![value],
        ),
    ]
}

/// Where a decision row's blocking stands.
#[derive(Clone, Debug, Deserialize)]
pub struct BlockingRow {
    #[serde(default)]
    blocked_at: Option<i64>,
    #[serde(default)]
    blocked_by: Option<BlockedBy>,
    #[serde(default)]
    destroy_after: Option<i64>,
}

impl BlockingRow {
    pub fn blocked(&self) -> Option<Blocked> {
        Some(Blocked {
            blocked_at_ms: self.blocked_at?,
            blocked_by: self.blocked_by?,
            destroy_after_ms: self.destroy_after?,
        })
    }
}

/// A decision row of [`subject`]: the decision and its blocking.
#[derive(Clone, Debug, Deserialize)]
pub struct SubjectRow {
    #[serde(flatten)]
    pub decision: super::decisions::DecisionRow,
    #[serde(flatten)]
    pub blocking: BlockingRow,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_bind_their_values_and_touch_only_rows_not_yet_changed() {
        let blocking = Blocking {
            by: BlockedBy::Dpo,
            at_ms: 5,
            destroy_after_ms: 9,
        };
        let statements = block(&Subject::Applicant("SOC-1".into()), blocking);
        assert_eq!(statements.len(), 3);
        assert_eq!(statements[0].params.len(), 4);
        assert!(statements[0].sql.contains("d.blocked_at IS NULL"));
        assert!(
            !statements[0].sql.contains("SOC-1"),
            "values are bound, never spliced"
        );
        let residues = vec![(
            "r-1".to_owned(),
            Residue {
                age_band: "26-35".into(),
                marital: valle_shared::intake::application::Marital::Married,
                drift_bins: vec![1, 2],
            },
        )];
        let destroy = destroy(&residues, 7);
        assert!(destroy[0].sql.contains("decisions.destroyed_at IS NULL"));
        assert_eq!(destroy.len(), 4);
        let settled = settle_due(&DueSettled {
            block: &["r-1".into()],
            look_again: &[("r-2".into(), 11)],
            blocking,
        });
        assert_eq!(settled.len(), 3);
        assert_eq!(
            settled[0].params[2],
            SqlValue::Text(BlockedBy::Retention.as_str().into())
        );
        let run = Run {
            now_ms: 3,
            branch: Some("norte"),
        };
        assert_eq!(delete_records(&run, 3, 200).len(), 4);
        assert_eq!(
            due_for_blocking(&run, 200).params[2],
            SqlValue::Text("norte".into())
        );
        assert_eq!(subject(&Subject::Decision("r-1".into())).len(), 4);
    }

    #[test]
    fn a_due_row_without_a_term_takes_the_shortest_period() {
        let row: DueRow = serde_json::from_value(serde_json::json!({
            "request_id": "r-1", "received_at": 3, "term_months": null, "decision": "approve",
            "review": "approved",
        }))
        .expect("a row");
        let due = DueDecision::from(row);
        assert_eq!(due.term_months, 0);
        assert_eq!(due.review, Some(ReviewState::Approved));
    }
}
