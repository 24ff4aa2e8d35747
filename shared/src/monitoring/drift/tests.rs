use super::*;

fn application() -> Application {
    serde_json::from_str(
        r#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married",
            "records":"no","job":"freelance","expenses":73,"income":129,"assets":0,
            "debt":0,"amount":800,"price":846}"#,
    )
    .expect("valid application")
}

#[test]
fn psi_matches_a_hand_computed_example() {
    // Training shares 0.5/0.3/0.2; live counts 30/30/40 of 100, so shares 0.3/0.3/0.4:
    // (0.3−0.5)·ln(0.3/0.5) + 0 + (0.4−0.2)·ln(0.4/0.2)
    //   = 0.2·0.5108256 + 0.2·0.6931472 = 0.2407946.
    let value = psi(&[0.5, 0.3, 0.2], &[30, 30, 40]).expect("counts");
    assert!((value - 0.240_794_56).abs() < 1e-7, "{value}");
    assert_eq!(DriftBand::of(value), DriftBand::Significant);
    // Identical distributions have no drift; an empty bin is floored, not infinite.
    assert_eq!(psi(&[0.5, 0.5], &[10, 10]), Some(0.0));
    let floored = psi(&[0.5, 0.5], &[10, 0]).expect("counts");
    let by_hand = (1.0 - 0.5) * (1.0f64 / 0.5).ln() + (PSI_FLOOR - 0.5) * (PSI_FLOOR / 0.5).ln();
    assert!((floored - by_hand).abs() < 1e-12);
    assert_eq!(psi(&[0.5, 0.5], &[0, 0]), None);
    assert_eq!(psi(&[0.5, 0.5], &[1, 2, 3]), None);
}

#[test]
fn bands_follow_the_usual_cutoffs() {
    for (value, band) in [
        (0.0, DriftBand::Stable),
        (0.0999, DriftBand::Stable),
        (0.1, DriftBand::Moderate),
        (0.1999, DriftBand::Moderate),
        (0.2, DriftBand::Significant),
        (3.0, DriftBand::Significant),
    ] {
        assert_eq!(DriftBand::of(value), band, "{value}");
    }
}

#[test]
fn numeric_bins_are_upper_exclusive_like_numpy() {
    let binning = Binning::embedded().expect("embedded bins");
    let names: Vec<&str> = binning.names().collect();
    let bins = binning.bins_of(&application(), 0.2);
    let bin = |name: &str| bins[names.iter().position(|n| *n == name).expect(name)];
    // age edges 24, 27, 30, 32, …: 30 sits on an edge and goes above it.
    assert_eq!(bin("age"), 3);
    // term edges 24, 36, 48, 60: 60 is in the last bin.
    assert_eq!(bin("term_months"), 4);
    // assets edges start at 0.0: 0 is in bin 1 and bin 0 (below 0) stays empty.
    assert_eq!(bin("assets"), 1);
    // Probability edges 0.1, 0.2, …: f32 0.2 is just above 0.2 in f64.
    assert_eq!(bin(PROBABILITY), 2);
    assert_eq!(bin("home"), 0);
    assert_eq!(bin("job"), 2);
    assert_eq!(bins.len(), 14);
}

#[test]
fn counts_merge_and_ignore_foreign_shapes() {
    let binning = Binning::embedded().expect("embedded bins");
    let bins = binning.bins_of(&application(), 0.42);
    let mut first = DriftCounts::default();
    first.add(binning, &bins);
    first.add(binning, &bins[..3]);
    first.add(binning, &[u8::MAX; 14]);
    assert_eq!(first.decisions, 1);
    let mut second = DriftCounts::default();
    second.add(binning, &bins);
    second.merge(&first);
    assert_eq!(second.decisions, 2);
    assert_eq!(second.counts["age"].iter().sum::<u64>(), 2);
    assert_eq!(second.counts["age"][3], 2);
}

#[test]
fn alerts_need_enough_decisions() {
    let binning = Binning::embedded().expect("embedded bins");
    let mut counts = DriftCounts::default();
    // Everyone is a 30-year-old renter: age and home drift far from training.
    for _ in 0..50 {
        counts.add(binning, &binning.bins_of(&application(), 0.42));
    }
    let few = DriftSummary::of(binning, &counts, 100);
    assert!(!few.enough_data);
    assert!(few.alerts.is_empty());
    assert_eq!(few.band, Some(DriftBand::Significant));
    let enough = DriftSummary::of(binning, &counts, 50);
    assert!(enough.enough_data);
    let alerted: Vec<&str> = enough.alerts.iter().map(|a| a.feature.as_str()).collect();
    assert!(
        alerted.contains(&"age") && alerted.contains(&"home"),
        "{alerted:?}"
    );
    let age = enough
        .features
        .iter()
        .find(|f| f.feature == "age")
        .expect("age");
    assert_eq!(age.observed[3], 1.0);
    assert_eq!(age.expected.len(), age.observed.len());
}
