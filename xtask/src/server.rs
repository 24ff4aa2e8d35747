//! Starting `wrangler dev` for the tests and the benchmarks, and the load generator that
//! drives it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::process::{free_port, Server};
use crate::{done, migrate, project_command, root, step, Result, TEST_OFFICER_TOKEN};

/// How to start one `wrangler dev`.
pub struct ServerSetup<'a> {
    pub state: &'a Path,
    pub port: u16,
    /// Its log, under target/.
    pub log: &'a str,
    /// Extra `NAME:VALUE` vars.
    pub vars: &'a [&'a str],
    /// Without wrangler's request log (benchmarks): wrangler posts every request's log
    /// line to its Node process, which costs more than some requests do.
    pub quiet: bool,
}

/// `wrangler dev --local` on the setup's port with the test officer token.
pub fn start_server(setup: &ServerSetup<'_>) -> Result<Server> {
    let inspector = free_port()?;
    let base_url = format!("http://127.0.0.1:{}", setup.port);
    let started = step(&format!("start wrangler dev on {base_url}"));
    let mut command = project_command("wrangler");
    command
        .args([
            "dev",
            "--local",
            "--ip",
            "127.0.0.1",
            "--port",
            &setup.port.to_string(),
        ])
        .args(["--inspector-port", &inspector.to_string()])
        .arg("--persist-to")
        .arg(setup.state)
        .args([
            "--show-interactive-dev-session=false",
            "--live-reload=false",
        ])
        .args([
            "--var",
            &format!("VALLE_OFFICER_TOKEN:{TEST_OFFICER_TOKEN}"),
        ]);
    if setup.quiet {
        command.args(["--log-level", "warn"]);
    }
    for var in setup.vars {
        command.args(["--var", var]);
    }
    let mut server = Server::start(command, root().join("target").join(setup.log))?;
    server.wait_until_healthy(&format!("{base_url}/healthz"), 120)?;
    done("wrangler dev ready", started);
    Ok(server)
}

/// `wrangler dev` on `port` for the HTTP and browser tests, state in `state`.
pub fn start_test_server(state: &Path, port: u16, log: &str) -> Result<Server> {
    start_server(&ServerSetup {
        state,
        port,
        log,
        // The cross-origin site the hostile-input tests expect (`valle_tests::ALLOWED_ORIGIN`).
        vars: &["ALLOWED_ORIGINS:https://ventanilla.example.coop"],
        quiet: false,
    })
}

/// An empty local state under target/ with every D1 migration applied.
pub fn fresh_state(name: &str) -> Result<PathBuf> {
    let state = root().join(format!("target/wrangler-{name}-state"));
    if state.exists() {
        std::fs::remove_dir_all(&state)
            .map_err(|error| format!("clearing {}: {error}", state.display()))?;
    }
    migrate(Some(&state))?;
    Ok(state)
}

/// A fresh, quiet `wrangler dev` for benchmarks; its base URL. The load generator spreads
/// its requests over enough client addresses that the per-client rate limit never bites.
pub fn start_bench_server(name: &str) -> Result<(Server, String)> {
    let state = fresh_state(name)?;
    let port = free_port()?;
    let server = start_server(&ServerSetup {
        state: &state,
        port,
        log: &format!("wrangler-{name}.log"),
        vars: &[],
        quiet: true,
    })?;
    Ok((server, format!("http://127.0.0.1:{port}")))
}

/// The release load generator against `base_url` with `args`.
pub fn loadgen(base_url: &str, args: &[&str]) -> Command {
    loadgen_command(base_url, args, true)
}

/// The load generator against `base_url` with `args`; the debug build (already built by
/// the tests) unless `release`.
pub fn loadgen_command(base_url: &str, args: &[&str], release: bool) -> Command {
    let mut command = project_command("cargo");
    command.args(["run", "--quiet", "--locked"]);
    if release {
        command.arg("--release");
    }
    command
        .args(["-p", "valle-tests", "--bin", "loadgen", "--"])
        .args(args)
        .args(["--base-url", base_url])
        .env("VALLE_OFFICER_TOKEN", TEST_OFFICER_TOKEN);
    command
}
