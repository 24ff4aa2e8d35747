//! `cargo xtask soak`: the long versions of the reliability tests. 100,000 fuzz cases per
//! property, then minutes of mixed load (scores, event batches, KPI reads) on a fresh
//! `wrangler dev` with its memory sampled every 5 s; every accepted record must be stored
//! exactly once, no request may fail beyond the injected invalid ones, memory must stay flat
//! and p99 steady. Figures go to `target/soak.json`; BENCHMARKS.md and RELIABILITY.md quote
//! them.

use std::collections::BTreeMap;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::{done, loadgen, project_command, root, run, start_bench_server, step, Result};

/// Memory of the server's processes at one moment, in MiB.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    pub at_s: f64,
    pub workerd_mib: f64,
    pub all_mib: f64,
}

/// Resident memory of every process in process group `group`, and of the workerd ones.
fn sample_group(group: u32) -> (f64, f64) {
    let (mut workerd, mut all) = (0.0, 0.0);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return (0.0, 0.0);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(stat) = std::fs::read_to_string(path.join("stat")) else {
            continue;
        };
        // The command name is in parentheses and may hold spaces; fields follow it.
        let Some((name, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // After the name: state, ppid, pgrp.
        if fields.get(2).and_then(|pgrp| pgrp.parse::<u32>().ok()) != Some(group) {
            continue;
        }
        let rss_kib = std::fs::read_to_string(path.join("status"))
            .ok()
            .and_then(|status| {
                status.lines().find_map(|line| {
                    line.strip_prefix("VmRSS:")
                        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                })
            })
            .unwrap_or(0.0);
        all += rss_kib / 1024.0;
        if name.contains("workerd") {
            workerd += rss_kib / 1024.0;
        }
    }
    (workerd, all)
}

/// The median of the samples taken in `[from_s, to_s)`.
fn median_between(samples: &[Sample], from_s: f64, to_s: f64) -> Option<f64> {
    let mut values: Vec<f64> = samples
        .iter()
        .filter(|s| s.at_s >= from_s && s.at_s < to_s)
        .map(|s| s.workerd_mib)
        .collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// Memory growth of workerd from the second minute (after warm-up) to the last, in percent.
pub fn memory_growth_pct(samples: &[Sample], seconds: f64) -> Option<f64> {
    let early = median_between(samples, 60.0, 120.0)?;
    let late = median_between(samples, seconds - 60.0, seconds + 1.0)?;
    (early > 0.0).then(|| (late - early) / early * 100.0)
}

/// Requests the server failed: transport errors, runtime failures and 5xx-class codes. The
/// injected invalid records (400s) do not count.
pub fn server_failures(report: &Value) -> u64 {
    let codes = report["rejected_by_code"].as_object();
    let failed_codes: u64 = codes
        .into_iter()
        .flatten()
        .filter(|(code, _)| {
            code.starts_with("HTTP_5")
                || matches!(
                    code.as_str(),
                    "E_STORE" | "E_INTERNAL" | "E_MODEL" | "E_RATE_LIMITED"
                )
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

pub fn soak(minutes: u64) -> Result {
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

    crate::tools::ensure_build_tools()?;
    crate::build_page()?;
    crate::build_worker()?;
    // Build the release load generator before the clock starts.
    run(project_command("cargo").args([
        "build",
        "--release",
        "--locked",
        "-p",
        "valle-tests",
        "--bin",
        "loadgen",
    ]))?;
    let (server, base_url) = start_bench_server("soak")?;
    let duration = format!("{minutes}m");
    let started = step(&format!("mixed load for {duration} on {base_url}"));
    let stop = AtomicBool::new(false);
    let group = server.pid();
    let clock = Instant::now();
    // Half the first soak's rates: at 15 scores/s and 20 events/s on 2 cores the local
    // events consumer could not keep up and requests got wrangler's "restarted
    // mid-request" answer (RELIABILITY.md, "Soak"). Events settle after the answer, hence
    // the longer wait.
    let runs: [(&str, Vec<&str>); 3] = [
        (
            "score",
            vec![
                "--target",
                "score",
                "--rate",
                "8",
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
                "1",
                "--invalid-pct",
                "5",
                "--duplicate-pct",
                "5",
                "--late-pct",
                "5",
                "--branch",
                "soak-events",
                "--verify",
                "--verify-timeout",
                "5m",
            ],
        ),
        ("kpis", vec!["--target", "kpis", "--rate", "1"]),
    ];
    let (samples, reports) = std::thread::scope(|scope| -> Result<_> {
        let sampler = scope.spawn(|| {
            let mut samples = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let (workerd_mib, all_mib) = sample_group(group);
                samples.push(Sample {
                    at_s: clock.elapsed().as_secs_f64(),
                    workerd_mib,
                    all_mib,
                });
                for _ in 0..50 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
            samples
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
        let samples = sampler.join().map_err(|_| "the memory sampler panicked")?;
        Ok((samples, reports))
    })?;
    let seconds = clock.elapsed().as_secs_f64();
    done("mixed load", started);
    server.stop()?;

    let growth = memory_growth_pct(&samples, seconds);
    let mut failures = Vec::new();
    let mut runs_json = BTreeMap::new();
    for (name, report) in &reports {
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
    let first = samples.first().map(|s| s.workerd_mib);
    let peak = samples.iter().map(|s| s.workerd_mib).fold(0.0, f64::max);
    eprintln!(
        "    workerd memory: first sample {first:?} MiB, peak {peak:.1} MiB, second minute → last minute growth {growth:?} %; {} samples",
        samples.len()
    );
    if growth.is_some_and(|g| g > 25.0) {
        failures.push(format!("workerd memory grew {growth:?} %"));
    }
    let summary = json!({
        "minutes": minutes,
        "seconds": seconds,
        "fuzz_seconds": fuzz_seconds,
        "fuzz_cases_per_property": 100_000,
        "memory": {
            "samples": samples.iter().map(|s| json!([s.at_s, s.workerd_mib, s.all_mib])).collect::<Vec<_>>(),
            "workerd_growth_pct": growth,
            "workerd_peak_mib": peak,
        },
        "runs": runs_json,
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

    fn sample(at_s: f64, workerd_mib: f64) -> Sample {
        Sample {
            at_s,
            workerd_mib,
            all_mib: workerd_mib + 100.0,
        }
    }

    #[test]
    fn memory_growth_compares_the_second_minute_with_the_last() {
        let mut samples: Vec<Sample> = (0..120).map(|i| sample(i as f64 * 5.0, 100.0)).collect();
        // A warm-up spike in the first minute does not count.
        samples[2].workerd_mib = 400.0;
        assert_eq!(memory_growth_pct(&samples, 600.0), Some(0.0));
        for s in samples.iter_mut().filter(|s| s.at_s >= 540.0) {
            s.workerd_mib = 130.0;
        }
        let growth = memory_growth_pct(&samples, 600.0).expect("growth");
        assert!((growth - 30.0).abs() < 1e-9, "{growth}");
        assert_eq!(memory_growth_pct(&samples[..5], 600.0), None);
    }

    #[test]
    fn only_server_side_failures_count() {
        let report = json!({
            "rejected_by_code": { "E_VALIDATION": 40, "E_JSON": 2, "E_STORE": 1, "HTTP_503": 2 },
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

    #[test]
    fn this_process_group_has_memory() {
        // This test's own process group, read from /proc.
        let stat = std::fs::read_to_string("/proc/self/stat").expect("stat");
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .expect("name")
            .1
            .split_whitespace()
            .collect();
        let group: u32 = fields[2].parse().expect("pgrp");
        let (_, all) = sample_group(group);
        assert!(all > 0.0);
    }
}
