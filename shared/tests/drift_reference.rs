//! PSI per monitored field must equal the numpy reference (models/psi_reference.py) on the
//! same bins and rows: binning edges, the floor and the formula all agree.

use serde::Deserialize;
use valle_shared::monitoring::drift::{Binning, DriftCounts, DriftSummary, PSI_FLOOR};
use valle_shared::Application;

#[derive(Deserialize)]
struct Reference {
    floor: f64,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    applications: Vec<Application>,
    probabilities: Vec<f64>,
    psi: std::collections::BTreeMap<String, f64>,
}

fn check(case: &Case) {
    let binning = Binning::embedded().expect("embedded drift bins");
    let mut counts = DriftCounts::default();
    for (application, probability) in case.applications.iter().zip(&case.probabilities) {
        counts.add(binning, &binning.bins_of(application, *probability as f32));
    }
    assert_eq!(
        counts.decisions as usize,
        case.applications.len(),
        "{}",
        case.name
    );
    let summary = DriftSummary::of(binning, &counts, 0);
    assert_eq!(summary.features.len(), case.psi.len(), "{}", case.name);
    for feature in &summary.features {
        let expected = case.psi[&feature.feature];
        let actual = feature.psi.expect("every feature has counts");
        assert!(
            (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0),
            "{}: {} is {actual}, numpy says {expected}",
            case.name,
            feature.feature
        );
    }
}

#[test]
fn psi_equals_the_numpy_reference() {
    let reference: Reference =
        serde_json::from_str(include_str!("cases/psi.json")).expect("psi.json");
    assert_eq!(reference.floor, PSI_FLOOR);
    assert_eq!(reference.cases.len(), 4);
    for case in &reference.cases {
        check(case);
    }
    // The test split is what the model was validated on: no field may look drifted.
    let test_split = &reference.cases[0];
    assert!(
        test_split.psi.values().all(|psi| *psi < 0.1),
        "{:?}",
        test_split.psi
    );
    // The shifted sample must raise the fields that were shifted.
    let shifted = &reference.cases[1];
    for field in ["income", "age", "job", "probability"] {
        assert!(shifted.psi[field] >= 0.2, "{field}: {}", shifted.psi[field]);
    }
}
