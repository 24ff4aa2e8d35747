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
mod deploy;
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

use process::{free_port, run, Server};
use server::{loadgen_command, start_test_server};

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

/// When each path (or each file directly in a folder) was last modified; `None` when one
/// is missing.
fn modification_times(paths: &[PathBuf]) -> Option<Vec<std::time::SystemTime>> {
    let modified = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|meta| meta.modified())
            .ok()
    };
    paths
        .iter()
        .flat_map(|path| match std::fs::read_dir(path) {
            Ok(entries) => entries
                .filter_map(|entry| entry.ok().map(|entry| entry.path()))
                .collect(),
            Err(_) => vec![path.clone()],
        })
        .map(|path| modified(&path))
        .collect()
}

/// The latest modification among `paths`; `None` when one is missing.
fn newest(paths: &[PathBuf]) -> Option<std::time::SystemTime> {
    modification_times(paths)?.into_iter().max()
}

/// The earliest modification among `paths`; `None` when one is missing.
fn oldest(paths: &[PathBuf]) -> Option<std::time::SystemTime> {
    modification_times(paths)?.into_iter().min()
}

/// Builds the page. Trunk runs wasm-bindgen and wasm-opt (over a minute on the 7 MB module)
/// every time, so it only runs when the compiled module or a static input is newer than dist/.
fn build_page() -> Result {
    timed("build page (trunk)", || {
        let sh = project_shell()?;
        // The same cargo invocation trunk makes, so the two share one build cache.
        for (manifest, bin) in [
            ("app/Cargo.toml", "valle-app"),
            ("app/Cargo.toml", "valle-panel"),
            ("scorer/Cargo.toml", "valle-scorer"),
        ] {
            cmd!(
                sh,
                "cargo build --target=wasm32-unknown-unknown --manifest-path {manifest} --bin {bin} --release"
            )
            .run()
            .map_err(shell_error)?;
        }
        let inputs = newest(&[
            root().join("target/wasm32-unknown-unknown/release/valle-app.wasm"),
            root().join("target/wasm32-unknown-unknown/release/valle-panel.wasm"),
            root().join("target/wasm32-unknown-unknown/release/valle-scorer.wasm"),
            root().join("app/index.html"),
            root().join("app/panel/index.html"),
            root().join("public"),
            root().join("Trunk.toml"),
            root().join("xtask/prerender.cjs"),
        ]);
        let output = oldest(&[
            root().join("dist/index.html"),
            root().join("dist/panel/index.html"),
        ]);
        // A build whose prerender step failed left a page without its first view.
        let prerendered = std::fs::read_to_string(root().join("dist/index.html"))
            .is_ok_and(|index| index.contains("<div data-prerendered>"));
        let fresh = prerendered
            && matches!((inputs, output), (Some(inputs), Some(output)) if output >= inputs);
        if fresh {
            eprintln!("    dist/ is newer than every input: nothing to do");
        } else {
            cmd!(sh, "trunk build --release")
                .run()
                .map_err(shell_error)?;
            // The dashboard's page and module, in their own folder: the first build empties
            // dist/, so this one comes second.
            cmd!(
                sh,
                "trunk build app/panel/index.html --release --dist dist/panel --public-url /panel/"
            )
            .run()
            .map_err(shell_error)?;
            // The first view goes into index.html, so the first paint waits for no wasm.
            tools::ensure_browser()?;
            let chromium = tools::CHROMIUM;
            cmd!(sh, "node xtask/prerender.cjs dist {chromium}")
                .run()
                .map_err(shell_error)?;
        }
        openapi::copy_into(&root().join("dist"))?;
        write_security_headers(&root().join("dist"))
    })
}

/// `dist/_headers`: the asset server sends these with every page and file. The CSP allows
/// only this origin, wasm compilation, and Trunk's one inline loader script of each page, by
/// its hash.
fn write_security_headers(dist: &Path) -> Result {
    let read = |page: &str| {
        std::fs::read_to_string(dist.join(page)).map_err(|error| format!("dist/{page}: {error}"))
    };
    let headers = security_headers(&[&read("index.html")?, &read("panel/index.html")?])?;
    std::fs::write(dist.join("_headers"), headers)
        .map_err(|error| format!("dist/_headers: {error}"))
}

/// The `_headers` text for a site whose pages' HTML is `pages`.
fn security_headers(pages: &[&str]) -> Result<String> {
    use base64::Engine;
    use sha2::Digest;

    const OPEN: &str = "<script type=\"module\">";
    let mut hashes = Vec::new();
    for page in pages {
        let start = page
            .find(OPEN)
            .map(|at| at + OPEN.len())
            .ok_or("a page in dist/ has no inline module script")?;
        let length = page[start..]
            .find("</script>")
            .ok_or("a page in dist/: the inline script is not closed")?;
        let digest = sha2::Sha256::digest(&page.as_bytes()[start..start + length]);
        let hash = base64::engine::general_purpose::STANDARD.encode(digest);
        hashes.push(format!("'sha256-{hash}'"));
    }
    hashes.dedup();
    let policy = [
        "default-src 'self'".to_owned(),
        format!("script-src 'self' 'wasm-unsafe-eval' {}", hashes.join(" ")),
        "style-src 'self'".to_owned(),
        "img-src 'self' data:".to_owned(),
        "connect-src 'self'".to_owned(),
        "manifest-src 'self'".to_owned(),
        "worker-src 'self'".to_owned(),
        "object-src 'none'".to_owned(),
        "base-uri 'none'".to_owned(),
        "form-action 'self'".to_owned(),
        "frame-ancestors 'none'".to_owned(),
    ]
    .join("; ");
    Ok(format!(
        "# Written by `cargo xtask build-page` from the pages in dist/; do not edit.\n/*\n  Content-Security-Policy: {policy}\n  X-Content-Type-Options: nosniff\n  Referrer-Policy: no-referrer\n  X-Frame-Options: DENY\n  Permissions-Policy: camera=(), microphone=(), geolocation=(), payment=()\n"
    ))
}

/// Wrangler calls this as its build command; it also runs on its own. wasm-bindgen and
/// wasm-opt take minutes on the worker's 8 MB module, so they only run when cargo produced a
/// module newer than the last bundle.
fn build_worker() -> Result {
    timed("build worker (worker-build)", || {
        let worker = root().join("worker");
        let sh = project_shell()?;
        sh.change_dir(&worker);
        // The same cargo invocation worker-build makes, so the two share one build cache.
        cmd!(
            sh,
            "cargo build --lib --release --target wasm32-unknown-unknown"
        )
        .env("WASM_BINDGEN_USE_JS_SYS", "1")
        .run()
        .map_err(shell_error)?;
        let compiled = root().join("target/wasm32-unknown-unknown/release/valle_worker.wasm");
        let bundled = worker.join("build/index_bg.wasm");
        let modified = |path: &Path| {
            std::fs::metadata(path)
                .and_then(|meta| meta.modified())
                .ok()
        };
        if let (Some(compiled), Some(bundled)) = (modified(&compiled), modified(&bundled)) {
            if bundled >= compiled && worker.join("build/index.js").exists() {
                eprintln!("    worker/build is newer than the compiled module: nothing to do");
                return Ok(());
            }
        }
        let node_bin = root().join("node_modules/.bin");
        cmd!(sh, "worker-build --release")
            // worker-build downloads these from a code host unless pointed at local copies.
            .env("WASM_BINDGEN_BIN", tools::cargo_bin("wasm-bindgen"))
            .env("WASM_OPT_BIN", node_bin.join("wasm-opt"))
            .env("ESBUILD_BIN", node_bin.join("esbuild"))
            .run()
            .map_err(shell_error)?;
        strip_names(&sh, &bundled)
    })
}

/// The features worker-build enables when it runs wasm-opt, and no newer ones: workerd
/// must read what comes out.
const WORKER_WASM_FEATURES: [&str; 7] = [
    "--enable-mutable-globals",
    "--enable-sign-ext",
    "--enable-nontrapping-float-to-int",
    "--enable-bulk-memory",
    "--enable-multivalue",
    "--enable-reference-types",
    "--enable-exception-handling",
];

/// Where the bundle's module is kept with its function names, to read a production stack
/// trace (`wasm-function[N]`) by: the same commit builds the same module.
const NAMED_WORKER_WASM: &str = "target/worker-names/index_bg.wasm";

/// worker-build keeps the module's name section (1.7 MB, 0.4 MB of the bundle's gzip);
/// the deployed worker goes without it, and the named module stays in
/// [`NAMED_WORKER_WASM`].
fn strip_names(sh: &Shell, bundled: &Path) -> Result {
    let named = root().join(NAMED_WORKER_WASM);
    if let Some(dir) = named.parent() {
        std::fs::create_dir_all(dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    }
    std::fs::copy(bundled, &named).map_err(|error| format!("{}: {error}", named.display()))?;
    let wasm_opt = root().join("node_modules/.bin/wasm-opt");
    let features = WORKER_WASM_FEATURES;
    cmd!(
        sh,
        "{wasm_opt} {named} {features...} --strip-debug --strip-producers -o {bundled}"
    )
    .run()
    .map_err(shell_error)
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
                role: valle_shared::officers::Role::Admin,
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

/// Starts `wrangler dev` on free ports with a fresh local state, runs the HTTP integration
/// tests and the browser e2e tests against it, and stops it whatever happens.
fn against_local_server() -> Result {
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

    timed("HTTP integration tests", || {
        let sh = project_shell()?;
        cmd!(sh, "cargo test --locked -p valle-tests")
            .env("VALLE_BASE_URL", &base_url)
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

    #[test]
    fn the_policy_pins_each_pages_inline_script_by_its_hash() {
        // sha256("console.log(1)") and sha256("console.log(2)") in base64.
        let scoring = "<html><script type=\"module\">console.log(1)</script></html>";
        let panel = "<html><script type=\"module\">console.log(2)</script></html>";
        let headers = security_headers(&[scoring, panel]).expect("headers");
        assert!(headers.starts_with("# Written by"));
        assert!(headers.contains(
            "script-src 'self' 'wasm-unsafe-eval' 'sha256-CihokcEcBW4atb/CW/XWsvWwbTjqwQlE9nj9ii5ww5M=' 'sha256-"
        ), "{headers}");
        assert_eq!(headers.matches("'sha256-").count(), 2, "{headers}");
        for header in [
            "X-Content-Type-Options: nosniff",
            "Referrer-Policy: no-referrer",
            "frame-ancestors 'none'",
        ] {
            assert!(headers.contains(header), "{header}");
        }
        assert!(security_headers(&[scoring, "<html></html>"]).is_err());
        assert!(security_headers(&["<script type=\"module\">x"]).is_err());
    }
}
