use super::*;
use crate::intake::validation::parse_application;

const APPLICANT: &str = r#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846}"#;

fn applicant(changes: &[(&str, serde_json::Value)]) -> Application {
    let mut body: serde_json::Value = serde_json::from_str(APPLICANT).expect("json");
    for (key, value) in changes {
        body[*key] = value.clone();
    }
    parse_application(body.to_string().as_bytes()).expect("valid")
}

#[test]
fn the_committed_rules_load_and_hold_where_they_should() {
    let policy = Policy::committed().expect("models/policy.json loads");
    assert_eq!(policy.version().name, "valle-policy v1");
    assert_eq!(policy.version().sha256.len(), 64);
    let check = |changes: &[(&str, serde_json::Value)], codes: &[&str]| {
        let hits = policy.evaluate(&applicant(changes));
        let got: Vec<&str> = hits.iter().map(|hit| hit.code.as_str()).collect();
        assert_eq!(got, codes, "{changes:?}");
    };
    check(&[], &[]);
    check(
        &[("expenses", 129.into())],
        &[
            "P_EXPENSES_AT_OR_ABOVE_INCOME",
            "P_INSTALMENT_ABOVE_DISPOSABLE_INCOME",
        ],
    );
    check(
        &[("expenses", 128.into())],
        &["P_INSTALMENT_ABOVE_DISPOSABLE_INCOME"],
    );
    // 800 / 12 = 66.7 against 129 - 73 = 56.
    check(
        &[("term_months", 12.into())],
        &["P_INSTALMENT_ABOVE_DISPOSABLE_INCOME"],
    );
    check(&[("records", "yes".into())], &[]);
    check(
        &[
            ("records", "yes".into()),
            ("amount", 1291.into()),
            ("price", 1300.into()),
        ],
        &["P_RECORDS_AND_LARGE_AMOUNT"],
    );
    check(
        &[
            ("records", "yes".into()),
            ("amount", 1290.into()),
            ("price", 1300.into()),
        ],
        &[],
    );
}

#[test]
fn the_decision_is_the_strictest_of_the_model_and_the_hits() {
    let hit = |action| RuleHit {
        code: "P_X".into(),
        action,
        message: Message::new("", ""),
    };
    let check = |model, actions: &[RuleAction], expected| {
        let hits: Vec<RuleHit> = actions.iter().copied().map(hit).collect();
        assert_eq!(decide(model, &hits), expected, "{model:?} {actions:?}");
    };
    use Decision::{Approve, Decline, Review};
    use RuleAction as A;
    check(Approve, &[], Approve);
    check(Approve, &[A::Review], Review);
    check(Approve, &[A::Review, A::Decline], Decline);
    check(Review, &[A::Review], Review);
    check(Decline, &[A::Review], Decline);
    check(Review, &[A::Decline, A::Review], Decline);
}

#[test]
fn bad_rule_sets_are_refused_with_the_rule_and_the_reason() {
    let check = |when: &str, action: &str, expected: &str| {
        let json = format!(
            r#"{{"name":"t","version":1,"rules":[{{"code":"P_T","action":"{action}","when":["{when}"],"message":{{"es":"","en":""}}}}]}}"#
        );
        let error = Policy::load(&json).err().map(|error| error.to_string());
        assert!(
            error
                .as_deref()
                .is_some_and(|error| error.contains(expected)),
            "{when}: {error:?}"
        );
    };
    check("age > 60", "decline", "age is protected");
    check("marital = single", "review", "marital is protected");
    check("salary > 3", "review", "unknown field");
    check("home > 3", "review", "home is not a numeric field");
    check("income = 3", "review", "income is not a choice field");
    check("records = maybe", "review", "not a value of records");
    check("income 3", "review", "no comparison");
    check("income > income /", "review", "ends in an operator");
    check("income > income % 2", "review", "is not + - * /");
    check("income > inf", "review", "not a finite number");
    check("income > 1", "approve", "unknown variant");
    assert!(Policy::load("{}").is_err());
    let twice = r#"{"name":"t","version":1,"rules":[
        {"code":"P_T","action":"review","when":["income > 1"],"message":{"es":"","en":""}},
        {"code":"P_T","action":"review","when":["income > 2"],"message":{"es":"","en":""}}]}"#;
    assert!(Policy::load(twice)
        .err()
        .is_some_and(|error| error.to_string().contains("code used twice")));
}

#[test]
fn a_division_by_zero_makes_its_test_fail_instead_of_holding() {
    let json = r#"{"name":"t","version":1,"rules":[
        {"code":"P_DEBT_OVER_ASSETS","action":"review","when":["debt / assets > 2"],"message":{"es":"","en":""}},
        {"code":"P_ARITHMETIC","action":"review","when":["income - expenses * 2 >= 112", "income + 1 < 131"],"message":{"es":"","en":""}}]}"#;
    let policy = Policy::load(json).expect("loads");
    let codes = |application: &Application| -> Vec<String> {
        policy
            .evaluate(application)
            .into_iter()
            .map(|hit| hit.code)
            .collect()
    };
    // assets 0: debt / assets has no value. (129 - 73) * 2 = 112, left to right.
    assert_eq!(codes(&applicant(&[("debt", 5.into())])), ["P_ARITHMETIC"]);
    assert_eq!(
        codes(&applicant(&[("debt", 5.into()), ("assets", 2.into())])),
        ["P_DEBT_OVER_ASSETS", "P_ARITHMETIC"]
    );
}
