//! `cargo xtask openapi`: writes the OpenAPI description (`api/openapi.json`) and its page
//! for people (`api/docs.html`), both from `valle_shared::openapi`. The page is plain HTML,
//! no script: it reads offline and under the page's Content-Security-Policy.

use std::fmt::Write;
use std::path::Path;

use serde_json::Value;
use valle_shared::openapi::{document, document_text, OPENAPI_FILE};

use crate::{root, Result};

/// Where the rendered page is written, from the workspace root.
pub const DOCS_FILE: &str = "api/docs.html";
/// Its stylesheet, served beside it.
pub const DOCS_STYLE_FILE: &str = "api/docs.css";

/// Both files as the generator makes them, from one build of the document.
fn generated() -> [(&'static str, String); 2] {
    let document = document();
    [
        (OPENAPI_FILE, document_text(&document)),
        (DOCS_FILE, render(&document)),
    ]
}

/// Writes both files.
pub fn write() -> Result {
    for (file, text) in generated() {
        std::fs::write(root().join(file), text).map_err(|error| format!("{file}: {error}"))?;
        eprintln!("    wrote {file}");
    }
    Ok(())
}

/// Copies the description and its page into the site: the description where the API
/// serves it, the page at `/docs/`.
pub fn copy_into(dist: &Path) -> Result {
    let copies = [
        (OPENAPI_FILE, "api/v1/openapi.json"),
        (DOCS_FILE, "docs/index.html"),
        (DOCS_STYLE_FILE, "docs/docs.css"),
    ];
    for (from, to) in copies {
        let target = dist.join(to);
        if let Some(folder) = target.parent() {
            std::fs::create_dir_all(folder).map_err(|error| format!("{to}: {error}"))?;
        }
        std::fs::copy(root().join(from), &target)
            .map_err(|error| format!("{from} -> dist/{to}: {error}"))?;
    }
    Ok(())
}

/// The page: every operation by tag, then every schema.
pub fn render(document: &Value) -> String {
    let info = &document["info"];
    let mut page = String::new();
    let title = format!("{} API {}", text(&info["title"]), text(&info["version"]));
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<link rel=\"stylesheet\" href=\"docs.css\">\n</head>\n<body>\n\
         <header><h1>{title}</h1><p>{}</p><p>{}</p>\
         <p>Machine-readable: <a href=\"/api/v1/openapi.json\">OpenAPI 3.1</a>.</p></header>\n",
        escape(text(&info["summary"])),
        escape(text(&info["description"])),
    );
    let tags = document["tags"].as_array().cloned().unwrap_or_default();
    page.push_str("<nav><ul>\n");
    for tag in &tags {
        let name = text(&tag["name"]);
        let _ = writeln!(page, "<li><a href=\"#tag-{name}\">{name}</a></li>");
    }
    page.push_str("<li><a href=\"#schemas\">schemas</a></li>\n</ul></nav>\n<main>\n");
    let paths = document["paths"].as_object().cloned().unwrap_or_default();
    for tag in &tags {
        let name = text(&tag["name"]);
        let _ = writeln!(
            page,
            "<section id=\"tag-{name}\"><h2>{name}</h2><p>{}</p>",
            escape(text(&tag["description"]))
        );
        for (path, item) in &paths {
            for (method, operation) in item.as_object().into_iter().flatten() {
                if operation["tags"][0] == tag["name"] {
                    render_operation(&mut page, method, path, operation);
                }
            }
        }
        page.push_str("</section>\n");
    }
    page.push_str("<section id=\"schemas\"><h2>schemas</h2>\n");
    let schemas = document["components"]["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (name, schema) in &schemas {
        render_schema(&mut page, name, schema);
    }
    page.push_str("</section>\n</main>\n</body>\n</html>\n");
    page
}

fn render_operation(page: &mut String, method: &str, path: &str, operation: &Value) {
    let _ = write!(
        page,
        "<article id=\"{id}\"><h3><span class=\"method\">{method}</span> <code>{path}</code></h3>\
         <p><strong>{summary}</strong></p>",
        id = text(&operation["operationId"]),
        method = method.to_uppercase(),
        path = escape(path),
        summary = escape(text(&operation["summary"])),
    );
    let description = text(&operation["description"]);
    if !description.is_empty() {
        let _ = write!(page, "<p>{}</p>", escape(description));
    }
    match operation["x-valle-permission"].as_str() {
        Some(permission) => {
            let roles = strings(&operation["x-valle-roles"]);
            let _ = write!(
                page,
                "<p class=\"access\">Needs <code>{permission}</code>: {}.</p>",
                roles.join(", ")
            );
        }
        None => page.push_str("<p class=\"access\">Public.</p>"),
    }
    if let Some(parameters) = operation["parameters"].as_array() {
        page.push_str(
            "<table><thead><tr><th>parameter</th><th>in</th><th>type</th><th>description</th></tr></thead><tbody>",
        );
        for parameter in parameters {
            let required = if parameter["required"] == true {
                " (required)"
            } else {
                ""
            };
            let _ = write!(
                page,
                "<tr><td><code>{}</code>{required}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(text(&parameter["name"])),
                text(&parameter["in"]),
                type_of(&parameter["schema"]),
                escape(text(&parameter["description"])),
            );
        }
        page.push_str("</tbody></table>");
    }
    let body = &operation["requestBody"]["content"]["application/json"]["schema"];
    if !body.is_null() {
        let _ = write!(page, "<p>Body: {}</p>", type_of(body));
        if body["properties"].is_object() {
            render_properties(page, body);
        }
    }
    page.push_str(
        "<table><thead><tr><th>status</th><th>answer</th><th>description</th></tr></thead><tbody>",
    );
    for (status, response) in operation["responses"].as_object().into_iter().flatten() {
        let content = response["content"].as_object();
        let answer = content
            .into_iter()
            .flatten()
            .map(|(media_type, content)| match media_type.as_str() {
                "application/json" => type_of(&content["schema"]),
                other => format!("<code>{}</code>", escape(other)),
            })
            .collect::<Vec<_>>()
            .join(" ");
        let _ = write!(
            page,
            "<tr><td>{status}</td><td>{answer}</td><td>{}</td></tr>",
            escape(text(&response["description"]))
        );
    }
    page.push_str("</tbody></table></article>\n");
}

fn render_schema(page: &mut String, name: &str, schema: &Value) {
    let _ = write!(page, "<article id=\"schema-{name}\"><h3>{name}</h3>");
    let description = text(&schema["description"]);
    if !description.is_empty() {
        let _ = write!(page, "<p>{}</p>", escape(description));
    }
    if schema["properties"].is_object() {
        render_properties(page, schema);
    } else {
        let _ = write!(page, "<p>{}</p>", type_of(schema));
    }
    page.push_str("</article>\n");
}

fn render_properties(page: &mut String, schema: &Value) {
    let required = strings(&schema["required"]);
    page.push_str(
        "<table><thead><tr><th>field</th><th>type</th><th>description</th></tr></thead><tbody>",
    );
    for (field, property) in schema["properties"].as_object().into_iter().flatten() {
        let mark = if required.contains(&field.as_str()) {
            ""
        } else {
            " (optional)"
        };
        let _ = write!(
            page,
            "<tr><td><code>{}</code>{mark}</td><td>{}</td><td>{}</td></tr>",
            escape(field),
            type_of(property),
            escape(text(&property["description"])),
        );
    }
    page.push_str("</tbody></table>");
}

/// A schema in a few words, with links to the components it names.
fn type_of(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("<a href=\"#schema-{name}\">{name}</a>");
    }
    if let Some(values) = schema["enum"].as_array() {
        let values: Vec<String> = values
            .iter()
            .map(|value| format!("<code>{}</code>", escape(&value.to_string())))
            .collect();
        return format!("one of {}", values.join(", "));
    }
    if let Some(value) = schema.get("const") {
        return format!("<code>{}</code>", escape(&value.to_string()));
    }
    for combinator in ["anyOf", "oneOf", "allOf"] {
        if let Some(options) = schema[combinator].as_array() {
            let options: Vec<String> = options.iter().map(type_of).collect();
            let joiner = if combinator == "allOf" {
                " and "
            } else {
                " or "
            };
            return options.join(joiner);
        }
    }
    let kinds: Vec<String> = match &schema["type"] {
        Value::String(kind) => vec![kind.clone()],
        Value::Array(kinds) => kinds.iter().map(|kind| text(kind).to_owned()).collect(),
        _ => return "any".to_owned(),
    };
    kinds
        .iter()
        .map(|kind| match kind.as_str() {
            "array" => format!("array of {}", type_of(&schema["items"])),
            "object" if schema["additionalProperties"].is_object() => {
                format!("map to {}", type_of(&schema["additionalProperties"]))
            }
            other => match schema["format"].as_str() {
                Some(format) => format!("{other} ({format})"),
                None => other.to_owned(),
            },
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

/// The strings of an array (`required`, `x-valle-roles`).
fn strings(value: &Value) -> Vec<&str> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or_default()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed files are what the generator writes; `cargo xtask openapi` updates them.
    #[test]
    fn the_committed_description_and_page_are_current() {
        for (file, expected) in generated() {
            let committed = std::fs::read_to_string(root().join(file)).unwrap_or_default();
            assert!(
                committed == expected,
                "{file} is not what the wire types describe: run `cargo xtask openapi`"
            );
        }
    }

    #[test]
    fn the_page_names_every_operation_and_schema() {
        let document = document();
        let page = render(&document);
        for item in document["paths"].as_object().into_iter().flatten() {
            for operation in item.1.as_object().into_iter().flatten() {
                let id = text(&operation.1["operationId"]);
                assert!(page.contains(&format!("id=\"{id}\"")), "{id}");
            }
        }
        for name in document["components"]["schemas"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, _)| name)
        {
            assert!(page.contains(&format!("id=\"schema-{name}\"")), "{name}");
        }
    }
}
