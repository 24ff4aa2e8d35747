//! Scoring performance: `cargo bench -p valle-shared --bench scoring`.
//!
//! Criterion measures means; before it runs, a plain loop records every single call's latency
//! so the p50/p99 the latency budget speaks of can be reported too.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BatchSize, Criterion, Throughput};
use valle_shared::decision::model::spec::Thresholds;
use valle_shared::decision::model::{Decision, FEATURE_SPEC_JSON, MODEL_ONNX};
use valle_shared::decision::policy::Policy;
use valle_shared::decision::simulation::{
    simulate, ModelChoice, PolicyChoice, StoredDecision, Strategy, MAX_SIMULATED,
};
use valle_shared::{parse_application, Application, Model};

const TYPICAL: &[u8] = br#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846,"applicant_id":"SOC-000123","branch":"Centro"}"#;

fn golden_applications() -> Vec<Application> {
    let golden: serde_json::Value =
        serde_json::from_str(include_str!("../../models/golden.json")).expect("golden parses");
    golden["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|row| parse_application(row["application"].to_string().as_bytes()).expect("valid"))
        .collect()
}

/// Times `iterations` calls one by one and prints p50, p99 and max in microseconds.
fn percentiles(name: &str, iterations: usize, mut call: impl FnMut()) {
    for _ in 0..iterations / 10 {
        call();
    }
    let mut samples: Vec<Duration> = (0..iterations)
        .map(|_| {
            let started = Instant::now();
            call();
            started.elapsed()
        })
        .collect();
    samples.sort_unstable();
    let at = |q: f64| {
        // The index of the q-quantile; iterations is far below f64's exact-integer range.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss
        )]
        let index = ((samples.len() - 1) as f64 * q).round() as usize;
        samples[index].as_secs_f64() * 1e6
    };
    println!(
        "{name}: p50 {:.2} µs, p99 {:.2} µs, max {:.1} µs over {iterations} calls",
        at(0.5),
        at(0.99),
        at(1.0)
    );
}

fn main() {
    let model = Model::embedded().expect("model loads");
    let applications = golden_applications();

    percentiles("validate+encode+probability", 100_000, || {
        let application = parse_application(black_box(TYPICAL)).expect("valid");
        black_box(model.probability(&application).expect("scores"));
    });
    percentiles("validate+score with 4 reasons", 100_000, || {
        let application = parse_application(black_box(TYPICAL)).expect("valid");
        black_box(model.score(&application).expect("scores"));
    });
    // Recourse runs for review and decline only: the cost of one single score of each kind.
    let decided = |wanted: Decision| {
        applications
            .iter()
            .find(|application| {
                model
                    .score(application)
                    .is_ok_and(|score| score.decision == wanted && score.policy_hits.is_empty())
            })
            .expect("a golden row of each decision")
            .clone()
    };
    let (approved, declined) = (decided(Decision::Approve), decided(Decision::Decline));
    percentiles("score, approved (no recourse)", 20_000, || {
        black_box(model.score(black_box(&approved)).expect("scores"));
    });
    percentiles("score, declined, with recourse", 20_000, || {
        black_box(model.score(black_box(&declined)).expect("scores"));
    });
    let challenger = Model::challenger().expect("challenger loads");
    percentiles(
        "shadow score (challenger probability and rules)",
        100_000,
        || {
            black_box(
                challenger
                    .shadow_score(black_box(&approved))
                    .expect("scores"),
            );
        },
    );
    let policy = Policy::committed().expect("policy");
    let stored: Vec<StoredDecision> = applications
        .iter()
        .cycle()
        .take(MAX_SIMULATED)
        .enumerate()
        .map(|(index, application)| {
            let score = model.score(application).expect("scores");
            StoredDecision {
                request_id: format!("r-{index}"),
                application: application.clone(),
                probability: score.probability,
                decision: score.decision,
                shadow_probability: None,
            }
        })
        .collect();
    let stricter = Strategy {
        thresholds: Thresholds {
            review: 0.3,
            decline: 0.45,
        },
        policy: PolicyChoice::Committed,
        model: ModelChoice::Champion,
    };
    percentiles("simulate 10,000 stored decisions", 200, || {
        black_box(simulate(black_box(&stored), &stricter, policy));
    });
    percentiles("model load+optimize", 200, || {
        black_box(Model::load(MODEL_ONNX, FEATURE_SPEC_JSON).expect("loads"));
    });

    let mut criterion = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));

    let mut single = criterion.benchmark_group("single");
    single.throughput(Throughput::Elements(1));
    single.bench_function("validate", |b| {
        b.iter(|| parse_application(black_box(TYPICAL)));
    });
    single.bench_function("validate+encode+probability", |b| {
        b.iter(|| {
            let application = parse_application(black_box(TYPICAL)).expect("valid");
            model.probability(&application)
        });
    });
    single.bench_function("validate+score with reasons", |b| {
        b.iter(|| {
            let application = parse_application(black_box(TYPICAL)).expect("valid");
            model.score(&application)
        });
    });
    single.finish();

    let batch: Vec<Application> = applications.iter().cycle().take(1000).cloned().collect();
    let mut group = criterion.benchmark_group("batch_1000");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("encode+probability", |b| {
        b.iter(|| model.probability_batch(black_box(&batch)));
    });
    group.bench_function("score with reasons", |b| {
        b.iter(|| model.score_batch(black_box(&batch)));
    });
    group.finish();

    let mut load = criterion.benchmark_group("load");
    load.sample_size(20);
    load.bench_function("load+optimize", |b| {
        b.iter_batched(
            || (),
            |()| Model::load(MODEL_ONNX, FEATURE_SPEC_JSON),
            BatchSize::PerIteration,
        );
    });
    load.finish();
    criterion.final_summary();
}
