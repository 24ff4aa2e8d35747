//! Every validation rule at its boundaries: the value at the bound, just inside, just outside.
//! One `check` helper; each row names the change to a known-good application and the
//! (field, code) pairs expected back, in order.

use serde_json::{json, Map, Value};
use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::errors::RequestError;
use valle_shared::intake::validation::{parse_application, MAX_BODY_BYTES};

/// The first row of the credit data: a valid application.
fn valid() -> Map<String, Value> {
    let value = json!({
        "seniority_years": 9, "home": "rent", "term_months": 60, "age": 30,
        "marital": "married", "records": "no", "job": "freelance", "expenses": 73,
        "income": 129, "assets": 0, "debt": 0, "amount": 800, "price": 846
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

enum Edit {
    Set(&'static str, Value),
    Remove(&'static str),
}
use Edit::{Remove, Set};

fn check(edits: &[Edit], expected: &[(&str, &str)]) {
    let mut body = valid();
    for edit in edits {
        match edit {
            Set(key, value) => {
                body.insert((*key).to_owned(), value.clone());
            }
            Remove(key) => {
                body.remove(*key);
            }
        }
    }
    let bytes = Value::Object(body).to_string();
    check_raw(bytes.as_bytes(), expected);
}

fn check_raw(bytes: &[u8], expected: &[(&str, &str)]) {
    let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
    match parse_application(bytes) {
        Ok(_) => assert!(
            expected.is_empty(),
            "{shown}: accepted, expected {expected:?}"
        ),
        Err(RequestError::Invalid(errors)) => {
            let got: Vec<(&str, &str)> = errors
                .iter()
                .map(|error| (error.field.as_str(), error.code.as_str()))
                .collect();
            assert_eq!(got, expected, "{shown}");
        }
        Err(other) => panic!("{shown}: body-level error {other:?}, expected {expected:?}"),
    }
}

fn check_body_error(bytes: &[u8], expected_code: &str) {
    let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(80)]).into_owned();
    match parse_application(bytes) {
        Err(error) => assert_eq!(error.code(), expected_code, "{shown}: {error}"),
        Ok(_) => panic!("{shown}: accepted, expected {expected_code}"),
    }
}

#[test]
fn a_valid_application_passes_and_round_trips() {
    check(&[], &[]);
    let body = Value::Object(valid()).to_string();
    let application = parse_application(body.as_bytes()).expect("valid");
    assert_eq!(application.age, 30);
    assert_eq!(application.amount, 800.0);
    // What the worker echoes back validates to the same application.
    let echoed = serde_json::to_string(&application).expect("serializes");
    assert_eq!(parse_application(echoed.as_bytes()), Ok(application));
}

#[test]
fn required_fields() {
    for key in [
        "seniority_years",
        "home",
        "term_months",
        "age",
        "marital",
        "records",
        "job",
        "expenses",
        "income",
        "assets",
        "debt",
        "amount",
        "price",
    ] {
        check(&[Remove(key)], &[(key, ErrorCode::Required.as_str())]);
        check(
            &[Set(key, Value::Null)],
            &[(key, ErrorCode::Required.as_str())],
        );
    }
    check(
        &[Set("applicant_id", Value::Null), Set("branch", Value::Null)],
        &[],
    );
    // Every error at once, in form order.
    check_raw(
        b"{}",
        &[
            ("age", ErrorCode::Required.as_str()),
            ("marital", ErrorCode::Required.as_str()),
            ("home", ErrorCode::Required.as_str()),
            ("job", ErrorCode::Required.as_str()),
            ("seniority_years", ErrorCode::Required.as_str()),
            ("records", ErrorCode::Required.as_str()),
            ("income", ErrorCode::Required.as_str()),
            ("expenses", ErrorCode::Required.as_str()),
            ("assets", ErrorCode::Required.as_str()),
            ("debt", ErrorCode::Required.as_str()),
            ("amount", ErrorCode::Required.as_str()),
            ("price", ErrorCode::Required.as_str()),
            ("term_months", ErrorCode::Required.as_str()),
        ],
    );
}

#[test]
fn types() {
    check(
        &[Set("age", json!("30"))],
        &[("age", ErrorCode::Type.as_str())],
    );
    check(
        &[Set("age", json!(30.5))],
        &[("age", ErrorCode::Type.as_str())],
    );
    check(
        &[Set("age", json!(true))],
        &[("age", ErrorCode::Type.as_str())],
    );
    check(
        &[Set("age", json!({}))],
        &[("age", ErrorCode::Type.as_str())],
    );
    check(
        &[Set("term_months", json!([60]))],
        &[("term_months", ErrorCode::Type.as_str())],
    );
    check(
        &[Set("income", json!("129"))],
        &[("income", ErrorCode::Type.as_str())],
    );
    check(
        &[Set("income", json!(false))],
        &[("income", ErrorCode::Type.as_str())],
    );
    check(
        &[Set("home", json!(1))],
        &[("home", ErrorCode::Type.as_str())],
    );
    check(
        &[Set("records", json!(true))],
        &[("records", ErrorCode::Type.as_str())],
    );
    check(
        &[Set("applicant_id", json!(5))],
        &[("applicant_id", ErrorCode::Type.as_str())],
    );
    check(
        &[Set("branch", json!(["Centro"]))],
        &[("branch", ErrorCode::Type.as_str())],
    );
}

#[test]
fn integer_ranges() {
    // Age 18..=100; seniority 0 keeps the working-age rule out of the way.
    let young = || Set("seniority_years", json!(0));
    check(
        &[young(), Set("age", json!(17))],
        &[("age", ErrorCode::Range.as_str())],
    );
    check(&[young(), Set("age", json!(18))], &[]);
    check(&[young(), Set("age", json!(19))], &[]);
    check(&[young(), Set("age", json!(99))], &[]);
    check(&[young(), Set("age", json!(100))], &[]);
    check(
        &[young(), Set("age", json!(101))],
        &[("age", ErrorCode::Range.as_str())],
    );
    check(
        &[young(), Set("age", json!(-5))],
        &[("age", ErrorCode::Range.as_str())],
    );
    check(
        &[young(), Set("age", json!(u64::MAX))],
        &[("age", ErrorCode::Range.as_str())],
    );
    // Term 6..=72 months.
    check(
        &[Set("term_months", json!(5))],
        &[("term_months", ErrorCode::Range.as_str())],
    );
    check(&[Set("term_months", json!(6))], &[]);
    check(&[Set("term_months", json!(7))], &[]);
    check(&[Set("term_months", json!(71))], &[]);
    check(&[Set("term_months", json!(72))], &[]);
    check(
        &[Set("term_months", json!(73))],
        &[("term_months", ErrorCode::Range.as_str())],
    );
    // Seniority 0..=70 years; age 100 keeps the working-age rule satisfied.
    let old = || Set("age", json!(100));
    check(
        &[old(), Set("seniority_years", json!(-1))],
        &[("seniority_years", ErrorCode::Range.as_str())],
    );
    check(&[old(), Set("seniority_years", json!(0))], &[]);
    check(&[old(), Set("seniority_years", json!(1))], &[]);
    check(&[old(), Set("seniority_years", json!(69))], &[]);
    check(&[old(), Set("seniority_years", json!(70))], &[]);
    check(
        &[old(), Set("seniority_years", json!(71))],
        &[("seniority_years", ErrorCode::Range.as_str())],
    );
}

#[test]
fn money_ranges() {
    for (key, max, just_below_max) in [
        ("expenses", 100_000.0, 99_999.99),
        ("assets", 100_000_000.0, 99_999_999.99),
        ("debt", 10_000_000.0, 9_999_999.99),
    ] {
        check(
            &[Set(key, json!(-0.01))],
            &[(key, ErrorCode::Range.as_str())],
        );
        check(&[Set(key, json!(0))], &[]);
        check(&[Set(key, json!(0.01))], &[]);
        check(&[Set(key, json!(just_below_max))], &[]);
        check(&[Set(key, json!(max))], &[]);
        check(
            &[Set(key, json!(max + 0.01))],
            &[(key, ErrorCode::Range.as_str())],
        );
    }
    // Income 0..=100,000; a small amount keeps the amount-to-income rule satisfied.
    check(
        &[Set("income", json!(-0.01))],
        &[("income", ErrorCode::Range.as_str())],
    );
    check(
        &[Set("income", json!(0))],
        &[("amount", ErrorCode::Cross.as_str())],
    );
    check(&[Set("income", json!(8))], &[]);
    check(&[Set("income", json!(99_999.99))], &[]);
    check(&[Set("income", json!(100_000))], &[]);
    check(
        &[Set("income", json!(100_000.01))],
        &[("income", ErrorCode::Range.as_str())],
    );
    // Amount 100..=1,000,000, with price and income large enough for the cross rules.
    let room = || {
        [
            Set("price", json!(10_000_000)),
            Set("income", json!(100_000)),
        ]
    };
    for (amount, expected) in [
        (json!(99.99), &[("amount", ErrorCode::Range.as_str())][..]),
        (json!(100), &[][..]),
        (json!(100.01), &[][..]),
        (json!(999_999.99), &[][..]),
        (json!(1_000_000), &[][..]),
        (
            json!(1_000_000.01),
            &[("amount", ErrorCode::Range.as_str())][..],
        ),
    ] {
        let [price, income] = room();
        check(&[price, income, Set("amount", amount)], expected);
    }
    // Price 100..=10,000,000.
    let small = || Set("amount", json!(100));
    check(
        &[small(), Set("price", json!(99.99))],
        &[("price", ErrorCode::Range.as_str())],
    );
    check(&[small(), Set("price", json!(100))], &[]);
    check(&[small(), Set("price", json!(100.01))], &[]);
    check(&[small(), Set("price", json!(9_999_999.99))], &[]);
    check(&[small(), Set("price", json!(10_000_000))], &[]);
    check(
        &[small(), Set("price", json!(10_000_000.01))],
        &[("price", ErrorCode::Range.as_str())],
    );
}

#[test]
fn money_has_at_most_two_decimals() {
    check(&[Set("income", json!(129.1))], &[]);
    check(&[Set("income", json!(129.12))], &[]);
    check(&[Set("expenses", json!(0.07))], &[]);
    check(
        &[Set("income", json!(129.123))],
        &[("income", ErrorCode::Format.as_str())],
    );
    check(
        &[Set("debt", json!(0.005))],
        &[("debt", ErrorCode::Format.as_str())],
    );
}

#[test]
fn choices() {
    for (key, values) in [
        (
            "home",
            &["rent", "owner", "parents", "priv", "other", "ignore"][..],
        ),
        (
            "marital",
            &["single", "married", "widow", "separated", "divorced"][..],
        ),
        ("records", &["yes", "no"][..]),
        ("job", &["fixed", "partime", "freelance", "others"][..]),
    ] {
        for value in values {
            check(&[Set(key, json!(value))], &[]);
        }
        check(
            &[Set(key, json!(values[0].to_uppercase()))],
            &[(key, ErrorCode::Enum.as_str())],
        );
        check(&[Set(key, json!(""))], &[(key, ErrorCode::Enum.as_str())]);
        check(
            &[Set(key, json!(format!(" {}", values[0])))],
            &[(key, ErrorCode::Enum.as_str())],
        );
    }
}

#[test]
fn free_text_fields() {
    check(&[Set("applicant_id", json!("SOC-000123_a.b"))], &[]);
    check(&[Set("applicant_id", json!("a".repeat(64)))], &[]);
    check(
        &[Set("applicant_id", json!("a".repeat(65)))],
        &[("applicant_id", ErrorCode::Format.as_str())],
    );
    check(
        &[Set("applicant_id", json!(""))],
        &[("applicant_id", ErrorCode::Format.as_str())],
    );
    check(
        &[Set("applicant_id", json!("ab c"))],
        &[("applicant_id", ErrorCode::Format.as_str())],
    );
    check(
        &[Set("applicant_id", json!("peña"))],
        &[("applicant_id", ErrorCode::Format.as_str())],
    );
    check(
        &[Set("applicant_id", json!("1' OR '1'='1"))],
        &[("applicant_id", ErrorCode::Format.as_str())],
    );
    check(&[Set("branch", json!("Sucursal Ñuñoa-2"))], &[]);
    check(&[Set("branch", json!("ñ".repeat(64)))], &[]);
    check(
        &[Set("branch", json!("ñ".repeat(65)))],
        &[("branch", ErrorCode::Format.as_str())],
    );
    check(
        &[Set("branch", json!(" Centro"))],
        &[("branch", ErrorCode::Format.as_str())],
    );
    check(
        &[Set("branch", json!("Centro "))],
        &[("branch", ErrorCode::Format.as_str())],
    );
    check(
        &[Set("branch", json!("Centro\n"))],
        &[("branch", ErrorCode::Format.as_str())],
    );
    check(
        &[Set("branch", json!("<script>"))],
        &[("branch", ErrorCode::Format.as_str())],
    );
}

#[test]
fn cross_field_rules() {
    // Amount within price: equal passes, a cent more fails.
    check(&[Set("amount", json!(846))], &[]);
    check(
        &[Set("amount", json!(846.01))],
        &[("amount", ErrorCode::Cross.as_str())],
    );
    // Working age: age 30 with 16 years at the employer is 14, the minimum; 17 is one too many.
    check(&[Set("seniority_years", json!(16))], &[]);
    check(
        &[Set("seniority_years", json!(17))],
        &[("seniority_years", ErrorCode::Cross.as_str())],
    );
    // Amount to income: 100 times income passes, a cent more fails.
    let cheap = || [Set("income", json!(10)), Set("price", json!(5000))];
    let [income, price] = cheap();
    check(&[income, price, Set("amount", json!(1000))], &[]);
    let [income, price] = cheap();
    check(
        &[income, price, Set("amount", json!(1000.01))],
        &[("amount", ErrorCode::Cross.as_str())],
    );
    // Both amount rules at once, in rule order.
    check(
        &[Set("income", json!(1)), Set("amount", json!(900))],
        &[
            ("amount", ErrorCode::Cross.as_str()),
            ("amount", ErrorCode::Cross.as_str()),
        ],
    );
    // A cross rule is not judged while a field it reads is invalid.
    check(
        &[Set("price", json!("846"))],
        &[("price", ErrorCode::Type.as_str())],
    );
    check(
        &[Set("age", json!(15))],
        &[("age", ErrorCode::Range.as_str())],
    );
}

#[test]
fn unknown_and_duplicate_keys() {
    check(
        &[Set("salary", json!(1))],
        &[("salary", ErrorCode::UnknownField.as_str())],
    );
    let long_key: &'static str = Box::leak("k".repeat(100).into_boxed_str());
    check(
        &[Set(long_key, json!(1))],
        &[(&"k".repeat(64), ErrorCode::UnknownField.as_str())],
    );
    let mut body = Value::Object(valid()).to_string();
    body.pop();
    let duplicated = format!(r#"{body},"age":31,"x":1,"x":2}}"#);
    check_raw(
        duplicated.as_bytes(),
        &[
            ("age", ErrorCode::DuplicateField.as_str()),
            ("x", ErrorCode::DuplicateField.as_str()),
        ],
    );
}

#[test]
fn errors_come_in_form_order_then_cross_then_unknown() {
    check(
        &[
            Set("zeta", json!(1)),
            Set("term_months", json!(0)),
            Set("age", json!("x")),
            Set("amount", json!(5000)),
        ],
        &[
            ("age", ErrorCode::Type.as_str()),
            ("term_months", ErrorCode::Range.as_str()),
            ("amount", ErrorCode::Cross.as_str()),
            ("zeta", ErrorCode::UnknownField.as_str()),
        ],
    );
}

#[test]
fn body_level_errors() {
    check_body_error(b"", ErrorCode::Json.as_str());
    check_body_error(b"not json", ErrorCode::Json.as_str());
    check_body_error(b"{\"age\": 30", ErrorCode::Json.as_str());
    check_body_error(b"{} trailing", ErrorCode::Json.as_str());
    check_body_error(b"{\"age\": NaN}", ErrorCode::Json.as_str());
    check_body_error(b"{\"age\": 1e400}", ErrorCode::Json.as_str());
    check_body_error(
        &[b'{', b'"', 0xff, b'"', b':', b'1', b'}'],
        ErrorCode::Json.as_str(),
    );
    let deep = format!("{{\"age\": {}{}}}", "[".repeat(200), "]".repeat(200));
    check_body_error(deep.as_bytes(), ErrorCode::Json.as_str());
    check_body_error(b"[]", ErrorCode::NotObject.as_str());
    check_body_error(b"null", ErrorCode::NotObject.as_str());
    check_body_error(b"\"text\"", ErrorCode::NotObject.as_str());
    check_body_error(b"42", ErrorCode::NotObject.as_str());
    // Size: exactly the limit is read; one byte more is refused before parsing.
    let body = Value::Object(valid()).to_string();
    let at_limit = format!("{body:<width$}", width = MAX_BODY_BYTES);
    check_raw(at_limit.as_bytes(), &[]);
    let over = format!("{body:<width$}", width = MAX_BODY_BYTES + 1);
    check_body_error(over.as_bytes(), ErrorCode::TooLarge.as_str());
}

#[test]
fn messages_are_bilingual_and_precise() {
    let body = br#"{"age": 17}"#;
    let errors = match parse_application(body) {
        Err(RequestError::Invalid(errors)) => errors,
        other => panic!("expected field errors, got {other:?}"),
    };
    let age = errors
        .iter()
        .find(|error| error.field == "age")
        .expect("age error");
    assert_eq!(age.message.es, "Edad (años): debe estar entre 18 y 100.");
    assert_eq!(age.message.en, "Age (years): must be between 18 and 100.");
    let json = serde_json::to_value(age).expect("serializes");
    assert_eq!(json["code"], ErrorCode::Range.as_str());
    assert!(json.get("rule").is_none());
}
