//! Reasons on protected attributes: kept out of what the applicant is answered when
//! `models/disclosure.json` hides them, stored in full for the officers.

mod support;

use serde_json::Value;
use valle_shared::contract::ops::RateLimit;
use valle_shared::decision::disclosure::{Disclosure, ProtectedReasons};

use support::Harness;

/// An application whose reasons include age.
const OLDER: &str = r#"{"age":62,"amount":1000,"assets":0,"debt":0,"expenses":60,"home":"rent","income":146,"job":"fixed","marital":"married","price":1292,"records":"no","seniority_years":25,"term_months":60}"#;

fn fields(reasons: &Value) -> Vec<String> {
    reasons
        .as_array()
        .expect("reasons")
        .iter()
        .map(|reason| reason["field"].as_str().expect("field").to_owned())
        .collect()
}

#[test]
fn the_applicant_is_not_told_about_age_and_the_officer_is() {
    assert_eq!(
        Disclosure::committed().protected_reasons,
        ProtectedReasons::Hide
    );
    let harness = Harness::new(RateLimit::default());
    let response = harness.score_body("older-1", OLDER);
    let answer: Value = serde_json::from_slice(&response.body).expect("json");
    let shown = fields(&answer["score"]["reasons"]);
    assert_eq!(shown, ["assets", "price", "expenses"], "{answer}");
    let (status, stored) = harness.officer("/api/v1/decisions/older-1");
    assert_eq!(status, 200);
    assert_eq!(
        fields(&stored["score"]["reasons"]),
        ["assets", "age", "price", "expenses"]
    );
    // A repeat answers the stored decision, as the applicant may see it.
    let again = harness.score_body("older-1", OLDER);
    let again: Value = serde_json::from_slice(&again.body).expect("json");
    assert_eq!(again["replayed"], true);
    assert_eq!(fields(&again["score"]["reasons"]), shown);
}
