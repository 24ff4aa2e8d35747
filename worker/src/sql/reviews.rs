//! The `reviews` table: the review of each application an officer has touched, the review
//! queue (referred decisions no one has touched, and reviews still open), the export's pages
//! and the overrides report.

use serde::Deserialize;
use valle_shared::contract::query::Page;
use valle_shared::decision::model::Band;
use valle_shared::lending::review::{
    ApprovalAction, OverrideRow, ReasonCode, Review, ReviewAction, ReviewState,
};
use valle_shared::records::decisions::DecisionQuery;

use super::decisions::filter_clauses;
use super::{SqlValue, Statement};
use crate::store::QueueQuery;

const OPEN_STATES: &str = "('pending', 'info_requested', 'awaiting_approval')";

/// The columns of `reviews r` under the names of [`Review`]'s fields, and the write's id.
pub(crate) const REVIEW_COLUMNS: &str =
    "r.request_id, r.state, r.proposed, r.action, r.reason, r.note, \
     r.override_kind, r.decided_by, r.decided_at AS decided_at_ms, r.approval, \
     r.approval_note, r.approved_by, r.approved_at AS approved_at_ms, \
     r.human_review_requested_at AS human_review_requested_at_ms, r.contest_comment, r.version, \
     r.write_id";

pub fn select(request_id: &str) -> Statement {
    Statement::new(
        format!("SELECT {REVIEW_COLUMNS} FROM reviews r WHERE r.request_id = ?1"),
        vec![request_id.into()],
    )
}

/// Writes `review` over the version the writer read (none stored: version 0), marked with
/// the write's id; a row someone else changed meanwhile stays as it is.
pub fn upsert(review: &Review, expected_version: u32, write_id: &str) -> Statement {
    let text = |value: Option<&str>| SqlValue::from(value.map(str::to_owned));
    Statement::new(
        "INSERT INTO reviews (request_id, state, proposed, action, reason, note, override_kind, \
         decided_by, decided_at, approval, approval_note, approved_by, approved_at, \
         human_review_requested_at, contest_comment, version, write_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) \
         ON CONFLICT(request_id) DO UPDATE SET state = excluded.state, action = excluded.action, \
         reason = excluded.reason, note = excluded.note, override_kind = excluded.override_kind, \
         decided_by = excluded.decided_by, decided_at = excluded.decided_at, \
         approval = excluded.approval, approval_note = excluded.approval_note, \
         approved_by = excluded.approved_by, approved_at = excluded.approved_at, \
         human_review_requested_at = excluded.human_review_requested_at, \
         contest_comment = excluded.contest_comment, \
         version = excluded.version, write_id = excluded.write_id \
         WHERE reviews.version = ?18",
        vec![
            review.request_id.as_str().into(),
            review.state.as_str().into(),
            review.proposed.as_str().into(),
            text(review.action.map(ReviewAction::as_str)),
            text(review.reason.map(ReasonCode::as_str)),
            review.note.as_str().into(),
            review.override_kind.as_str().into(),
            text(review.decided_by.as_deref()),
            review.decided_at_ms.into(),
            text(review.approval.map(ApprovalAction::as_str)),
            review.approval_note.as_str().into(),
            text(review.approved_by.as_deref()),
            review.approved_at_ms.into(),
            review.human_review_requested_at_ms.into(),
            text(review.contest_comment.as_deref()),
            i64::from(review.version).into(),
            write_id.into(),
            i64::from(expected_version).into(),
        ],
    )
}

/// The `seq` of the decisions on one page of the queue, as a subquery with parameters ?1
/// (after) and ?2 (limit, one more than the page).
fn queue_seqs(state: Option<ReviewState>, requested: bool) -> String {
    let untouched =
        "SELECT d.seq AS seq FROM decisions d WHERE d.decision = 'review' AND d.seq > ?1 \
         AND d.blocked_at IS NULL \
         AND NOT EXISTS (SELECT 1 FROM reviews r WHERE r.request_id = d.request_id)";
    let open = |states: &str| {
        let asked = if requested {
            " AND r.human_review_requested_at IS NOT NULL"
        } else {
            ""
        };
        format!(
            "SELECT d.seq AS seq FROM reviews r JOIN decisions d ON d.request_id = r.request_id \
             WHERE r.state IN {states}{asked} AND d.seq > ?1 AND d.blocked_at IS NULL"
        )
    };
    // An untouched referral has no review row, so no request either.
    let union = match state {
        _ if requested => {
            open(&state.map_or(OPEN_STATES.to_owned(), |s| format!("('{}')", s.as_str())))
        }
        None => format!("{untouched} UNION ALL {}", open(OPEN_STATES)),
        Some(ReviewState::Pending) => format!("{untouched} UNION ALL {}", open("('pending')")),
        Some(state) => open(&format!("('{}')", state.as_str())),
    };
    format!("SELECT seq FROM ({union}) ORDER BY seq LIMIT ?2")
}

/// One page of the queue: its decisions, then the reviews among them (one batch).
pub fn queue(query: &QueueQuery) -> [Statement; 2] {
    let seqs = queue_seqs(query.state, query.requested);
    let params = || vec![query.after_seq.into(), (query.limit as i64 + 1).into()];
    [
        Statement::new(
            format!("SELECT * FROM decisions WHERE seq IN ({seqs}) ORDER BY seq"),
            params(),
        ),
        Statement::new(
            format!(
                "SELECT {REVIEW_COLUMNS} FROM reviews r \
                 JOIN decisions d ON d.request_id = r.request_id WHERE d.seq IN ({seqs})"
            ),
            params(),
        ),
    ]
}

/// One page of the export: decisions after row `page.cursor` matching the query, in commit
/// order, then their reviews (one batch).
pub fn export_page(query: &DecisionQuery, page: &Page<u64>) -> [Statement; 2] {
    let mut params: Vec<SqlValue> = vec![page.cursor.unwrap_or(0).into()];
    let filters = filter_clauses(query, &mut params);
    params.push((page.limit as i64).into());
    let page = format!(
        "SELECT seq FROM decisions WHERE seq > ?1{filters} ORDER BY seq LIMIT ?{}",
        params.len()
    );
    [
        Statement::new(
            format!("SELECT * FROM decisions WHERE seq IN ({page}) ORDER BY seq"),
            params.clone(),
        ),
        Statement::new(
            format!(
                "SELECT {REVIEW_COLUMNS} FROM reviews r \
                 JOIN decisions d ON d.request_id = r.request_id WHERE d.seq IN ({page})"
            ),
            params,
        ),
    ]
}

/// Final decisions by officer and band, decided in `[from, to]`.
pub fn overrides(from_ms: Option<i64>, to_ms: Option<i64>) -> Statement {
    Statement::new(
        "SELECT r.decided_by AS officer, d.band AS band, COUNT(*) AS decided, \
         SUM(r.override_kind = 'high_side') AS high_side, \
         SUM(r.override_kind = 'low_side') AS low_side \
         FROM reviews r JOIN decisions d ON d.request_id = r.request_id \
         WHERE r.decided_by IS NOT NULL AND r.action IN ('approve', 'decline') \
         AND r.decided_at >= ?1 AND r.decided_at <= ?2 \
         GROUP BY r.decided_by, d.band",
        vec![
            from_ms.unwrap_or(0).into(),
            to_ms.unwrap_or(i64::MAX).into(),
        ],
    )
}

/// A row of [`overrides`].
#[derive(Clone, Debug, Deserialize)]
pub struct OverrideRowSql {
    pub officer: String,
    pub band: Band,
    pub decided: u64,
    pub high_side: u64,
    pub low_side: u64,
}

impl From<OverrideRowSql> for OverrideRow {
    fn from(row: OverrideRowSql) -> OverrideRow {
        OverrideRow {
            officer: row.officer,
            band: row.band,
            decided: row.decided,
            high_side: row.high_side,
            low_side: row.low_side,
        }
    }
}

/// A row of [`REVIEW_COLUMNS`].
#[derive(Clone, Debug, Deserialize)]
pub struct ReviewRow {
    #[serde(flatten)]
    pub review: Review,
    pub write_id: String,
}

impl From<ReviewRow> for (Review, String) {
    /// The review and the id of the write that made it.
    fn from(row: ReviewRow) -> (Review, String) {
        (row.review, row.write_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::{answered_row, column_names};
    use valle_shared::decision::model::Decision;
    use valle_shared::lending::review::Override;

    #[test]
    fn a_review_reads_back_as_written() {
        let mut review = Review::initial("r-1", Decision::Decline);
        review.state = ReviewState::AwaitingApproval;
        review.action = Some(ReviewAction::Approve);
        review.reason = Some(ReasonCode::PolicyException);
        review.note = "socio desde 2001".into();
        review.override_kind = Override::LowSide;
        review.decided_by = Some("ana@coop.example".into());
        review.decided_at_ms = Some(5);
        review.contest_comment = Some("cobro más".into());
        review.version = 1;
        let statement = upsert(&review, 0, "w-1");
        assert_eq!(statement.params.len(), 18);
        // The select reads the columns the upsert writes, in the same order.
        let written = statement
            .sql
            .split(['(', ')'])
            .nth(1)
            .expect("insert columns");
        let read: Vec<&str> = column_names(REVIEW_COLUMNS)
            .map(|(column, _)| column)
            .collect();
        assert_eq!(written.split(',').map(str::trim).collect::<Vec<_>>(), read);
        // The row D1 would answer, built from the statement's own parameters.
        let row = answered_row(REVIEW_COLUMNS, &statement.params);
        let row: ReviewRow = serde_json::from_value(row).expect("a row");
        assert_eq!(<(Review, String)>::from(row), (review, "w-1".to_owned()));
    }

    #[test]
    fn queue_pages_bind_their_values() {
        for state in [
            None,
            Some(ReviewState::Pending),
            Some(ReviewState::AwaitingApproval),
        ] {
            let [decisions, reviews] = queue(&QueueQuery {
                state,
                requested: false,
                after_seq: 9,
                limit: 50,
            });
            assert_eq!(
                decisions.params,
                vec![SqlValue::Integer(9), SqlValue::Integer(51)]
            );
            assert_eq!(
                decisions.sql.contains("NOT EXISTS"),
                state != Some(ReviewState::AwaitingApproval)
            );
            assert!(reviews
                .sql
                .starts_with(&format!("SELECT {REVIEW_COLUMNS} ")));
        }
        let [asked, _] = queue(&QueueQuery {
            state: None,
            requested: true,
            after_seq: 0,
            limit: 5,
        });
        assert!(asked.sql.contains("human_review_requested_at IS NOT NULL"));
        assert!(!asked.sql.contains("NOT EXISTS"));
        let query = DecisionQuery {
            branch: Some("Norte".into()),
            ..DecisionQuery::default()
        };
        let [page, _] = export_page(
            &query,
            &Page {
                limit: 500,
                cursor: Some(3),
            },
        );
        assert_eq!(
            page.params,
            vec![
                SqlValue::Integer(3),
                SqlValue::Text("Norte".into()),
                SqlValue::Integer(500)
            ]
        );
        assert!(page.sql.contains("branch = ?2") && page.sql.contains("LIMIT ?3"));
    }
}
