//! The recorded conformance cases hold on the host. `VALLE_BLESS=1 cargo test -p valle-shared
//! --test conformance` re-records them after a deliberate change to a rule or a message.

mod support;

use valle_shared::contract::codes::ErrorCode;

#[test]
fn recorded_outcomes_match_the_validator() {
    let mut cases = support::cases();
    assert!(cases.len() >= 20, "the table should cover every error code");
    let bless = std::env::var_os("VALLE_BLESS").is_some();
    let mut mismatches = Vec::new();
    for case in &mut cases {
        let actual = support::outcome(&case.bytes());
        if actual != case.outcome {
            mismatches.push(case.name.clone());
            case.outcome = actual;
        }
    }
    if bless {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cases/validation.json");
        let text = serde_json::to_string_pretty(&cases).expect("serializes") + "\n";
        std::fs::write(path, text).expect("writes the cases");
    } else {
        assert!(
            mismatches.is_empty(),
            "outcomes changed for {mismatches:?}; re-record with VALLE_BLESS=1 after review"
        );
    }
}

#[test]
fn the_table_exercises_every_code() {
    let cases = support::cases();
    let mut codes: Vec<String> = cases
        .iter()
        .flat_map(|case| {
            std::iter::once(case.outcome.code.clone()).chain(
                case.outcome
                    .fields
                    .iter()
                    .map(|error| error.code.as_str().to_owned()),
            )
        })
        .collect();
    codes.sort();
    codes.dedup();
    assert_eq!(
        codes,
        [
            ErrorCode::Cross.as_str(),
            ErrorCode::DuplicateField.as_str(),
            ErrorCode::Enum.as_str(),
            ErrorCode::Format.as_str(),
            ErrorCode::Json.as_str(),
            ErrorCode::NotObject.as_str(),
            ErrorCode::Range.as_str(),
            ErrorCode::Required.as_str(),
            ErrorCode::TooLarge.as_str(),
            ErrorCode::Type.as_str(),
            ErrorCode::UnknownField.as_str(),
            ErrorCode::Validation.as_str(),
            "OK"
        ]
    );
}

#[test]
fn the_table_makes_every_policy_rule_hold_at_least_once() {
    let policy =
        valle_shared::decision::policy::Policy::committed().expect("models/policy.json loads");
    let held: Vec<String> = support::cases()
        .iter()
        .filter_map(|case| case.outcome.decided.as_ref())
        .flat_map(|decided| decided.policy_hits.iter().map(|hit| hit.code.clone()))
        .collect();
    for code in policy.codes() {
        assert!(
            held.iter().any(|held| held == code),
            "no recorded case makes {code} hold"
        );
    }
}
