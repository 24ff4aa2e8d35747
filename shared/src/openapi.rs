//! The OpenAPI 3.1 description of the HTTP API, built from the wire types of this crate.
//!
//! Every schema comes from the type the worker serializes (`schemars`, serialize contract),
//! so a field added to a wire type appears in the description without anyone writing it.
//! The operations are listed in [`operations`]; the worker's route test checks that list
//! against its router, and the HTTP suite validates every answer it receives against the
//! document, so neither side can drift. `cargo xtask openapi` writes the document to
//! `api/openapi.json`, which the edge serves as a static file.

mod data_protection_operations;
mod operations;
mod webhook_operations;

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use crate::contract::request::{MAX_REQUEST_ID_CHARS, REQUEST_ID_PATTERN};

use crate::api::ConflictResponse;
use crate::contract::errors::ErrorResponse;
use crate::lending::access::ACCESS_JWT_HEADER;
use crate::lending::officers::{Permission, ROLES};

pub use operations::operations;

/// Where the generator writes the document, from the workspace root.
pub const OPENAPI_FILE: &str = "api/openapi.json";

pub use crate::contract::paths::Method;

/// A request id, as `is_valid_request_id` reads it: the path's and the header's schema.
pub fn request_id_schema() -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_REQUEST_ID_CHARS,
        "pattern": REQUEST_ID_PATTERN,
    })
}

/// What a successful answer carries.
pub enum Content {
    /// `application/json` of this schema.
    Json(Value),
    /// Text of this media type (CSV, Prometheus exposition).
    Text(&'static str),
}

/// One operation of the API.
pub struct Operation {
    pub method: Method,
    /// The path template, with `{name}` for each path parameter.
    pub path: String,
    pub id: &'static str,
    pub tag: Tag,
    pub summary: &'static str,
    pub description: &'static str,
    /// What an officer's account needs; `None` for public operations.
    pub permission: Option<Permission>,
    pub parameters: Vec<Value>,
    /// The JSON request body's schema, when the operation takes one.
    pub body: Option<Value>,
    /// The status of a successful answer and its content.
    pub success: (u16, Content),
    /// Answers other than success and the common errors: status, description, schema.
    pub other: Vec<(u16, &'static str, Value)>,
}

/// The groups the operations are listed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    Scoring,
    Review,
    Monitoring,
    Outcomes,
    Operations,
    Webhooks,
    DataProtection,
    Account,
}

impl Tag {
    pub const ALL: [Tag; 8] = [
        Tag::Scoring,
        Tag::Review,
        Tag::Monitoring,
        Tag::Outcomes,
        Tag::Operations,
        Tag::Webhooks,
        Tag::DataProtection,
        Tag::Account,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Tag::Scoring => "scoring",
            Tag::Review => "review",
            Tag::Monitoring => "monitoring",
            Tag::Outcomes => "outcomes",
            Tag::Operations => "operations",
            Tag::Webhooks => "webhooks",
            Tag::DataProtection => "data_protection",
            Tag::Account => "account",
        }
    }

    fn description(self) -> &'static str {
        match self {
            Tag::Scoring => "Score applications one at a time, in batches, or as an event stream.",
            Tag::Review => "The review queue, officers' decisions, second approvals and the applicant's request for a person.",
            Tag::Monitoring => "Live KPIs, count windows, drift, decisions and their export.",
            Tag::Outcomes => "Loan outcomes, back-testing, fairness, the shadow challenger and what-if simulation.",
            Tag::Operations => "Health, metrics, dead letters and the audit trail.",
            Tag::Webhooks => "Subscribers that hear about decisions, final decisions and outcomes, signed with HMAC-SHA256; deliveries given up on, and their replay.",
            Tag::DataProtection => "The applicant's and the data-protection officer's rights: contest, erasure (blocking, then destruction) and subject access; the retention job.",
            Tag::Account => "The signed-in account.",
        }
    }
}

/// Names the schemes in `components.securitySchemes`.
const BEARER: &str = "bearer";
const ACCESS: &str = "access";

/// Builds schemas for the operations, all into one set of components.
pub struct Schemas {
    generator: SchemaGenerator,
}

impl Default for Schemas {
    fn default() -> Schemas {
        Schemas::new()
    }
}

impl Schemas {
    pub fn new() -> Schemas {
        let settings = SchemaSettings::draft2020_12()
            .for_serialize()
            .with(|settings| {
                settings.definitions_path = "/components/schemas".into();
                settings.meta_schema = None;
            });
        Schemas {
            generator: settings.into_generator(),
        }
    }

    /// A reference to `T`'s schema, which joins the components.
    pub fn of<T: JsonSchema>(&mut self) -> Value {
        self.generator.subschema_for::<T>().to_value()
    }
}

/// The whole document.
pub fn document() -> Value {
    let mut schemas = Schemas::new();
    let error = schemas.of::<ErrorResponse>();
    let conflict = schemas.of::<ConflictResponse>();
    let mut paths = Map::new();
    for operation in operations(&mut schemas) {
        let item = paths
            .entry(operation.path.clone())
            .or_insert_with(|| json!({}));
        item[operation.method.key()] = operation_object(&operation, &error, &conflict);
    }
    let mut components = Value::Object(schemas.generator.take_definitions(true));
    plain_links(&mut components);
    json!({
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Valle",
            "version": env!("CARGO_PKG_VERSION"),
            "summary": "Real-time loan-default scoring for a savings cooperative.",
            "description": concat!(
                "Every answer is JSON unless stated; every refusal is an `ErrorResponse` whose ",
                "`error.code` is one of `ErrorCode` and whose `error.fields` name each bad field. ",
                "Send `X-Request-ID` (a UUID) to make a write idempotent: the same id answers ",
                "the same decision. Officers' operations need a bearer token or a Cloudflare ",
                "Access sign-in; each names the permission it needs in `x-valle-permission`."
            ),
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" },
        },
        "tags": Tag::ALL.iter().map(|tag| json!({
            "name": tag.name(),
            "description": tag.description(),
        })).collect::<Vec<_>>(),
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                BEARER: {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An officer's or integrator's access key.",
                },
                ACCESS: {
                    "type": "apiKey",
                    "in": "header",
                    "name": ACCESS_JWT_HEADER,
                    "description": "The Cloudflare Access sign-in the edge adds in front of the page.",
                },
            },
        },
    })
}

/// The document as the generator writes it: pretty, with a final newline.
pub fn document_text(document: &Value) -> String {
    let mut text = serde_json::to_string_pretty(document).unwrap_or_default();
    text.push('\n');
    text
}

/// Descriptions come from doc comments; their rustdoc links read as plain code here.
fn plain_links(schema: &mut Value) {
    match schema {
        Value::Object(object) => {
            for (key, value) in object.iter_mut() {
                match value {
                    Value::String(text) if key == "description" => {
                        *text = text.replace("[`", "`").replace("`]", "`");
                    }
                    _ => plain_links(value),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(plain_links),
        _ => {}
    }
}

fn operation_object(operation: &Operation, error: &Value, conflict: &Value) -> Value {
    let mut responses = Map::new();
    let (status, content) = &operation.success;
    let success_content = match content {
        Content::Json(schema) => json!({ "application/json": { "schema": schema } }),
        Content::Text(media_type) => {
            json!({ media_type.to_string(): { "schema": { "type": "string" } } })
        }
    };
    responses.insert(
        status.to_string(),
        json!({ "description": "Success.", "content": success_content }),
    );
    for (status, description, schema) in &operation.other {
        responses.insert(status.to_string(), json_response(description, schema));
    }
    if operation.tag == Tag::Review && operation.method == Method::Post {
        responses.insert(
            "409".to_owned(),
            json_response(
                "The review changed since it was read: the current review comes back.",
                conflict,
            ),
        );
    }
    responses.insert(
        "4XX".to_owned(),
        json_response(
            "Refused: `error.code` says why, `error.fields` which fields.",
            error,
        ),
    );
    responses.insert(
        "5XX".to_owned(),
        json_response(
            "Storage or the model was unavailable; nothing was half written. Retry.",
            error,
        ),
    );
    let mut object = json!({
        "operationId": operation.id,
        "tags": [operation.tag.name()],
        "summary": operation.summary,
        "description": operation.description,
        "responses": responses,
    });
    if !operation.parameters.is_empty() {
        object["parameters"] = Value::Array(operation.parameters.clone());
    }
    if let Some(schema) = &operation.body {
        object["requestBody"] = json!({
            "required": true,
            "content": { "application/json": { "schema": schema } },
        });
    }
    match operation.permission {
        Some(permission) => {
            let roles: Vec<&str> = ROLES
                .iter()
                .filter(|role| role.allows(permission))
                .map(|role| role.as_str())
                .collect();
            object["security"] = json!([{ BEARER: [] }, { ACCESS: [] }]);
            object["x-valle-permission"] = json!(permission);
            object["x-valle-roles"] = json!(roles);
        }
        None => object["security"] = json!([]),
    }
    object
}

fn json_response(description: &str, schema: &Value) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": schema } },
    })
}

/// A query parameter.
pub fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({
        "name": name,
        "in": "query",
        "required": false,
        "description": description,
        "schema": schema,
    })
}

/// A path parameter.
pub fn path_parameter(name: &str, description: &str, schema: Value) -> Value {
    json!({
        "name": name,
        "in": "path",
        "required": true,
        "description": description,
        "schema": schema,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_is_in_the_document_once() {
        let document = document();
        let mut seen = std::collections::BTreeSet::new();
        for operation in operations(&mut Schemas::new()) {
            assert!(seen.insert(operation.id), "{} twice", operation.id);
            let object = &document["paths"][&operation.path][operation.method.key()];
            assert_eq!(object["operationId"], operation.id);
        }
    }

    #[test]
    fn every_reference_names_a_component() {
        let document = document();
        let text = document.to_string();
        let schemas = document["components"]["schemas"]
            .as_object()
            .expect("components");
        for reference in text.split("\"$ref\":\"").skip(1) {
            let name = reference
                .split('"')
                .next()
                .and_then(|target| target.strip_prefix("#/components/schemas/"))
                .expect("a component reference");
            assert!(
                schemas.contains_key(name),
                "{name} is referenced, not defined"
            );
        }
    }
}
