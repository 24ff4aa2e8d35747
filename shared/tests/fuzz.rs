//! Property-based fuzzing of everything that reads untrusted bytes: the application parser
//! and validation, the events envelope, and the encoder and model behind them. Whatever
//! comes in, nothing panics or loops, and every refusal carries one of the stable codes the
//! edge maps to a 4xx. The regression corpus in `tests/corpus/` (repo root) is replayed
//! with the exact codes it must give.
//!
//! `VALLE_FUZZ_CASES` sets the cases per property (512 by default; `cargo xtask soak` runs
//! 100,000).

use std::collections::BTreeMap;
use std::path::PathBuf;
use valle_shared::contract::codes::ErrorCode;

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use serde_json::{json, Value};
use valle_shared::intake::application::FieldRule;
use valle_shared::intake::batch::BatchError;
use valle_shared::records::events::parse_events;
use valle_shared::{parse_application, Field, Model, RequestError};

/// Every code a refused application may carry; each maps to a 4xx at the edge.
const REQUEST_CODES: [ErrorCode; 4] = [
    ErrorCode::TooLarge,
    ErrorCode::Json,
    ErrorCode::NotObject,
    ErrorCode::Validation,
];
const ENVELOPE_CODES: [ErrorCode; 6] = [
    ErrorCode::TooLarge,
    ErrorCode::Json,
    ErrorCode::NotObject,
    ErrorCode::Validation,
    ErrorCode::BatchEnvelope,
    ErrorCode::BatchSize,
];
const NOW: i64 = 1_795_428_900_000;

fn config() -> Config {
    let cases = std::env::var("VALLE_FUZZ_CASES")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(512);
    Config {
        cases,
        // Failures are kept by hand in tests/corpus/, with the code they must give.
        failure_persistence: Some(Box::new(FileFailurePersistence::Off)),
        ..Config::default()
    }
}

/// Checks a refusal: a known code, both languages' messages, and field errors only for
/// `E_VALIDATION`, each with a known field code.
fn check_refusal(error: &RequestError) -> Result<(), TestCaseError> {
    prop_assert!(REQUEST_CODES.contains(&error.code()), "{}", error.code());
    let message = error.message();
    prop_assert!(!message.es.is_empty() && !message.en.is_empty());
    if let RequestError::Invalid(fields) = error {
        prop_assert!(!fields.is_empty());
        for field in fields {
            prop_assert!(!field.message.es.is_empty() && !field.message.en.is_empty());
            prop_assert!(field.field.chars().count() <= 64, "{}", field.field);
        }
    }
    Ok(())
}

/// Parses `body`; an accepted application must score to a finite probability.
fn check_application(body: &[u8]) -> Result<(), TestCaseError> {
    match parse_application(body) {
        Ok(application) => {
            let model = Model::embedded().map_err(|e| TestCaseError::fail(e.to_string()))?;
            let features = model.encoder().encode(&application);
            prop_assert!(features.iter().all(|x| x.is_finite()), "{features:?}");
            let score = model
                .score(&application)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!((0.0..=1.0).contains(&score.probability));
            prop_assert!(score.reasons.len() <= 4);
            Ok(())
        }
        Err(error) => check_refusal(&error),
    }
}

fn check_events(body: &[u8]) -> Result<(), TestCaseError> {
    match parse_events(body, NOW) {
        Ok(events) => {
            for event in events {
                if let Err(error) = event {
                    prop_assert!(!error.code().is_transient(), "{}", error.code());
                    prop_assert!(!error.message().es.is_empty());
                }
            }
            Ok(())
        }
        Err(error) => {
            prop_assert!(ENVELOPE_CODES.contains(&error.code()), "{}", error.code());
            if let BatchError::Body(inner) = &error {
                check_refusal(inner)?;
            }
            Ok(())
        }
    }
}

/// Any JSON value, nested a few levels, with the awkward numbers and strings.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|x| json!(x)),
        prop_oneof![
            Just("NaN".to_owned()),
            Just("Infinity".to_owned()),
            Just("-0".to_owned()),
            Just("1e309".to_owned()),
            Just("' OR 1=1; DROP TABLE decisions; --".to_owned()),
            Just("../../etc/passwd".to_owned()),
            Just("\u{202e}\u{0000}\u{feff}é👩‍👩‍👧".to_owned()),
            ".{0,40}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// An object with the application's keys (some missing, some extra) and any values.
fn application_like() -> impl Strategy<Value = Value> {
    let fields: Vec<&'static str> = Field::ALL.iter().map(|f| f.name()).collect();
    (
        prop::collection::btree_map(prop::sample::select(fields), any_json(), 0..16),
        prop::collection::btree_map("[a-z_]{1,10}", any_json(), 0..3),
    )
        .prop_map(|(known, extra)| {
            let mut object: BTreeMap<String, Value> =
                known.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            object.extend(extra);
            Value::Object(object.into_iter().collect())
        })
}

/// A value inside (usually) or just outside each field's rule.
fn field_value(field: Field) -> BoxedStrategy<Value> {
    match field.rule() {
        FieldRule::Integer { min, max } => ((min - 2)..=(max + 2)).prop_map(|n| json!(n)).boxed(),
        FieldRule::Money { min, max } => ((min - 1.0)..=(max * 1.01))
            .prop_map(|x| json!((x * 100.0).round() / 100.0))
            .boxed(),
        FieldRule::Choice(values) => prop_oneof![
            9 => prop::sample::select(values).prop_map(|v| json!(v)),
            1 => "[a-z]{1,8}".prop_map(|v| json!(v)),
        ]
        .boxed(),
        FieldRule::Text { max_chars, .. } => {
            prop::string::string_regex(&format!("[A-Za-z0-9 _-]{{1,{}}}", max_chars + 2))
                .map_or_else(
                    |_| Just(json!("x")).boxed(),
                    |s| s.prop_map(|v| json!(v)).boxed(),
                )
        }
    }
}

/// Applications that are mostly valid: every field present, values near their rules.
fn near_valid_application() -> impl Strategy<Value = Value> {
    Field::ALL
        .iter()
        .map(|&field| field_value(field).prop_map(move |v| (field.name(), v)))
        .collect::<Vec<_>>()
        .prop_map(|pairs| {
            Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        })
}

fn golden_bodies() -> Vec<String> {
    let golden: Value =
        serde_json::from_str(include_str!("../../models/golden.json")).expect("golden.json");
    golden["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .take(20)
        .map(|row| row["application"].to_string())
        .collect()
}

/// A golden body with random bytes flipped, inserted, removed or cut.
fn mutated_golden() -> impl Strategy<Value = Vec<u8>> {
    let bodies = golden_bodies();
    (
        prop::sample::select(bodies),
        prop::collection::vec((0usize..400, any::<u8>(), 0u8..4), 1..6),
    )
        .prop_map(|(body, edits)| {
            let mut bytes = body.into_bytes();
            for (at, byte, kind) in edits {
                let at = at % (bytes.len() + 1);
                match kind {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    2 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => bytes.truncate(at),
                }
            }
            bytes
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn any_bytes_as_an_application(body in prop::collection::vec(any::<u8>(), 0..2_048)) {
        check_application(&body)?;
    }

    #[test]
    fn any_json_as_an_application(value in any_json()) {
        check_application(value.to_string().as_bytes())?;
    }

    #[test]
    fn application_shaped_objects(value in application_like()) {
        check_application(value.to_string().as_bytes())?;
    }

    #[test]
    fn near_valid_applications_score_or_name_their_fields(value in near_valid_application()) {
        check_application(value.to_string().as_bytes())?;
    }

    #[test]
    fn mutated_golden_applications(body in mutated_golden()) {
        check_application(&body)?;
    }

    #[test]
    fn any_bytes_as_an_events_batch(body in prop::collection::vec(any::<u8>(), 0..2_048)) {
        check_events(&body)?;
    }

    #[test]
    fn events_batches_of_awkward_events(
        events in prop::collection::vec(
            (
                prop_oneof![Just(json!("0b5c4a1e-8d2f-4a8e-9a57-3c1f5e2d7b90")), any_json()],
                prop_oneof![Just(json!("2026-11-23T10:00:00Z")), any_json()],
                prop_oneof![near_valid_application(), any_json()],
                prop_oneof![Just(json!({"probability": 0.25})), any_json()],
            ),
            0..8,
        ),
        extra in any_json(),
    ) {
        let events: Vec<Value> = events
            .into_iter()
            .map(|(id, time, application, score)| json!({
                "event_id": id, "event_time": time, "application": application, "client_score": score,
            }))
            .collect();
        check_events(json!({ "events": events }).to_string().as_bytes())?;
        check_events(json!({ "events": events, "extra": extra }).to_string().as_bytes())?;
    }
}

/// The corpus directory at the repository root.
fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus")
}

/// Every corpus file gives the code `expected.json` records for it (`OK` when accepted).
#[test]
fn the_regression_corpus_gives_its_recorded_codes() {
    let expected: BTreeMap<String, String> = serde_json::from_str(
        &std::fs::read_to_string(corpus().join("expected.json")).expect("expected.json"),
    )
    .expect("a map of file name to code");
    let mut seen = 0;
    let mut wrong = Vec::new();
    for (name, want) in &expected {
        let body = std::fs::read(corpus().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let got = if name.starts_with("events/") {
            match parse_events(&body, NOW) {
                Ok(events) => events
                    .iter()
                    .map(|event| event.as_ref().map_or_else(|e| e.code().as_str(), |_| "OK"))
                    .collect::<Vec<_>>()
                    .join(","),
                Err(error) => error.code().as_str().to_owned(),
            }
        } else {
            match parse_application(&body) {
                Ok(_) => "OK".to_owned(),
                Err(error) => error.code().as_str().to_owned(),
            }
        };
        if &got != want {
            wrong.push(format!("{name}: got {got}, recorded {want}"));
        }
        seen += 1;
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
    // Every file in the corpus is listed, so none is silently skipped.
    let mut files = 0;
    for dir in ["applications", "events"] {
        files += std::fs::read_dir(corpus().join(dir)).map_or(0, |entries| entries.count());
    }
    assert_eq!(
        seen, files,
        "files in tests/corpus not listed in expected.json"
    );
}
