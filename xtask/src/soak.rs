//! `cargo xtask soak`: the long versions of the reliability tests. 100,000 fuzz cases per
//! property, then minutes of mixed load (scores, event batches, KPI reads) on a fresh
//! `wrangler dev` with its memory sampled every 5 s; every accepted record must be stored
//! exactly once, no request may fail beyond the injected invalid ones, the memory Valle holds
//! (its wasm linear memories and its V8 heap after a collection) must stay flat and p99
//! steady. The runtime processes' resident memory is recorded beside it, with wrangler's
//! proxy runtime, which runs none of Valle's code, as the control. Figures go to
//! `target/soak.json`; BENCHMARKS.md and RELIABILITY.md quote them.

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use valle_shared::contract::codes::ErrorCode;

use serde_json::{json, Value};

use crate::server::{build_loadgen, loadgen, start_bench_server};
use crate::{done, project_command, root, run, step, Result};

/// How far the memory Valle holds may grow from the second minute to the end, in percent.
const MAX_GROWTH_PCT: f64 = 25.0;
/// How far the last minute's p99 may rise above the median minute's.
const MAX_P99_DRIFT: f64 = 3.0;
/// The most rows the KPI object may hold after the soak: a few per minute of event time
/// and branch, never one per decision.
const MAX_KPI_OBJECT_ROWS: f64 = 1_000.0;

mod memory;

pub use memory::runtime_pid;

use memory::{
    growth_pct, lowest_valle_memory, memory_growth_pct, probe_valle_memory, sample_group, Sample,
    ValleMemory,
};

/// Requests the server failed: transport errors, 5xx answers and the codes of a server in
/// trouble ([`ErrorCode::is_transient`]). The injected invalid records (400s) do not count.
pub fn server_failures(report: &Value) -> u64 {
    let codes = report["rejected_by_code"].as_object();
    let failed_codes: u64 = codes
        .into_iter()
        .flatten()
        .filter(|(code, _)| {
            code.starts_with("HTTP_5")
                || ErrorCode::parse(code).is_some_and(ErrorCode::is_transient)
        })
        .filter_map(|(_, n)| n.as_u64())
        .sum();
    failed_codes + report["transport_errors"].as_u64().unwrap_or(0)
}

/// The last minute's p99 against the median of the per-minute p99s.
pub fn p99_drift(report: &Value) -> Option<f64> {
    let minutes: Vec<f64> = report["per_minute"]
        .as_array()?
        .iter()
        .filter_map(|m| m["p99"].as_f64())
        .collect();
    let mut sorted = minutes.clone();
    sorted.sort_by(f64::total_cmp);
    let median = *sorted.get(sorted.len() / 2)?;
    let last = *minutes.last()?;
    (median > 0.0).then(|| last / median)
}

/// `cargo xtask soak`: the fuzzing at 100,000 cases per property, then the mixed load for
/// `minutes` with its memory sampled, then the verdict, written to target/soak.json.
pub fn soak(minutes: u64) -> Result {
    let fuzz_seconds = fuzz()?;
    let load = mixed_load(minutes)?;
    judge(minutes, fuzz_seconds, &load)
}

/// The property tests at soak strength; how long they took.
fn fuzz() -> Result<f64> {
    let started = step("fuzzing: 100,000 cases per property (release)");
    run(project_command("cargo")
        .args([
            "test",
            "--release",
            "--locked",
            "-p",
            "valle-shared",
            "--test",
            "fuzz",
        ])
        .env("VALLE_FUZZ_CASES", "100000"))?;
    done("fuzzing", started);
    let fuzz_seconds = started.elapsed().as_secs_f64();

    Ok(fuzz_seconds)
}

/// What the mixed load left to judge.
struct MixedLoad {
    samples: Vec<Sample>,
    probes: Vec<(f64, Result<ValleMemory>)>,
    reports: BTreeMap<String, Value>,
    seconds: f64,
    after_probe: Result<ValleMemory>,
    late_probe: Result<ValleMemory>,
}

/// Builds, starts a quiet server, runs the three loads at once while sampling memory, and
/// stops the server.
fn mixed_load(minutes: u64) -> Result<MixedLoad> {
    crate::tools::ensure_build_tools()?;
    crate::build_page()?;
    crate::build_worker()?;
    // Build the release load generator before the clock starts.
    build_loadgen()?;
    let (server, base_url) = start_bench_server("soak")?;
    let duration = format!("{minutes}m");
    let load_seconds = minutes as f64 * 60.0;
    let started = step(&format!("mixed load for {duration} on {base_url}"));
    let stop = AtomicBool::new(false);
    let group = server.pid();
    let clock = Instant::now();
    // A steady mix of the three kinds of traffic (RELIABILITY.md, "Soak"). Events settle
    // after the answer: the events run waits for the inbox to empty, then verifies.
    let runs: [(&str, Vec<&str>); 3] = [
        (
            "score",
            vec![
                "--target",
                "score",
                "--rate",
                "40",
                "--invalid-pct",
                "5",
                "--duplicate-pct",
                "5",
                "--branch",
                "soak-score",
                "--verify",
            ],
        ),
        (
            "events",
            vec![
                "--target",
                "events",
                "--batch",
                "10",
                "--rate",
                "5",
                "--invalid-pct",
                "5",
                "--duplicate-pct",
                "5",
                "--late-pct",
                "5",
                "--branch",
                "soak-events",
                "--settle-timeout",
                "2m",
                "--verify",
                "--verify-timeout",
                "5m",
            ],
        ),
        ("kpis", vec!["--target", "kpis", "--rate", "2"]),
    ];
    let (samples, probes, reports) = std::thread::scope(|scope| -> Result<_> {
        let sampler = scope.spawn(|| {
            let mut samples = Vec::new();
            let mut probes: Vec<(f64, Result<ValleMemory>)> = Vec::new();
            let mut end_probe = None;
            while !stop.load(Ordering::Relaxed) {
                let sample = Sample {
                    at_s: clock.elapsed().as_secs_f64(),
                    ..sample_group(group)
                };
                samples.push(sample);
                // Valle's own memory every minute from the end of the second (the baseline),
                // and just before the load ends, before the verification's large reads;
                // those two also collect V8's garbage.
                if sample.at_s >= load_seconds - 25.0 {
                    if end_probe.is_none() {
                        let probe = lowest_valle_memory(&base_url, sample.runtime_pid);
                        end_probe = Some((sample.at_s, probe));
                    }
                } else if sample.at_s >= 120.0 + 60.0 * probes.len() as f64 {
                    let probe = if probes.is_empty() {
                        lowest_valle_memory(&base_url, sample.runtime_pid)
                    } else {
                        probe_valle_memory(&base_url, sample.runtime_pid, false)
                    };
                    probes.push((sample.at_s, probe));
                }
                for _ in 0..50 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            probes.extend(end_probe);
            (samples, probes)
        });
        let children: Vec<(&str, Result<Child>)> = runs
            .iter()
            .map(|(name, args)| {
                let mut args = args.clone();
                args.extend(["--duration", duration.as_str(), "--json"]);
                let child = loadgen(&base_url, &args)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .map_err(|error| format!("cannot start loadgen {name}: {error}"));
                (*name, child)
            })
            .collect();
        let mut reports = BTreeMap::new();
        for (name, child) in children {
            let output = child?
                .wait_with_output()
                .map_err(|error| format!("loadgen {name}: {error}"))?;
            let text = String::from_utf8_lossy(&output.stdout);
            let line = text.lines().rev().find(|line| line.starts_with('{'));
            let report: Value = serde_json::from_str(line.unwrap_or_default())
                .map_err(|error| format!("loadgen {name}: no JSON report ({error}): {text}"))?;
            reports.insert(name.to_owned(), report);
        }
        stop.store(true, Ordering::Relaxed);
        let (samples, probes) = sampler.join().map_err(|_| "the memory sampler panicked")?;
        Ok((samples, probes, reports))
    })?;
    let seconds = clock.elapsed().as_secs_f64();
    done("mixed load", started);
    let after_probe = probe_valle_memory(
        &base_url,
        samples.iter().rev().find_map(|sample| sample.runtime_pid),
        true,
    );
    let late_probe = match probes.last() {
        Some((at_s, probe)) if probes.len() > 1 && *at_s >= load_seconds - 25.0 => probe.clone(),
        _ => Err("no probe at the end of the load".to_owned()),
    };
    server.stop()?;
    Ok(MixedLoad {
        samples,
        probes,
        reports,
        seconds,
        after_probe,
        late_probe,
    })
}

/// The runs' failures (server failures, failed verification, p99 drift) and their JSON.
fn judge_runs(reports: &BTreeMap<String, Value>) -> (Vec<String>, BTreeMap<String, Value>) {
    let mut failures = Vec::new();
    let mut runs_json = BTreeMap::new();
    for (name, report) in reports {
        let failed = server_failures(report);
        let verified = report["verification"]["missing"].as_array().map(|missing| {
            missing.is_empty()
                && report["verification"]["duplicated"]
                    .as_array()
                    .is_some_and(Vec::is_empty)
                && report["verification"]["unexpected"]
                    .as_array()
                    .is_some_and(Vec::is_empty)
        });
        let drift = p99_drift(report);
        if drift.is_some_and(|d| d > MAX_P99_DRIFT) {
            failures.push(format!(
                "{name}: last-minute p99 is {drift:?} × the median minute's"
            ));
        }
        eprintln!(
            "    {name}: {} requests, {} records, {} accepted, p50 {:.1} ms, p99 {:.1} ms, {:.1} req/s, server failures {failed}, runtime retries {}, verified {verified:?}, last-minute p99 / median {drift:?}",
            report["sent"], report["records"], report["accepted_records"],
            report["latency_ms"]["p50"].as_f64().unwrap_or(f64::NAN),
            report["latency_ms"]["p99"].as_f64().unwrap_or(f64::NAN),
            report["achieved_rate"].as_f64().unwrap_or(f64::NAN),
            report["runtime_retries"],
        );
        if failed > 0 {
            failures.push(format!("{name}: {failed} requests failed by the server"));
        }
        if verified == Some(false) {
            failures.push(format!("{name}: verification failed"));
        }
        runs_json.insert(
            name.clone(),
            json!({ "report": report, "server_failures": failed, "p99_last_over_median": drift }),
        );
    }
    (failures, runs_json)
}

/// Valle's own memory from the second minute to the end of the load, each within
/// [`MAX_GROWTH_PCT`]; the failures and the readings' JSON.
fn judge_memory(
    early_probe: Option<&Result<ValleMemory>>,
    late_probe: &Result<ValleMemory>,
) -> (Vec<String>, Vec<Value>) {
    let mut failures = Vec::new();
    let mut valle_memory = Vec::new();
    match (early_probe, &late_probe) {
        (Some(Ok(early)), Ok(late)) => {
            for (what, early, late) in [
                (
                    "worker wasm memory",
                    early.wasm_worker_bytes,
                    late.wasm_worker_bytes,
                ),
                (
                    "KPI object wasm memory",
                    early.wasm_kpi_object_bytes,
                    late.wasm_kpi_object_bytes,
                ),
                (
                    "V8 heap after a collection",
                    early.v8_used_bytes,
                    late.v8_used_bytes,
                ),
            ] {
                let growth = growth_pct(early, late);
                eprintln!("    Valle's {what}: {early:?} → {late:?} bytes, {growth:?} %");
                match growth {
                    Some(g) if g <= MAX_GROWTH_PCT => {}
                    _ => failures.push(format!(
                        "Valle's {what} grew {growth:?} % ({early:?} → {late:?} bytes)"
                    )),
                }
                valle_memory.push(json!({ "what": what, "early_bytes": early, "late_bytes": late, "growth_pct": growth }));
            }
        }
        (early, late) => failures.push(format!(
            "Valle's memory was not read: second minute {early:?}, end {late:?}"
        )),
    }
    (failures, valle_memory)
}

/// Judges the load and writes target/soak.json.
fn judge(minutes: u64, fuzz_seconds: f64, load: &MixedLoad) -> Result {
    let (samples, probes, reports) = (&load.samples, &load.probes, &load.reports);
    let (seconds, after_probe, late_probe) = (load.seconds, &load.after_probe, &load.late_probe);
    let runtime_growth = memory_growth_pct(samples, |s| s.runtime_mib, seconds);
    let proxy_growth = memory_growth_pct(samples, |s| s.proxy_mib, seconds);
    let growth = memory_growth_pct(samples, Sample::workerd_mib, seconds);
    let (mut failures, runs_json) = judge_runs(reports);
    let kpi_rows = reports
        .get("events")
        .and_then(|report| report["kpi_object_rows"].as_f64());
    let decisions: f64 = reports
        .values()
        .filter_map(|report| report["verification"]["decisions"].as_f64())
        .sum();
    eprintln!("    KPI object rows after the load: {kpi_rows:?}, for {decisions} decisions");
    if !kpi_rows.is_some_and(|rows| rows <= MAX_KPI_OBJECT_ROWS) {
        failures.push(format!(
            "the KPI object holds {kpi_rows:?} rows (at most {MAX_KPI_OBJECT_ROWS})"
        ));
    }
    let first = samples.first().map(Sample::workerd_mib);
    let peak = samples.iter().map(Sample::workerd_mib).fold(0.0, f64::max);
    eprintln!(
        "    workerd resident memory (recorded, not judged): first sample {first:?} MiB, peak {peak:.1} MiB, second minute → last minute {growth:?} % (Valle's runtime {runtime_growth:?} %, wrangler's proxy runtime without Valle's code {proxy_growth:?} %); {} samples",
        samples.len()
    );
    for (at_s, probe) in probes.iter() {
        eprintln!("    Valle's memory at {at_s:.0} s: {probe:?}");
    }
    eprintln!("    Valle's memory after the verification: {after_probe:?}");
    let (memory_failures, valle_memory) =
        judge_memory(probes.first().map(|(_, probe)| probe), late_probe);
    failures.extend(memory_failures);
    let summary = json!({
        "minutes": minutes,
        "seconds": seconds,
        "fuzz_seconds": fuzz_seconds,
        "fuzz_cases_per_property": 100_000,
        "memory": {
            "samples_columns": ["at_s", "runtime_mib", "proxy_mib", "all_mib"],
            "samples": samples.iter().map(|s| json!([s.at_s, s.runtime_mib, s.proxy_mib, s.all_mib])).collect::<Vec<_>>(),
            "workerd_growth_pct": growth,
            "runtime_growth_pct": runtime_growth,
            "proxy_growth_pct": proxy_growth,
            "workerd_peak_mib": peak,
            "valle": valle_memory,
            "valle_probes": probes
                .iter()
                .map(|(at_s, probe)| json!({ "at_s": at_s, "memory": probe.as_ref().ok().map(|p| p.to_json()), "error": probe.as_ref().err() }))
                .chain([json!({ "at_s": seconds, "after_verification": true, "memory": after_probe.as_ref().ok().map(|p| p.to_json()), "error": after_probe.as_ref().err() })])
                .collect::<Vec<_>>(),
        },
        "runs": runs_json,
        "kpi_object_rows": kpi_rows,
        "decisions_verified": decisions,
        "failures": failures,
    });
    let path = root().join("target/soak.json");
    std::fs::write(
        &path,
        serde_json::to_vec_pretty(&summary).unwrap_or_default(),
    )
    .map_err(|error| format!("{}: {error}", path.display()))?;
    eprintln!("    written: {}", path.display());
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn only_server_side_failures_count() {
        let report = json!({
            "rejected_by_code": { ErrorCode::Validation.as_str(): 40, ErrorCode::Json.as_str(): 2, ErrorCode::Store.as_str(): 1, "HTTP_503": 2 },
            "transport_errors": 3,
        });
        assert_eq!(server_failures(&report), 6);
        assert_eq!(server_failures(&json!({})), 0);
    }

    #[test]
    fn p99_drift_is_the_last_minute_over_the_median_minute() {
        let report = json!({ "per_minute": [{ "p99": 10.0 }, { "p99": 20.0 }, { "p99": 12.0 }, { "p99": 30.0 }] });
        assert_eq!(p99_drift(&report), Some(30.0 / 20.0));
        assert_eq!(p99_drift(&json!({})), None);
    }
}
