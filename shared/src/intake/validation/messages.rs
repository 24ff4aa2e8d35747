//! The bilingual messages validation answers with: each names the field by its label in
//! the language, then says what is wrong.

use std::fmt;

use serde_json::Value;

use super::{MAX_AMOUNT_TO_MONTHLY_INCOME, MIN_WORKING_AGE};
use crate::contract::codes::ErrorCode;
use crate::contract::errors::{CrossRule, FieldError};
use crate::contract::i18n::{Lang, Message};
use crate::intake::application::{Charset, Field, FieldRule};

pub(super) fn field_error(field: Field, code: ErrorCode, message: Message) -> FieldError {
    FieldError::new(field.name(), code, message)
}

/// A message about one field: its label in each language, then what is wrong.
pub(super) fn about(field: Field, es: impl fmt::Display, en: impl fmt::Display) -> Message {
    Message::new(
        format!("{}: {es}", field.label(Lang::Es)),
        format!("{}: {en}", field.label(Lang::En)),
    )
}

pub(super) fn required_message(field: Field) -> Message {
    about(field, "campo obligatorio.", "this field is required.")
}

pub(super) fn type_error(field: Field, value: &Value, expected: &'static str) -> FieldError {
    let (es_expected, en_expected) = match expected {
        "integer" => ("un número entero", "a whole number"),
        "number" => ("un número", "a number"),
        _ => ("un texto", "a text"),
    };
    let (es_found, en_found) = match value {
        Value::Bool(_) => ("un booleano", "a boolean"),
        Value::Number(_) => ("un número con decimales", "a decimal number"),
        Value::String(_) => ("un texto", "a text"),
        Value::Array(_) => ("una lista", "a list"),
        Value::Object(_) => ("un objeto", "an object"),
        Value::Null => ("null", "null"),
    };
    field_error(
        field,
        ErrorCode::Type,
        about(
            field,
            format!("debe ser {es_expected}, no {es_found}."),
            format!("must be {en_expected}, not {en_found}."),
        ),
    )
}

/// `bounds` writes the two limits as the given language writes numbers.
pub(super) fn range_message(field: Field, bounds: impl Fn(Lang) -> (String, String)) -> Message {
    let (es_min, es_max) = bounds(Lang::Es);
    let (en_min, en_max) = bounds(Lang::En);
    about(
        field,
        format!("debe estar entre {es_min} y {es_max}."),
        format!("must be between {en_min} and {en_max}."),
    )
}

pub(super) fn text_format_message(field: Field, max_chars: usize) -> Message {
    let (es, en) = match field.rule() {
        FieldRule::Text {
            charset: Charset::Identifier,
            ..
        } => (
            "letras sin acentos, cifras, '.', '_' o '-'",
            "ASCII letters, digits, '.', '_' or '-'",
        ),
        _ => (
            "letras, cifras, espacios, '.', '_' o '-'",
            "letters, digits, spaces, '.', '_' or '-'",
        ),
    };
    about(
        field,
        format!("de 1 a {max_chars} caracteres ({es}), sin espacios al principio ni al final."),
        format!("1 to {max_chars} characters ({en}), no leading or trailing spaces."),
    )
}

pub(super) fn cross_message(rule: CrossRule) -> Message {
    match rule {
        CrossRule::AmountWithinPrice => Message::new(
            "El importe solicitado no puede superar el precio del bien.",
            "The requested amount cannot exceed the price of the good.",
        ),
        CrossRule::WorkingAge => Message::new(
            format!("La antigüedad laboral implica haber empezado a trabajar antes de los {MIN_WORKING_AGE} años."),
            format!("The years with the employer imply starting work before age {MIN_WORKING_AGE}."),
        ),
        CrossRule::AmountToIncome => {
            let ratio = MAX_AMOUNT_TO_MONTHLY_INCOME;
            Message::new(
                format!("El importe solicitado supera {ratio} veces los ingresos mensuales."),
                format!("The requested amount exceeds {ratio} times the monthly income."),
            )
        }
    }
}

/// Unknown keys are echoed back cut short, so a hostile key cannot inflate the response.
pub(super) fn echoed_key(key: &str) -> String {
    key.chars().take(64).collect()
}

pub(super) fn unknown_error(key: &str) -> FieldError {
    let shown = echoed_key(key);
    FieldError {
        field: shown.clone(),
        code: ErrorCode::UnknownField,
        rule: None,
        message: Message::new(
            format!("Campo desconocido: «{shown}»."),
            format!("Unknown field: \"{shown}\"."),
        ),
    }
}

pub(super) fn duplicate_error(key: &str) -> FieldError {
    let shown = echoed_key(key);
    FieldError {
        field: shown.clone(),
        code: ErrorCode::DuplicateField,
        rule: None,
        message: Message::new(
            format!("El campo «{shown}» aparece más de una vez."),
            format!("The field \"{shown}\" appears more than once."),
        ),
    }
}
