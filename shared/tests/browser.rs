//! The shared validator compiled to wasm32 and run in headless Chromium: every recorded
//! conformance case gives the same outcome, message for message, as on the host and at the
//! edge. Run by `cargo xtask test` (`cargo test --target wasm32-unknown-unknown --test browser`).
#![cfg(target_arch = "wasm32")]

mod support;

use valle_shared::intake::draft::Draft;
use valle_shared::Field;
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
fn recorded_outcomes_hold_in_the_browser() {
    let cases = support::cases();
    assert!(cases.len() >= 20);
    for case in cases {
        assert_eq!(
            support::outcome(&case.bytes()),
            case.outcome,
            "{}",
            case.name
        );
    }
}

#[wasm_bindgen_test]
fn form_input_becomes_the_same_body_as_on_the_host() {
    let draft = Draft::new()
        .with(Field::Age, "30")
        .with(Field::Income, "1234,5")
        .with(Field::Amount, "mil")
        .with(Field::Home, "owner");
    assert_eq!(
        draft.to_body(),
        r#"{"age":30,"amount":"mil","home":"owner","income":1234.5}"#
    );
}

#[wasm_bindgen_test]
fn golden_rows_match_onnxruntime_in_the_browser() {
    assert!(support::check_golden_rows() >= 200);
}
