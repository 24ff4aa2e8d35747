//! `valle_shared::outcomes::performance` against scikit-learn, numpy and scipy on the model's 1,114
//! held-out rows (`models/holdout.json`, written by `models/holdout.py`).

use serde::Deserialize;
use valle_shared::decision::model::Model;
use valle_shared::intake::validation::parse_application;
use valle_shared::outcomes::performance::{performance, PerformanceReport, ScoreGroup};

#[derive(Deserialize)]
struct Holdout {
    all_rows: Reference,
    valid_rows: Reference,
    rows: Vec<Row>,
}

#[derive(Deserialize)]
struct Row {
    application: serde_json::Value,
    bad: u8,
    probability: f64,
    valid: bool,
}

#[derive(Deserialize)]
struct Reference {
    rows: u64,
    defaults: u64,
    roc_auc: f64,
    gini: f64,
    ks: f64,
    brier: f64,
    expected_default_rate: f64,
    expected_auc: f64,
    deciles: Vec<ReferenceDecile>,
    bands: std::collections::BTreeMap<String, ReferenceBand>,
}

#[derive(Deserialize)]
struct ReferenceDecile {
    rows: u64,
    defaults: u64,
    mean_predicted: f64,
    observed: f64,
    low: f64,
    high: f64,
}

#[derive(Deserialize)]
struct ReferenceBand {
    rows: u64,
    defaults: u64,
}

fn holdout() -> Holdout {
    serde_json::from_str(include_str!("../../models/holdout.json")).expect("holdout.json")
}

fn groups(rows: impl Iterator<Item = (f64, u8)>) -> Vec<ScoreGroup> {
    rows.map(|(probability, bad)| ScoreGroup {
        vintage: "2026-01".to_owned(),
        probability,
        bad: u64::from(bad),
        good: u64::from(1 - bad),
        ..ScoreGroup::default()
    })
    .collect()
}

/// Every figure of `report` within `tolerance` of the reference.
fn check(report: &PerformanceReport, reference: &Reference, tolerance: f64) {
    let close = |name: &str, got: f64, want: f64| {
        assert!(
            (got - want).abs() <= tolerance,
            "{name}: {got} against {want} (tolerance {tolerance})"
        );
    };
    assert_eq!(report.matured, reference.rows);
    let realized = report.realized.as_ref().expect("both classes");
    close("roc_auc", realized.roc_auc, reference.roc_auc);
    close("gini", realized.gini, reference.gini);
    close("ks", realized.ks, reference.ks);
    close("brier", realized.brier, reference.brier);
    close(
        "default_rate",
        report.realized_default_rate.expect("matured loans"),
        reference.defaults as f64 / reference.rows as f64,
    );
    close(
        "expected default rate",
        report.expected.default_rate,
        reference.expected_default_rate,
    );
    close(
        "expected auc",
        report.expected.roc_auc.expect("expected auc"),
        reference.expected_auc,
    );
    assert_eq!(realized.deciles.len(), reference.deciles.len());
    for (index, (got, want)) in realized.deciles.iter().zip(&reference.deciles).enumerate() {
        assert_eq!(
            (got.rows, got.defaults),
            (want.rows, want.defaults),
            "decile {index}"
        );
        close("mean predicted", got.mean_predicted, want.mean_predicted);
        close("observed", got.observed, want.observed);
        close("wilson low", got.low, want.low);
        close("wilson high", got.high, want.high);
    }
    for band in &report.bands {
        let want = &reference.bands[band.band.as_str()];
        assert_eq!(
            (band.matured, band.defaults),
            (want.rows, want.defaults),
            "{band:?}"
        );
    }
    let roc = &realized.roc;
    assert_eq!((roc[0], roc[roc.len() - 1]), ((0.0, 0.0), (1.0, 1.0)));
    assert!(roc.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
}

fn thresholds() -> valle_shared::decision::model::spec::Thresholds {
    Model::embedded().expect("model").thresholds()
}

#[test]
fn the_maths_agrees_with_scikit_learn_on_the_same_probabilities() {
    let holdout = holdout();
    let all = groups(holdout.rows.iter().map(|row| (row.probability, row.bad)));
    check(&performance(&all, thresholds()), &holdout.all_rows, 1e-9);
    let valid = groups(
        holdout
            .rows
            .iter()
            .filter(|row| row.valid)
            .map(|row| (row.probability, row.bad)),
    );
    check(
        &performance(&valid, thresholds()),
        &holdout.valid_rows,
        1e-9,
    );
}

/// The figures the edge reports: probabilities from Valle's own model, as stored.
#[test]
fn valles_scores_of_the_valid_rows_give_scikit_learns_figures() {
    let holdout = holdout();
    let model = Model::embedded().expect("model");
    let mut scored = Vec::new();
    for row in &holdout.rows {
        let body = row.application.to_string();
        match parse_application(body.as_bytes()) {
            Ok(application) => {
                assert!(row.valid, "{body} passed validation");
                let probability = model.probability(&application).expect("score");
                scored.push((f64::from(probability), row.bad));
            }
            Err(_) => assert!(!row.valid, "{body} was refused"),
        }
    }
    assert_eq!(scored.len() as u64, holdout.valid_rows.rows);
    check(
        &performance(&groups(scored.into_iter()), thresholds()),
        &holdout.valid_rows,
        1e-6,
    );
}

/// Splitting the same rows over vintages and merging equal scores changes no figure.
#[test]
fn grouping_does_not_change_the_figures() {
    let holdout = holdout();
    let mut split = groups(holdout.rows.iter().map(|row| (row.probability, row.bad)));
    for (index, group) in split.iter_mut().enumerate() {
        group.vintage = format!("2026-{:02}", 1 + index % 3);
    }
    check(&performance(&split, thresholds()), &holdout.all_rows, 1e-9);
    assert_eq!(performance(&split, thresholds()).vintages.len(), 3);
}

/// Tied scores split over vintages count as one threshold: the same figures as merged.
#[test]
fn tied_scores_in_different_vintages_are_one_threshold() {
    let one = |vintage: &str, probability: f64, bad: u64, good: u64| ScoreGroup {
        vintage: vintage.to_owned(),
        probability,
        bad,
        good,
        ..ScoreGroup::default()
    };
    let merged = performance(&[one("a", 0.3, 3, 2), one("a", 0.6, 4, 1)], thresholds());
    let split = performance(
        &[
            one("a", 0.3, 1, 2),
            one("b", 0.3, 2, 0),
            one("b", 0.6, 4, 0),
            one("a", 0.6, 0, 1),
        ],
        thresholds(),
    );
    assert_eq!(merged.realized, split.realized);
    assert_eq!(merged.expected, split.expected);
}
