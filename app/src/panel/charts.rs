//! Small SVG charts drawn by Leptos, no chart library: the geometry is pure (and tested on
//! the host); the components only turn it into elements.

use leptos::prelude::*;
use valle_shared::monitoring::kpi::{BandCounts, CountWindow, SeriesPoint};
use valle_shared::Lang;

use super::dashboard::format_clock;
use crate::chrome::ui;

/// The drawing area inside a chart's view box.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Frame {
    pub width: f64,
    pub height: f64,
    /// Room on the left for the axis labels, and at the bottom for the time labels.
    pub left: f64,
    pub bottom: f64,
}

pub const FRAME: Frame = Frame {
    width: 480.0,
    height: 180.0,
    left: 56.0,
    bottom: 20.0,
};

impl Frame {
    fn plot_width(self) -> f64 {
        self.width - self.left - 4.0
    }

    fn plot_height(self) -> f64 {
        self.height - self.bottom - 8.0
    }

    /// The y of `value` on a scale from 0 to `max`.
    fn y(self, value: f64, max: f64) -> f64 {
        let share = if max > 0.0 {
            (value / max).clamp(0.0, 1.0)
        } else {
            0.0
        };
        8.0 + self.plot_height() * (1.0 - share)
    }

    /// The x of point `index` of `count`, spread over the plot.
    fn x(self, index: usize, count: usize) -> f64 {
        if count <= 1 {
            self.left + self.plot_width() / 2.0
        } else {
            self.left + self.plot_width() * index as f64 / (count - 1) as f64
        }
    }
}

/// A rounded-up top for an axis: 1, 2 or 5 times a power of ten, at least `max`.
pub fn nice_max(max: f64) -> f64 {
    if !(max.is_finite() && max > 0.0) {
        return 1.0;
    }
    let power = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|step| step * power)
        .find(|top| *top >= max)
        .unwrap_or(10.0 * power)
}

/// The points of one line; undefined values (no decisions in that window) are skipped.
pub fn line_points(values: &[Option<f64>], max: f64, frame: Frame) -> Vec<(f64, f64)> {
    values
        .iter()
        .enumerate()
        .filter_map(|(i, value)| value.map(|v| (frame.x(i, values.len()), frame.y(v, max))))
        .collect()
}

/// `x,y x,y …` for an SVG polyline.
pub fn polyline(points: &[(f64, f64)]) -> String {
    points
        .iter()
        .map(|(x, y)| format!("{x:.1},{y:.1}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One bar: x, y, width, height.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

pub fn bars(values: &[f64], max: f64, frame: Frame) -> Vec<Bar> {
    let slot = frame.plot_width() / values.len().max(1) as f64;
    values
        .iter()
        .enumerate()
        .map(|(i, &value)| {
            let y = frame.y(value, max);
            Bar {
                x: frame.left + slot * i as f64 + slot * 0.1,
                y,
                width: slot * 0.8,
                height: frame.y(0.0, max) - y,
            }
        })
        .collect()
}

/// The bands' shares of all decisions (bajo, medio, alto), zero when there are none.
pub fn band_shares(bands: &BandCounts) -> [f64; 3] {
    let total = (bands.bajo + bands.medio + bands.alto) as f64;
    if total == 0.0 {
        return [0.0; 3];
    }
    [
        bands.bajo as f64 / total,
        bands.medio as f64 / total,
        bands.alto as f64 / total,
    ]
}

/// "20 ms", "2.5 ms", "0.5": whole numbers without decimals.
pub fn axis_label(value: f64, unit: &str) -> String {
    let number = if value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    };
    if unit.is_empty() {
        number
    } else {
        format!("{number} {unit}")
    }
}

/// Axis labels at 0, half and the top.
fn axis(max: f64, unit: &'static str, frame: Frame) -> impl IntoView {
    [0.0, max / 2.0, max]
        .into_iter()
        .map(|value| {
            let label = axis_label(value, unit);
            view! {
                <g class="axis">
                    <line x1=frame.left x2=frame.width - 4.0 y1=frame.y(value, max) y2=frame.y(value, max) />
                    <text x=frame.left - 4.0 y=frame.y(value, max) + 4.0 text-anchor="end">{label}</text>
                </g>
            }
        })
        .collect_view()
}

/// First and last time under the plot.
fn time_labels(first_ms: Option<i64>, last_ms: Option<i64>, frame: Frame) -> impl IntoView {
    let y = frame.height - 4.0;
    view! {
        <text class="axis-time" x=frame.left y=y>{first_ms.map(format_clock)}</text>
        <text class="axis-time" x=frame.width - 4.0 y=y text-anchor="end">{last_ms.map(format_clock)}</text>
    }
}

/// Latency percentiles (p50, p95, p99) of each window of the view.
#[component]
pub fn LatencyChart(series: Vec<SeriesPoint>, lang: Lang) -> impl IntoView {
    let frame = FRAME;
    let pick = |f: fn(&SeriesPoint) -> Option<f64>| series.iter().map(f).collect::<Vec<_>>();
    let lines = [
        ("p50", pick(|p| p.latency_ms.p50)),
        ("p95", pick(|p| p.latency_ms.p95)),
        ("p99", pick(|p| p.latency_ms.p99)),
    ];
    let max = nice_max(
        lines
            .iter()
            .flat_map(|(_, values)| values.iter().flatten())
            .fold(0.0, |a: f64, &b| a.max(b)),
    );
    let title = ui(
        lang,
        "Latencia en línea por ventana",
        "Online latency per window",
    );
    view! {
        <figure class="chart" data-testid="chart-latency">
            <figcaption>{title}</figcaption>
            <svg viewBox=format!("0 0 {} {}", frame.width, frame.height) role="img" aria-label=title>
                {axis(max, "ms", frame)}
                {lines
                    .into_iter()
                    .map(|(name, values)| {
                        let points = line_points(&values, max, frame);
                        view! {
                            <g class=format!("line line-{name}")>
                                <polyline points=polyline(&points) />
                                {points
                                    .into_iter()
                                    .map(|(x, y)| view! { <circle cx=x cy=y r="2.5" data-testid="chart-point" /> })
                                    .collect_view()}
                            </g>
                        }
                    })
                    .collect_view()}
                {time_labels(series.first().map(|p| p.start_ms), series.last().map(|p| p.start_ms), frame)}
            </svg>
            <p class="legend small">
                <span class="key line-p50">"p50"</span>
                <span class="key line-p95">"p95"</span>
                <span class="key line-p99">"p99"</span>
            </p>
        </figure>
    }
}

/// Decisions per window of the view (per minute for 5 m and 1 h, per hour for 24 h).
#[component]
pub fn DecisionsChart(series: Vec<SeriesPoint>, lang: Lang) -> impl IntoView {
    let frame = FRAME;
    let values: Vec<f64> = series.iter().map(|p| p.decisions as f64).collect();
    let max = nice_max(values.iter().fold(0.0, |a: f64, &b| a.max(b)));
    let title = ui(lang, "Decisiones por ventana", "Decisions per window");
    view! {
        <figure class="chart" data-testid="chart-decisions">
            <figcaption>{title}</figcaption>
            <svg viewBox=format!("0 0 {} {}", frame.width, frame.height) role="img" aria-label=title>
                {axis(max, "", frame)}
                {bars(&values, max, frame)
                    .into_iter()
                    .zip(values.clone())
                    .map(|(bar, value)| view! {
                        <rect class="bar" x=bar.x y=bar.y width=bar.width height=bar.height data-testid="chart-bar" data-value=value>
                            <title>{value}</title>
                        </rect>
                    })
                    .collect_view()}
                {time_labels(series.first().map(|p| p.start_ms), series.last().map(|p| p.start_ms), frame)}
            </svg>
        </figure>
    }
}

/// The mix of risk bands as one stacked bar.
#[component]
pub fn BandMix(bands: BandCounts, lang: Lang) -> impl IntoView {
    let shares = band_shares(&bands);
    let counts = [bands.bajo, bands.medio, bands.alto];
    let names = ["bajo", "medio", "alto"];
    let labels = [
        ui(lang, "Bajo", "Low"),
        ui(lang, "Medio", "Medium"),
        ui(lang, "Alto", "High"),
    ];
    let title = ui(lang, "Mezcla de riesgo", "Risk mix");
    let mut x = 0.0;
    view! {
        <figure class="chart" data-testid="chart-bands">
            <figcaption>{title}</figcaption>
            <svg viewBox="0 0 480 28" role="img" aria-label=title>
                {(0..3)
                    .map(|i| {
                        let start = x;
                        x += shares[i] * 480.0;
                        view! {
                            <rect class=format!("band-fill-{}", names[i]) x=start y="0" width=shares[i] * 480.0 height="28" data-band=names[i] data-count=counts[i]>
                                <title>{format!("{}: {}", labels[i], counts[i])}</title>
                            </rect>
                        }
                    })
                    .collect_view()}
            </svg>
            <p class="legend small">
                {(0..3)
                    .map(|i| view! {
                        <span class=format!("key band-fill-{}", names[i])>
                            {format!("{} {} ({:.0} %)", labels[i], counts[i], shares[i] * 100.0)}
                        </span>
                    })
                    .collect_view()}
            </p>
        </figure>
    }
}

/// The closed count windows, oldest to newest: p95 latency per window of N decisions.
#[component]
pub fn CountWindowsChart(windows: Vec<CountWindow>, lang: Lang) -> impl IntoView {
    let frame = FRAME;
    let mut windows = windows;
    windows.sort_by_key(|w| w.index);
    let values: Vec<f64> = windows
        .iter()
        .map(|w| w.summary.latency_ms.p95.unwrap_or(0.0))
        .collect();
    let max = nice_max(values.iter().fold(0.0, |a: f64, &b| a.max(b)));
    let title = ui(
        lang,
        "Ventanas de decisiones cerradas (p95)",
        "Closed decision windows (p95)",
    );
    let empty = windows.is_empty().then(|| {
        view! {
            <p class="muted small" data-testid="windows-empty">
                {ui(lang, "Aún no se ha cerrado ninguna ventana de decisiones.", "No decision window has closed yet.")}
            </p>
        }
    });
    view! {
        <figure class="chart" data-testid="chart-windows">
            <figcaption>{title}</figcaption>
            {empty}
            <svg viewBox=format!("0 0 {} {}", frame.width, frame.height) role="img" aria-label=title>
                {axis(max, "ms", frame)}
                {bars(&values, max, frame)
                    .into_iter()
                    .zip(windows.iter().map(|w| (w.index, w.count, w.rate_per_s)).collect::<Vec<_>>())
                    .map(|(bar, (index, count, rate))| view! {
                        <rect class="bar" x=bar.x y=bar.y width=bar.width height=bar.height data-testid="window-bar" data-index=index>
                            <title>{format!("#{index}: {count}, {rate:.2}/s")}</title>
                        </rect>
                    })
                    .collect_view()}
                {time_labels(windows.first().map(|w| w.end_ms), windows.last().map(|w| w.end_ms), frame)}
            </svg>
        </figure>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_tops_are_round() {
        for (max, want) in [
            (0.0, 1.0),
            (f64::NAN, 1.0),
            (0.7, 1.0),
            (1.0, 1.0),
            (1.2, 2.0),
            (3.0, 5.0),
            (7.5, 10.0),
            (42.0, 50.0),
            (180.0, 200.0),
        ] {
            assert!(
                (nice_max(max) - want).abs() < 1e-9,
                "{max}: {}",
                nice_max(max)
            );
        }
    }

    #[test]
    fn axis_labels_drop_needless_decimals() {
        assert_eq!(axis_label(20.0, "ms"), "20 ms");
        assert_eq!(axis_label(2.5, "ms"), "2.5 ms");
        assert_eq!(axis_label(0.0, ""), "0");
        assert_eq!(axis_label(0.5, ""), "0.5");
    }

    #[test]
    fn lines_span_the_plot_and_skip_empty_windows() {
        let points = line_points(&[Some(0.0), None, Some(10.0)], 10.0, FRAME);
        assert_eq!(points.len(), 2);
        assert_eq!(points[0], (FRAME.left, FRAME.y(0.0, 10.0)));
        assert_eq!(points[1].0, FRAME.width - 4.0);
        assert_eq!(points[1].1, 8.0, "the top of the plot");
        assert_eq!(points[0].1, FRAME.height - FRAME.bottom, "the bottom");
        assert_eq!(polyline(&[(1.0, 2.26), (3.0, 4.0)]), "1.0,2.3 3.0,4.0");
        // One point sits in the middle; values above the top are clipped to it.
        let single = line_points(&[Some(50.0)], 10.0, FRAME);
        assert_eq!(single, vec![(FRAME.left + FRAME.plot_width() / 2.0, 8.0)]);
    }

    #[test]
    fn bars_grow_from_the_bottom_in_proportion() {
        let drawn = bars(&[0.0, 5.0, 10.0], 10.0, FRAME);
        assert_eq!(drawn.len(), 3);
        assert_eq!(drawn[0].height, 0.0);
        assert!((drawn[1].height * 2.0 - drawn[2].height).abs() < 1e-9);
        assert!((drawn[2].y - 8.0).abs() < 1e-9);
        assert!(drawn.windows(2).all(|pair| pair[0].x < pair[1].x));
        assert!(drawn
            .iter()
            .all(|bar| bar.y + bar.height <= FRAME.height - FRAME.bottom + 1e-9));
    }

    #[test]
    fn band_shares_sum_to_one_or_zero() {
        assert_eq!(band_shares(&BandCounts::default()), [0.0; 3]);
        let shares = band_shares(&BandCounts {
            bajo: 2,
            medio: 1,
            alto: 1,
        });
        assert_eq!(shares, [0.5, 0.25, 0.25]);
    }
}
