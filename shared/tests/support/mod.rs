//! The conformance cases: request bodies and the exact outcome the shared validator gives.

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code)]
//! Host, browser (wasm32 in Chromium) and edge (HTTP under `wrangler dev`) tests all compare
//! their own outcome with the same recorded one, which makes the three byte-identical.

use serde::{Deserialize, Serialize};
use valle_shared::validation::{parse_application, FieldError};

/// The recorded cases, shared by every test that includes this module.
pub const CASES_JSON: &str = include_str!("../cases/validation.json");

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub name: String,
    pub body: String,
    /// Pads the body with trailing spaces to this many bytes, for the size limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pad_to: Option<usize>,
    pub outcome: Outcome,
}

impl Case {
    pub fn bytes(&self) -> Vec<u8> {
        let mut bytes = self.body.clone().into_bytes();
        if let Some(length) = self.pad_to {
            bytes.resize(length.max(bytes.len()), b' ');
        }
        bytes
    }
}

/// What validation concluded: `OK`, or the request's error code with its field errors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub code: String,
    #[serde(default)]
    pub fields: Vec<FieldError>,
}

pub fn outcome(body: &[u8]) -> Outcome {
    match parse_application(body) {
        Ok(_) => Outcome {
            code: "OK".to_owned(),
            fields: Vec::new(),
        },
        Err(error) => Outcome {
            code: error.code().to_owned(),
            fields: error.field_errors().to_vec(),
        },
    }
}

pub fn cases() -> Vec<Case> {
    serde_json::from_str(CASES_JSON).expect("tests/cases/validation.json parses")
}
