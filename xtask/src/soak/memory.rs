//! The soak's memory readings: the runtime processes' resident memory, sampled, and the
//! memory Valle itself holds, read through its probe route.

use super::*;

/// Collections per reading of the V8 heap (see [`lowest_valle_memory`]).
const PROBES_PER_READING: usize = 3;

/// Resident memory of the server's processes at one moment, in MiB: the runtime that runs
/// Valle (the workerd with an inspector), wrangler's proxy runtime, and everything.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    pub at_s: f64,
    pub runtime_mib: f64,
    pub proxy_mib: f64,
    pub all_mib: f64,
    /// The runtime's process id.
    pub runtime_pid: Option<u32>,
}

impl Sample {
    pub fn workerd_mib(&self) -> f64 {
        self.runtime_mib + self.proxy_mib
    }
}

/// The memory Valle itself holds, read by `xtask/soak-memory.cjs`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ValleMemory {
    pub wasm_worker_bytes: Option<f64>,
    pub wasm_kpi_object_bytes: Option<f64>,
    /// Valle's V8 heap after a forced collection.
    pub v8_used_bytes: Option<f64>,
}

impl ValleMemory {
    fn parse(line: &str) -> Option<ValleMemory> {
        let value: Value = serde_json::from_str(line).ok()?;
        Some(ValleMemory {
            wasm_worker_bytes: value["wasm_worker_bytes"].as_f64(),
            wasm_kpi_object_bytes: value["wasm_kpi_object_bytes"].as_f64(),
            v8_used_bytes: value["v8_used_bytes"].as_f64(),
        })
    }

    pub fn to_json(self) -> Value {
        json!({
            "wasm_worker_bytes": self.wasm_worker_bytes,
            "wasm_kpi_object_bytes": self.wasm_kpi_object_bytes,
            "v8_used_bytes": self.v8_used_bytes,
        })
    }
}

/// Reads Valle's memory from the running server, the V8 heap only if `collect` (a forced
/// collection pauses the isolate); a probe that does not answer in 90 s counts as unread.
pub fn probe_valle_memory(
    base_url: &str,
    runtime_pid: Option<u32>,
    collect: bool,
) -> Result<ValleMemory> {
    let pid = runtime_pid.ok_or("no workerd runtime with an inspector in the server's group")?;
    let mut child = project_command("node")
        .arg("xtask/soak-memory.cjs")
        .args([base_url, crate::TEST_OFFICER_TOKEN, &pid.to_string()])
        .args((!collect).then_some("--no-gc"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|error| format!("cannot run xtask/soak-memory.cjs: {error}"))?;
    let deadline = Instant::now() + Duration::from_secs(90);
    while child.try_wait().ok().flatten().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            return Err("xtask/soak-memory.cjs did not answer in 90 s".into());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let output = child
        .wait_with_output()
        .map_err(|error| format!("xtask/soak-memory.cjs: {error}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    ValleMemory::parse(text.trim()).ok_or_else(|| format!("xtask/soak-memory.cjs said {text:?}"))
}

/// The lowest V8 heap of `PROBES_PER_READING` collections 2 s apart, with the wasm memory
/// of the last. One collection catches whatever is in flight at that instant (a page of
/// 500 rows the KPI object is counting is most of a megabyte); the lowest of a few is what
/// the isolate keeps, which is what grows if something leaks.
pub fn lowest_valle_memory(base_url: &str, runtime_pid: Option<u32>) -> Result<ValleMemory> {
    let mut lowest: Option<ValleMemory> = None;
    for probe in 0..PROBES_PER_READING {
        if probe > 0 {
            std::thread::sleep(Duration::from_secs(2));
        }
        let memory = probe_valle_memory(base_url, runtime_pid, true)?;
        lowest = Some(match lowest {
            Some(low)
                if low.v8_used_bytes <= memory.v8_used_bytes || memory.v8_used_bytes.is_none() =>
            {
                ValleMemory {
                    wasm_worker_bytes: memory.wasm_worker_bytes,
                    wasm_kpi_object_bytes: memory.wasm_kpi_object_bytes,
                    v8_used_bytes: low.v8_used_bytes,
                }
            }
            _ => memory,
        });
    }
    lowest.ok_or_else(|| "no probe".to_owned())
}

/// Growth from `early` to `late` in percent; none unless both were read.
pub fn growth_pct(early: Option<f64>, late: Option<f64>) -> Option<f64> {
    let (early, late) = (early?, late?);
    (early > 0.0).then(|| (late - early) / early * 100.0)
}

/// Resident memory of the processes in process group `group`.
pub fn sample_group(group: u32) -> Sample {
    let mut sample = Sample::default();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return sample;
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
        let mib = rss_kib / 1024.0;
        sample.all_mib += mib;
        if name.contains("workerd") {
            let command_line = std::fs::read(path.join("cmdline")).unwrap_or_default();
            // wrangler starts the runtime that runs the worker with an inspector, and its
            // own proxy runtime without one.
            if String::from_utf8_lossy(&command_line).contains("--inspector-addr") {
                sample.runtime_mib += mib;
                sample.runtime_pid = entry.file_name().to_str().and_then(|n| n.parse().ok());
            } else {
                sample.proxy_mib += mib;
            }
        }
    }
    sample
}

/// The workerd that runs Valle (the one with an inspector) among process group `group`.
pub fn runtime_pid(group: u32) -> Option<u32> {
    sample_group(group).runtime_pid
}

/// The median of `value` over the samples taken in `[from_s, to_s)`.
fn median_between(
    samples: &[Sample],
    value: fn(&Sample) -> f64,
    from_s: f64,
    to_s: f64,
) -> Option<f64> {
    let mut values: Vec<f64> = samples
        .iter()
        .filter(|s| s.at_s >= from_s && s.at_s < to_s)
        .map(value)
        .collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// Growth of `value` from the second minute (after warm-up) to the last, in percent.
pub fn memory_growth_pct(
    samples: &[Sample],
    value: fn(&Sample) -> f64,
    seconds: f64,
) -> Option<f64> {
    growth_pct(
        median_between(samples, value, 60.0, 120.0),
        median_between(samples, value, seconds - 60.0, seconds + 1.0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    fn sample(at_s: f64, runtime_mib: f64) -> Sample {
        Sample {
            at_s,
            runtime_mib,
            proxy_mib: 50.0,
            all_mib: runtime_mib + 150.0,
            runtime_pid: Some(7),
        }
    }

    #[test]
    fn memory_growth_compares_the_second_minute_with_the_last() {
        let mut samples: Vec<Sample> = (0..120).map(|i| sample(i as f64 * 5.0, 100.0)).collect();
        // A warm-up spike in the first minute does not count.
        samples[2].runtime_mib = 400.0;
        let runtime = |s: &Sample| s.runtime_mib;
        assert_eq!(memory_growth_pct(&samples, runtime, 600.0), Some(0.0));
        for s in samples.iter_mut().filter(|s| s.at_s >= 540.0) {
            s.runtime_mib = 130.0;
        }
        let growth = memory_growth_pct(&samples, runtime, 600.0).expect("growth");
        assert!((growth - 30.0).abs() < 1e-9, "{growth}");
        let proxy = memory_growth_pct(&samples, |s| s.proxy_mib, 600.0);
        assert_eq!(proxy, Some(0.0));
        let workerd = memory_growth_pct(&samples, Sample::workerd_mib, 600.0).expect("growth");
        assert!((workerd - 20.0).abs() < 1e-9, "{workerd}");
        assert_eq!(memory_growth_pct(&samples[..5], runtime, 600.0), None);
    }

    #[test]
    fn growth_needs_both_readings() {
        assert_eq!(growth_pct(Some(2.0), Some(3.0)), Some(50.0));
        assert_eq!(growth_pct(None, Some(3.0)), None);
        assert_eq!(growth_pct(Some(2.0), None), None);
        assert_eq!(growth_pct(Some(0.0), Some(3.0)), None);
    }

    #[test]
    fn the_memory_probe_line_is_read_field_by_field() {
        let probe = ValleMemory::parse(
            r#"{"wasm_worker_bytes":1966080,"wasm_kpi_object_bytes":1900544,"v8_used_bytes":null}"#,
        )
        .expect("parsed");
        assert_eq!(probe.wasm_worker_bytes, Some(1_966_080.0));
        assert_eq!(probe.wasm_kpi_object_bytes, Some(1_900_544.0));
        assert_eq!(probe.v8_used_bytes, None);
        assert_eq!(ValleMemory::parse("soak-memory: refused"), None);
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
        assert!(sample_group(group).all_mib > 0.0);
    }
}
