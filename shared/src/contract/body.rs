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

/// A JSON object body's members, and an `E_UNKNOWN_FIELD` for each key it should not have.
pub struct ObjectBody {
    pub object: serde_json::Map<String, Value>,
    pub errors: Vec<FieldError>,
}

/// Reads a body that must be one JSON object of at most `limit` bytes, whose keys are among
/// `known`; the caller reads the members and adds its own field errors.
pub fn read_object(body: &[u8], limit: usize, known: &[&str]) -> Result<ObjectBody, RequestError> {
    if body.len() > limit {
        return Err(RequestError::TooLarge {
            limit,
            actual: body.len(),
        });
    }
    let value: Value = serde_json::from_slice(body).map_err(|error| RequestError::Malformed {
        detail: error.to_string(),
    })?;
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
