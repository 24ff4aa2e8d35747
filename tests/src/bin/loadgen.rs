//! Valle's load generator. Posts realistic applicants (resampled from the held-out credit
//! data, see `valle_tests::sample`) to `/api/v1/score`, or as event batches to
//! `/api/v1/events`, at a target rate (open loop) for a duration or a count, then prints a
//! table (or JSON) and can verify that every accepted record was stored exactly once.
//!
//! ```text
//! cargo run --release -p valle-tests --bin loadgen -- --target score --rate 50 --duration 30s
//! cargo run --release -p valle-tests --bin loadgen -- --target events --batch 50 --rate 2 \
//!     --count 100 --invalid-pct 5 --duplicate-pct 5 --late-pct 10 --late-hours 2 --verify
//! cargo run --release -p valle-tests --bin loadgen -- --target score --rate 20 --count 600 \
//!     --drift income*0.6 --drift home=parents
//! cargo run --release -p valle-tests --bin loadgen -- --target kpis --connections 16 --count 4000
//! ```
//! `--base-url` (or `VALLE_BASE_URL`) picks the server, `VALLE_OFFICER_TOKEN` the token for
//! `kpis` and `--verify`. Ctrl-C or SIGTERM stops sending; the report covers what was sent.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use valle_tests::load::{run, verify, Control, Plan, Report, RunIds, Target};
use valle_tests::outcomes::post_run_outcomes;
use valle_tests::sample::{Sampler, Shift};
use valle_tests::{officer_token, random_uuid, Client};

/// What the command line says, before the options are checked against each other.
#[derive(Parser, Debug)]
#[command(
    name = "loadgen",
    about = "Valle's load generator",
    allow_negative_numbers = true
)]
struct Args {
    /// What to send: score, events, batch, kpis, healthz or floor.
    #[arg(long, value_parser = target, default_value = "score")]
    target: Target,
    /// Requests per second, open loop (default: closed loop, back to back).
    #[arg(long, value_parser = number::<f64>)]
    rate: Option<f64>,
    /// Requests in flight at most (default 16 with --rate, else 1).
    #[arg(long, value_parser = number::<usize>)]
    connections: Option<usize>,
    /// Stop after N requests.
    #[arg(long, visible_alias = "requests", value_parser = number::<u64>)]
    count: Option<u64>,
    /// Stop after D (30s, 5m, 1h; default 10s when --count is absent).
    #[arg(long, value_parser = duration)]
    duration: Option<Duration>,
    /// Events per request for --target events (at most 500), or applications per request
    /// for --target batch (at most 1,000).
    #[arg(long, value_parser = number::<usize>, default_value = "50")]
    batch: usize,
    /// Percent of invalid applications.
    #[arg(long = "invalid-pct", value_parser = percent, default_value = "0")]
    invalid: f64,
    /// Percent of records that repeat an earlier id and body.
    #[arg(long = "duplicate-pct", value_parser = percent, default_value = "0")]
    duplicate: f64,
    /// Percent of events whose event_time is --late-hours in the past.
    #[arg(long = "late-pct", value_parser = percent, default_value = "0")]
    late: f64,
    /// How late late events are, in hours.
    #[arg(long, value_parser = number::<f64>, default_value = "2")]
    late_hours: f64,
    /// Shift a field: income*0.6, age+10, debt-100, home=parents (repeatable).
    #[arg(long, value_parser = Shift::parse)]
    drift: Vec<Shift>,
    /// Applicants of one age band (18-25, 26-35, …, 66+) all have prior records.
    #[arg(long, value_parser = age_band)]
    skew_age: Option<String>,
    /// Afterwards, post every decision's loan outcome, bad with the predicted probability
    /// plus SHIFT (0 for a calibrated model; with --target events, after --verify).
    #[arg(long, value_parser = number::<f64>)]
    outcomes: Option<f64>,
    /// Distinct client addresses to spread requests over.
    #[arg(long, value_parser = number::<usize>, default_value = "64")]
    clients: usize,
    /// The applicants' branch (default: loadgen-<random>, for --verify).
    #[arg(long)]
    branch: Option<String>,
    /// Random seed (fixed default, so runs repeat).
    #[arg(long, value_parser = number::<u64>, default_value_t = 0x05EE_D0F7_A11E)]
    seed: u64,
    /// Afterwards, check every accepted record is stored exactly once as a decision or a
    /// dead letter (waits up to --verify-timeout).
    #[arg(long)]
    verify: bool,
    /// How long --verify waits for every record to be stored.
    #[arg(long, value_parser = duration, default_value = "120s")]
    verify_timeout: Duration,
    /// Afterwards, wait up to D for the server's inbox to hold no event waiting for its
    /// outcome, and report how long that took, the KPI object's rows and how many decisions
    /// it has counted.
    #[arg(long, value_parser = duration)]
    settle_timeout: Option<Duration>,
    /// Write the run's accepted, invalid and unanswered ids as JSON, for a later check (the
    /// fault test verifies them after a crash).
    #[arg(long)]
    ids_out: Option<std::path::PathBuf>,
    /// The server (VALLE_BASE_URL, else http://127.0.0.1:8787).
    #[arg(long)]
    base_url: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

struct Options {
    plan: Plan,
    shifts: Vec<Shift>,
    verify: bool,
    verify_timeout: Duration,
    json: bool,
    ids_out: Option<std::path::PathBuf>,
    settle_timeout: Option<Duration>,
    skew_age: Option<String>,
    outcome_shift: Option<f64>,
}

fn target(text: &str) -> Result<Target, String> {
    Target::parse(text).ok_or(format!("unknown target {text}"))
}

fn number<T: std::str::FromStr>(text: &str) -> Result<T, String> {
    text.parse().map_err(|_| format!("{text} is not a number"))
}

/// A percentage, as a fraction.
fn percent(text: &str) -> Result<f64, String> {
    let value: f64 = number(text)?;
    (0.0..=100.0)
        .contains(&value)
        .then_some(value / 100.0)
        .ok_or(format!("{text} is not a percentage from 0 to 100"))
}

fn age_band(text: &str) -> Result<String, String> {
    (0..valle_shared::outcomes::fairness::AGE_BAND_FLOORS.len())
        .any(|i| valle_shared::outcomes::fairness::age_band_name(i) == text)
        .then(|| text.to_owned())
        .ok_or(format!("{text} is not an age band (18-25, …, 66+)"))
}

fn duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| c.is_ascii_alphabetic())
            .unwrap_or(text.len()),
    );
    let value: f64 = number.parse().map_err(|_| format!("bad duration {text}"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1_000.0,
        "m" => value * 60.0,
        "h" => value * 3_600.0,
        _ => return Err(format!("bad duration unit in {text}")),
    };
    if !(seconds.is_finite() && seconds > 0.0) {
        return Err(format!("duration {text} must be positive"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

impl Args {
    /// The plan, once the options agree with each other.
    fn into_options(self) -> Result<Options, String> {
        let mut plan = Plan {
            target: self.target,
            rate: self.rate,
            connections: self
                .connections
                .unwrap_or(if self.rate.is_some() { 16 } else { 1 }),
            count: self.count,
            duration: self.duration,
            batch: self.batch,
            invalid: self.invalid,
            duplicate: self.duplicate,
            late: self.late,
            late_hours: self.late_hours,
            clients: self.clients,
            seed: self.seed,
            branch: self.branch,
            base_url: self.base_url.map_or_else(valle_tests::base_url, |url| {
                url.trim_end_matches('/').to_owned()
            }),
        };
        if plan
            .rate
            .is_some_and(|rate| !(rate > 0.0 && rate.is_finite()))
        {
            return Err("--rate must be positive".to_owned());
        }
        let most = if plan.target == Target::Batch {
            1_000
        } else {
            500
        };
        if plan.count == Some(0) || !(1..=most).contains(&plan.batch) {
            return Err(format!(
                "--count must be positive and --batch within 1..={most}"
            ));
        }
        if plan.count.is_none() && plan.duration.is_none() {
            plan.duration = Some(Duration::from_secs(10));
        }
        let records_target = matches!(plan.target, Target::Score | Target::Events | Target::Batch);
        let shaped = !self.drift.is_empty() || self.skew_age.is_some() || self.outcomes.is_some();
        if !records_target
            && (plan.invalid + plan.duplicate + plan.late > 0.0 || shaped || self.verify)
        {
            return Err(
                "--invalid/--duplicate/--late/--drift/--skew-age/--outcomes/--verify need \
                 --target score, batch or events"
                    .to_owned(),
            );
        }
        if plan.target != Target::Events && plan.late > 0.0 {
            return Err("--late-pct needs --target events (scores carry no event time)".to_owned());
        }
        if plan.branch.is_none() && records_target {
            plan.branch = Some(format!("loadgen-{}", &random_uuid()[..8]));
        }
        if let Some(branch) = &plan.branch {
            if !valle_shared::intake::branch::is_branch(branch) {
                return Err(format!("--branch {branch:?} is not a valid branch name"));
            }
        }
        Ok(Options {
            plan,
            shifts: self.drift,
            verify: self.verify,
            verify_timeout: self.verify_timeout,
            json: self.json,
            ids_out: self.ids_out,
            settle_timeout: self.settle_timeout,
            skew_age: self.skew_age,
            outcome_shift: self.outcomes,
        })
    }
}

fn main() -> ExitCode {
    let options = match Args::parse().into_options() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("loadgen: {error}");
            return ExitCode::from(2);
        }
    };
    let plan = &options.plan;
    let sampler = Sampler::new(options.shifts.clone(), plan.branch.clone())
        .skewed_against(options.skew_age.clone());
    let auth = format!("Bearer {}", officer_token());
    let control = Arc::new(Control::default());
    let handler_control = Arc::clone(&control);
    if let Err(error) =
        ctrlc::set_handler(move || handler_control.stop.store(true, Ordering::Relaxed))
    {
        eprintln!("loadgen: no signal handler ({error}); Ctrl-C will end the run without a report");
    }

    let length = plan.count.unwrap_or_else(|| {
        plan.rate
            .zip(plan.duration)
            .map_or(0, |(rate, d)| (rate * d.as_secs_f64()) as u64)
    });
    let bar = if length > 0 {
        ProgressBar::new(length)
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:40}] {pos}/{len} requests {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let ((tally, seconds), interrupted) = std::thread::scope(|scope| {
        let ticker = scope.spawn(|| {
            while !control.stop.load(Ordering::Relaxed) {
                bar.set_position(control.sent.load(Ordering::Relaxed));
                bar.set_message(format!(
                    "{} refused or failed",
                    control.failed.load(Ordering::Relaxed)
                ));
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        let result = run(plan, &sampler, &auth, &control);
        let interrupted = control.stop.swap(true, Ordering::Relaxed);
        let _ = ticker.join();
        bar.finish_and_clear();
        (result, interrupted)
    });
    let mut report = Report::new(plan, &tally, seconds, interrupted);

    let mut ok = tally.counts.transport_errors == 0;
    if let Some(path) = &options.ids_out {
        let ids = RunIds::of(plan.branch.as_deref().unwrap_or_default(), &tally);
        let written = serde_json::to_vec(&ids)
            .map_err(|error| error.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|error| error.to_string()));
        if let Err(error) = written {
            eprintln!("loadgen: cannot write {}: {error}", path.display());
            ok = false;
        }
    }
    if let Some(timeout) = options.settle_timeout {
        let client = Client::at(&plan.base_url);
        match valle_tests::load::wait_until_settled(&client, &auth, timeout) {
            Ok(settled) => {
                report.settled_after_s = settled;
                ok &= settled.is_some();
            }
            Err(error) => {
                eprintln!("loadgen: the inbox could not be read: {error}");
                ok = false;
            }
        }
        report.kpi_object_rows = valle_tests::load::metric(&client, &auth, "valle_kpi_object_rows")
            .ok()
            .flatten();
    }
    if options.verify {
        let client = Client::at(&plan.base_url);
        let branch = plan.branch.clone().unwrap_or_default();
        let deadline = Instant::now() + options.verify_timeout;
        let verification = loop {
            match verify(&client, &tally, &branch, &auth) {
                Ok(verification) if verification.passed() || Instant::now() >= deadline => {
                    break Some(verification)
                }
                Ok(_) => std::thread::sleep(Duration::from_secs(1)),
                Err(error) => {
                    eprintln!("loadgen: verification failed to read the server: {error}");
                    break None;
                }
            }
        };
        ok &= verification.as_ref().is_some_and(|v| v.passed());
        report.verification = verification;
    }
    if let Some(shift) = options.outcome_shift {
        let client = Client::at(&plan.base_url);
        let branch = plan.branch.clone().unwrap_or_default();
        match post_run_outcomes(
            &client,
            &auth,
            &branch,
            &tally.accepted_ids,
            shift,
            plan.seed,
        ) {
            Ok(run) => report.outcomes = Some(run),
            Err(error) => {
                eprintln!("loadgen: posting outcomes failed: {error}");
                ok = false;
            }
        }
    }
    if options.settle_timeout.is_some() {
        let client = Client::at(&plan.base_url);
        report.kpi_decisions_counted =
            valle_tests::load::counted_decisions(&client, &auth, Duration::from_secs(60))
                .ok()
                .flatten();
    }
    if options.json {
        println!("{}", serde_json::to_string(&report).unwrap_or_default());
    } else {
        print!("{}", report.table());
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &str) -> Result<Options, String> {
        Args::try_parse_from(std::iter::once("loadgen").chain(args.split_whitespace()))
            .map_err(|error| error.to_string())?
            .into_options()
    }

    /// Parses `args` and checks the plan through `expect`, or that parsing fails with a
    /// message containing `error`.
    fn check(args: &str, expect: Result<fn(&Options), &str>) {
        match (parse(args), expect) {
            (Ok(options), Ok(expect)) => expect(&options),
            (Err(got), Err(want)) => assert!(got.contains(want), "{args}: {got}"),
            (Ok(options), Err(want)) => {
                panic!(
                    "{args}: parsed to {:?}, wanted an error {want}",
                    options.plan
                )
            }
            (Err(got), Ok(_)) => panic!("{args}: {got}"),
        }
    }

    #[test]
    fn options_become_a_plan() {
        check(
            "",
            Ok(|o| {
                assert_eq!(o.plan.target, Target::Score);
                assert_eq!((o.plan.rate, o.plan.connections), (None, 1));
                assert_eq!(o.plan.duration, Some(Duration::from_secs(10)));
                assert!(o
                    .plan
                    .branch
                    .as_deref()
                    .is_some_and(|b| b.starts_with("loadgen-")));
                assert!(!o.verify && !o.json);
                assert_eq!(o.ids_out, None);
            }),
        );
        check(
            "--rate 50 --duration 2m",
            Ok(|o| {
                assert_eq!((o.plan.rate, o.plan.connections), (Some(50.0), 16));
                assert_eq!(o.plan.duration, Some(Duration::from_secs(120)));
                assert_eq!(o.plan.count, None);
            }),
        );
        check(
            "--target events --batch 20 --count 12 --invalid-pct 10 --duplicate-pct 5 --late-pct 2.5 --late-hours 30 --verify --verify-timeout 90s --json --branch norte --ids-out target/ids.json",
            Ok(|o| {
                assert_eq!(o.plan.target, Target::Events);
                assert_eq!((o.plan.batch, o.plan.count), (20, Some(12)));
                assert_eq!(o.plan.duration, None);
                assert!((o.plan.invalid - 0.10).abs() < 1e-12);
                assert!((o.plan.duplicate - 0.05).abs() < 1e-12);
                assert!((o.plan.late - 0.025).abs() < 1e-12);
                assert_eq!(o.plan.late_hours, 30.0);
                assert_eq!(o.plan.branch.as_deref(), Some("norte"));
                assert!(o.verify && o.json);
                assert_eq!(o.verify_timeout, Duration::from_secs(90));
                assert_eq!(o.ids_out, Some("target/ids.json".into()));
            }),
        );
        check(
            "--target batch --batch 1000 --count 3 --settle-timeout 10s --verify",
            Ok(|o| {
                assert_eq!(o.plan.target, Target::Batch);
                assert_eq!(o.plan.batch, 1_000);
                assert_eq!(o.settle_timeout, Some(Duration::from_secs(10)));
            }),
        );
        check(
            "--drift income*0.6 --drift home=parents --requests 5 --connections 4 --seed 7",
            Ok(|o| {
                assert_eq!(o.shifts.len(), 2);
                assert_eq!(
                    (o.plan.count, o.plan.connections, o.plan.seed),
                    (Some(5), 4, 7)
                );
            }),
        );
        check(
            "--target kpis --base-url http://example.test:9/ --duration 500ms",
            Ok(|o| {
                assert_eq!(o.plan.base_url, "http://example.test:9");
                assert_eq!(o.plan.duration, Some(Duration::from_millis(500)));
                assert_eq!(o.plan.branch, None);
            }),
        );
    }

    #[test]
    fn bad_options_are_refused_with_a_reason() {
        for (args, error) in [
            ("--target nothing", "unknown target nothing"),
            ("--rate", "a value is required for '--rate <RATE>'"),
            ("--rate fast", "fast is not a number"),
            ("--rate 0", "--rate must be positive"),
            ("--rate -3", "--rate must be positive"),
            ("--count 0", "--count must be positive"),
            ("--target events --batch 501", "--batch within 1..=500"),
            ("--target batch --batch 1001", "--batch within 1..=1000"),
            (
                "--target batch --late-pct 5",
                "--late-pct needs --target events",
            ),
            ("--invalid-pct 101", "101 is not a percentage"),
            ("--duplicate-pct -1", "-1 is not a percentage"),
            ("--duration 10x", "bad duration unit"),
            ("--duration 0s", "must be positive"),
            (
                "--target kpis --verify",
                "need --target score, batch or events",
            ),
            (
                "--target floor --drift income*2",
                "need --target score, batch or events",
            ),
            ("--late-pct 5", "--late-pct needs --target events"),
            ("--branch no/slash", "not a valid branch name"),
            ("--skew-age 17-20", "not an age band"),
            (
                "--target kpis --outcomes 0.1",
                "need --target score, batch or events",
            ),
            ("--drift income", "income"),
            ("--frobnicate", "unexpected argument '--frobnicate'"),
            ("--help", "Usage: loadgen [OPTIONS]"),
        ] {
            check(args, Err(error));
        }
    }
}
