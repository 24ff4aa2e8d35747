//! The overrides report: each officer's decisions by band, how many went against the
//! model on either side, and their total.

use serde::{Deserialize, Serialize};

use crate::decision::model::Band;

/// One officer's decisions in one band, for the overrides report.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct OverrideRow {
    pub officer: String,
    pub band: Band,
    /// Final approvals and declines the officer made (information requests are not).
    pub decided: u64,
    pub high_side: u64,
    pub low_side: u64,
}

impl OverrideRow {
    pub fn high_side_rate(&self) -> f64 {
        rate(self.high_side, self.decided)
    }

    pub fn low_side_rate(&self) -> f64 {
        rate(self.low_side, self.decided)
    }
}

fn rate(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// `GET /api/v1/reports/overrides?from&to`: rows by officer and band, and their total.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct OverrideReport {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub rows: Vec<OverrideRow>,
    pub decided: u64,
    pub high_side: u64,
    pub low_side: u64,
    pub high_side_rate: f64,
    pub low_side_rate: f64,
}

impl OverrideReport {
    pub fn new(
        from_ms: Option<i64>,
        to_ms: Option<i64>,
        mut rows: Vec<OverrideRow>,
    ) -> OverrideReport {
        rows.sort_by(|a, b| (&a.officer, a.band as u8).cmp(&(&b.officer, b.band as u8)));
        let sum = |pick: fn(&OverrideRow) -> u64| rows.iter().map(pick).sum::<u64>();
        let (decided, high_side, low_side) = (
            sum(|r| r.decided),
            sum(|r| r.high_side),
            sum(|r| r.low_side),
        );
        OverrideReport {
            from_ms,
            to_ms,
            high_side_rate: rate(high_side, decided),
            low_side_rate: rate(low_side, decided),
            rows,
            decided,
            high_side,
            low_side,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_sums_its_rows() {
        let row = |officer: &str, band: Band, decided, high_side, low_side| OverrideRow {
            officer: officer.into(),
            band,
            decided,
            high_side,
            low_side,
        };
        let report = OverrideReport::new(
            None,
            None,
            vec![row("b", Band::Alto, 4, 0, 2), row("a", Band::Bajo, 6, 3, 0)],
        );
        assert_eq!(report.rows[0].officer, "a");
        assert_eq!(
            (report.decided, report.high_side, report.low_side),
            (10, 3, 2)
        );
        assert!((report.high_side_rate - 0.3).abs() < 1e-12);
        assert!((report.rows[1].low_side_rate() - 0.5).abs() < 1e-12);
        assert_eq!(
            OverrideReport::new(None, None, Vec::new()).low_side_rate,
            0.0
        );
    }
}
