//! The tests against a fresh `wrangler dev`: the HTTP suite, the browser e2e suite, a restart
//! and a crash mid-load, and the server log checked for leaks.

use std::path::Path;

use xshell::cmd;

use crate::process::{self, free_port, Server};
use crate::server::{self, loadgen_command, start_test_server};
use crate::{
    done, migrate, officer, project_shell, root, shell_error, step, timed, tools, Result,
    TEST_OFFICER_TOKEN,
};

/// Starts `wrangler dev` on free ports with a fresh local state, runs the HTTP integration
/// tests and the browser e2e tests against it, and stops it whatever happens.
pub fn against_local_server() -> Result {
    let state = root().join("target/wrangler-test-state");
    if state.exists() {
        std::fs::remove_dir_all(&state)
            .map_err(|error| format!("clearing {}: {error}", state.display()))?;
    }
    migrate(Some(&state))?;
    timed("test accounts", || officer::seed_test_accounts(&state))?;
    let jwks_port = server::serve_test_jwks()?;
    let port = free_port()?;
    let base_url = format!("http://127.0.0.1:{port}");
    let server = start_test_server(&state, port, "wrangler-test.log", jwks_port)?;
    timed("warm up the page's assets", || {
        process::warm_up(&base_url, &root().join("dist"))
    })?;

    let worker_url = crate::direct::worker_url(server.pid(), port).unwrap_or_else(|| {
        eprintln!(
            "    the worker's own port was not found: chunked bodies go through wrangler's proxy"
        );
        base_url.clone()
    });
    timed("HTTP integration tests", || {
        let sh = project_shell()?;
        cmd!(sh, "cargo test --locked -p valle-tests")
            .env("VALLE_BASE_URL", &base_url)
            .env("VALLE_WORKER_URL", &worker_url)
            .env("VALLE_D1_STATE", &state)
            .env("VALLE_WRANGLER", root().join("node_modules/.bin/wrangler"))
            .envs(officer::test_token_env())
            .run()
            .map_err(shell_error)
    })?;
    timed("browser e2e tests (playwright-core + Chromium)", || {
        let sh = project_shell()?;
        cmd!(sh, "node --test --test-reporter=spec tests/e2e/")
            .env("VALLE_BASE_URL", &base_url)
            .envs(officer::test_token_env())
            .env("CHROMIUM", tools::CHROMIUM)
            .run()
            .map_err(shell_error)
    })?;
    // KPIs and decisions must survive a restart: snapshot, stop, start on the same state,
    // compare, and check that counting goes on where it stopped.
    let restart = |phase: &str| {
        let sh = project_shell()?;
        cmd!(
            sh,
            "cargo test --locked -p valle-tests --test restart -- {phase}"
        )
        .env("VALLE_BASE_URL", &base_url)
        .env("VALLE_OFFICER_TOKEN", TEST_OFFICER_TOKEN)
        .env(
            "VALLE_RESTART_SNAPSHOT",
            root().join("target/kpi-before-restart.json"),
        )
        .run()
        .map_err(shell_error)
    };
    timed("KPI snapshot before a restart", || {
        restart("before_restart")
    })?;
    server.stop()?;
    let server = start_test_server(&state, port, "wrangler-test-restarted.log", jwks_port)?;
    timed("KPIs after the restart", || restart("after_restart"))?;
    let server = crash_mid_load(server, &state, port, &base_url, jwks_port)?;
    // Last, since blocked decisions leave the reads the checks above recompute from.
    timed(
        "erasure: blocked and destroyed, every aggregate unchanged",
        || {
            let sh = project_shell()?;
            cmd!(sh, "cargo test --locked -p valle-tests --test erasure")
                .env("VALLE_BASE_URL", &base_url)
                .env("VALLE_D1_STATE", &state)
                .env("VALLE_WRANGLER", root().join("node_modules/.bin/wrangler"))
                .envs(officer::test_token_env())
                .run()
                .map_err(shell_error)
        },
    )?;
    server.stop()?;
    timed("no applicant data or token in the server logs", || {
        let logs = [
            "wrangler-test.log",
            "wrangler-test-restarted.log",
            "wrangler-test-after-crash.log",
        ];
        let mut found = Vec::new();
        for name in logs {
            let path = root().join("target").join(name);
            let text = std::fs::read_to_string(&path)
                .map_err(|error| format!("{}: {error}", path.display()))?;
            found.extend(
                leaks(&text)
                    .into_iter()
                    .map(|leak| format!("{name}: {leak}")),
            );
        }
        if found.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "the server logged what it must not:\n{}",
                found.join("\n")
            ))
        }
    })
}

/// Lines of a server log that show applicant data (application fields, the text the
/// hostile-input tests put in them) or the officers' token. The suite sends all of these
/// thousands of times, so a worker that logged bodies, queries or headers would show them.
fn leaks(log: &str) -> Vec<String> {
    const MARKERS: [&str; 6] = [
        "seniority_years",
        "\"income\"",
        "applicant_id",
        "DROP TABLE",
        "Bearer ",
        TEST_OFFICER_TOKEN,
    ];
    log.lines()
        .filter(|line| MARKERS.iter().any(|marker| line.contains(marker)))
        .map(|line| line.chars().take(200).collect())
        .collect()
}

/// A crash in the middle of a stream of events: the load generator posts event batches,
/// the server's whole process group is killed with SIGKILL (the local queue's messages die
/// with it), the server starts again on the same state, and `tests/tests/fault.rs` checks
/// that every acknowledged event ends exactly once as a decision or a dead letter, counted
/// once, with the count windows intact.
fn crash_mid_load(
    server: Server,
    state: &Path,
    port: u16,
    base_url: &str,
    jwks_port: u16,
) -> Result<Server> {
    let ids = root().join("target/fault-ids.json");
    let _ = std::fs::remove_file(&ids);
    let started = step("crash mid-load: SIGKILL wrangler dev while events are posted");
    let ids_arg = ids.display().to_string();
    // Events with invalid and repeated ones, as the HTTP tests' loadgen run, for 20 s.
    let options = "--target events --batch 20 --rate 4 --duration 20s --invalid-pct 10 --duplicate-pct 5 --branch fault-crash --clients 8 --json";
    let mut args: Vec<&str> = options.split_whitespace().collect();
    args.extend(["--ids-out", &ids_arg]);
    let mut load = loadgen_command(base_url, &args, false)
        .stdout(std::process::Stdio::null())
        .spawn()
        .map_err(|error| format!("cannot start the load generator: {error}"))?;
    // Let a few seconds of batches be acknowledged and queued, then crash.
    std::thread::sleep(std::time::Duration::from_secs(8));
    server.crash()?;
    eprintln!("    killed wrangler dev (SIGKILL to its process group)");
    // The load generator runs to its end against the dead port, then writes its ids.
    let status = load.wait().map_err(|error| error.to_string())?;
    eprintln!("    load generator ended ({status}; transport errors are expected)");
    done("crash mid-load", started);
    let server = start_test_server(state, port, "wrangler-test-after-crash.log", jwks_port)?;
    timed("nothing lost after the crash", || {
        let sh = project_shell()?;
        cmd!(
            sh,
            "cargo test --locked -p valle-tests --test fault -- --nocapture"
        )
        .env("VALLE_BASE_URL", base_url)
        .env("VALLE_OFFICER_TOKEN", TEST_OFFICER_TOKEN)
        .env("VALLE_FAULT_IDS", &ids)
        .run()
        .map_err(shell_error)
    })?;
    Ok(server)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_with_bodies_tokens_or_queries_are_leaks() {
        let clean = "[wrangler:info] POST /api/v1/score 200 OK (12ms)\n\
                     [wrangler:info] QUEUE valle-events 50/50 (697ms)\n\
                     env.VALLE_OFFICER_TOKEN (\"(hidden)\")";
        assert!(leaks(clean).is_empty());
        let dirty = "[wrangler:info] POST /api/v1/score 200 OK (12ms)\n\
                     body {\"seniority_years\":9,\"income\":129}\n\
                     authorization: Bearer valle-test-officer-token\n\
                     branch '; DROP TABLE decisions; --";
        assert_eq!(leaks(dirty).len(), 3);
    }
}
