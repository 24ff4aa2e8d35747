//! The `loan_outcomes` table: outcomes written in one statement per batch (`json_each`), and
//! the two reads the performance and fairness figures are computed from, each one row per
//! group of decisions rather than per decision.

use serde::Deserialize;
use valle_shared::decision::model::Decision;
use valle_shared::outcomes::fairness::{age_band_name, FairnessCount, AGE_BAND_FLOORS};
use valle_shared::outcomes::loan_outcomes::{KnownDecision, LoanOutcome, LoanStatus};
use valle_shared::outcomes::performance::ScoreGroup;

use super::{json, json_arrays, json_strings, Statement};
use valle_shared::outcomes::challenger::AgreementCount;
use valle_shared::records::decisions::Period;

/// The decisions `request_ids` name, with the outcome stored for each.
pub fn known(request_ids: &[String]) -> Statement {
    Statement::new(
        "SELECT d.request_id AS request_id, d.received_at AS received_at, \
         o.status AS status, o.observed_at AS observed_at \
         FROM decisions d LEFT JOIN loan_outcomes o ON o.request_id = d.request_id \
         WHERE d.request_id IN (SELECT value FROM json_each(?1))",
        vec![json_strings(request_ids.iter().map(String::as_str)).into()],
    )
}

#[derive(Deserialize)]
pub struct KnownRow {
    request_id: String,
    received_at: i64,
    status: Option<LoanStatus>,
    observed_at: Option<i64>,
}

impl From<KnownRow> for KnownDecision {
    fn from(row: KnownRow) -> KnownDecision {
        let outcome = match (row.status, row.observed_at) {
            (Some(status), Some(observed_at_ms)) => Some(LoanOutcome {
                request_id: row.request_id.clone(),
                status,
                observed_at_ms,
            }),
            _ => None,
        };
        KnownDecision {
            request_id: row.request_id,
            received_at_ms: row.received_at,
            outcome,
        }
    }
}

/// Writes `outcomes`: new rows, and matured statuses over open ones (a matured row stays).
pub fn upsert(outcomes: &[LoanOutcome], actor: &str, now_ms: i64) -> Vec<Statement> {
    json_arrays(outcomes.iter().map(json))
        .into_iter()
        .map(|rows| {
            Statement::new(
                "INSERT INTO loan_outcomes (request_id, status, observed_at, recorded_by, \
                 recorded_at) \
                 SELECT json_extract(value, '$.request_id'), json_extract(value, '$.status'), \
                 json_extract(value, '$.observed_at_ms'), ?2, ?3 FROM json_each(?1) WHERE true \
                 ON CONFLICT(request_id) DO UPDATE SET status = excluded.status, \
                 observed_at = excluded.observed_at, recorded_by = excluded.recorded_by, \
                 recorded_at = excluded.recorded_at WHERE loan_outcomes.status = 'open'",
                vec![rows.into(), actor.into(), now_ms.into()],
            )
        })
        .collect()
}

const FILTER: &str = "FROM decisions d LEFT JOIN loan_outcomes o ON o.request_id = d.request_id \
     WHERE d.received_at >= ?1 AND d.received_at <= ?2 AND (?3 IS NULL OR d.branch = ?3)";

fn filter_params(period: &Period) -> Vec<super::SqlValue> {
    vec![
        period.from_ms.unwrap_or(0).into(),
        period.to_ms.unwrap_or(i64::MAX).into(),
        period.branch.clone().into(),
    ]
}

/// Decisions by branch, month, probability and outcome.
pub fn score_groups(period: &Period) -> Statement {
    grouped_by_score(period, "d.probability", "")
}

/// Decisions by branch, month, `probability` (a column expression) and outcome, with
/// `only` added to the filter.
fn grouped_by_score(period: &Period, probability: &str, only: &str) -> Statement {
    Statement::new(
        format!(
            "SELECT d.branch AS branch, \
             strftime('%Y-%m', d.received_at / 1000, 'unixepoch') AS vintage, \
             {probability} AS probability, \
             COUNT(CASE WHEN o.status = 'bad' THEN 1 END) AS bad, \
             COUNT(CASE WHEN o.status = 'good' THEN 1 END) AS good, \
             COUNT(CASE WHEN o.status = 'open' THEN 1 END) AS open, \
             COUNT(CASE WHEN o.status IS NULL THEN 1 END) AS unreported \
             {FILTER}{only} GROUP BY 1, 2, 3"
        ),
        filter_params(period),
    )
}

const SHADOWED: &str = " AND d.shadow IS NOT NULL";

/// The three reads of the champion-challenger comparison, over the decisions the shadow
/// scored: the two decisions' counts, then the decisions by the champion's and by the
/// challenger's probability.
pub fn shadow_counts(period: &Period) -> [Statement; 3] {
    [
        Statement::new(
            format!(
                "SELECT d.decision AS champion, d.shadow ->> '$.decision' AS shadow, \
                 COUNT(*) AS count {FILTER}{SHADOWED} GROUP BY 1, 2"
            ),
            filter_params(period),
        ),
        grouped_by_score(period, "d.probability", SHADOWED),
        grouped_by_score(period, "d.shadow ->> '$.probability'", SHADOWED),
    ]
}

#[derive(Deserialize)]
pub struct AgreementRow {
    champion: Decision,
    shadow: Decision,
    count: u64,
}

impl From<AgreementRow> for AgreementCount {
    fn from(row: AgreementRow) -> AgreementCount {
        AgreementCount {
            champion: row.champion,
            shadow: row.shadow,
            count: row.count,
        }
    }
}

#[derive(Deserialize)]
pub struct ScoreGroupRow {
    branch: String,
    vintage: String,
    probability: f64,
    bad: u64,
    good: u64,
    open: u64,
    unreported: u64,
}

impl From<ScoreGroupRow> for (String, ScoreGroup) {
    fn from(row: ScoreGroupRow) -> (String, ScoreGroup) {
        (
            row.branch,
            ScoreGroup {
                vintage: row.vintage,
                probability: row.probability,
                bad: row.bad,
                good: row.good,
                open: row.open,
                unreported: row.unreported,
            },
        )
    }
}

/// `valle_shared::outcomes::fairness::age_band` as SQL over the stored application, or the band a
/// destroyed decision's residue kept.
fn age_band_sql() -> String {
    let mut sql = String::from("CASE WHEN d.residue IS NOT NULL THEN d.residue ->> '$.age_band'");
    for index in (1..AGE_BAND_FLOORS.len()).rev() {
        sql.push_str(&format!(
            " WHEN json_extract(d.application, '$.age') >= {} THEN '{}'",
            AGE_BAND_FLOORS[index],
            age_band_name(index)
        ));
    }
    sql.push_str(&format!(" ELSE '{}' END", age_band_name(0)));
    sql
}

/// Decisions by branch, age band, marital status, decision and outcome.
pub fn fairness_counts(period: &Period) -> Statement {
    Statement::new(
        format!(
            "SELECT d.branch AS branch, {} AS age_band, \
             COALESCE(d.residue ->> '$.marital', json_extract(d.application, '$.marital')) \
             AS marital, d.decision AS decision, \
             o.status AS status, COUNT(*) AS count \
             {FILTER} GROUP BY 1, 2, 3, 4, 5",
            age_band_sql()
        ),
        filter_params(period),
    )
}

#[derive(Deserialize)]
pub struct FairnessRow {
    branch: String,
    age_band: String,
    marital: String,
    decision: Decision,
    status: Option<LoanStatus>,
    count: u64,
}

impl From<FairnessRow> for (String, FairnessCount) {
    fn from(row: FairnessRow) -> (String, FairnessCount) {
        (
            row.branch,
            FairnessCount {
                age_band: row.age_band,
                marital: row.marital,
                decision: row.decision,
                status: row.status,
                count: row.count,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_bands_in_sql_are_the_shared_ones() {
        let sql = age_band_sql();
        assert!(sql.starts_with(
            "CASE WHEN d.residue IS NOT NULL THEN d.residue ->> '$.age_band' \
             WHEN json_extract(d.application, '$.age') >= 66 THEN '66+'"
        ));
        assert!(sql.contains(">= 26 THEN '26-35'"));
        assert!(sql.ends_with("ELSE '18-25' END"));
    }

    #[test]
    fn a_thousand_outcomes_are_one_statement() {
        let outcomes: Vec<LoanOutcome> = (0..1000)
            .map(|i| LoanOutcome {
                request_id: format!("request-{i:040}"),
                status: LoanStatus::Good,
                observed_at_ms: 1_800_000_000_000,
            })
            .collect();
        let statements = upsert(&outcomes, "officer@valle.test", 1);
        assert_eq!(statements.len(), 1);
        assert!(statements[0].params.len() <= super::super::MAX_PARAMS);
    }
}
