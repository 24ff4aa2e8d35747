//! shared's top-level modules are layers that import one way: a module may name
//! `crate::<lower>` but never `crate::<higher>`. The order below is the one ARCHITECTURE.md
//! draws; this test reads every file under shared/src and fails on an upward reference,
//! on a top-level module missing from the order, and on a path through the root
//! re-exports (which would hide the layer a name comes from).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Lowest first. Each layer may use only those before it.
const LAYERS: [&str; 11] = [
    "contract",
    "intake",
    "decision",
    "outcomes",
    "monitoring",
    "records",
    "lending",
    "webhooks",
    "privacy",
    "api",
    "openapi",
];

fn source_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

/// The top-level module a file belongs to: `contract` for both `contract.rs` and
/// `contract/paths.rs`; `None` for lib.rs.
fn layer_of(path: &Path) -> Option<String> {
    let relative = path.strip_prefix(source_root()).expect("a file under src");
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib").then(|| name.to_string())
}

/// The code of a file without its `//` comments (doc comments included) and string
/// literals, so that prose and messages naming a module do not count as imports.
fn code_of(text: &str) -> String {
    let mut code = String::with_capacity(text.len());
    for line in text.lines() {
        let mut in_string = false;
        let mut escaped = false;
        let mut previous = '\0';
        for character in line.chars() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if character == '\\' {
                    escaped = true;
                } else if character == '"' {
                    in_string = false;
                }
                continue;
            }
            if character == '/' && previous == '/' {
                code.pop();
                break;
            }
            if character == '"' {
                in_string = true;
            } else {
                code.push(character);
            }
            previous = character;
        }
        code.push('\n');
    }
    code
}

/// Every first segment named after `crate::`, including each branch of a
/// `use crate::{a::x, b::{y, z}}` group.
fn crate_references(code: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest_trimmed = rest.trim_start();
        if let Some(group) = rest_trimmed.strip_prefix('{') {
            names.extend(group_heads(group));
        } else {
            names.push(identifier(rest_trimmed));
        }
    }
    names.retain(|name| !name.is_empty());
    names
}

/// The first segment of each top-level branch of a `{…}` group.
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0usize;
    let mut expecting_head = true;
    for (index, character) in group.char_indices() {
        match character {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => expecting_head = true,
            c if expecting_head && depth == 0 && (c.is_alphanumeric() || c == '_') => {
                heads.push(identifier(&group[index..]));
                expecting_head = false;
            }
            _ => {}
        }
    }
    heads
}

fn identifier(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// (from layer, to name) -> the files that make the reference.
fn references() -> BTreeMap<(String, String), Vec<String>> {
    let mut files = Vec::new();
    rust_files(&source_root(), &mut files);
    let mut found: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for path in files {
        let Some(layer) = layer_of(&path) else {
            continue;
        };
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|error| panic!("{}: {error}", path.display()));
        let shown = path
            .strip_prefix(source_root())
            .expect("under src")
            .display()
            .to_string();
        for name in crate_references(&code_of(&text)) {
            if name == layer {
                continue;
            }
            let files = found.entry((layer.clone(), name)).or_default();
            if !files.contains(&shown) {
                files.push(shown.clone());
            }
        }
    }
    found
}

fn rank(name: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| *layer == name)
}

#[test]
fn every_top_level_module_has_a_place_in_the_order() {
    let lib = std::fs::read_to_string(source_root().join("lib.rs")).expect("lib.rs");
    let declared: Vec<String> = code_of(&lib)
        .lines()
        .filter_map(|line| line.trim().strip_prefix("pub mod "))
        .map(identifier)
        .collect();
    let mut missing: Vec<&String> = declared.iter().filter(|m| rank(m).is_none()).collect();
    missing.sort();
    assert!(missing.is_empty(), "modules not in LAYERS: {missing:?}");
    let mut stale: Vec<&str> = LAYERS
        .iter()
        .copied()
        .filter(|layer| !declared.iter().any(|m| m == layer))
        .collect();
    stale.sort();
    assert!(
        stale.is_empty(),
        "LAYERS names modules lib.rs lacks: {stale:?}"
    );
}

#[test]
fn layers_import_only_downwards() {
    let mut upward = Vec::new();
    let mut through_root = Vec::new();
    for ((from, to), files) in references() {
        let Some(from_rank) = rank(&from) else {
            continue;
        };
        match rank(&to) {
            Some(to_rank) if to_rank > from_rank => {
                upward.push(format!("{from} -> {to} ({})", files.join(", ")))
            }
            Some(_) => {}
            None => through_root.push(format!("crate::{to} in {}", files.join(", "))),
        }
    }
    assert!(
        upward.is_empty(),
        "a layer names one above it:\n{}",
        upward.join("\n")
    );
    assert!(
        through_root.is_empty(),
        "name the module a type lives in, not the root re-export:\n{}",
        through_root.join("\n")
    );
}

#[test]
fn the_reference_reader_sees_what_rust_would() {
    let check = |code: &str, expected: &[&str]| {
        assert_eq!(crate_references(&code_of(code)), expected, "{code}");
    };
    check("use crate::contract::paths;", &["contract"]);
    check(
        "use crate::{intake::batch, decision::{model, policy}};",
        &["intake", "decision"],
    );
    check(
        "let x = crate::records::decisions::Page::new();",
        &["records"],
    );
    check("// see crate::lending for why", &[]);
    check("let s = \"crate::api\";", &[]);
    check("use valle_crate::api;", &[]);
    check(
        "use crate::{\n    contract::x,\n    monitoring::y,\n};",
        &["contract", "monitoring"],
    );
}
