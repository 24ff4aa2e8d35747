use super::*;
use crate::intake::validation::parse_application;

const MODEL: Thresholds = Thresholds {
    review: 0.2,
    decline: 0.5,
};

fn stored(id: &str, probability: f32, decision: Decision, expenses: u32) -> StoredDecision {
    let body = format!(
        r#"{{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":{expenses},"income":129,"assets":0,"debt":0,"amount":800,"price":846}}"#
    );
    StoredDecision {
        request_id: id.to_owned(),
        application: parse_application(body.as_bytes()).expect("valid"),
        probability,
        decision,
        shadow_probability: None,
    }
}

#[test]
fn swaps_rates_and_examples_under_other_thresholds_and_without_rules() {
    let policy = Policy::committed().expect("policy");
    use Decision::{Approve, Decline, Review};
    let rows = [
        stored("a", 0.10, Approve, 73),
        stored("b", 0.25, Review, 73),
        stored("c", 0.45, Review, 73),
        stored("d", 0.60, Decline, 73),
        // Declined by the rule (expenses at income) though the model approves.
        stored("e", 0.05, Decline, 129),
    ];
    let stricter = Strategy {
        thresholds: Thresholds {
            review: 0.3,
            decline: 0.4,
        },
        policy: PolicyChoice::Committed,
        model: ModelChoice::Champion,
    };
    let report = simulate(&rows, &stricter, policy);
    assert_eq!(report.rows, 5);
    assert_eq!(report.unchanged, 3);
    let moves: Vec<(Decision, Decision, usize, Vec<String>)> = report
        .swaps
        .iter()
        .map(|s| (s.from, s.to, s.count, s.examples.clone()))
        .collect();
    assert_eq!(
        moves,
        [
            (Review, Approve, 1, vec!["b".to_owned()]),
            (Review, Decline, 1, vec!["c".to_owned()])
        ]
    );
    assert_eq!(
        (
            report.current.approve,
            report.current.review,
            report.current.decline
        ),
        (1, 2, 2)
    );
    assert_eq!(report.candidate.approval_rate, Some(0.4));
    let expected = (0.10f32 as f64 + 0.25f32 as f64) / 2.0;
    assert_eq!(report.candidate.expected_bad_rate, Some(expected));
    // Without the rules, the application the rule declined is approved.
    let unruled = simulate(
        &rows,
        &Strategy {
            thresholds: MODEL,
            policy: PolicyChoice::None,
            model: ModelChoice::Champion,
        },
        policy,
    );
    assert_eq!(unruled.unchanged, 4);
    assert_eq!(unruled.swaps.len(), 1);
    assert_eq!(
        (unruled.swaps[0].from, unruled.swaps[0].to),
        (Decline, Approve)
    );
    // By the challenger's probability: rows it did not score are left out.
    let mut shadowed = rows.clone();
    shadowed[0].shadow_probability = Some(0.35);
    shadowed[1].shadow_probability = Some(0.05);
    let by_challenger = simulate(
        &shadowed,
        &Strategy {
            thresholds: MODEL,
            policy: PolicyChoice::Committed,
            model: ModelChoice::Challenger,
        },
        policy,
    );
    assert_eq!((by_challenger.rows, by_challenger.skipped), (2, 3));
    let moves: Vec<(Decision, Decision)> =
        by_challenger.swaps.iter().map(|s| (s.from, s.to)).collect();
    assert_eq!(moves, [(Approve, Review), (Review, Approve)]);
    assert_eq!(
        by_challenger.candidate.expected_bad_rate,
        Some(0.05f32 as f64)
    );
    let empty = simulate(&[], &stricter, policy);
    assert_eq!(
        (
            empty.candidate.approval_rate,
            empty.candidate.expected_bad_rate
        ),
        (None, None)
    );
}

#[test]
fn requests_default_and_bad_ones_name_every_field() {
    let parsed = parse_simulation(b"{}", MODEL).expect("defaults");
    assert_eq!(parsed.last, DEFAULT_SIMULATED);
    assert_eq!(parsed.strategy.thresholds, MODEL);
    assert_eq!(parsed.strategy.policy, PolicyChoice::Committed);
    assert_eq!(parsed.strategy.model, ModelChoice::Champion);
    let by = parse_simulation(br#"{"model": "challenger"}"#, MODEL).expect("valid");
    assert_eq!(by.strategy.model, ModelChoice::Challenger);
    let parsed = parse_simulation(
        br#"{"last": 10000, "thresholds": {"review": 0.1, "decline": 0.7}, "policy": "none"}"#,
        MODEL,
    )
    .expect("valid");
    assert_eq!(parsed.last, 10_000);
    assert_eq!(parsed.branch, None);
    assert_eq!(parsed.strategy.policy, PolicyChoice::None);
    let parsed = parse_simulation(br#"{"branch": "Norte"}"#, MODEL).expect("valid");
    assert_eq!(parsed.branch.as_deref(), Some("Norte"));
    let check = |body: &str, expected: &[(&str, &str)]| {
        let error = parse_simulation(body.as_bytes(), MODEL).expect_err(body);
        let got: Vec<(String, String)> = error
            .field_errors()
            .iter()
            .map(|e| (e.field.clone(), e.code.as_str().to_owned()))
            .collect();
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(f, c)| ((*f).to_owned(), (*c).to_owned()))
            .collect();
        assert_eq!(got, expected, "{body}");
    };
    check(r#"{"last": 0}"#, &[("last", ErrorCode::Range.as_str())]);
    check(r#"{"last": 10001}"#, &[("last", ErrorCode::Range.as_str())]);
    check(r#"{"last": 2.5}"#, &[("last", ErrorCode::Range.as_str())]);
    check(
        r#"{"thresholds": {"review": 0, "decline": 1.5}}"#,
        &[
            ("thresholds.review", ErrorCode::Range.as_str()),
            ("thresholds.decline", ErrorCode::Range.as_str()),
        ],
    );
    check(
        r#"{"thresholds": {"review": 0.6, "decline": 0.5}}"#,
        &[("thresholds", ErrorCode::Cross.as_str())],
    );
    check(
        r#"{"thresholds": 3}"#,
        &[("thresholds", ErrorCode::Type.as_str())],
    );
    check(
        r#"{"thresholds": {"review": 0.1, "decline": 0.5, "x": 1}}"#,
        &[("thresholds.x", ErrorCode::UnknownField.as_str())],
    );
    check(
        r#"{"policy": "other"}"#,
        &[("policy", ErrorCode::Enum.as_str())],
    );
    check(
        r#"{"branch": " x"}"#,
        &[("branch", ErrorCode::Format.as_str())],
    );
    check(
        r#"{"branch": 7}"#,
        &[("branch", ErrorCode::Format.as_str())],
    );
    check(
        r#"{"model": "other"}"#,
        &[("model", ErrorCode::Enum.as_str())],
    );
    check(
        r#"{"last": -1, "policy": 3, "extra": true}"#,
        &[
            ("extra", ErrorCode::UnknownField.as_str()),
            ("last", ErrorCode::Range.as_str()),
            ("policy", ErrorCode::Enum.as_str()),
        ],
    );
    let choices = parse_simulation(br#"{"policy": "x", "model": null}"#, MODEL)
        .expect_err("an unknown policy")
        .field_errors()
        .to_vec();
    assert_eq!(
        choices.iter().map(|e| &e.message).collect::<Vec<_>>(),
        [&Message::new(
            "Debe ser committed o none.",
            "Must be committed or none."
        )]
    );
    let model = parse_simulation(br#"{"model": 1}"#, MODEL).expect_err("a bad model");
    assert_eq!(
        model.field_errors()[0].message,
        Message::new(
            "Debe ser champion o challenger.",
            "Must be champion or challenger."
        )
    );
    assert!(matches!(
        parse_simulation(b"[1]", MODEL),
        Err(RequestError::NotAnObject { .. })
    ));
    assert!(matches!(
        parse_simulation(&vec![b' '; MAX_SIMULATION_BYTES + 1], MODEL),
        Err(RequestError::TooLarge { .. })
    ));
}
