//! What the performance, fairness and outcomes sections show, as pure functions: paths, the
//! points of the ROC and calibration charts, labels, and which CSV line a refused outcome
//! came from. The components only render them.

use valle_shared::contract::paths::{CHALLENGER_PATH, FAIRNESS_PATH, PERFORMANCE_PATH};
use valle_shared::outcomes::fairness::ProtectedAttribute;
use valle_shared::outcomes::performance::Decile;
use valle_shared::Lang;

use super::lending::range_path;
use crate::chrome::ui;

/// Side of the square ROC and calibration plots, in SVG units, and their inner margin.
pub const PLOT_SIZE: f64 = 240.0;
pub const PLOT_MARGIN: f64 = 28.0;

pub fn performance_path(from: &str, to: &str, branch: &str) -> String {
    range_path(
        PERFORMANCE_PATH,
        from,
        to,
        &[("branch", branch.trim()), ("vintage", "month")],
    )
}

pub fn fairness_path(from: &str, to: &str, branch: &str) -> String {
    range_path(FAIRNESS_PATH, from, to, &[("branch", branch.trim())])
}

/// A point of the unit square in the plot's SVG coordinates (y grows downwards).
pub fn plot_point(x: f64, y: f64) -> (f64, f64) {
    let inner = PLOT_SIZE - 2.0 * PLOT_MARGIN;
    (
        PLOT_MARGIN + x.clamp(0.0, 1.0) * inner,
        PLOT_SIZE - PLOT_MARGIN - y.clamp(0.0, 1.0) * inner,
    )
}

/// The ROC curve as an SVG `points` attribute.
pub fn roc_points(roc: &[(f64, f64)]) -> String {
    roc.iter()
        .map(|(fpr, tpr)| {
            let (x, y) = plot_point(*fpr, *tpr);
            format!("{x:.1},{y:.1}")
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One calibration decile: its point (predicted, observed) and its interval's ends.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CalibrationMark {
    pub x: f64,
    pub y: f64,
    pub low: f64,
    pub high: f64,
}

pub fn calibration_marks(deciles: &[Decile]) -> Vec<CalibrationMark> {
    deciles
        .iter()
        .map(|decile| {
            let (x, y) = plot_point(decile.mean_predicted, decile.observed);
            let (_, low) = plot_point(decile.mean_predicted, decile.low);
            let (_, high) = plot_point(decile.mean_predicted, decile.high);
            CalibrationMark { x, y, low, high }
        })
        .collect()
}

pub fn challenger_path(from: &str, to: &str, branch: &str) -> String {
    range_path(CHALLENGER_PATH, from, to, &[("branch", branch.trim())])
}

pub fn figure(value: Option<f64>) -> String {
    value.map_or_else(|| "—".to_owned(), |v| format!("{v:.3}"))
}

pub fn attribute_text(attribute: ProtectedAttribute, lang: Lang) -> &'static str {
    match attribute {
        ProtectedAttribute::AgeBand => ui(lang, "Edad", "Age"),
        ProtectedAttribute::Marital => ui(lang, "Estado civil", "Marital status"),
    }
}

/// The CSV line a field error of an upload's body is about: `outcomes[i].field` of the body
/// whose first item is on `first_line`; the line and the column.
pub fn csv_line(first_line: usize, field: &str) -> Option<(usize, String)> {
    let rest = field.strip_prefix("outcomes[")?;
    let (index, column) = rest.split_once(']')?;
    let index: usize = index.parse().ok()?;
    Some((
        first_line + index,
        column.trim_start_matches('.').to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_carry_the_range_and_the_branch() {
        assert_eq!(
            performance_path("", "", ""),
            "/api/v1/performance?vintage=month"
        );
        assert_eq!(
            performance_path("2026-11-01", "", " norte "),
            "/api/v1/performance?from=2026-11-01T00%3A00%3A00Z&branch=norte&vintage=month"
        );
        assert_eq!(fairness_path("", "", ""), "/api/v1/fairness");
        assert_eq!(fairness_path("", "", "sur"), "/api/v1/fairness?branch=sur");
        assert_eq!(challenger_path("", "", ""), "/api/v1/challenger");
        assert_eq!(
            challenger_path("", "", "sur"),
            "/api/v1/challenger?branch=sur"
        );
    }

    #[test]
    fn the_unit_square_fills_the_plot_inside_its_margin() {
        assert_eq!(plot_point(0.0, 0.0), (PLOT_MARGIN, PLOT_SIZE - PLOT_MARGIN));
        assert_eq!(plot_point(1.0, 1.0), (PLOT_SIZE - PLOT_MARGIN, PLOT_MARGIN));
        assert_eq!(plot_point(2.0, -1.0), plot_point(1.0, 0.0));
        assert_eq!(
            roc_points(&[(0.0, 0.0), (1.0, 1.0)]),
            "28.0,212.0 212.0,28.0"
        );
    }

    #[test]
    fn refused_outcomes_name_their_csv_line() {
        assert_eq!(
            csv_line(2, "outcomes[0].status"),
            Some((2, "status".to_owned()))
        );
        assert_eq!(
            csv_line(1002, "outcomes[5].request_id"),
            Some((1007, "request_id".to_owned()))
        );
        assert_eq!(csv_line(2, "outcomes"), None);
    }
}
