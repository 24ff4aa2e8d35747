//! The shadow challenger as tract runs it: onnxruntime's probabilities on the rows
//! `models/challenger.py` recorded, no input from age or marital status, and the champion's
//! cut-offs and rules.

use valle_shared::decision::model::Decision;
use valle_shared::{parse_application, Field, Model};

fn report() -> serde_json::Value {
    serde_json::from_str(include_str!("../../models/challenger.json")).expect("challenger.json")
}

#[test]
fn tract_gives_onnxruntimes_probabilities() {
    let challenger = Model::challenger().expect("the challenger loads");
    let report = report();
    assert_eq!(challenger.version().sha256, report["model_sha256"]);
    assert_eq!(challenger.version().name, "valle-logit-unaware");
    let rows = report["golden"].as_array().expect("golden rows");
    assert!(rows.len() >= 50);
    for (index, row) in rows.iter().enumerate() {
        let application =
            parse_application(row["application"].to_string().as_bytes()).expect("valid");
        let got = challenger.probability(&application).expect("scores");
        let expected = row["probability"].as_f64().expect("probability") as f32;
        assert!(
            (got - expected).abs() <= 1e-5,
            "row {index}: {got} against {expected}"
        );
    }
}

#[test]
fn age_and_marital_status_change_nothing_and_the_rules_still_apply() {
    let (champion, challenger) = (
        Model::embedded().expect("champion"),
        Model::challenger().expect("challenger"),
    );
    assert_eq!(challenger.thresholds(), champion.thresholds());
    assert_eq!(challenger.policy().version(), champion.policy().version());
    let base = parse_application(
        br#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846}"#,
    )
    .expect("valid");
    let probability = challenger.probability(&base).expect("scores");
    for age in [18.0, 45.0, 99.0] {
        let older = base.with_number(Field::Age, age).expect("age");
        assert_eq!(challenger.probability(&older).expect("scores"), probability);
    }
    for marital in ["single", "widow", "separated", "divorced"] {
        let other = base.with_choice(Field::Marital, marital).expect("marital");
        assert_eq!(challenger.probability(&other).expect("scores"), probability);
    }
    // Expenses at income: the rule declines whatever the challenger says.
    let ruled = base.with_number(Field::Expenses, 129.0).expect("expenses");
    assert_eq!(
        challenger.shadow_score(&ruled).expect("scores").decision,
        Decision::Decline
    );
    let batch = challenger
        .shadow_batch(&[base.clone(), ruled])
        .expect("scores");
    assert_eq!(batch[0], challenger.shadow_score(&base).expect("scores"));
}
