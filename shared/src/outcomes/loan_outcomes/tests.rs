use super::*;

const NOW: i64 = 1_800_000_000_000;

/// The codes each field gets, or "OK" with the parsed count.
fn check(body: &str, expected: &[(&str, &str)]) {
    let got: Vec<(String, String)> = match parse_outcomes(body.as_bytes(), NOW) {
        Ok(outcomes) => vec![("OK".to_owned(), outcomes.len().to_string())],
        Err(RequestError::Invalid(errors)) => errors
            .into_iter()
            .map(|e| (e.field, e.code.as_str().to_owned()))
            .collect(),
        Err(other) => vec![(other.code().as_str().to_owned(), String::new())],
    };
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    assert_eq!(got, expected, "{body}");
}

#[test]
fn batches_and_their_field_errors() {
    check(
        r#"{"outcomes":[{"request_id":"a","status":"good","observed_at":"2026-11-30"}]}"#,
        &[("OK", "1")],
    );
    check(
        r#"{"outcomes":[{"request_id":"a","status":"fine","observed_at":"2026-13-30"}]}"#,
        &[
            ("outcomes[0].status", ErrorCode::Enum.as_str()),
            ("outcomes[0].observed_at", ErrorCode::Format.as_str()),
        ],
    );
    check(
        r#"{"outcomes":[{"request_id":"a b","status":"bad","observed_at":"2030-01-01","x":1}]}"#,
        &[
            ("outcomes[0].x", ErrorCode::UnknownField.as_str()),
            ("outcomes[0].request_id", ErrorCode::Format.as_str()),
            ("outcomes[0].observed_at", ErrorCode::Range.as_str()),
        ],
    );
    check(
        r#"{"outcomes":[{"request_id":"a","status":"bad","observed_at":"2026-01-01"},{"request_id":"a","status":"good","observed_at":"2026-01-02"}]}"#,
        &[("outcomes[1].request_id", ErrorCode::Duplicate.as_str())],
    );
    // A field's name is cut to 64 characters, as every field error's is.
    let long = "k".repeat(100);
    let named = format!("outcomes[0].{long}");
    check(
        &format!(
            r#"{{"outcomes":[{{"request_id":"a","status":"bad","observed_at":"2026-01-01","{long}":1}}],"{long}":2}}"#
        ),
        &[
            (&long[..64], ErrorCode::UnknownField.as_str()),
            (&named[..64], ErrorCode::UnknownField.as_str()),
        ],
    );
    check(
        r#"{"outcomes":[]}"#,
        &[("outcomes", ErrorCode::Range.as_str())],
    );
    check(
        r#"{"outcomes":{}}"#,
        &[("outcomes", ErrorCode::Type.as_str())],
    );
    check(
        r#"{"other":[]}"#,
        &[
            ("other", ErrorCode::UnknownField.as_str()),
            ("outcomes", ErrorCode::Required.as_str()),
        ],
    );
    check(
        r#"{"outcomes":[7]}"#,
        &[("outcomes[0]", ErrorCode::Type.as_str())],
    );
    check(
        r#"{"outcomes":[{}]}"#,
        &[
            ("outcomes[0].request_id", ErrorCode::Required.as_str()),
            ("outcomes[0].status", ErrorCode::Required.as_str()),
            ("outcomes[0].observed_at", ErrorCode::Required.as_str()),
        ],
    );
    check("[]", &[(ErrorCode::NotObject.as_str(), "")]);
    check("{", &[(ErrorCode::Json.as_str(), "")]);
    let items = vec![r#"{"request_id":"a","status":"open","observed_at":"2026-01-01"}"#; 1001];
    check(
        &format!(r#"{{"outcomes":[{}]}}"#, items.join(",")),
        &[("outcomes", ErrorCode::Range.as_str())],
    );
    let huge = format!(r#"{{"outcomes":["{}"]}}"#, "x".repeat(MAX_OUTCOMES_BYTES));
    check(&huge, &[(ErrorCode::TooLarge.as_str(), "")]);
}

fn outcome(id: &str, status: LoanStatus, at: i64) -> LoanOutcome {
    LoanOutcome {
        request_id: id.to_owned(),
        status,
        observed_at_ms: at,
    }
}

fn known(id: &str, stored: Option<(LoanStatus, i64)>) -> KnownDecision {
    KnownDecision {
        request_id: id.to_owned(),
        received_at_ms: 100,
        outcome: stored.map(|(status, at)| outcome(id, status, at)),
    }
}

#[test]
fn plans_against_what_is_stored() {
    use LoanStatus::*;
    let stored = [
        known("new", None),
        known("same", Some((Bad, 200))),
        known("open", Some((Open, 200))),
        known("final", Some((Good, 200))),
    ];
    let plan = plan_outcomes(
        &[
            outcome("new", Good, 300),
            outcome("same", Bad, 400),
            outcome("open", Bad, 300),
        ],
        &stored,
    )
    .expect("in the test");
    assert_eq!(
        plan.answer(),
        OutcomesAnswer {
            recorded: 1,
            replaced: 1,
            unchanged: 1
        }
    );
    assert_eq!(plan.writes().count(), 2);
    let codes = |outcomes: &[LoanOutcome]| match plan_outcomes(outcomes, &stored) {
        Err(RequestError::Invalid(errors)) => errors
            .into_iter()
            .map(|e| (e.field, e.code))
            .collect::<Vec<_>>(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        codes(&[outcome("nobody", Bad, 300)]),
        [("outcomes[0].request_id".to_owned(), ErrorCode::NotFound)]
    );
    assert_eq!(
        codes(&[outcome("new", Bad, -86_400_000)]),
        [("outcomes[0].observed_at".to_owned(), ErrorCode::Range)]
    );
    assert_eq!(
        codes(&[outcome("final", Bad, 300)]),
        [("outcomes[0].status".to_owned(), ErrorCode::Final)]
    );
    assert_eq!(
        codes(&[outcome("final", Open, 300)]),
        [("outcomes[0].status".to_owned(), ErrorCode::Final)]
    );
    assert_eq!(
        codes(&[outcome("open", Good, 150)]),
        [("outcomes[0].observed_at".to_owned(), ErrorCode::Range)]
    );
    // A refused batch plans nothing, even for its good items.
    assert_eq!(
        codes(&[outcome("new", Good, 300), outcome("nobody", Bad, 300)]),
        [("outcomes[1].request_id".to_owned(), ErrorCode::NotFound)]
    );
}

#[test]
fn csv_uploads_become_bodies_of_at_most_a_thousand() {
    let mut text = String::from("status,request_id,observed_at\n");
    for i in 0..1500 {
        text.push_str(&format!("good, r{i} ,2026-11-30\n"));
    }
    let bodies = outcomes_csv_to_bodies(&text).expect("in the test");
    assert_eq!(
        bodies.iter().map(|(line, _)| *line).collect::<Vec<_>>(),
        [2, 1002]
    );
    let first: Value = serde_json::from_str(&bodies[0].1).expect("in the test");
    assert_eq!(first["outcomes"][0]["request_id"], "r0");
    assert_eq!(
        first["outcomes"].as_array().expect("in the test").len(),
        1000
    );
    assert!(parse_outcomes(bodies[1].1.as_bytes(), NOW).is_ok());
    assert!(outcomes_csv_to_bodies("id,status\nx,good\n").is_err());
    assert!(outcomes_csv_to_bodies("request_id,status,observed_at\n").is_err());
}
