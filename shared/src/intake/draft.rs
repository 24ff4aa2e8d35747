//! What the form has typed so far, turned into the JSON body the page would send.
//!
//! The page validates these exact bytes with [`crate::intake::validation::parse_application`] and posts
//! the same bytes, so the browser and the edge judge one and the same document.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value};

use crate::intake::application::{Field, FieldRule};

/// The raw text of each form input, keyed by field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Draft {
    inputs: BTreeMap<Field, String>,
}

impl Draft {
    pub fn new() -> Draft {
        Draft::default()
    }

    pub fn with(mut self, field: Field, text: impl Into<String>) -> Draft {
        self.set(field, text);
        self
    }

    pub fn set(&mut self, field: Field, text: impl Into<String>) {
        self.inputs.insert(field, text.into());
    }

    pub fn get(&self, field: Field) -> &str {
        self.inputs.get(&field).map_or("", String::as_str)
    }

    /// The JSON object the form stands for. Blank inputs are left out (and so reported as
    /// required); numeric text that does not parse is sent as the string it is, so the
    /// validator reports a type error rather than the page silently dropping it.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        for field in Field::ALL {
            let text = self.get(field).trim();
            if text.is_empty() {
                continue;
            }
            let value = match field.rule() {
                FieldRule::Integer { .. } => parse_integer(text),
                FieldRule::Money { .. } => parse_decimal(text),
                FieldRule::Choice(_) | FieldRule::Text { .. } => None,
            };
            object.insert(
                field.name().to_owned(),
                value.unwrap_or_else(|| Value::String(text.to_owned())),
            );
        }
        Value::Object(object)
    }

    /// The request body, serialized once so validation and the POST use the same bytes.
    pub fn to_body(&self) -> String {
        self.to_json().to_string()
    }
}

fn parse_integer(text: &str) -> Option<Value> {
    if let Ok(integer) = text.parse::<i64>() {
        return Some(Value::Number(integer.into()));
    }
    parse_decimal(text)
}

/// Accepts `1234.5` and the Spanish `1234,5`; refuses `NaN` and infinities, which Rust's
/// float parser would otherwise take.
fn parse_decimal(text: &str) -> Option<Value> {
    let normalized = text.replace(',', ".");
    let plain = normalized
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'));
    if !plain {
        return None;
    }
    let number = normalized.parse::<f64>().ok()?;
    if number.fract() == 0.0 && number.abs() < 9.0e15 {
        // Whole numbers travel as JSON integers, as a person would write them.
        #[allow(clippy::cast_possible_truncation)]
        return Some(Value::Number((number as i64).into()));
    }
    Number::from_f64(number).map(Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(field: Field, text: &str, expected: Value) {
        let draft = Draft::new().with(field, text);
        assert_eq!(
            draft
                .to_json()
                .get(field.name())
                .cloned()
                .unwrap_or(Value::Null),
            expected,
            "{field:?} <- {text:?}"
        );
    }

    #[test]
    fn inputs_become_the_json_a_person_means() {
        check(Field::Age, "35", json!(35));
        check(Field::Age, " 35 ", json!(35));
        check(Field::Age, "35.5", json!(35.5));
        check(Field::Age, "treinta", json!("treinta"));
        check(Field::Age, "", Value::Null);
        check(Field::Age, "   ", Value::Null);
        check(Field::Income, "1234,5", json!(1234.5));
        check(Field::Income, "1500", json!(1500));
        check(Field::Income, "1500.00", json!(1500));
        check(Field::Income, "NaN", json!("NaN"));
        check(Field::Income, "inf", json!("inf"));
        check(Field::Income, "-20", json!(-20));
        check(Field::Home, "owner", json!("owner"));
        check(Field::Branch, "  Centro ", json!("Centro"));
    }

    #[test]
    fn body_is_the_serialized_object() {
        let draft = Draft::new()
            .with(Field::Age, "40")
            .with(Field::Job, "fixed");
        assert_eq!(draft.to_body(), r#"{"age":40,"job":"fixed"}"#);
    }
}
