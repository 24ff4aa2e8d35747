//! Reading a JSON request body: its size, its syntax and its unknown keys, checked the same
//! way by every parser.

use serde_json::Value;

use crate::contract::errors::{FieldError, RequestError};

/// How a refusal names the kind of a JSON value ("a string", "an array").
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Refuses a body past `limit` bytes before anything reads it.
pub fn within_limit(body: &[u8], limit: usize) -> Result<(), RequestError> {
    if body.len() > limit {
        return Err(RequestError::TooLarge {
            limit,
            actual: body.len(),
        });
    }
    Ok(())
}

/// A body that is not JSON, told by serde_json's category and position, never by the input
/// itself: every parser answers the same detail for the same bytes.
pub fn malformed(error: &serde_json::Error) -> RequestError {
    let kind = match error.classify() {
        serde_json::error::Category::Io => "read error",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unsupported value",
        serde_json::error::Category::Eof => "unexpected end of input",
    };
    RequestError::Malformed {
        detail: format!("{kind} at line {} column {}", error.line(), error.column()),
    }
}

/// A JSON object body's members, and an `E_UNKNOWN_FIELD` for each key it should not have.
pub struct ObjectBody {
    pub object: serde_json::Map<String, Value>,
    pub errors: Vec<FieldError>,
}

/// Reads a body that must be one JSON object of at most `limit` bytes, whose keys are among
/// `known`; the caller reads the members and adds its own field errors.
pub fn read_object(body: &[u8], limit: usize, known: &[&str]) -> Result<ObjectBody, RequestError> {
    within_limit(body, limit)?;
    let value: Value = serde_json::from_slice(body).map_err(|error| malformed(&error))?;
    let Value::Object(object) = value else {
        return Err(RequestError::NotAnObject {
            found: json_kind(&value),
        });
    };
    let errors = object
        .keys()
        .filter(|key| !known.contains(&key.as_str()))
        .map(|key| FieldError::unknown(key))
        .collect();
    Ok(ObjectBody { object, errors })
}
