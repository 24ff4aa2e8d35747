//! The served OpenAPI description: the committed file, valid OpenAPI 3.1, rendered at
//! `/docs/`. (Every other test checks its answers against it through `Client`.)

use std::path::Path;
use std::process::Command;

use valle_shared::contract::paths::{DOCS_PATH, OPENAPI_PATH};
use valle_tests::contract::DESCRIPTION;
use valle_tests::Client;

#[test]
fn the_served_description_is_the_committed_one() {
    let answer = Client::new().get(OPENAPI_PATH);
    assert_eq!(answer.status, 200);
    assert!(
        answer
            .header("content-type")
            .is_some_and(|media_type| media_type.starts_with("application/json")),
        "{:?}",
        answer.header("content-type")
    );
    assert!(
        answer.text() == DESCRIPTION,
        "the served description differs"
    );
}

/// The validator is an npm package the project installs (`validate-api`).
#[test]
fn the_description_passes_an_openapi_3_1_validator() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let output = Command::new(root.join("node_modules/.bin/validate-api"))
        .arg(root.join("api/openapi.json"))
        .output()
        .expect("node_modules/.bin/validate-api (npm ci installs it)");
    let report: serde_json::Value =
        serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!(
                "validate-api printed no JSON ({error}): {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        });
    assert_eq!(report["valid"], true, "{report:#}");
    let document: serde_json::Value = serde_json::from_str(DESCRIPTION).expect("json");
    assert_eq!(document["openapi"], "3.1.0");
}

#[test]
fn the_docs_page_lists_every_operation() {
    let answer = Client::new().get(DOCS_PATH);
    assert_eq!(answer.status, 200);
    let page = answer.text();
    let document: serde_json::Value = serde_json::from_str(DESCRIPTION).expect("json");
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        for (method, operation) in item.as_object().into_iter().flatten() {
            let id = operation["operationId"].as_str().unwrap_or_default();
            assert!(
                page.contains(&format!("id=\"{id}\"")),
                "{method} {path}: {id}"
            );
        }
    }
    let style = Client::new().get(&format!("{DOCS_PATH}docs.css"));
    assert_eq!(style.status, 200);
}
