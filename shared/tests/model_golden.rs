//! The model on the host: golden rows from onnxruntime, the feature spec against the encoder,
//! and the shape of a score.

mod support;

use valle_shared::decision::model::spec::FeatureSpec;
use valle_shared::decision::model::{Band, Decision, FEATURE_SPEC_JSON};
use valle_shared::{parse_application, Model};

#[test]
fn golden_rows_match_onnxruntime_within_1e_5() {
    assert!(support::check_golden_rows() >= 200);
}

#[test]
fn the_spec_the_encoder_and_the_graph_agree() {
    let spec: FeatureSpec = serde_json::from_str(FEATURE_SPEC_JSON).expect("spec parses");
    let model = Model::embedded().expect("loads");
    assert_eq!(model.encoder().width(), spec.features.len());
    let mut names: Vec<&str> = spec
        .features
        .iter()
        .map(|feature| feature.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), spec.features.len(), "feature names are unique");
    // A row one feature too wide is refused by the graph rather than misread.
    let too_wide = vec![0.0_f32; spec.features.len() + 1];
    assert!(model.probabilities(&too_wide).is_err());
}

/// The first row of the credit data: a freelance worker renting, 30, asking 800 of 846.
const TYPICAL: &str = r#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846}"#;

#[test]
fn a_score_carries_band_decision_confidence_reasons_and_version() {
    let model = Model::embedded().expect("loads");
    let application = parse_application(TYPICAL.as_bytes()).expect("valid");
    let score = model.score(&application).expect("scores");
    assert!((0.0..=1.0).contains(&score.probability));
    assert_eq!(
        score.probability,
        model.probability(&application).expect("scores")
    );
    assert!((0.0..=1.0).contains(&score.confidence));
    assert_eq!(score.model_version.name, "valle-logit");
    assert_eq!(score.model_version.sha256.len(), 64);
    assert!(!score.reasons.is_empty() && score.reasons.len() <= 4);
    for pair in score.reasons.windows(2) {
        assert!(pair[0].impact >= pair[1].impact, "largest first");
    }
    for reason in &score.reasons {
        assert!(reason.impact > 0.0);
        assert!(reason.code.starts_with("R_"), "{}", reason.code);
        assert!(!reason.message.es.is_empty() && !reason.message.en.is_empty());
    }
}

#[test]
fn risk_moves_the_way_a_credit_officer_expects() {
    let model = Model::embedded().expect("loads");
    let with = |key: &str, value: serde_json::Value| {
        let mut body: serde_json::Value = serde_json::from_str(TYPICAL).expect("json");
        body[key] = value;
        let application = parse_application(body.to_string().as_bytes()).expect("valid");
        model.score(&application).expect("scores")
    };
    let base = with("records", "no".into());
    let records = with("records", "yes".into());
    assert!(records.probability > base.probability);
    assert_eq!(records.reasons[0].code, "R_RECORDS_YES");
    let rich = with("income", 400.into());
    assert!(rich.probability < base.probability);
    let worst = model
        .score(
            &parse_application(
                br#"{"seniority_years":0,"home":"other","term_months":72,"age":20,"marital":"single","records":"yes","job":"partime","expenses":150,"income":40,"assets":0,"debt":3000,"amount":3000,"price":3000}"#,
            )
            .expect("valid"),
        )
        .expect("scores");
    assert_eq!(
        (worst.band, worst.decision),
        (Band::Alto, Decision::Decline)
    );
    assert_eq!(worst.reasons.len(), 4);
}

#[test]
fn batch_scores_equal_single_scores() {
    let model = Model::embedded().expect("loads");
    let golden = support::golden();
    let applications: Vec<_> = golden
        .rows
        .iter()
        .map(|row| parse_application(row.application.to_string().as_bytes()).expect("valid"))
        .collect();
    let batch = model.score_batch(&applications).expect("scores");
    for (application, score) in applications.iter().zip(&batch) {
        // Recourse is searched for single scores only; everything else is the same.
        let mut single = model.score(application).expect("scores");
        single.recourse.clear();
        assert_eq!(score, &single);
    }
}
