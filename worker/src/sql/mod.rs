//! Every SQL statement the worker runs, as plain values: SQL text with bound parameters
//! only (never a value spliced into SQL), built and decoded on the host where they are
//! tested. D1 binds at most 100 parameters per statement, so rows travel as one JSON text
//! read back with `json_each`.

pub mod accounts;
pub mod audit;
pub mod dead_letters;
pub mod decisions;
pub mod inbox;
pub mod kpis;
pub mod kv;
pub mod loan_outcomes;
pub mod reviews;
pub mod webhooks;

use serde::Serialize;

/// A bound parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum SqlValue {
    Null,
    Integer(i64),
    Real(f64),
    Text(String),
}

impl From<&str> for SqlValue {
    fn from(text: &str) -> SqlValue {
        SqlValue::Text(text.to_owned())
    }
}

impl From<String> for SqlValue {
    fn from(text: String) -> SqlValue {
        SqlValue::Text(text)
    }
}

impl From<i64> for SqlValue {
    fn from(n: i64) -> SqlValue {
        SqlValue::Integer(n)
    }
}

impl From<u64> for SqlValue {
    fn from(n: u64) -> SqlValue {
        SqlValue::Integer(i64::try_from(n).unwrap_or(i64::MAX))
    }
}

impl From<f64> for SqlValue {
    fn from(x: f64) -> SqlValue {
        SqlValue::Real(x)
    }
}

impl<T: Into<SqlValue>> From<Option<T>> for SqlValue {
    fn from(value: Option<T>) -> SqlValue {
        value.map_or(SqlValue::Null, Into::into)
    }
}

/// One statement and its parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<SqlValue>,
}

impl Statement {
    pub fn new(sql: impl Into<String>, params: Vec<SqlValue>) -> Statement {
        Statement {
            sql: sql.into(),
            params,
        }
    }
}

/// D1 binds at most 100 parameters per statement.
pub const MAX_PARAMS: usize = 100;
/// The largest JSON text one statement binds; D1 takes strings up to 2 MB.
pub const MAX_JSON_BYTES: usize = 512 * 1024;

pub(crate) fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}

/// Splits `rows` (each already JSON) into JSON arrays of at most [`MAX_JSON_BYTES`], for
/// statements that read them with `json_each`.
pub(crate) fn json_arrays(rows: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut arrays = Vec::new();
    let mut current = String::from("[");
    for row in rows {
        if current.len() > 1 && current.len() + row.len() + 2 > MAX_JSON_BYTES {
            current.push(']');
            arrays.push(std::mem::replace(&mut current, String::from("[")));
        }
        if current.len() > 1 {
            current.push(',');
        }
        current.push_str(&row);
    }
    if current.len() > 1 {
        current.push(']');
        arrays.push(current);
    }
    arrays
}

/// A JSON array of strings, for `IN (SELECT value FROM json_each(?1))`.
pub(crate) fn json_strings<'a>(values: impl IntoIterator<Item = &'a str>) -> String {
    json(&values.into_iter().collect::<Vec<_>>())
}

/// The statements of one [`OutcomeStore::store`](crate::store::OutcomeStore::store) write,
/// in the order they must run (one D1 batch, one transaction): the decisions already stored,
/// then the inserts, the dead letters (after the decisions, so a decision wins), the inbox
/// and the replay mark. When decisions are written, the first statement's rows are the ones
/// that were stored before.
pub fn store_outcomes(outcomes: &crate::store::Outcomes<'_>, now_ms: i64) -> Vec<Statement> {
    let mut statements = Vec::new();
    if !outcomes.decisions.is_empty() {
        statements.push(decisions::select_existing(outcomes.decisions));
        statements.extend(decisions::insert(outcomes.decisions));
        statements.push(decisions::supersede_dead_letters(outcomes.decisions));
    }
    statements.extend(dead_letters::upsert(outcomes.dead_letters));
    if !outcomes.settle.is_empty() {
        statements.push(inbox::settle(outcomes.settle));
    }
    if let Some(reached) = outcomes.reached_ms {
        statements.push(inbox::progress(reached, now_ms));
    }
    if let Some(id) = outcomes.replayed_letter {
        statements.push(dead_letters::mark_replayed(id, now_ms));
    }
    if let Some(entry) = outcomes.audit {
        statements.push(audit::insert(entry));
    }
    statements
}

/// `SELECT 1` against the migrations table: D1 answers and is migrated.
pub fn health_probe() -> Statement {
    Statement::new(
        "SELECT COUNT(*) AS migrations FROM d1_migrations",
        Vec::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_arrays_stay_under_the_size_limit_and_keep_every_row() {
        let row = format!("{{\"x\":\"{}\"}}", "a".repeat(1_000));
        let arrays = json_arrays(std::iter::repeat_n(row.clone(), 1_200));
        assert!(arrays.len() >= 3);
        assert!(arrays.iter().all(|array| array.len() <= MAX_JSON_BYTES));
        let total: usize = arrays
            .iter()
            .map(|array| {
                serde_json::from_str::<Vec<serde_json::Value>>(array)
                    .expect("a JSON array")
                    .len()
            })
            .sum();
        assert_eq!(total, 1_200);
        assert!(json_arrays(Vec::<String>::new()).is_empty());
        assert_eq!(json_arrays(vec!["1".to_owned()]), ["[1]"]);
    }
}
