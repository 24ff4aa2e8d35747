//! `cargo xtask deploy [--plan | --dry-run]`: from a Cloudflare account to a running Valle, through
//! wrangler and wrangler.toml's `[env.production]`.
//!
//! It checks that wrangler is installed and logged in before anything else, reads what the
//! account already has, and does only what is missing: creates the D1 database and the two
//! queues, records the database id in wrangler.toml, applies the D1 migrations remotely
//! (wrangler skips those already applied), creates the first admin account if the database
//! has none (its API token printed once), builds the page and deploys. `--plan`
//! prints what it would do on an empty account and touches nothing, not even the network;
//! `--dry-run` builds and checks the bundle as `cargo xtask test` does.
//! `cargo xtask test` runs [`dry_run`]: the production configuration validated and the
//! bundle built by `wrangler deploy --dry-run`, its gzip size held to the free plan's limit.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use toml_edit::DocumentMut;

use crate::process::{output, run, run_for_output};
use crate::{build_page, root, Result};
use valle_shared::records::receipt::RECEIPT_KEY_SECRET as RECEIPT_KEY;

/// The wrangler.toml environment that is deployed.
pub const ENVIRONMENT: &str = "production";

/// The Workers free plan's limit on a Worker's compressed size: "3 MB", read as decimal
/// megabytes, the stricter of the two readings.
pub const SIZE_LIMIT_BYTES: u64 = 3_000_000;

/// What the production environment needs on the account, as wrangler.toml declares it.
#[derive(Clone, Debug, PartialEq)]
pub struct Needs {
    pub database: String,
    pub database_id: String,
    pub queues: Vec<String>,
    pub rate_limit_namespaces: Vec<String>,
}

/// What the account already has.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Account {
    /// D1 databases by (name, id).
    pub databases: Vec<(String, String)>,
    pub queues: Vec<String>,
    /// Whether the production database has an active admin account.
    pub has_admin: bool,
    /// Whether the deployed worker has its `RECEIPT_KEY` secret (none before a first deploy).
    pub has_receipt_key: bool,
}

/// One thing `deploy` does.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    CreateDatabase(String),
    /// Writes the database's id into wrangler.toml; `None`: the id the creation gives.
    RecordDatabaseId {
        name: String,
        id: Option<String>,
    },
    CreateQueue(String),
    ApplyMigrations,
    /// Asks for an email and creates its admin account; the token is printed once.
    FirstAdmin,
    Deploy,
    /// Stores a fresh random `RECEIPT_KEY` secret, once: the worker is deployed by then, and
    /// replacing the key would void every receipt already given to applicants.
    ReceiptKey,
}

impl Step {
    /// The step as the plan prints it: what, and the command that does it.
    pub fn describe(&self) -> String {
        let env = ENVIRONMENT;
        match self {
            Step::CreateDatabase(name) => {
                format!("create the D1 database {name}: wrangler d1 create {name}")
            }
            Step::RecordDatabaseId { name, id } => format!(
                "record the id of {name} ({}) as [env.{env}] database_id in wrangler.toml",
                id.as_deref().unwrap_or("from its creation")
            ),
            Step::CreateQueue(name) => format!("create the queue {name}: wrangler queues create {name}"),
            Step::ApplyMigrations => format!(
                "apply the D1 migrations not yet applied: wrangler d1 migrations apply DB --env {env} --remote"
            ),
            Step::FirstAdmin => format!(
                "ask for the first admin's email and create the account: cargo xtask officer add EMAIL --role admin --remote (env {env})"
            ),
            Step::Deploy => format!(
                "build the page (cargo xtask build-page) and deploy page and worker: wrangler deploy --env {env}"
            ),
            Step::ReceiptKey => format!(
                "store a random receipt key (48 bytes, base64): wrangler secret put {RECEIPT_KEY} --env {env}"
            ),
        }
    }
}

impl Needs {
    /// Reads `[env.production]` of a wrangler.toml.
    pub fn from_config(text: &str) -> Result<Needs> {
        let doc: DocumentMut = text
            .parse()
            .map_err(|error| format!("wrangler.toml: {error}"))?;
        let env = doc
            .get("env")
            .and_then(|env| env.get(ENVIRONMENT))
            .ok_or(format!("wrangler.toml has no [env.{ENVIRONMENT}]"))?;
        let string = |item: Option<&toml_edit::Item>, what: &str| {
            item.and_then(toml_edit::Item::as_str)
                .map(str::to_owned)
                .ok_or(format!("wrangler.toml: [env.{ENVIRONMENT}] has no {what}"))
        };
        // The first of an array of tables, such as `[[env.production.d1_databases]]`.
        let first = |key: &str| {
            env.get(key)
                .and_then(toml_edit::Item::as_array_of_tables)
                .and_then(|tables| tables.get(0))
                .ok_or(format!("wrangler.toml: [env.{ENVIRONMENT}] has no {key}"))
        };
        let database = first("d1_databases")?;
        let rate_limit_namespaces = env
            .get("ratelimits")
            .and_then(toml_edit::Item::as_array_of_tables)
            .into_iter()
            .flat_map(toml_edit::ArrayOfTables::iter)
            .map(|table| string(table.get("namespace_id"), "ratelimits namespace_id"))
            .collect::<Result<Vec<_>>>()?;
        if rate_limit_namespaces.is_empty() {
            return Err(format!(
                "wrangler.toml: [env.{ENVIRONMENT}] has no ratelimits"
            ));
        }
        let queue_tables = |kind: &str| {
            env.get("queues")
                .and_then(|queues| queues.get(kind))
                .and_then(toml_edit::Item::as_array_of_tables)
                .into_iter()
                .flat_map(toml_edit::ArrayOfTables::iter)
        };
        let mut queues = Vec::new();
        for table in queue_tables("producers").chain(queue_tables("consumers")) {
            for key in ["queue", "dead_letter_queue"] {
                if let Some(name) = table.get(key).and_then(toml_edit::Item::as_str) {
                    if !queues.iter().any(|known| known == name) {
                        queues.push(name.to_owned());
                    }
                }
            }
        }
        Ok(Needs {
            database: string(database.get("database_name"), "database_name")?,
            database_id: string(database.get("database_id"), "database_id")?,
            queues,
            rate_limit_namespaces,
        })
    }
}

/// What to do to bring `account` to what `needs` declares; the same plan twice in a row
/// only re-applies migrations (a no-op when none is new) and deploys.
pub fn plan(needs: &Needs, account: &Account) -> Vec<Step> {
    let mut steps = Vec::new();
    match account
        .databases
        .iter()
        .find(|(name, _)| *name == needs.database)
    {
        None => {
            steps.push(Step::CreateDatabase(needs.database.clone()));
            steps.push(Step::RecordDatabaseId {
                name: needs.database.clone(),
                id: None,
            });
        }
        Some((name, id)) if *id != needs.database_id => steps.push(Step::RecordDatabaseId {
            name: name.clone(),
            id: Some(id.clone()),
        }),
        Some(_) => {}
    }
    for queue in &needs.queues {
        if !account.queues.contains(queue) {
            steps.push(Step::CreateQueue(queue.clone()));
        }
    }
    steps.push(Step::ApplyMigrations);
    if !account.has_admin {
        steps.push(Step::FirstAdmin);
    }
    steps.push(Step::Deploy);
    if !account.has_receipt_key {
        steps.push(Step::ReceiptKey);
    }
    steps
}

/// The plan as printed, with what needs no step.
pub fn render(needs: &Needs, steps: &[Step]) -> String {
    let mut text = String::new();
    for (number, step) in steps.iter().enumerate() {
        text.push_str(&format!("  {}. {}\n", number + 1, step.describe()));
    }
    text.push_str(&format!(
        "  (the rate-limit namespaces {} need no creation: they come with the deployment; if \
         another Worker of the account uses one of those numbers, choose another in \
         wrangler.toml)\n",
        needs.rate_limit_namespaces.join(", ")
    ));
    text
}

/// How to call wrangler: the project's copy, from the project's root.
#[derive(Clone, Debug)]
pub struct Wrangler {
    pub program: PathBuf,
    pub root: PathBuf,
}

impl Wrangler {
    pub fn project() -> Wrangler {
        Wrangler {
            program: root().join("node_modules/.bin/wrangler"),
            root: root(),
        }
    }

    /// A wrangler call, for `process::run` (output to the terminal, wrangler's questions
    /// answered there), `run_for_output` or `output`.
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(args)
            .current_dir(&self.root)
            .env("WRANGLER_SEND_METRICS", "false");
        command
    }

    /// Stops, touching nothing, unless wrangler is installed and logged in.
    pub fn check_logged_in(&self) -> Result {
        if !self.program.exists() {
            return Err(format!(
                "wrangler is not installed ({} is missing): run `cargo xtask bootstrap`, which \
                 installs it from the npm registry. Nothing was changed.",
                self.program.display()
            ));
        }
        let output = self
            .command(&["whoami"])
            .stderr(Stdio::piped())
            .output()
            .map_err(|error| format!("cannot start wrangler whoami: {error}"))?;
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if !output.status.success() || said.contains("not authenticated") {
            return Err(
                "wrangler is not logged in to Cloudflare: run `npx wrangler login` (it \
                 opens a browser), or set CLOUDFLARE_API_TOKEN (and CLOUDFLARE_ACCOUNT_ID) to an \
                 API token allowed to edit Workers, D1 and Queues. Nothing was changed."
                    .to_owned(),
            );
        }
        Ok(())
    }

    /// What the account has of what `needs` declares.
    fn account(&self, needs: &Needs) -> Result<Account> {
        let listed = run_for_output(&mut self.command(&["d1", "list", "--json"]))?;
        let databases = database_list(&listed)?;
        let queues = needs
            .queues
            .iter()
            .filter(|queue| output(&mut self.command(&["queues", "info", queue])).is_some())
            .cloned()
            .collect();
        // A database not yet created or migrated has no accounts table: no admin.
        let has_admin = output(&mut self.command(&[
            "d1",
            "execute",
            "DB",
            "--json",
            "--remote",
            "--env",
            ENVIRONMENT,
            "--command",
            ADMIN_COUNT,
        ]))
        .is_some_and(|text| admin_count(&text) > 0);
        // Before a first deploy there is no worker to list: no key.
        let has_receipt_key = output(&mut self.command(&[
            "secret",
            "list",
            "--env",
            ENVIRONMENT,
            "--format",
            "json",
        ]))
        .is_some_and(|text| secret_names(&text).iter().any(|name| name == RECEIPT_KEY));
        Ok(Account {
            databases,
            queues,
            has_admin,
            has_receipt_key,
        })
    }
}

/// The secret names `wrangler secret list --format json` shows.
fn secret_names(json: &str) -> Vec<String> {
    let listed: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    listed
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|secret| Some(secret.get("name")?.as_str()?.to_owned()))
        .collect()
}

/// A fresh receipt key: 48 bytes from the system's random source, base64.
fn new_receipt_key() -> Result<String> {
    use base64::Engine;
    let mut bytes = [0u8; 48];
    getrandom::fill(&mut bytes).map_err(|error| format!("no random bytes: {error}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Database (name, id) pairs from `wrangler d1 list --json`.
fn database_list(json: &str) -> Result<Vec<(String, String)>> {
    let listed: serde_json::Value =
        serde_json::from_str(json).map_err(|error| format!("wrangler d1 list --json: {error}"))?;
    Ok(listed
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|database| {
            Some((
                database.get("name")?.as_str()?.to_owned(),
                database.get("uuid")?.as_str()?.to_owned(),
            ))
        })
        .collect())
}

const ADMIN_COUNT: &str =
    "SELECT COUNT(*) AS n FROM accounts WHERE role = 'admin' AND revoked_at IS NULL";

/// The count of [`ADMIN_COUNT`] from `wrangler d1 execute --json`.
fn admin_count(json: &str) -> u64 {
    serde_json::from_str::<serde_json::Value>(json)
        .ok()
        .and_then(|answer| answer[0]["results"][0]["n"].as_u64())
        .unwrap_or(0)
}

/// Sets `[env.production]`'s database_id in a wrangler.toml, keeping everything else.
pub fn with_database_id(text: &str, id: &str) -> Result<String> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|error| format!("wrangler.toml: {error}"))?;
    let database = doc
        .get_mut("env")
        .and_then(|env| env.get_mut(ENVIRONMENT))
        .and_then(|env| env.get_mut("d1_databases"))
        .and_then(toml_edit::Item::as_array_of_tables_mut)
        .and_then(|databases| databases.get_mut(0))
        .ok_or(format!(
            "wrangler.toml: [env.{ENVIRONMENT}] has no d1_databases"
        ))?;
    database["database_id"] = toml_edit::value(id);
    Ok(doc.to_string())
}

/// The first https address in wrangler deploy's output: where Valle now runs.
fn deployed_url(output: &str) -> Option<&str> {
    output
        .split_whitespace()
        .find(|word| word.starts_with("https://"))
}

/// Asks for the first admin's email on the terminal.
fn ask_email() -> Result<String> {
    eprint!("The first admin's email (they sign in to the dashboard with it): ");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|error| format!("reading the email: {error}"))?;
    let email = valle_shared::lending::officers::normalize_email(&line);
    if valle_shared::lending::officers::is_email(&email) {
        Ok(email)
    } else {
        Err(format!(
            "{email:?} is not an email address; no account was created"
        ))
    }
}

/// `cargo xtask deploy [--plan | --dry-run]`.
#[derive(clap::Args)]
pub struct DeployArgs {
    /// Print what it does on an empty account, with the wrangler command of each step; no
    /// network.
    #[arg(long, conflicts_with = "dry_run")]
    pub plan: bool,
    /// Build and check the bundle as `cargo xtask test` does; no network.
    #[arg(long)]
    pub dry_run: bool,
}

pub fn deploy(args: &DeployArgs) -> Result {
    if args.dry_run {
        return crate::build_page()
            .and_then(|()| crate::build_worker())
            .and_then(|()| dry_run().map(|_| ()));
    }
    let config_path = root().join("wrangler.toml");
    let config = std::fs::read_to_string(&config_path)
        .map_err(|error| format!("{}: {error}", config_path.display()))?;
    let needs = Needs::from_config(&config)?;
    if args.plan {
        println!(
            "What `cargo xtask deploy` does on an empty account ([env.{ENVIRONMENT}] of wrangler.toml):"
        );
        print!("{}", render(&needs, &plan(&needs, &Account::default())));
        return Ok(());
    }
    deploy_with(&Wrangler::project(), &config_path, &needs)
}

/// The deployment itself, through `wrangler`.
pub fn deploy_with(wrangler: &Wrangler, config_path: &Path, needs: &Needs) -> Result {
    wrangler.check_logged_in()?;
    let account = wrangler.account(needs)?;
    let steps = plan(needs, &account);
    println!("Deploying Valle ([env.{ENVIRONMENT}]):");
    print!("{}", render(needs, &steps));
    for step in &steps {
        eprintln!("==> {}", step.describe());
        run_step(wrangler, config_path, step).map_err(|error| {
            format!(
                "{error}\n    To do this step by hand: {}. Then run `cargo xtask deploy` again: \
                 it skips what is done.",
                step.describe()
            )
        })?;
    }
    Ok(())
}

/// One step, through `wrangler`, updating `config_path` where it records something.
fn run_step(wrangler: &Wrangler, config_path: &Path, step: &Step) -> Result {
    match step {
        Step::CreateDatabase(name) => run(&mut wrangler.command(&["d1", "create", name]))?,
        Step::RecordDatabaseId { name, id } => {
            let id = match id {
                Some(id) => id.clone(),
                None => database_list(&run_for_output(
                    &mut wrangler.command(&["d1", "list", "--json"]),
                )?)?
                .into_iter()
                .find(|(known, _)| known == name)
                .map(|(_, id)| id)
                .ok_or(format!(
                    "{name} was created but `wrangler d1 list` does not show it"
                ))?,
            };
            let text = std::fs::read_to_string(config_path)
                .map_err(|error| format!("{}: {error}", config_path.display()))?;
            std::fs::write(config_path, with_database_id(&text, &id)?)
                .map_err(|error| format!("{}: {error}", config_path.display()))?;
            eprintln!("    wrangler.toml now names {name} by {id}: commit it");
        }
        Step::CreateQueue(name) => run(&mut wrangler.command(&["queues", "create", name]))?,
        Step::ApplyMigrations => run(&mut wrangler.command(&[
            "d1",
            "migrations",
            "apply",
            "DB",
            "--env",
            ENVIRONMENT,
            "--remote",
        ]))?,
        Step::FirstAdmin => {
            let email = ask_email()?;
            let token = crate::officer::new_token()?;
            crate::officer::apply(
                &crate::officer::Database::Production,
                &[crate::officer::Change::Add(crate::officer::NewAccount {
                    name: email.clone(),
                    email: email.clone(),
                    role: valle_shared::lending::officers::Role::Admin,
                    token: token.clone(),
                })],
            )?;
            println!("{email} (admin) signs in with this API token; it is shown only now:\n\n    {token}\n");
        }
        Step::Deploy => {
            build_page()?;
            let output = run_for_output(&mut wrangler.command(&["deploy", "--env", ENVIRONMENT]))?;
            println!("{output}");
            let url = deployed_url(&output).unwrap_or("(the address wrangler printed above)");
            println!(
                    "Valle runs at {url}.\n\nNext:\n  - check it: VALLE_BASE_URL={url} VALLE_OFFICER_TOKEN=<an admin's token> cargo xtask smoke\n  \
                     - the officers' dashboard: {url}/panel (more accounts: cargo xtask officer add EMAIL --role ROLE --remote; sign-in through Cloudflare Access: docs/deploying.md)\n  - a custom domain: add a route or a custom domain to the worker in the dashboard\n  \
                     - roll back: npx wrangler rollback --env {ENVIRONMENT} (docs/deploying.md)"
                );
        }
        Step::ReceiptKey => {
            // The key goes through wrangler's standard input, never onto a command line.
            let key = new_receipt_key()?;
            let mut child = wrangler
                .command(&["secret", "put", RECEIPT_KEY, "--env", ENVIRONMENT])
                .stdin(Stdio::piped())
                .spawn()
                .map_err(|error| format!("cannot start wrangler secret put: {error}"))?;
            if let Some(mut stdin) = child.stdin.take() {
                std::io::Write::write_all(&mut stdin, key.as_bytes())
                    .map_err(|error| format!("wrangler secret put: {error}"))?;
            }
            let status = child
                .wait()
                .map_err(|error| format!("wrangler secret put: {error}"))?;
            if !status.success() {
                return Err(format!(
                    "wrangler secret put {RECEIPT_KEY} failed ({status})"
                ));
            }
        }
    }
    Ok(())
}

/// `wrangler deploy --dry-run --env production`: the production configuration validates and
/// the bundle builds, with no network; the bundle's gzip size must be within
/// [`SIZE_LIMIT_BYTES`]. Returns that size.
pub fn dry_run() -> Result<u64> {
    let wrangler = Wrangler::project();
    let outdir = root().join("target/deploy-dry-run");
    let output = run_for_output(&mut wrangler.command(&[
        "deploy",
        "--dry-run",
        "--env",
        ENVIRONMENT,
        "--outdir",
        &outdir.to_string_lossy(),
    ]))?;
    let gzip = upload_gzip_bytes(&output).ok_or(format!(
        "wrangler deploy --dry-run printed no upload size:\n{output}"
    ))?;
    eprintln!(
        "    production bundle: {gzip} bytes gzip (limit {SIZE_LIMIT_BYTES}, {:.1} % of it)",
        gzip as f64 * 100.0 / SIZE_LIMIT_BYTES as f64
    );
    if gzip > SIZE_LIMIT_BYTES {
        return Err(format!(
            "the production bundle is {gzip} bytes gzip, over the Workers free plan's {SIZE_LIMIT_BYTES}"
        ));
    }
    Ok(gzip)
}

/// The gzip size in bytes from wrangler's "Total Upload: 9345.29 KiB / gzip: 2776.18 KiB".
fn upload_gzip_bytes(output: &str) -> Option<u64> {
    let line = output.lines().find(|line| line.contains("Total Upload:"))?;
    let after = line.split("gzip:").nth(1)?.trim();
    let (number, unit) = after.split_once(' ')?;
    let value: f64 = number.parse().ok()?;
    let scale = match unit.trim() {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        _ => return None,
    };
    Some((value * scale).round() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs() -> Needs {
        let text = std::fs::read_to_string(root().join("wrangler.toml")).expect("wrangler.toml");
        Needs::from_config(&text).expect("needs")
    }

    #[test]
    fn production_needs_one_database_three_queues_and_four_rate_limit_namespaces() {
        let needs = needs();
        assert_eq!(needs.database, "valle");
        assert_eq!(
            needs.queues,
            ["valle-events", "valle-events-dlq", "valle-webhooks"]
        );
        assert_eq!(
            needs.rate_limit_namespaces,
            ["1001", "1002", "1003", "1004"]
        );
    }

    #[test]
    fn the_plan_for_an_empty_account_creates_everything_then_deploys_then_stores_a_receipt_key() {
        let needs = needs();
        let steps = plan(&needs, &Account::default());
        assert_eq!(
            steps,
            [
                Step::CreateDatabase("valle".into()),
                Step::RecordDatabaseId {
                    name: "valle".into(),
                    id: None
                },
                Step::CreateQueue("valle-events".into()),
                Step::CreateQueue("valle-events-dlq".into()),
                Step::CreateQueue("valle-webhooks".into()),
                Step::ApplyMigrations,
                Step::FirstAdmin,
                Step::Deploy,
                Step::ReceiptKey,
            ]
        );
        let text = render(&needs, &steps);
        for command in [
            "wrangler d1 create valle",
            "wrangler queues create valle-events",
            "wrangler queues create valle-events-dlq",
            "wrangler d1 migrations apply DB --env production --remote",
            "wrangler deploy --env production",
            "rate-limit namespaces 1001, 1002, 1003, 1004",
            "wrangler secret put RECEIPT_KEY --env production",
        ] {
            assert!(text.contains(command), "{command} not in\n{text}");
        }
    }

    #[test]
    fn a_second_run_only_migrates_and_deploys() {
        let needs = needs();
        let account = Account {
            databases: vec![("valle".into(), needs.database_id.clone())],
            queues: needs.queues.clone(),
            has_admin: true,
            has_receipt_key: true,
        };
        assert_eq!(
            plan(&needs, &account),
            [Step::ApplyMigrations, Step::Deploy]
        );
        // A deployment without its receipt key gets one after the deploy, once.
        let without_key = Account {
            has_receipt_key: false,
            ..account.clone()
        };
        assert_eq!(
            plan(&needs, &without_key),
            [Step::ApplyMigrations, Step::Deploy, Step::ReceiptKey]
        );
        // A database made by hand is recorded, not created again.
        let by_hand = Account {
            databases: vec![("valle".into(), "1b2c".into())],
            ..account
        };
        assert_eq!(
            plan(&needs, &by_hand)[0],
            Step::RecordDatabaseId {
                name: "valle".into(),
                id: Some("1b2c".into())
            }
        );
    }

    #[test]
    fn recording_the_id_changes_only_the_production_database_id() {
        let text = std::fs::read_to_string(root().join("wrangler.toml")).expect("wrangler.toml");
        let recorded = with_database_id(&text, "5f1e2d3c-0000-4000-8000-00000000abcd").expect("id");
        assert_eq!(
            Needs::from_config(&recorded).expect("needs").database_id,
            "5f1e2d3c-0000-4000-8000-00000000abcd"
        );
        let changed: Vec<(&str, &str)> = text
            .lines()
            .zip(recorded.lines())
            .filter(|(before, after)| before != after)
            .collect();
        assert_eq!(changed.len(), 1, "{changed:?}");
        assert_eq!(text.lines().count(), recorded.lines().count());
    }

    #[test]
    fn wranglers_outputs_are_read() {
        assert_eq!(
            upload_gzip_bytes("Total Upload: 9345.29 KiB / gzip: 2776.18 KiB\n"),
            Some(2_842_808)
        );
        assert_eq!(upload_gzip_bytes("nothing"), None);
        assert_eq!(
            database_list(r#"[{"uuid":"ab-12","name":"valle","version":"production"}]"#),
            Ok(vec![("valle".to_owned(), "ab-12".to_owned())])
        );
        assert_eq!(
            admin_count(r#"[{"results":[{"n":1}],"success":true,"meta":{}}]"#),
            1
        );
        assert_eq!(admin_count("no such table: accounts"), 0);
        assert_eq!(
            secret_names(r#"[{"name":"RECEIPT_KEY","type":"secret_text"}]"#),
            ["RECEIPT_KEY"]
        );
        assert!(secret_names("Worker \"valle\" (env: production) not found.").is_empty());
        let key = new_receipt_key().expect("a key");
        assert_eq!(key.len(), 64);
        assert_ne!(key, new_receipt_key().expect("another key"));
        assert_eq!(
            deployed_url("Uploaded valle\n  https://valle.coop.workers.dev\nCurrent Version ID: 1"),
            Some("https://valle.coop.workers.dev")
        );
    }

    /// A stand-in wrangler that logs every call and then runs `answers` (shell, `$1` the
    /// subcommand).
    fn fake_wrangler(name: &str, answers: &str) -> (Wrangler, PathBuf) {
        let dir = root().join("target/tmp/fake-wrangler").join(name);
        std::fs::create_dir_all(&dir).expect("dir");
        let log = dir.join("calls.log");
        let _ = std::fs::remove_file(&log);
        let program = dir.join("wrangler");
        let script = format!("#!/bin/sh\necho \"$@\" >> '{}'\n{answers}\n", log.display());
        // A child process writes the script: had this process held it open for writing, a
        // test forking beside it could carry that descriptor into its child, and running
        // the script would fail with "Text file busy".
        let written = Command::new("sh")
            .args(["-c", "printf '%s' \"$1\" > \"$0\" && chmod 755 \"$0\""])
            .arg(&program)
            .arg(&script)
            .status()
            .expect("sh");
        assert!(written.success(), "writing {}", program.display());
        (
            Wrangler {
                program,
                root: dir.clone(),
            },
            log,
        )
    }

    /// A copy of wrangler.toml for a test to deploy from.
    fn config_copy(name: &str) -> (PathBuf, String) {
        let config = root()
            .join("target/tmp/fake-wrangler")
            .join(format!("{name}.toml"));
        std::fs::create_dir_all(config.parent().expect("dir")).expect("dir");
        let original = std::fs::read_to_string(root().join("wrangler.toml")).expect("toml");
        std::fs::write(&config, &original).expect("copy");
        (config, original)
    }

    #[test]
    fn a_step_that_fails_says_how_to_do_it_by_hand() {
        let needs = needs();
        let (config, original) = config_copy("failing-step");
        // Logged in, an empty account, and `d1 create` refused.
        let (wrangler, log) = fake_wrangler(
            "failing-step",
            r#"case "$1 $2" in
  "whoami "*) echo 'You are logged in with an API Token.' ;;
  "d1 list") echo '[]' ;;
  "d1 create") echo 'quota exceeded' >&2; exit 1 ;;
  *) exit 1 ;;
esac"#,
        );
        let error = deploy_with(&wrangler, &config, &needs).expect_err("refused");
        assert!(
            error.contains(
                "To do this step by hand: create the D1 database valle: wrangler d1 create valle"
            ),
            "{error}"
        );
        let calls = std::fs::read_to_string(&log).expect("log");
        let admin_query =
            format!("d1 execute DB --json --remote --env production --command {ADMIN_COUNT}");
        assert_eq!(
            calls.lines().collect::<Vec<_>>(),
            [
                "whoami",
                "d1 list --json",
                "queues info valle-events",
                "queues info valle-events-dlq",
                "queues info valle-webhooks",
                admin_query.as_str(),
                "secret list --env production --format json",
                "d1 create valle",
            ]
        );
        assert_eq!(std::fs::read_to_string(&config).expect("toml"), original);
    }

    #[test]
    fn without_wrangler_or_logged_out_it_stops_and_touches_nothing() {
        let needs = needs();
        let (config, original) = config_copy("logged-out");

        let (mut absent, _) = fake_wrangler("absent", "");
        absent.program = absent.root.join("no-such-wrangler");
        let error = deploy_with(&absent, &config, &needs).expect_err("no wrangler");
        assert!(error.contains("wrangler is not installed"), "{error}");
        assert!(error.contains("Nothing was changed"), "{error}");

        let (logged_out, log) = fake_wrangler(
            "logged-out",
            "You are not authenticated. Please run `wrangler login`.",
        );
        let error = deploy_with(&logged_out, &config, &needs).expect_err("logged out");
        assert!(error.contains("not logged in"), "{error}");
        assert!(error.contains("wrangler login"), "{error}");
        // Asked who is logged in, and nothing else.
        assert_eq!(std::fs::read_to_string(&log).expect("log"), "whoami\n");
        assert_eq!(std::fs::read_to_string(&config).expect("toml"), original);
    }
}
