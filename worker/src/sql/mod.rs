//! Every SQL statement the worker runs, as plain values: SQL text with bound parameters
//! only (never a value spliced into SQL), built and decoded on the host where they are
//! tested. D1 binds at most 100 parameters per statement, so rows travel as one JSON text
//! read back with `json_each`.
//!
//! A row struct reads each column as its type: integers as integers (D1 answers numbers
//! within the safe-integer range, and a fraction or a string is an error, never a silent
//! truncation), labels as their enums by wire name, and JSON text through [`JsonText`].

pub mod accounts;
pub mod audit;
pub mod dead_letters;
pub mod decisions;
pub mod inbox;
pub mod kpis;
pub mod kv;
pub mod loan_outcomes;
pub mod retention;
pub mod reviews;
pub mod webhooks;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};

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

/// A TEXT column that holds JSON, read as the value it holds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JsonText<T>(pub T);

impl<'de, T: DeserializeOwned> Deserialize<'de> for JsonText<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<JsonText<T>, D::Error> {
        let text = String::deserialize(deserializer)?;
        serde_json::from_str(&text)
            .map(JsonText)
            .map_err(|error| D::Error::custom(format!("{}: {error}", std::any::type_name::<T>())))
    }
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
        let guard = if outcomes.one_request {
            decisions::Guard::OneRequest
        } else {
            decisions::Guard::EachOnItsOwn
        };
        statements.extend(decisions::insert(outcomes.decisions, guard));
        statements.push(decisions::supersede_dead_letters(outcomes.decisions, guard));
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

/// Each column of a column list (`t.a, t.b AS c`): the table's column and the name D1 keys
/// it by in a row, its alias or else its own name.
#[cfg(test)]
pub(crate) fn column_names(columns: &str) -> impl Iterator<Item = (&str, &str)> {
    columns.split(',').map(|column| {
        let (expression, alias) = match column.trim().rsplit_once(" AS ") {
            Some((expression, alias)) => (expression, Some(alias)),
            None => (column.trim(), None),
        };
        let name = expression.rsplit('.').next().unwrap_or(expression);
        (name, alias.unwrap_or(name))
    })
}

/// The row D1 answers for a column list over `values` bound in the same order.
#[cfg(test)]
pub(crate) fn answered_row(columns: &str, values: &[SqlValue]) -> serde_json::Value {
    let row: serde_json::Map<String, serde_json::Value> = column_names(columns)
        .map(|(_, name)| name)
        .zip(values)
        .map(|(name, value)| {
            let value = match value {
                SqlValue::Null => serde_json::Value::Null,
                SqlValue::Integer(n) => (*n).into(),
                SqlValue::Real(x) => (*x).into(),
                SqlValue::Text(text) => text.clone().into(),
            };
            (name.to_owned(), value)
        })
        .collect();
    row.into()
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
    use valle_shared::decision::model::{Band, Decision};
    use valle_shared::intake::channel::Channel;
    use valle_shared::lending::audit::AUDIT_ACTIONS;
    use valle_shared::lending::officers::ROLES;
    use valle_shared::lending::review::{
        ApprovalAction, OVERRIDES, REASON_CODES, REVIEW_ACTIONS, REVIEW_STATES,
    };
    use valle_shared::outcomes::loan_outcomes::LOAN_STATUSES;
    use valle_shared::records::decisions::DeadLetterStatus;
    use valle_shared::webhooks::EventKind;

    /// Rows read label columns by serde, while statements write them with `as_str`: both
    /// must name every value alike.
    #[test]
    fn every_stored_label_reads_back_as_its_value() {
        fn check<T>(values: impl IntoIterator<Item = T>, stored: fn(T) -> &'static str)
        where
            T: Copy + PartialEq + std::fmt::Debug + DeserializeOwned,
        {
            for value in values {
                let text = stored(value);
                let read: Result<T, _> = serde_json::from_value(text.into());
                assert_eq!(read.ok(), Some(value), "{text:?}");
            }
        }
        check(AUDIT_ACTIONS, |action| action.as_str());
        check(DeadLetterStatus::ALL, DeadLetterStatus::as_str);
        check(Channel::ALL, Channel::as_str);
        check(LOAN_STATUSES, |status| status.as_str());
        check([Band::Bajo, Band::Medio, Band::Alto], Band::as_str);
        check(
            valle_shared::decision::simulation::DECISIONS,
            Decision::as_str,
        );
        check(ROLES, |role| role.as_str());
        check(
            [ApprovalAction::Confirm, ApprovalAction::Reject],
            ApprovalAction::as_str,
        );
        check(OVERRIDES, |kind| kind.as_str());
        check(REASON_CODES, |code| code.as_str());
        check(REVIEW_ACTIONS, |action| action.as_str());
        check(REVIEW_STATES, |state| state.as_str());
        check(EventKind::ALL, EventKind::as_str);
    }

    #[test]
    fn json_text_columns_read_as_their_values_and_bad_text_names_the_type() {
        let read = |text: &str| serde_json::from_value::<JsonText<Vec<u32>>>(text.into());
        assert_eq!(read("[1,2]").ok(), Some(JsonText(vec![1, 2])));
        let error = read("[1,").expect_err("truncated JSON").to_string();
        assert!(error.contains("Vec<u32>"), "{error}");
        assert!(serde_json::from_value::<JsonText<Vec<u32>>>(7.into()).is_err());
    }

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
