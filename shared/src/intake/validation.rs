//! Turning request bytes into a validated [`Application`].
//!
//! The page and the worker both call [`parse_application`] on the exact bytes that travel
//! over the wire, so a given body yields byte-identical errors in the browser and at the edge.
//! Validation never stops at the first problem: it reports every field error at once, in the
//! order of [`Field::ALL`], then the cross-field rules, then unknown and duplicate keys.

use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use crate::contract::body::{malformed, within_limit};
use crate::contract::codes::ErrorCode;
use crate::contract::errors::{CrossRule, FieldError, RequestError};
use crate::contract::i18n::{format_money, Message};
use crate::intake::application::{Application, Field, FieldRule, Home, Job, Marital, Records};

mod messages;

use messages::{
    about, cross_message, duplicate_error, field_error, range_message, required_message,
    text_format_message, type_error, unknown_error,
};

/// Largest accepted request body. An application is well under 1 KiB; the margin
/// leaves room for long names while keeping hostile bodies cheap to refuse.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// The largest requested amount as a multiple of monthly income. In the credit data the
/// median is 7.6 and only 2 of 4,039 rows with a known income exceed 100, so the rule
/// refuses what is almost surely a misplaced digit, not an unusual applicant.
pub const MAX_AMOUNT_TO_MONTHLY_INCOME: f64 = 100.0;

/// Years a person must have lived before starting with the current employer.
pub const MIN_WORKING_AGE: i64 = 14;

/// The field a cross-field rule's error is reported on.
pub fn cross_rule_field(rule: CrossRule) -> Field {
    match rule {
        CrossRule::AmountWithinPrice | CrossRule::AmountToIncome => Field::Amount,
        CrossRule::WorkingAge => Field::SeniorityYears,
    }
}

/// Every field a cross-field rule reads; the page shows the error once any of them was
/// touched.
pub fn cross_rule_fields(rule: CrossRule) -> &'static [Field] {
    match rule {
        CrossRule::AmountWithinPrice => &[Field::Amount, Field::Price],
        CrossRule::WorkingAge => &[Field::SeniorityYears, Field::Age],
        CrossRule::AmountToIncome => &[Field::Amount, Field::Income],
    }
}

/// The top-level keys of a JSON object in body order, duplicates kept so they can be reported.
#[derive(Debug, Default)]
pub struct Entries(Vec<(String, Value)>);

enum TopLevel {
    Object(Entries),
    Other(&'static str),
}

impl<'de> Deserialize<'de> for TopLevel {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TopLevelVisitor;

        impl<'de> Visitor<'de> for TopLevelVisitor {
            type Value = TopLevel;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TopLevel, A::Error> {
                let mut entries = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, Value>()? {
                    entries.push((key, value));
                }
                Ok(TopLevel::Object(Entries(entries)))
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<TopLevel, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(TopLevel::Other("an array"))
            }

            fn visit_str<E: de::Error>(self, _: &str) -> Result<TopLevel, E> {
                Ok(TopLevel::Other("a string"))
            }

            fn visit_bool<E: de::Error>(self, _: bool) -> Result<TopLevel, E> {
                Ok(TopLevel::Other("a boolean"))
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<TopLevel, E> {
                Ok(TopLevel::Other("a number"))
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<TopLevel, E> {
                Ok(TopLevel::Other("a number"))
            }

            fn visit_f64<E: de::Error>(self, _: f64) -> Result<TopLevel, E> {
                Ok(TopLevel::Other("a number"))
            }

            fn visit_unit<E: de::Error>(self) -> Result<TopLevel, E> {
                Ok(TopLevel::Other("null"))
            }
        }

        deserializer.deserialize_any(TopLevelVisitor)
    }
}

/// Checks the size and the JSON syntax of a body and returns its top-level keys.
pub fn parse_body(body: &[u8]) -> Result<Entries, RequestError> {
    within_limit(body, MAX_BODY_BYTES)?;
    match serde_json::from_slice::<TopLevel>(body) {
        Ok(TopLevel::Object(entries)) => Ok(entries),
        Ok(TopLevel::Other(found)) => Err(RequestError::NotAnObject { found }),
        Err(error) => Err(malformed(&error)),
    }
}

/// Parses and validates a request body in one call: what the page and the worker both run.
pub fn parse_application(body: &[u8]) -> Result<Application, RequestError> {
    validate(&parse_body(body)?).map_err(RequestError::Invalid)
}

/// The typed values of the fields that passed their own rule.
#[derive(Default)]
struct Partial {
    integers: [Option<i64>; 3],
    money: [Option<f64>; 6],
    home: Option<Home>,
    marital: Option<Marital>,
    records: Option<Records>,
    job: Option<Job>,
    applicant_id: Option<String>,
    branch: Option<String>,
}

impl Partial {
    fn integer(&self, field: Field) -> Option<i64> {
        integer_slot(field).and_then(|slot| self.integers[slot])
    }

    fn money(&self, field: Field) -> Option<f64> {
        money_slot(field).and_then(|slot| self.money[slot])
    }
}

fn integer_slot(field: Field) -> Option<usize> {
    match field {
        Field::Age => Some(0),
        Field::SeniorityYears => Some(1),
        Field::TermMonths => Some(2),
        _ => None,
    }
}

fn money_slot(field: Field) -> Option<usize> {
    match field {
        Field::Income => Some(0),
        Field::Expenses => Some(1),
        Field::Assets => Some(2),
        Field::Debt => Some(3),
        Field::Amount => Some(4),
        Field::Price => Some(5),
        _ => None,
    }
}

/// Validates the top-level keys of a JSON object, reporting every error at once.
pub fn validate(entries: &Entries) -> Result<Application, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut partial = Partial::default();

    for field in Field::ALL {
        let mut occurrences = entries.0.iter().filter(|(key, _)| key == field.name());
        let first = occurrences.next().map(|(_, value)| value);
        if occurrences.next().is_some() {
            errors.push(duplicate_error(field.name()));
            continue;
        }
        match first {
            None | Some(Value::Null) => {
                if field.is_required() {
                    errors.push(field_error(
                        field,
                        ErrorCode::Required,
                        required_message(field),
                    ));
                }
            }
            Some(value) => {
                if let Err(error) = check_field(field, value, &mut partial) {
                    errors.push(error);
                }
            }
        }
    }

    for rule in CrossRule::ALL {
        if let Some(false) = cross_rule_holds(rule, &partial) {
            errors.push(FieldError {
                field: cross_rule_field(rule).name().to_owned(),
                code: ErrorCode::Cross,
                rule: Some(rule),
                message: cross_message(rule),
            });
        }
    }

    let mut reported_unknown: Vec<&str> = Vec::new();
    for (key, _) in &entries.0 {
        if Field::from_name(key).is_none() && !reported_unknown.contains(&key.as_str()) {
            let repeated = entries.0.iter().filter(|(other, _)| other == key).count() > 1;
            errors.push(if repeated {
                duplicate_error(key)
            } else {
                unknown_error(key)
            });
            reported_unknown.push(key);
        }
    }

    if !errors.is_empty() {
        return Err(errors);
    }
    partial.into_application().ok_or_else(|| {
        // Unreachable by construction: every required field either passed or produced an error.
        vec![FieldError {
            field: String::new(),
            code: ErrorCode::Required,
            rule: None,
            message: Message::new("Faltan campos.", "Fields are missing."),
        }]
    })
}

impl Partial {
    fn into_application(self) -> Option<Application> {
        let count = |field| {
            self.integer(field)
                .and_then(|value| u32::try_from(value).ok())
        };
        Some(Application {
            seniority_years: count(Field::SeniorityYears)?,
            home: self.home?,
            term_months: count(Field::TermMonths)?,
            age: count(Field::Age)?,
            marital: self.marital?,
            records: self.records?,
            job: self.job?,
            expenses: self.money(Field::Expenses)?,
            income: self.money(Field::Income)?,
            assets: self.money(Field::Assets)?,
            debt: self.money(Field::Debt)?,
            amount: self.money(Field::Amount)?,
            price: self.money(Field::Price)?,
            applicant_id: self.applicant_id,
            branch: self.branch,
        })
    }
}

/// `None` when a field the rule reads is missing or invalid: that field already has its own error.
fn cross_rule_holds(rule: CrossRule, partial: &Partial) -> Option<bool> {
    match rule {
        CrossRule::AmountWithinPrice => {
            Some(partial.money(Field::Amount)? <= partial.money(Field::Price)?)
        }
        CrossRule::WorkingAge => Some(
            partial.integer(Field::Age)? - partial.integer(Field::SeniorityYears)?
                >= MIN_WORKING_AGE,
        ),
        CrossRule::AmountToIncome => Some(
            partial.money(Field::Amount)?
                <= MAX_AMOUNT_TO_MONTHLY_INCOME * partial.money(Field::Income)?,
        ),
    }
}

fn check_field(field: Field, value: &Value, partial: &mut Partial) -> Result<(), FieldError> {
    match field.rule() {
        FieldRule::Integer { min, max } => {
            let number = match value {
                Value::Number(number) => number,
                _ => return Err(type_error(field, value, "integer")),
            };
            let integer = match (number.as_i64(), number.as_u64()) {
                (Some(integer), _) => integer,
                (None, Some(_)) => i64::MAX,
                (None, None) => return Err(type_error(field, value, "integer")),
            };
            if integer < min || integer > max {
                return Err(field_error(
                    field,
                    ErrorCode::Range,
                    range_message(field, |_| (min.to_string(), max.to_string())),
                ));
            }
            if let Some(slot) = integer_slot(field) {
                partial.integers[slot] = Some(integer);
            }
        }
        FieldRule::Money { min, max } => {
            let amount = match value {
                Value::Number(number) => number.as_f64().unwrap_or(f64::INFINITY),
                _ => return Err(type_error(field, value, "number")),
            };
            if !(min..=max).contains(&amount) {
                return Err(field_error(
                    field,
                    ErrorCode::Range,
                    range_message(field, |lang| {
                        (format_money(min, lang), format_money(max, lang))
                    }),
                ));
            }
            if !has_at_most_two_decimals(amount) {
                return Err(field_error(
                    field,
                    ErrorCode::Format,
                    about(field, "como máximo dos decimales.", "at most two decimals."),
                ));
            }
            if let Some(slot) = money_slot(field) {
                partial.money[slot] = Some(amount);
            }
        }
        FieldRule::Choice(allowed) => {
            let text = match value {
                Value::String(text) => text,
                _ => return Err(type_error(field, value, "string")),
            };
            if !allowed.contains(&text.as_str()) {
                let list = allowed.join(", ");
                return Err(field_error(
                    field,
                    ErrorCode::Enum,
                    about(
                        field,
                        format!("valor no admitido; use uno de: {list}."),
                        format!("unsupported value; use one of: {list}."),
                    ),
                ));
            }
            match field {
                Field::Home => partial.home = Home::parse(text),
                Field::Marital => partial.marital = Marital::parse(text),
                Field::Records => partial.records = Records::parse(text),
                Field::Job => partial.job = Job::parse(text),
                _ => {}
            }
        }
        FieldRule::Text { max_chars, charset } => {
            let text = match value {
                Value::String(text) => text,
                _ => return Err(type_error(field, value, "string")),
            };
            let chars = text.chars().count();
            let clean = text.chars().all(|c| charset.allows(c))
                && !text.starts_with(' ')
                && !text.ends_with(' ');
            if chars == 0 || chars > max_chars || !clean {
                return Err(field_error(
                    field,
                    ErrorCode::Format,
                    text_format_message(field, max_chars),
                ));
            }
            match field {
                Field::ApplicantId => partial.applicant_id = Some(text.clone()),
                Field::Branch => partial.branch = Some(text.clone()),
                _ => {}
            }
        }
    }
    Ok(())
}

/// Cents are the finest unit of money; the tolerance absorbs binary floating point.
fn has_at_most_two_decimals(amount: f64) -> bool {
    let cents = amount * 100.0;
    (cents - cents.round()).abs() < 1e-6 * cents.abs().max(1.0)
}
