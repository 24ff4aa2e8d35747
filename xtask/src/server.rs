//! Starting `wrangler dev` for the tests and the benchmarks, and the load generator that
//! drives it.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::officer::{self, Database, NewAccount};
use crate::process::{free_port, run, Server};
use crate::{done, migrate, project_command, root, step, Result, TEST_OFFICER_TOKEN};
use valle_shared::lending::officers::Role;

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
    /// Another worker's wrangler.toml (a benchmark peer's) instead of Valle's.
    pub config: Option<&'a Path>,
}

/// `wrangler dev --local` on the setup's port.
pub fn start_server(setup: &ServerSetup<'_>) -> Result<Server> {
    let inspector = free_port()?;
    let base_url = format!("http://127.0.0.1:{}", setup.port);
    let started = step(&format!("start wrangler dev on {base_url}"));
    let mut command = project_command("wrangler");
    command.arg("dev");
    if let Some(config) = setup.config {
        command.arg("--config").arg(config);
    }
    command
        .args([
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

/// The test-only Access team (tests/fixtures/access): its issuer and audience, as the
/// fixture tokens carry them.
const TEST_ACCESS_ISSUER: &str = "https://valle-test.cloudflareaccess.com";
const TEST_ACCESS_AUD: &str = "valle-test-aud";

/// `wrangler dev` on `port` for the HTTP and browser tests, state in `state`, trusting the
/// test Access team whose keys `jwks_port` serves.
pub fn start_test_server(state: &Path, port: u16, log: &str, jwks_port: u16) -> Result<Server> {
    let jwks = format!("ACCESS_JWKS_URL:http://127.0.0.1:{jwks_port}/cdn-cgi/access/certs");
    let issuer = format!("ACCESS_ISSUER:{TEST_ACCESS_ISSUER}");
    let audience = format!("ACCESS_AUD:{TEST_ACCESS_AUD}");
    start_server(&ServerSetup {
        state,
        port,
        log,
        // The cross-origin site the hostile-input tests expect (`valle_tests::ALLOWED_ORIGIN`).
        vars: &[
            "ALLOWED_ORIGINS:https://ventanilla.example.coop",
            &issuer,
            &audience,
            &jwks,
        ],
        quiet: false,
        config: None,
    })
}

/// Serves the test Access team's keys (tests/fixtures/access/jwks.json) on a free port,
/// from a thread that lives as long as xtask; its port.
pub fn serve_test_jwks() -> Result<u16> {
    use std::io::{Read, Write};
    let path = root().join("tests/fixtures/access/jwks.json");
    let body = std::fs::read(&path).map_err(|error| format!("{}: {error}", path.display()))?;
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|error| format!("JWKS server: {error}"))?;
    let port = listener
        .local_addr()
        .map_err(|error| format!("JWKS server: {error}"))?
        .port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    Ok(port)
}

/// An empty local state under target/ with every D1 migration applied.
pub fn fresh_state(name: &str) -> Result<PathBuf> {
    let state = root().join(format!("target/wrangler-{name}-state"));
    if state.exists() {
        std::fs::remove_dir_all(&state)
            .map_err(|error| format!("clearing {}: {error}", state.display()))?;
    }
    migrate(Some(&state))?;
    officer::ensure(
        &Database::Local(Some(state.clone())),
        NewAccount {
            email: "admin@valle.test".to_owned(),
            name: "admin".to_owned(),
            role: Role::Admin,
            token: TEST_OFFICER_TOKEN.to_owned(),
        },
    )?;
    Ok(state)
}

/// A fresh, quiet `wrangler dev` for benchmarks; its base URL. The load generator spreads
/// its requests over enough client addresses that the per-client rate limit never bites.
/// One inspector session opens and closes on Valle's isolate first (`xtask/tier-up.cjs`):
/// until one has, its wasm runs about 1.7 times slower than it does without an inspector.
pub fn start_bench_server(name: &str) -> Result<(Server, String)> {
    start_bench_server_with(name, &[])
}

/// [`start_bench_server`] with `vars` (`NAME:VALUE`) over wrangler.toml's.
pub fn start_bench_server_with(name: &str, vars: &[&str]) -> Result<(Server, String)> {
    let state = fresh_state(name)?;
    let port = free_port()?;
    let server = start_server(&ServerSetup {
        state: &state,
        port,
        log: &format!("wrangler-{name}.log"),
        vars,
        quiet: true,
        config: None,
    })?;
    tier_up(&server, "core:user:valle")?;
    Ok((server, format!("http://127.0.0.1:{port}")))
}

/// Opens and closes one inspector session on an isolate of the server (see
/// `xtask/tier-up.cjs`), so it runs as it would without an inspector.
pub fn tier_up(server: &Server, isolate: &str) -> Result {
    let runtime = crate::soak::runtime_pid(server.pid())
        .ok_or("no workerd runtime with an inspector in the server's group")?;
    run(project_command("node")
        .arg("xtask/tier-up.cjs")
        .args([runtime.to_string().as_str(), isolate]))
}

/// The benchmark's peer that answers after one D1 write and does nothing else
/// (tests/peers/d1-floor), quiet and tiered up like Valle's bench server; its base URL.
pub fn start_d1_floor() -> Result<(Server, String)> {
    let state = root().join("target/wrangler-d1-floor-state");
    if state.exists() {
        std::fs::remove_dir_all(&state)
            .map_err(|error| format!("clearing {}: {error}", state.display()))?;
    }
    let port = free_port()?;
    let config = root().join("tests/peers/d1-floor/wrangler.toml");
    let server = start_server(&ServerSetup {
        state: &state,
        port,
        log: "wrangler-d1-floor.log",
        vars: &[],
        quiet: true,
        config: Some(&config),
    })?;
    tier_up(&server, "core:user:d1-floor")?;
    Ok((server, format!("http://127.0.0.1:{port}")))
}

/// Builds the release load generator, so a measurement does not wait for it.
pub fn build_loadgen() -> Result {
    run(project_command("cargo").args([
        "build",
        "--release",
        "--locked",
        "-p",
        "valle-tests",
        "--bin",
        "loadgen",
    ]))
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
