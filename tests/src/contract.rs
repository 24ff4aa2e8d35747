//! The OpenAPI description as a check on answers: every answer the HTTP suite receives goes
//! through [`Contract::check`], so a wire type and its description cannot drift apart.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use jsonschema::Validator;
use serde_json::{json, Value};

/// The committed description, which the edge serves as a static file.
pub const DESCRIPTION: &str = include_str!("../../api/openapi.json");

/// The documented operations and a validator for each documented JSON answer.
pub struct Contract {
    operations: Vec<Documented>,
    /// Answers to paths or methods the API does not have: its JSON error.
    refusal: Validator,
}

struct Documented {
    method: String,
    /// The path template's segments; `None` stands for a path parameter.
    segments: Vec<Option<String>>,
    /// By status key (`200`, `4XX`): a validator for a JSON answer, `None` for any other.
    answers: BTreeMap<String, Option<Validator>>,
}

/// The contract, compiled once per test binary.
pub fn contract() -> &'static Contract {
    static CONTRACT: OnceLock<Contract> = OnceLock::new();
    CONTRACT.get_or_init(|| {
        let document: Value = serde_json::from_str(DESCRIPTION).expect("api/openapi.json");
        Contract::new(&document).unwrap_or_else(|error| panic!("api/openapi.json: {error}"))
    })
}

impl Contract {
    pub fn new(document: &Value) -> Result<Contract, String> {
        let mut components = document["components"].clone();
        strict(&mut components);
        let components = &components;
        let validator = |schema: &Value| {
            let root = json!({ "components": components, "allOf": [schema] });
            jsonschema::draft202012::new(&root).map_err(|error| error.to_string())
        };
        let mut operations = Vec::new();
        for (path, item) in document["paths"].as_object().into_iter().flatten() {
            for (method, operation) in item.as_object().into_iter().flatten() {
                let mut answers = BTreeMap::new();
                for (status, answer) in operation["responses"].as_object().into_iter().flatten() {
                    let schema = &answer["content"]["application/json"]["schema"];
                    let checked = match schema.is_null() {
                        true => None,
                        false => Some(validator(schema)?),
                    };
                    answers.insert(status.clone(), checked);
                }
                operations.push(Documented {
                    method: method.to_uppercase(),
                    segments: path
                        .split('/')
                        .map(|segment| (!segment.starts_with('{')).then(|| segment.to_owned()))
                        .collect(),
                    answers,
                });
            }
        }
        let refusal = validator(&json!({ "$ref": "#/components/schemas/ErrorResponse" }))?;
        Ok(Contract {
            operations,
            refusal,
        })
    }

    /// Whether the answer to `method target` (a path with its query) is one the description
    /// allows: a documented status, and a JSON body that validates against its schema.
    pub fn check(
        &self,
        method: &str,
        target: &str,
        status: u16,
        body: &[u8],
    ) -> Result<(), String> {
        let path = target.split(['?', '#']).next().unwrap_or(target);
        if !is_api(path) || body.is_empty() || method == "OPTIONS" {
            return Ok(());
        }
        let method = if method == "HEAD" { "GET" } else { method };
        let shown = format!("{method} {path} answered {status}");
        let validator = match self.operation(method, path) {
            Some(operation) => {
                let status_text = status.to_string();
                let range = format!("{}XX", status / 100);
                let answer = [status_text.as_str(), range.as_str(), "default"]
                    .iter()
                    .find_map(|key| operation.answers.get(*key))
                    .ok_or_else(|| format!("{shown}: the description has no such answer"))?;
                match answer {
                    Some(validator) => validator,
                    None => return Ok(()),
                }
            }
            None if status >= 400 => &self.refusal,
            None => return Err(format!("{shown}: the description has no such operation")),
        };
        let value: Value = serde_json::from_slice(body).map_err(|error| {
            format!(
                "{shown}: the description says JSON, the body is not ({error}): {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            )
        })?;
        let problems: Vec<String> = validator
            .iter_errors(&value)
            .take(5)
            .map(|error| format!("at {}: {error}", error.instance_path()))
            .collect();
        match problems.is_empty() {
            true => Ok(()),
            false => Err(format!(
                "{shown}: the body does not match the description:\n  {}",
                problems.join("\n  ")
            )),
        }
    }

    /// The documented operation of `method path`; a literal segment beats a parameter.
    fn operation(&self, method: &str, path: &str) -> Option<&Documented> {
        let segments: Vec<&str> = path.split('/').collect();
        self.operations
            .iter()
            .filter(|operation| operation.method == method)
            .filter(|operation| {
                operation.segments.len() == segments.len()
                    && operation
                        .segments
                        .iter()
                        .zip(&segments)
                        .all(|(documented, actual)| {
                            documented
                                .as_deref()
                                .is_none_or(|literal| literal == *actual)
                        })
            })
            .min_by_key(|operation| operation.segments.iter().filter(|s| s.is_none()).count())
    }
}

/// Makes every object schema refuse properties it does not name. The description stays
/// open to additions, as integrators expect; the suite holds the worker to it exactly, so
/// a field the description lacks fails a test.
fn strict(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            let closed = object.contains_key("properties")
                && !object.contains_key("additionalProperties")
                && !["allOf", "anyOf", "oneOf"]
                    .iter()
                    .any(|combinator| object.contains_key(*combinator));
            if closed {
                object.insert("unevaluatedProperties".to_owned(), Value::Bool(false));
            }
            object.values_mut().for_each(strict);
        }
        Value::Array(items) => items.iter_mut().for_each(strict),
        _ => {}
    }
}

/// The paths the API answers itself; the rest are the page's static files.
fn is_api(path: &str) -> bool {
    path.starts_with("/api/") || path == "/healthz" || path == "/metrics"
}

#[cfg(test)]
mod tests {
    use valle_shared::contract::codes::ErrorCode;

    use super::*;

    fn check(method: &str, target: &str, status: u16, body: &str) -> Result<(), String> {
        contract().check(method, target, status, body.as_bytes())
    }

    #[test]
    fn answers_the_description_allows_pass_and_others_fail() {
        let error = json!({"error": {
            "code": ErrorCode::NotFound.as_str(),
            "message": {"es": "x", "en": "x"},
            "fields": [],
            "request_id": "r",
        }})
        .to_string();
        let error = error.as_str();
        let cases: &[(&str, &str, u16, &str, bool)] = &[
            ("GET", "/api/v1/nowhere", 404, error, true),
            ("GET", "/api/v1/nowhere", 200, "{}", false),
            (
                "GET",
                "/api/v1/decisions/6f1c2b7e-3d4a-4e5f-8a9b-0c1d2e3f4a5b",
                404,
                error,
                true,
            ),
            (
                "GET",
                "/api/v1/decisions?limit=1",
                200,
                r#"{"decisions": 3}"#,
                false,
            ),
            (
                "GET",
                "/api/v1/kpis/windows",
                200,
                r#"{"windows": [], "undocumented": 1}"#,
                false,
            ),
            ("GET", "/api/v1/decisions", 400, "not json", false),
            ("GET", "/index.html", 200, "<html>", true),
            ("OPTIONS", "/api/v1/score", 204, "", true),
        ];
        for (method, target, status, body, passes) in cases {
            let outcome = check(method, target, *status, body);
            assert_eq!(
                outcome.is_ok(),
                *passes,
                "{method} {target} {status}: {outcome:?}"
            );
        }
    }

    #[test]
    fn a_literal_segment_beats_a_parameter() {
        let operation = contract()
            .operation("GET", "/api/v1/kpis/windows")
            .expect("documented");
        assert!(operation.segments.iter().all(Option::is_some));
    }
}
