//! `cargo xtask bench-peers`: Valle next to its peers, in one run.
//!
//! 1. The scoring core natively (`shared/examples/native_scoring.rs`) against onnxruntime
//!    from Python (`models/bench_onnxruntime.py`): same model, same golden rows.
//! 2. `POST /api/v1/score` on `wrangler dev` against the Flask + scikit-learn reference
//!    (`tests/peers/flask_ref.py`), once storing nothing and once storing every decision in
//!    SQLite under the same idempotency key, all loaded by the same loadgen with the same
//!    applicants, closed loop at 1 and 16 connections.
//!
//! The tables go to the terminal and, as JSON, to `target/bench-peers.json`.

use serde_json::{json, Value};

use crate::Result;

/// The two Flask peers, as the tables name them.
pub const FLASK: &str = "Flask, stores nothing";
pub const FLASK_SQLITE: &str = "Flask + SQLite (WAL)";

/// One round of the HTTP comparison: the edge first, then each peer.
pub struct HttpRound {
    pub connections: usize,
    pub figures: Vec<(&'static str, Figures)>,
}

/// One engine's or server's figures, read from the JSON its benchmark printed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Figures {
    pub p50: f64,
    pub p99: f64,
    /// Rows per second (scoring core) or requests per second (HTTP).
    pub throughput: f64,
}

impl Figures {
    /// From `native_scoring` or `bench_onnxruntime.py`: single-row latency, batch rows/s.
    pub fn from_engine(report: &Value) -> Result<Figures> {
        Ok(Figures {
            p50: number(report, "/single_row_us/p50")?,
            p99: number(report, "/single_row_us/p99")?,
            throughput: number(report, "/batch/rows_per_s")?,
        })
    }

    /// From `loadgen --json`: latency in ms and the achieved rate. A run in which a request
    /// failed or was refused measures something else, so it is an error.
    pub fn from_loadgen(report: &Value) -> Result<Figures> {
        let sent = number(report, "/sent")?;
        let accepted = number(report, "/accepted_records")?;
        if sent == 0.0 || accepted < sent {
            return Err(format!(
                "loadgen: only {accepted} of {sent} requests were accepted: {report}"
            ));
        }
        Ok(Figures {
            p50: number(report, "/latency_ms/p50")?,
            p99: number(report, "/latency_ms/p99")?,
            throughput: number(report, "/achieved_rate")?,
        })
    }
}

fn number(report: &Value, pointer: &str) -> Result<f64> {
    report
        .pointer(pointer)
        .and_then(Value::as_f64)
        .ok_or_else(|| format!("no number at {pointer} in {report}"))
}

/// How Valle compares with a peer: how many times faster (latency: peer / Valle) and how
/// many times the throughput (Valle / peer). Above 1 means Valle is ahead.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ratio {
    pub p50: f64,
    pub p99: f64,
    pub throughput: f64,
}

pub fn ratio(valle: Figures, peer: Figures) -> Ratio {
    Ratio {
        p50: peer.p50 / valle.p50,
        p99: peer.p99 / valle.p99,
        throughput: valle.throughput / peer.throughput,
    }
}

/// The scoring goals: natively ≥ 10× onnxruntime's single-row call; the edge ≥ 3× the
/// Flask reference's throughput with a p99 at most half of it.
pub fn native_goal_met(r: Ratio) -> bool {
    r.p50 >= 10.0
}

pub fn edge_goal_met(r: Ratio) -> bool {
    r.throughput >= 3.0 && r.p99 >= 2.0
}

/// A Markdown table row: `| name | p50 | p99 | throughput | |` (the last column is the
/// ratio rows' verdict).
pub fn row(name: &str, figures: Figures, latency_unit: &str, throughput_unit: &str) -> String {
    format!(
        "| {name} | {:.2} {latency_unit} | {:.2} {latency_unit} | {} {throughput_unit} | |",
        figures.p50,
        figures.p99,
        thousands(figures.throughput)
    )
}

pub fn ratio_row(name: &str, r: Ratio, goal_met: bool) -> String {
    format!(
        "| {name} | {:.2}× | {:.2}× | {:.2}× | goal {} |",
        r.p50,
        r.p99,
        r.throughput,
        if goal_met { "met" } else { "NOT met" }
    )
}

/// 1234567.8 → "1,234,568"; small rates keep one decimal.
fn thousands(value: f64) -> String {
    if value < 1_000.0 {
        return format!("{value:.1}");
    }
    let digits = format!("{:.0}", value);
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// The whole result, for `target/bench-peers.json`.
pub fn summary(native: Figures, onnxruntime: Figures, http: &[HttpRound]) -> Value {
    let engine = ratio(native, onnxruntime);
    let pair = |f: Figures| json!({"p50": f.p50, "p99": f.p99, "throughput": f.throughput});
    json!({
        "scoring_core_us": {
            "native": pair(native),
            "onnxruntime": pair(onnxruntime),
            "ratio": {"p50": engine.p50, "p99": engine.p99, "batch": engine.throughput},
            "goal_met": native_goal_met(engine),
        },
        "http_ms": http.iter().map(|round| {
            let edge = round.figures.first().map(|&(_, f)| f);
            json!({
                "connections": round.connections,
                "servers": round.figures.iter().map(|&(name, f)| json!({"name": name, "figures": pair(f)})).collect::<Vec<_>>(),
                "edge_against": round.figures.iter().skip(1).filter_map(|&(name, f)| {
                    let r = ratio(edge?, f);
                    Some(json!({
                        "peer": name,
                        "ratio": {"p50": r.p50, "p99": r.p99, "throughput": r.throughput},
                        "goal_met": edge_goal_met(r),
                    }))
                }).collect::<Vec<_>>(),
            })
        }).collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(valle: (f64, f64, f64), peer: (f64, f64, f64), want: (f64, f64, f64)) {
        let figures = |(p50, p99, throughput)| Figures {
            p50,
            p99,
            throughput,
        };
        let r = ratio(figures(valle), figures(peer));
        let got = (r.p50, r.p99, r.throughput);
        assert!(
            (got.0 - want.0).abs() < 1e-9
                && (got.1 - want.1).abs() < 1e-9
                && (got.2 - want.2).abs() < 1e-9,
            "valle {valle:?} peer {peer:?}: got {got:?}, want {want:?}"
        );
    }

    #[test]
    fn ratios_are_above_one_when_valle_is_ahead() {
        check((1.0, 2.0, 300.0), (10.0, 30.0, 100.0), (10.0, 15.0, 3.0));
        check((4.0, 8.0, 50.0), (2.0, 4.0, 100.0), (0.5, 0.5, 0.5));
        check(
            (2.27, 4.66, 19.6e6),
            (8.66, 28.2, 67.3e6),
            (8.66 / 2.27, 28.2 / 4.66, 19.6 / 67.3),
        );
    }

    #[test]
    fn goals_need_every_part() {
        let r = |p50, p99, throughput| Ratio {
            p50,
            p99,
            throughput,
        };
        assert!(native_goal_met(r(10.0, 1.0, 0.1)));
        assert!(!native_goal_met(r(9.9, 20.0, 20.0)));
        assert!(edge_goal_met(r(1.0, 2.0, 3.0)));
        assert!(!edge_goal_met(r(5.0, 1.9, 10.0)));
        assert!(!edge_goal_met(r(5.0, 5.0, 2.9)));
    }

    #[test]
    fn loadgen_reports_are_read_and_partial_runs_refused() {
        let report = json!({"sent": 10, "accepted_records": 10, "achieved_rate": 40.5,
            "latency_ms": {"p50": 20.0, "p95": 30.0, "p99": 41.0, "max": 50.0}});
        assert_eq!(
            Figures::from_loadgen(&report),
            Ok(Figures {
                p50: 20.0,
                p99: 41.0,
                throughput: 40.5
            })
        );
        let refused = json!({"sent": 10, "accepted_records": 9, "achieved_rate": 40.5,
            "latency_ms": {"p50": 20.0, "p99": 41.0}});
        assert!(Figures::from_loadgen(&refused).is_err());
        assert!(Figures::from_loadgen(&json!({"sent": 10})).is_err());
    }

    #[test]
    fn engine_reports_are_read() {
        let report = json!({"single_row_us": {"p50": 2.5, "p99": 4.0},
            "batch": {"rows": 10000, "seconds": 0.001, "rows_per_s": 1.0e7}});
        assert_eq!(
            Figures::from_engine(&report),
            Ok(Figures {
                p50: 2.5,
                p99: 4.0,
                throughput: 1.0e7
            })
        );
    }

    #[test]
    fn throughput_is_grouped_by_thousands() {
        for (value, want) in [
            (63.54, "63.5"),
            (999.0, "999.0"),
            (1_000.0, "1,000"),
            (19_600_000.4, "19,600,000"),
            (123_456.0, "123,456"),
        ] {
            assert_eq!(thousands(value), want, "{value}");
        }
    }
}
