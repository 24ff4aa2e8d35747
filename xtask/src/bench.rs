//! The benchmarks of the whole server: `cargo xtask bench-http` (the request paths against
//! the no-I/O floor of the same run), `bench-events` (the highest event rate sustained with
//! every event exactly once) and `bench-peers` (Valle next to onnxruntime and two Flask
//! peers). Each starts a fresh, quiet `wrangler dev` (API paths go to the worker first, no
//! request log) and drives it with the release load generator; figures are printed and
//! written to target/*.json. BENCHMARKS.md quotes them.

use std::process::Command;

use serde_json::{json, Value};

use crate::peers::{self, edge_goal_met, native_goal_met, ratio, ratio_row, row, Figures};
use crate::process::{free_port, run_for_output, run_for_report, Server};
use crate::server::{
    build_loadgen, loadgen, start_bench_server, start_bench_server_with, start_d1_floor,
};
use crate::Result;
use crate::{build_page, build_worker, done, project_command, python_venv, root, step, tools};

/// Client addresses the load generator spreads requests over: at 1,000 requests a second
/// each sees one a second, far below the per-client limit.
const CLIENTS: &str = "1000";

/// The last JSON line a command printed.
fn parse(text: &str) -> Result<Value> {
    let line = text.lines().rev().find(|line| line.starts_with('{'));
    serde_json::from_str(line.unwrap_or_default())
        .map_err(|error| format!("not a JSON report ({error}): {text}"))
}

fn write_json(name: &str, value: &Value) -> Result {
    let path = root().join("target").join(name);
    std::fs::write(&path, format!("{value:#}\n"))
        .map_err(|error| format!("{}: {error}", path.display()))?;
    eprintln!("    written: {}", path.display());
    Ok(())
}

/// One closed-loop run of the load generator; its JSON report.
fn closed_loop(
    base_url: &str,
    target: &str,
    connections: &str,
    requests: &str,
    extra: &[&str],
) -> Result<Value> {
    let mut args = vec![
        "--target",
        target,
        "--connections",
        connections,
        "--requests",
        requests,
        "--clients",
        CLIENTS,
        "--json",
    ];
    args.extend(extra);
    let started = step(&format!(
        "{target}: {requests} requests at {connections} connections"
    ));
    let report = parse(&run_for_output(&mut loadgen(base_url, &args))?)?;
    eprintln!(
        "    p50 {} ms, p99 {} ms, {} req/s",
        report["latency_ms"]["p50"], report["latency_ms"]["p99"], report["achieved_rate"]
    );
    done(target, started);
    Ok(report)
}

/// The goals for the request paths, from one run's figures.
pub struct HttpGoals {
    pub score_16_throughput: f64,
    pub score_1_p50: f64,
    pub floor_1_p50: f64,
    pub score_1_p99: f64,
    pub batch_p99: f64,
}

impl HttpGoals {
    /// Each goal with its verdict.
    pub fn verdicts(&self) -> Vec<(String, bool)> {
        let ratio = self.score_1_p50 / self.floor_1_p50;
        vec![
            (
                format!("POST /api/v1/score at 16 connections: {:.1} req/s (≥ 300)", self.score_16_throughput),
                self.score_16_throughput >= 300.0,
            ),
            (
                format!(
                    "POST /api/v1/score at 1 connection: p50 {:.2} ms = {ratio:.2}× the floor's {:.2} ms (≤ 2×)",
                    self.score_1_p50, self.floor_1_p50
                ),
                ratio <= 2.0,
            ),
            (
                format!("POST /api/v1/score at 1 connection: p99 {:.2} ms (≤ 30 ms)", self.score_1_p99),
                self.score_1_p99 <= 30.0,
            ),
            (
                format!("a batch of 1,000 answered and stored: p99 {:.0} ms (≤ 1,000 ms)", self.batch_p99),
                self.batch_p99 <= 1_000.0,
            ),
        ]
    }
}

fn latency(report: &Value, quantile: &str) -> f64 {
    report["latency_ms"][quantile].as_f64().unwrap_or(f64::NAN)
}

/// `POST /api/v1/score` at 1 and 16 connections, the no-I/O floor (a JSON 404) at both,
/// KPI views at a cache hit, and batches of 1,000 applications, on one fresh server.
pub fn bench_http() -> Result {
    tools::ensure_build_tools()?;
    build_page()?;
    build_worker()?;
    let (server, base_url) = start_bench_server("bench")?;
    let mut reports = serde_json::Map::new();
    // A warm-up, so the first measured request does not pay for loading the model.
    closed_loop(&base_url, "score", "1", "200", &[])?;
    for (name, target, connections, requests, extra) in [
        ("floor_1", "floor", "1", "2000", &[][..]),
        ("score_1", "score", "1", "2000", &[]),
        ("floor_16", "floor", "16", "4000", &[]),
        ("score_16", "score", "16", "4000", &[]),
        ("kpis_1", "kpis", "1", "2000", &[]),
        ("kpis_16", "kpis", "16", "4000", &[]),
        (
            "batch_1000",
            "batch",
            "1",
            "30",
            &["--batch", "1000", "--verify"],
        ),
    ] {
        reports.insert(
            name.to_owned(),
            closed_loop(&base_url, target, connections, requests, extra)?,
        );
    }
    server.stop()?;
    // The peer: a worker that answers after one D1 write and does nothing else, the floor
    // under any design in which a request waits for its durable write.
    let (peer, peer_url) = start_d1_floor()?;
    for (name, connections, requests) in
        [("d1_write_1", "1", "2000"), ("d1_write_16", "16", "4000")]
    {
        reports.insert(
            name.to_owned(),
            closed_loop(&peer_url, "floor", connections, requests, &[])?,
        );
    }
    peer.stop()?;
    let figure =
        |name: &str, pick: &dyn Fn(&Value) -> f64| reports.get(name).map_or(f64::NAN, pick);
    let goals = HttpGoals {
        score_16_throughput: figure("score_16", &|r| r["achieved_rate"].as_f64().unwrap_or(0.0)),
        score_1_p50: figure("score_1", &|r| latency(r, "p50")),
        floor_1_p50: figure("floor_1", &|r| latency(r, "p50")),
        score_1_p99: figure("score_1", &|r| latency(r, "p99")),
        batch_p99: figure("batch_1000", &|r| latency(r, "p99")),
    };
    println!("\n| request | connections | throughput | p50 | p95 | p99 |");
    println!("|---|---|---|---|---|---|");
    for (name, report) in &reports {
        println!(
            "| {name} | {} | {:.1} req/s | {:.2} ms | {:.2} ms | {:.2} ms |",
            report["plan"]["connections"],
            report["achieved_rate"].as_f64().unwrap_or(f64::NAN),
            latency(report, "p50"),
            latency(report, "p95"),
            latency(report, "p99"),
        );
    }
    let verdicts = goals.verdicts();
    for (goal, met) in &verdicts {
        println!("{} {goal}", if *met { "met    " } else { "NOT met" });
    }
    let batch_verified = reports["batch_1000"]["verification"]["missing"]
        .as_array()
        .is_some_and(Vec::is_empty);
    println!("batches stored exactly once: {batch_verified}");
    write_json(
        "bench-http.json",
        &json!({
            "runs": reports,
            "goals": verdicts.iter().map(|(goal, met)| json!({"goal": goal, "met": met})).collect::<Vec<_>>(),
        }),
    )
}

/// Event rates the events benchmark offers, in events per second, in batches of 100.
const EVENT_RATES: [u32; 7] = [250, 500, 1_000, 2_000, 3_000, 4_000, 6_000];

/// Whether one rate was sustained: every event accepted and answered in time, the inbox
/// empty within 10 s after the load, each accepted event exactly once a decision or a dead
/// letter, and the KPI object's count of decisions equal to the `decisions` stored on the
/// server by all runs so far.
pub fn sustained(report: &Value, offered_per_s: f64, decisions: f64) -> Result {
    let verification = &report["verification"];
    let passed = ["missing", "duplicated", "unexpected", "misrouted"]
        .iter()
        .all(|key| verification[key].as_array().is_some_and(Vec::is_empty));
    let accepted = report["accepted_records"].as_f64().unwrap_or(0.0);
    let records = report["records"].as_f64().unwrap_or(0.0);
    let seconds = report["seconds"].as_f64().unwrap_or(f64::INFINITY);
    let rate = accepted / seconds;
    if !passed {
        return Err(format!("not exactly once: {verification}"));
    }
    if report["settled_after_s"].as_f64().is_none_or(|s| s > 10.0) {
        return Err(format!(
            "inbox not empty 10 s after the load ({})",
            report["settled_after_s"]
        ));
    }
    if accepted < records * 0.99 {
        return Err(format!("only {accepted} of {records} events accepted"));
    }
    if rate < offered_per_s * 0.95 {
        return Err(format!(
            "{rate:.0} events/s accepted of {offered_per_s} offered"
        ));
    }
    let counted = report["kpi_decisions_counted"].as_f64();
    if counted != Some(decisions) {
        return Err(format!(
            "the KPI object counted {counted:?} decisions, {decisions} are stored"
        ));
    }
    Ok(())
}

/// `cargo xtask bench-events [SECONDS] [--var NAME:VALUE]...`.
#[derive(Debug, PartialEq, clap::Args)]
pub struct EventsBench {
    /// Seconds at each rate.
    #[arg(default_value_t = 120, value_parser = crate::at_least(10))]
    pub seconds: u64,
    /// Overrides one of wrangler.toml's [vars] for the run; repeatable
    /// (`--var SHADOW_MODEL:off` measures without the shadow challenger).
    #[arg(long = "var", value_name = "NAME:VALUE", value_parser = var_override)]
    pub vars: Vec<String>,
}

fn var_override(text: &str) -> Result<String> {
    match text.split_once(':') {
        Some((name, _)) if !name.is_empty() => Ok(text.to_owned()),
        _ => Err("takes NAME:VALUE".to_owned()),
    }
}

impl EventsBench {
    /// Rising event rates on one fresh server, each for `seconds`, until one is not
    /// sustained.
    pub fn run(&self) -> Result {
        bench_events(self.seconds, &self.vars)
    }
}

fn bench_events(seconds: u64, vars: &[String]) -> Result {
    tools::ensure_build_tools()?;
    build_page()?;
    build_worker()?;
    build_loadgen()?;
    let vars: Vec<&str> = vars.iter().map(String::as_str).collect();
    let (server, base_url) = start_bench_server_with("events", &vars)?;
    let duration = format!("{seconds}s");
    let mut results = Vec::new();
    let mut best = None;
    let mut decisions = 0.0;
    for rate in EVENT_RATES {
        let requests_per_s = (f64::from(rate) / 100.0).to_string();
        let branch = format!("bench-events-{rate}");
        let started = step(&format!(
            "events: {rate}/s in batches of 100 for {duration}"
        ));
        let (_, text) = run_for_report(&mut loadgen(
            &base_url,
            &[
                "--target",
                "events",
                "--batch",
                "100",
                "--rate",
                &requests_per_s,
                "--duration",
                &duration,
                "--invalid-pct",
                "5",
                "--duplicate-pct",
                "5",
                "--clients",
                CLIENTS,
                "--branch",
                &branch,
                "--settle-timeout",
                "60s",
                "--verify",
                "--verify-timeout",
                "5m",
                "--json",
            ],
        ))?;
        // A failed check exits non-zero but still prints its report, judged below.
        let report = parse(&text)?;
        decisions += report["verification"]["decisions"].as_f64().unwrap_or(0.0);
        let verdict = sustained(&report, f64::from(rate), decisions);
        eprintln!(
            "    {rate}/s: {} accepted in {:.1} s, POST p99 {} ms, inbox empty after {} s, KPI object rows {}, decisions counted {} of {decisions}: {verdict:?}",
            report["accepted_records"], report["seconds"].as_f64().unwrap_or(0.0),
            report["latency_ms"]["p99"], report["settled_after_s"], report["kpi_object_rows"],
            report["kpi_decisions_counted"],
        );
        done(&format!("events at {rate}/s"), started);
        results.push(json!({"offered_per_s": rate, "report": report, "sustained": verdict.is_ok(), "why_not": verdict.as_ref().err()}));
        if verdict.is_err() {
            break;
        }
        best = Some(rate);
    }
    server.stop()?;
    println!("\nhighest event rate sustained for {seconds} s with every event exactly once (vars {vars:?}): {best:?} events/s");
    write_json(
        "bench-events.json",
        &json!({"seconds_per_rate": seconds, "vars": vars, "highest_sustained_per_s": best, "runs": results}),
    )?;
    match best {
        Some(rate) if rate >= 1_000 => Ok(()),
        _ => Err(format!("the goal of 1,000 events/s is not met: {best:?}")),
    }
}

/// A Flask peer on a free port, storing nothing or storing in SQLite; its base URL.
fn start_flask(
    python: &std::path::Path,
    store: Option<&std::path::Path>,
    log: &str,
) -> Result<(Server, String)> {
    let port = free_port()?;
    let url = format!("http://127.0.0.1:{port}");
    let started = step(&format!("start the Flask reference on {url} ({log})"));
    let mut command = Command::new(python);
    command
        .current_dir(root())
        .args(["tests/peers/flask_ref.py", "--port", &port.to_string()]);
    if let Some(store) = store {
        let _ = std::fs::remove_file(store);
        command.arg("--store").arg(store);
    }
    let mut server = Server::start(command, root().join("target").join(log))?;
    server.wait_until_healthy(&format!("{url}/healthz"), 120)?;
    done("Flask reference ready", started);
    Ok((server, url))
}

/// Side by side, in one run (see `peers.rs`): the scoring core natively vs onnxruntime, then
/// `POST /api/v1/score` on `wrangler dev` vs a Flask reference that stores nothing and one
/// that stores every decision in SQLite, same applicants, closed loop at 1 and 16
/// connections.
pub fn bench_peers() -> Result {
    tools::ensure_build_tools()?;
    let python = python_venv(&["models/requirements.txt", "tests/peers/requirements.txt"])?;
    let started = step("scoring core, native (profile native-bench) and onnxruntime");
    let native_text = run_for_output(project_command("cargo").args([
        "run",
        "--quiet",
        "--locked",
        "--profile",
        "native-bench",
        "-p",
        "valle-shared",
        "--example",
        "native_scoring",
    ]))?;
    eprintln!("    {}", native_text.trim());
    let native = Figures::from_engine(&parse(&native_text)?)?;
    let onnxruntime_text = run_for_output(
        Command::new(&python)
            .current_dir(root())
            .arg("models/bench_onnxruntime.py"),
    )?;
    eprintln!("    {}", onnxruntime_text.trim());
    let onnxruntime = Figures::from_engine(&parse(&onnxruntime_text)?)?;
    done("scoring cores", started);

    build_page()?;
    build_worker()?;
    let (edge_server, edge_url) = start_bench_server("peers")?;
    let (memory_server, memory_url) = start_flask(&python, None, "flask-peer.log")?;
    let database = root().join("target/flask-peer.db");
    let (sqlite_server, sqlite_url) =
        start_flask(&python, Some(&database), "flask-peer-sqlite.log")?;
    let servers = [
        ("edge (wrangler dev)", edge_url.as_str()),
        (peers::FLASK, memory_url.as_str()),
        (peers::FLASK_SQLITE, sqlite_url.as_str()),
    ];
    // The same warm-up as bench-http for every server, so no one pays for its first requests
    // (model load, wasm tier-up, Python imports) inside the measurement.
    for (_, url) in servers {
        closed_loop(url, "score", "1", "200", &["--seed", "5"])?;
    }
    let mut http = Vec::new();
    for (connections, requests) in [(1usize, "2000"), (16, "4000")] {
        let mut figures = Vec::new();
        for (name, url) in servers {
            // The same seed, so every server sees the same applicants in the same order.
            let report = closed_loop(
                url,
                "score",
                &connections.to_string(),
                requests,
                &["--seed", "6"],
            )?;
            let measured = Figures::from_loadgen(&report)?;
            eprintln!("    {name}: {measured:?}");
            figures.push((name, measured));
        }
        http.push(peers::HttpRound {
            connections,
            figures,
        });
    }
    sqlite_server.stop()?;
    memory_server.stop()?;
    edge_server.stop()?;

    let engine = ratio(native, onnxruntime);
    let mut lines = vec![
        "| scoring core | one row p50 | one row p99 | batch of 10,000 | goal |".to_owned(),
        "|---|---|---|---|---|".to_owned(),
        row("tract, native (valle-shared)", native, "µs", "rows/s"),
        row("onnxruntime from Python", onnxruntime, "µs", "rows/s"),
        ratio_row("Valle ahead by", engine, native_goal_met(engine)),
        String::new(),
        "| POST /api/v1/score | p50 | p99 | throughput | goal |".to_owned(),
        "|---|---|---|---|---|".to_owned(),
    ];
    for round in &http {
        let connections = round.connections;
        let Some(&(_, edge)) = round.figures.first() else {
            continue;
        };
        for &(name, figures) in &round.figures {
            lines.push(row(
                &format!("{name}, {connections} conn"),
                figures,
                "ms",
                "req/s",
            ));
        }
        for &(name, figures) in round.figures.iter().skip(1) {
            let r = ratio(edge, figures);
            lines.push(ratio_row(
                &format!("edge ahead of {name} by, {connections} conn"),
                r,
                edge_goal_met(r),
            ));
        }
    }
    println!("\n{}", lines.join("\n"));
    write_json(
        "bench-peers.json",
        &peers::summary(native, onnxruntime, &http),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(
        accepted: f64,
        seconds: f64,
        settled: Option<f64>,
        counted: f64,
        missing: &[&str],
    ) -> Value {
        json!({
            "records": 12_000.0,
            "accepted_records": accepted,
            "seconds": seconds,
            "settled_after_s": settled,
            "kpi_decisions_counted": counted,
            "verification": {"missing": missing, "duplicated": [], "unexpected": [], "misrouted": []},
        })
    }

    #[test]
    fn a_rate_is_sustained_only_if_every_check_holds() {
        let check = |why: &str, report: Value, sustained_: bool| {
            assert_eq!(
                sustained(&report, 100.0, 11_000.0).is_ok(),
                sustained_,
                "{why}"
            );
        };
        check(
            "all good",
            report(12_000.0, 120.0, Some(0.5), 11_000.0, &[]),
            true,
        );
        check(
            "an event missing",
            report(12_000.0, 120.0, Some(0.5), 11_000.0, &["e-1"]),
            false,
        );
        check(
            "inbox slow to empty",
            report(12_000.0, 120.0, Some(10.5), 11_000.0, &[]),
            false,
        );
        check(
            "inbox never empty",
            report(12_000.0, 120.0, None, 11_000.0, &[]),
            false,
        );
        check(
            "events refused",
            report(11_000.0, 120.0, Some(0.5), 11_000.0, &[]),
            false,
        );
        check(
            "the load ran long",
            report(12_000.0, 130.0, Some(0.5), 11_000.0, &[]),
            false,
        );
        check(
            "a decision not counted",
            report(12_000.0, 120.0, Some(0.5), 10_999.0, &[]),
            false,
        );
    }

    #[test]
    fn bench_events_reads_its_seconds_and_vars() {
        #[derive(clap::Parser)]
        struct Command {
            #[command(flatten)]
            bench: EventsBench,
        }
        let check = |args: &[&str], expected: std::result::Result<(u64, &[&str]), ()>| {
            let read = <Command as clap::Parser>::try_parse_from(
                std::iter::once("bench-events").chain(args.iter().copied()),
            )
            .map(|command| command.bench)
            .map_err(|_| ());
            let expected = expected.map(|(seconds, vars)| EventsBench {
                seconds,
                vars: vars.iter().map(|var| (*var).to_owned()).collect(),
            });
            assert_eq!(read, expected, "{args:?}");
        };
        check(&[], Ok((120, &[])));
        check(&["30"], Ok((30, &[])));
        check(
            &["30", "--var", "SHADOW_MODEL:off"],
            Ok((30, &["SHADOW_MODEL:off"])),
        );
        check(&["--var", "A:1", "--var", "B:"], Ok((120, &["A:1", "B:"])));
        check(&["9"], Err(()));
        check(&["thirty"], Err(()));
        check(&["--var"], Err(()));
        check(&["--var", "NOCOLON"], Err(()));
        check(&["--var", ":off"], Err(()));
    }

    #[test]
    fn http_goals_each_have_a_verdict() {
        let verdicts = HttpGoals {
            score_16_throughput: 484.0,
            score_1_p50: 2.9,
            floor_1_p50: 1.4,
            score_1_p99: 31.0,
            batch_p99: 250.0,
        }
        .verdicts();
        let met: Vec<bool> = verdicts.iter().map(|(_, met)| *met).collect();
        assert_eq!(met, [true, false, false, true], "{verdicts:?}");
        assert!(verdicts[1].0.contains("2.07×"), "{}", verdicts[1].0);
    }
}
