//! Valle's two commands, and the steps they are made of.
//!
//! - `cargo xtask dev`: install what is missing, build page and worker, apply the D1
//!   migrations, serve page + API on http://127.0.0.1:8787.
//! - `cargo xtask test`: everything CI checks, ending with HTTP and browser tests against a
//!   `wrangler dev` it starts on a free port and stops afterwards.
//!
//! Tools are installed only when missing or at the wrong version, into `~/.cargo/bin` and
//! `node_modules`, so the second run of either command starts at once.

mod bench;
mod builds;
mod deploy;
mod direct;
mod edge_suite;
mod lighthouse;
mod officer;
mod openapi;
mod peers;
mod process;
mod server;
mod soak;
mod tools;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use clap::{Parser, Subcommand};
use xshell::{cmd, Shell};

use builds::{build_page, build_worker};
use edge_suite::against_local_server;
use process::run;

type Result<T = ()> = std::result::Result<T, String>;

/// Valle's two commands, `dev` and `test`, and the steps they are made of.
#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    disable_help_subcommand = true
)]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install tools, build page and worker, migrate D1, serve http://127.0.0.1:8787.
    Dev {
        /// Show wrangler's own output too.
        #[arg(long)]
        verbose: bool,
    },
    /// fmt, clippy, host tests, wasm builds, browser tests, HTTP and e2e tests.
    Test,
    /// Only the HTTP, browser and restart tests against a fresh wrangler dev.
    TestEdge,
    /// Build the page (Trunk) and the worker (worker-build).
    Build,
    /// Build the page into dist/.
    BuildPage,
    /// Build the worker into worker/build/ (wrangler's build command).
    BuildWorker,
    /// Install the tools `test` needs, and nothing else.
    Bootstrap,
    /// Retrain the model into models/ (Python venv in target/venv).
    Train,
    /// Write api/openapi.json and api/docs.html from the wire types in shared.
    Openapi,
    /// promtool: ops/prometheus alert rules, their unit tests, the scrape config.
    CheckOps,
    /// Criterion benchmarks of validation and scoring (results: BENCHMARKS.md).
    Bench,
    /// The HTTP path under wrangler dev: POST /api/v1/score at 1 and 16 connections against
    /// the no-I/O floor, KPI reads, batches of 1,000 (results: BENCHMARKS.md).
    BenchHttp,
    /// Events at rising rates until one is not sustained with every event exactly once and
    /// the inbox empty within 10 s.
    BenchEvents(bench::EventsBench),
    /// Side by side: native scoring vs onnxruntime, and POST /api/v1/score on wrangler dev vs
    /// two Flask + scikit-learn references, one storing in SQLite.
    BenchPeers,
    /// Deploy page and worker to Cloudflare ([env.production] of wrangler.toml), creating
    /// what is missing.
    Deploy(deploy::DeployArgs),
    /// Officers' accounts in the local D1 (or production's): a new API token is printed
    /// once; every change is in the audit trail.
    Officer(officer::OfficerArgs),
    /// The read-only and idempotent HTTP checks against VALLE_BASE_URL (a deployment).
    Smoke,
    /// Lighthouse (mobile and desktop presets) on the scoring page under wrangler dev
    /// (results: BENCHMARKS.md).
    Lighthouse,
    /// The long reliability run: 100,000 fuzz cases per property, then MINUTES of mixed load
    /// on wrangler dev with memory sampled (RELIABILITY.md).
    Soak {
        #[arg(default_value_t = 10, value_parser = at_least(2))]
        minutes: u64,
    },
}

impl Task {
    fn run(self) -> Result {
        match self {
            Task::Dev { verbose } => dev(verbose),
            Task::Test => test(),
            Task::TestEdge => tools::ensure_build_tools()
                .and_then(|()| tools::ensure_browser())
                .and_then(|()| build_page())
                .and_then(|()| build_worker())
                .and_then(|()| against_local_server()),
            Task::Build => tools::ensure_build_tools()
                .and_then(|()| build_page())
                .and_then(|()| build_worker()),
            Task::BuildPage => build_page(),
            Task::BuildWorker => build_worker(),
            Task::Bootstrap => tools::ensure_build_tools().and_then(|()| tools::ensure_browser()),
            Task::Train => train(),
            Task::Openapi => openapi::write(),
            Task::CheckOps => check_prometheus_files(),
            Task::Bench => timed("criterion benchmarks", || {
                let sh = project_shell()?;
                cmd!(sh, "cargo bench -p valle-shared --bench scoring")
                    .run()
                    .map_err(shell_error)
            }),
            Task::BenchHttp => bench::bench_http(),
            Task::BenchEvents(bench) => bench.run(),
            Task::BenchPeers => bench::bench_peers(),
            Task::Deploy(args) => deploy::deploy(&args),
            Task::Officer(args) => officer::officer(args),
            Task::Smoke => smoke(),
            Task::Lighthouse => lighthouse::lighthouse(),
            Task::Soak { minutes } => soak::soak(minutes),
        }
    }
}

/// A whole number of at least `least`, for counts of seconds and minutes.
fn at_least(least: u64) -> impl Fn(&str) -> Result<u64> + Clone + Send + Sync + 'static {
    move |text| match text.parse::<u64>() {
        Ok(n) if n >= least => Ok(n),
        _ => Err(format!("a whole number, at least {least}")),
    }
}

fn main() -> ExitCode {
    let command = std::env::args().nth(1).unwrap_or_default();
    let task = Cli::parse().task;
    let started = Instant::now();
    let result = task.run();
    let seconds = started.elapsed().as_secs_f64();
    match result {
        Ok(()) => {
            eprintln!("xtask {command}: done in {seconds:.1} s");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("xtask {command}: FAILED after {seconds:.1} s: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: xtask lives one level below it.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The environment every command of the project runs with, besides `PATH`.
fn project_env() -> [(&'static str, &'static str); 3] {
    [
        ("WRANGLER_SEND_METRICS", "false"),
        // Local development needs no `request.cf` data from Cloudflare; fetching it fails
        // offline with a stack trace at every start.
        ("CLOUDFLARE_CF_FETCH_ENABLED", "false"),
        ("CHROMEDRIVER", tools::CHROMEDRIVER),
    ]
}

/// The shell one-shot commands run in (`cmd!`): the workspace root, the project's tools
/// first on PATH, [`project_env`]. Servers, which are started and stopped while other steps
/// run, are [`project_command`]s under `process.rs`.
fn project_shell() -> Result<Shell> {
    let sh = Shell::new().map_err(shell_error)?;
    sh.change_dir(root());
    sh.set_var("PATH", tools::project_path());
    for (name, value) in project_env() {
        sh.set_var(name, value);
    }
    Ok(sh)
}

fn shell_error(error: xshell::Error) -> String {
    error.to_string()
}

/// A command run from the workspace root with the project's tools first on PATH.
fn project_command(program: &str) -> Command {
    let mut command = Command::new(program);
    command.current_dir(root());
    command.env("PATH", tools::project_path());
    command.envs(project_env());
    command
}

fn step(name: &str) -> Instant {
    eprintln!("\n==> {name}");
    Instant::now()
}

fn done(name: &str, started: Instant) {
    eprintln!("<== {name}: {:.1} s", started.elapsed().as_secs_f64());
}

/// Runs one named step, timing it.
fn timed(name: &str, body: impl FnOnce() -> Result) -> Result {
    let started = step(name);
    body()?;
    done(name, started);
    Ok(())
}

/// Applies every D1 migration to the local database under `persist_to` (wrangler's default
/// `.wrangler/state` when `None`).
fn migrate(persist_to: Option<&Path>) -> Result {
    timed("apply D1 migrations", || {
        let mut command = project_command("wrangler");
        command.args(["d1", "migrations", "apply", "DB", "--local"]);
        if let Some(dir) = persist_to {
            command.arg("--persist-to").arg(dir);
        }
        process::run_quiet(&mut command)
    })
}

/// The Python venv in target/venv with `requirements` installed (pip skips what is there).
fn python_venv(requirements: &[&str]) -> Result<PathBuf> {
    let venv = root().join("target/venv");
    let sh = project_shell()?;
    if !venv.join("bin/python").exists() {
        timed("create target/venv", || {
            cmd!(sh, "python3 -m venv {venv}")
                .run()
                .map_err(shell_error)
        })?;
    }
    let pip = venv.join("bin/pip");
    for file in requirements {
        timed(&format!("pip install -r {file}"), || {
            cmd!(sh, "{pip} install --quiet -r {file}")
                .run()
                .map_err(shell_error)
        })?;
    }
    Ok(venv.join("bin/python"))
}

/// Retrains the model: a venv with the pinned requirements, then models/train.py, which
/// rewrites valle.onnx, feature_spec.json, golden.json, metrics.json and MODEL_CARD.md, then
/// models/psi_reference.py, which rewrites the PSI reference numbers shared's tests check,
/// then models/holdout.py, which rewrites the held-out rows and scikit-learn's figures on them,
/// then models/challenger.py, which retrains the shadow challenger without age and marital
/// status.
fn train() -> Result {
    let python = python_venv(&["models/requirements.txt"])?;
    let sh = project_shell()?;
    for script in [
        "models/train.py",
        "models/psi_reference.py",
        "models/holdout.py",
        "models/challenger.py",
    ] {
        timed(script, || {
            cmd!(sh, "{python} {script}").run().map_err(shell_error)
        })?;
    }
    Ok(())
}

/// The development admin `cargo xtask dev` creates in the local D1, and its API token;
/// never used by a deployment, whose accounts come from `cargo xtask officer add --remote`.
const DEV_ADMIN_EMAIL: &str = "dev-admin@valle.local";
const DEV_OFFICER_TOKEN: &str = "valle-dev-officer-token";
/// The admin's token in the state `cargo xtask test` starts its servers on.
pub(crate) const TEST_OFFICER_TOKEN: &str = "valle-test-officer-token";

/// Builds, migrates and serves until Ctrl-C. Wrangler's own log stays at warnings unless
/// `--verbose`, so a clean start ends with the address, how to sign in and how to stop.
fn dev(verbose: bool) -> Result {
    tools::ensure_build_tools()?;
    build_page()?;
    // Built before wrangler starts, so its own build (wrangler.toml's build command, rerun
    // on every change) finds the worker fresh and the server is up at once.
    build_worker()?;
    migrate(None)?;
    timed("development admin account", || {
        officer::ensure(
            &officer::Database::Local(None),
            officer::NewAccount {
                email: DEV_ADMIN_EMAIL.to_owned(),
                name: "Development admin".to_owned(),
                role: valle_shared::lending::officers::Role::Admin,
                token: DEV_OFFICER_TOKEN.to_owned(),
            },
        )
    })?;
    let mut command = project_command("wrangler");
    command.args([
        "dev",
        "--local",
        "--ip",
        "127.0.0.1",
        "--port",
        "8787",
        "--show-interactive-dev-session=false",
    ]);
    if !verbose {
        command.args(["--log-level", "warn"]);
    }
    let mut wrangler = command
        .spawn()
        .map_err(|error| format!("cannot start wrangler dev: {error}"))?;
    let deadline = Instant::now() + std::time::Duration::from_secs(300);
    while process::http_get_status(
        "http://127.0.0.1:8787/healthz",
        std::time::Duration::from_secs(2),
    ) != Some(200)
    {
        if let Ok(Some(status)) = wrangler.try_wait() {
            return Err(format!("wrangler dev exited ({status}) before it served"));
        }
        if Instant::now() > deadline {
            return Err("wrangler dev did not answer /healthz within 300 s".to_owned());
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    eprintln!(
        "\nValle: http://127.0.0.1:8787  (Ctrl-C stops)\n\
         Officers' dashboard: http://127.0.0.1:8787/panel/ - sign in as {DEV_ADMIN_EMAIL} with the\n\
         API token {DEV_OFFICER_TOKEN}; add accounts with `cargo xtask officer add EMAIL --role ROLE`.\n\
         Wrangler's own log: `cargo xtask dev --verbose`."
    );
    let status = wrangler
        .wait()
        .map_err(|error| format!("wrangler dev: {error}"))?;
    // Ctrl-C ends it (by signal, or 130 where wrangler catches it): that is the normal stop.
    match status.code() {
        None | Some(0 | 130) => Ok(()),
        Some(_) => Err(format!("wrangler dev exited ({status})")),
    }
}

fn test() -> Result {
    tools::ensure_build_tools()?;
    tools::ensure_browser()?;
    timed("rustfmt --check", || {
        let sh = project_shell()?;
        cmd!(sh, "cargo fmt --all --check")
            .run()
            .map_err(shell_error)
    })?;
    timed("clippy (host)", || {
        let sh = project_shell()?;
        cmd!(
            sh,
            "cargo clippy --workspace --all-targets --locked -- -D warnings"
        )
        .run()
        .map_err(shell_error)
    })?;
    timed("clippy (wasm32)", || {
        let sh = project_shell()?;
        cmd!(sh, "cargo clippy --target wasm32-unknown-unknown --locked -p valle-shared -p valle-app -p valle-scorer -p valle-worker -- -D warnings").run().map_err(shell_error)
    })?;
    timed("host tests", || {
        let sh = project_shell()?;
        cmd!(sh, "cargo test --locked -p valle-shared -p valle-worker -p valle-app -p valle-scorer -p xtask").run().map_err(shell_error)
    })?;
    timed("load generator and bench helpers (host)", || {
        let sh = project_shell()?;
        cmd!(sh, "cargo test --locked -p valle-tests --lib --bins")
            .run()
            .map_err(shell_error)
    })?;
    timed("shared in headless Chromium (wasm-bindgen-test)", || {
        let sh = project_shell()?;
        sh.change_dir(root().join("shared"));
        cmd!(
            sh,
            "cargo test --locked --target wasm32-unknown-unknown --test browser"
        )
        .run()
        .map_err(shell_error)
    })?;
    timed(
        "alert rules and scrape config (promtool)",
        check_prometheus_files,
    )?;
    build_page()?;
    build_worker()?;
    timed(
        "production configuration and bundle (wrangler deploy --dry-run)",
        || deploy::dry_run().map(|_| ()),
    )?;
    against_local_server()
}

/// `cargo xtask smoke`: the checks a deployment must pass, against `VALLE_BASE_URL` (and
/// `VALLE_OFFICER_TOKEN` for the officers' endpoints), reading and changing nothing else.
fn smoke() -> Result {
    for (var, what) in [
        ("VALLE_BASE_URL", "the deployment's address"),
        ("VALLE_OFFICER_TOKEN", "its officers' token"),
    ] {
        if std::env::var(var).is_err() {
            return Err(format!("set {var} to {what}"));
        }
    }
    timed("smoke checks", || {
        let sh = project_shell()?;
        cmd!(sh, "cargo test --locked -p valle-tests --test smoke")
            .run()
            .map_err(shell_error)
    })
}

/// ops/prometheus: the rules parse, their unit tests pass, and the scrape config is valid
/// (checked in a copy with a placeholder token file, which promtool wants to exist).
fn check_prometheus_files() -> Result {
    let ops = root().join("ops/prometheus");
    let promtool = tools::PROMTOOL;
    let sh = project_shell()?;
    sh.change_dir(&ops);
    cmd!(sh, "{promtool} check rules alerts.yml")
        .run()
        .map_err(shell_error)?;
    cmd!(sh, "{promtool} test rules alerts_test.yml")
        .run()
        .map_err(shell_error)?;
    let copy = root().join("target/tmp/prometheus-config");
    let io = |error: std::io::Error| format!("prometheus config copy: {error}");
    std::fs::create_dir_all(&copy).map_err(io)?;
    for file in ["prometheus.yml", "alerts.yml"] {
        std::fs::copy(ops.join(file), copy.join(file)).map_err(io)?;
    }
    std::fs::write(copy.join("valle-officer-token"), "placeholder\n").map_err(io)?;
    sh.change_dir(&copy);
    cmd!(sh, "{promtool} check config prometheus.yml")
        .run()
        .map_err(shell_error)
}
