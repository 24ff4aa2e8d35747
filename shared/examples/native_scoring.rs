//! The scoring core natively, measured the same way as models/bench_onnxruntime.py measures
//! onnxruntime: the same ONNX model, the golden rows' encoded features, one row per call
//! (median and p99 of many calls) and one 10,000-row batch (rows per second). Also the full
//! path the edge runs per request: validate, encode, score with reasons. Prints JSON.
//!
//! `cargo run --profile native-bench -p valle-shared --example native_scoring`
//! (`cargo xtask bench-peers` runs it next to the onnxruntime script and reports the ratio).

use std::time::Instant;

use valle_shared::{parse_application, Model};

fn percentile(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Median and p99 of `runs` timed calls, in microseconds.
fn per_call(runs: usize, mut call: impl FnMut(usize)) -> (f64, f64) {
    let mut micros = Vec::with_capacity(runs);
    for i in 0..runs {
        let started = Instant::now();
        call(i);
        micros.push(started.elapsed().as_secs_f64() * 1e6);
    }
    micros.sort_by(f64::total_cmp);
    (percentile(&micros, 0.5), percentile(&micros, 0.99))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let golden: serde_json::Value = serde_json::from_str(include_str!("../../models/golden.json"))?;
    let rows = golden["rows"].as_array().ok_or("golden rows")?;
    let features: Vec<Vec<f32>> = rows
        .iter()
        .map(|row| {
            row["features"]
                .as_array()
                .map(|values| {
                    values
                        .iter()
                        .filter_map(|v| v.as_f64())
                        .map(|v| v as f32)
                        .collect()
                })
                .unwrap_or_default()
        })
        .collect();
    let bodies: Vec<String> = rows
        .iter()
        .map(|row| row["application"].to_string())
        .collect();
    let model = Model::embedded()?;
    let width = features[0].len();

    // Warm up, then one row per call.
    for row in &features {
        model.probabilities(row)?;
    }
    let mut sink = 0.0f32;
    let (single_p50, single_p99) = per_call(20_000, |i| {
        sink += model
            .probabilities(&features[i % features.len()])
            .map_or(0.0, |p| p[0]);
    });

    // One batch of 10,000 rows (the golden rows repeated), best of five.
    let batch: Vec<f32> = features
        .iter()
        .cycle()
        .take(10_000)
        .flatten()
        .copied()
        .collect();
    let mut best = f64::MAX;
    for _ in 0..5 {
        let started = Instant::now();
        let probabilities = model.probabilities(&batch)?;
        best = best.min(started.elapsed().as_secs_f64());
        sink += probabilities[0];
    }
    let batch_rows = batch.len() / width;

    // What the edge does per request: parse + validate + encode + score + reasons.
    let (full_p50, full_p99) = per_call(20_000, |i| {
        if let Ok(application) = parse_application(bodies[i % bodies.len()].as_bytes()) {
            sink += model
                .score(&application)
                .map_or(0.0, |score| score.probability);
        }
    });

    let report = serde_json::json!({
        "engine": "tract (valle-shared, native)",
        "single_row_us": { "p50": single_p50, "p99": single_p99 },
        "batch": { "rows": batch_rows, "seconds": best, "rows_per_s": batch_rows as f64 / best },
        "full_request_path_us": { "p50": full_p50, "p99": full_p99 },
        "checksum": sink,
    });
    println!("{report}");
    Ok(())
}
