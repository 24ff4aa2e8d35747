//! A closed-loop load generator for Valle's HTTP path: `connections` clients each send
//! requests back to back for `requests` in total, then the latency percentiles and the
//! throughput are printed (and written as JSON with `--json`).
//!
//! ```text
//! cargo run --release -p valle-tests --bin loadgen -- --target score --connections 16 --requests 4000
//! cargo run --release -p valle-tests --bin loadgen -- --target kpis --connections 1 --requests 2000
//! ```
//! `VALLE_BASE_URL` and `VALLE_OFFICER_TOKEN` pick the server and the token for `kpis`.

use std::time::{Duration, Instant};

use valle_tests::{officer_token, random_uuid, Client};

const APPLICATIONS: [&str; 4] = [
    r#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846}"#,
    r#"{"seniority_years":17,"home":"rent","term_months":60,"age":58,"marital":"widow","records":"no","job":"fixed","expenses":48,"income":131,"assets":0,"debt":0,"amount":1000,"price":1658}"#,
    r#"{"seniority_years":10,"home":"owner","term_months":36,"age":46,"marital":"married","records":"yes","job":"freelance","expenses":90,"income":200,"assets":3000,"debt":0,"amount":2000,"price":2985}"#,
    r#"{"seniority_years":0,"home":"rent","term_months":60,"age":24,"marital":"single","records":"no","job":"fixed","expenses":63,"income":182,"assets":2500,"debt":0,"amount":900,"price":1325}"#,
];

struct Options {
    target: String,
    connections: usize,
    requests: usize,
    json: bool,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        target: "score".to_owned(),
        connections: 1,
        requests: 1_000,
        json: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--target" => options.target = value("--target")?,
            "--connections" => {
                options.connections = value("--connections")?
                    .parse()
                    .map_err(|e| format!("--connections: {e}"))?
            }
            "--requests" => {
                options.requests = value("--requests")?
                    .parse()
                    .map_err(|e| format!("--requests: {e}"))?
            }
            "--json" => options.json = true,
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if !matches!(
        options.target.as_str(),
        "score" | "kpis" | "healthz" | "floor"
    ) {
        return Err("--target is score, kpis, healthz or floor".to_owned());
    }
    if options.connections == 0 || options.requests == 0 {
        return Err("--connections and --requests must be positive".to_owned());
    }
    Ok(options)
}

/// One request of the chosen kind; true when it got the expected status (a transport
/// failure or timeout is a failure, never a crash).
fn send(client: &Client, target: &str, i: usize, auth: &str) -> bool {
    match target {
        "score" => {
            let id = random_uuid();
            let body = APPLICATIONS[i % APPLICATIONS.len()];
            let headers = [
                ("content-type", "application/json"),
                ("x-request-id", id.as_str()),
            ];
            client
                .try_send("POST", "/api/v1/score", &headers, Some(body.as_bytes()))
                .is_ok_and(|answer| answer.status == 200)
        }
        "kpis" => client
            .try_send(
                "GET",
                "/api/v1/kpis?window=5m",
                &[("authorization", auth)],
                None,
            )
            .is_ok_and(|answer| answer.status == 200),
        // The smallest answer the worker gives (routing and a JSON 404, no I/O): the floor
        // of the local proxy and runtime.
        "floor" => client
            .try_send("GET", "/api/v1/no-such-route", &[], None)
            .is_ok_and(|answer| answer.status == 404),
        _ => client
            .try_send("GET", "/healthz", &[], None)
            .is_ok_and(|answer| answer.status == 200),
    }
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index].as_secs_f64() * 1_000.0
}

fn main() -> std::process::ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(error) => {
            eprintln!("loadgen: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let auth = format!("Bearer {}", officer_token());
    let per_connection = options.requests.div_ceil(options.connections);
    // One warm-up request per connection, not counted.
    send(&Client::new(), &options.target, 0, &auth);
    let started = Instant::now();
    let results: Vec<(Vec<Duration>, usize)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..options.connections)
            .map(|connection| {
                let (target, auth) = (&options.target, &auth);
                scope.spawn(move || {
                    let client = Client::new();
                    let mut latencies = Vec::with_capacity(per_connection);
                    let mut failures = 0;
                    for i in 0..per_connection {
                        let sent = Instant::now();
                        if !send(&client, target, connection * per_connection + i, auth) {
                            failures += 1;
                        }
                        latencies.push(sent.elapsed());
                    }
                    (latencies, failures)
                })
            })
            .collect();
        handles
            .into_iter()
            .filter_map(|handle| handle.join().ok())
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    let failures: usize = results.iter().map(|(_, failures)| failures).sum();
    let mut latencies: Vec<Duration> = results
        .into_iter()
        .flat_map(|(latencies, _)| latencies)
        .collect();
    latencies.sort();
    let count = latencies.len();
    let report = serde_json::json!({
        "target": options.target,
        "connections": options.connections,
        "requests": count,
        "failures": failures,
        "seconds": elapsed,
        "requests_per_s": count as f64 / elapsed,
        "p50_ms": percentile(&latencies, 0.50),
        "p95_ms": percentile(&latencies, 0.95),
        "p99_ms": percentile(&latencies, 0.99),
        "max_ms": percentile(&latencies, 1.0),
    });
    if options.json {
        println!("{report}");
    } else {
        println!(
            "{:<7} {:>2} conn  {:>6} req  {:>7.1} req/s  p50 {:>6.2} ms  p95 {:>6.2} ms  p99 {:>6.2} ms  max {:>7.2} ms  failures {}",
            options.target,
            options.connections,
            count,
            count as f64 / elapsed,
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.95),
            percentile(&latencies, 0.99),
            percentile(&latencies, 1.0),
            failures
        );
    }
    if failures == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
