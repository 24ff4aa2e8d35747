//! `cargo xtask officer add|revoke|list`: officers' accounts in D1, local (the database
//! `cargo xtask dev` serves) or, with `--remote`, the production one. A token is printed
//! once and stored only as its SHA-256. Every change appends its row to the audit trail in
//! the same statement set, at the end of the hash chain (`valle_shared::lending::audit`).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use valle_shared::lending::audit::{append, AuditAction, AuditEvent, ChainHead};
use valle_shared::lending::officers::{
    is_email, normalize_email, token_from_bytes, token_hash, Role, ROLES,
};

use crate::process::run_for_output;
use crate::{project_command, root, Result};

/// Which D1 an account change goes to.
#[derive(Clone, Debug)]
pub enum Database {
    /// `wrangler dev`'s local state: its default, or another directory.
    Local(Option<PathBuf>),
    /// `[env.production]`'s database.
    Production,
}

/// One account to create (or, for an email that has one, to give a new role and token).
#[derive(Clone, Debug)]
pub struct NewAccount {
    pub email: String,
    pub name: String,
    pub role: Role,
    pub token: String,
}

/// One change to the accounts table.
#[derive(Clone, Debug)]
pub enum Change {
    Add(NewAccount),
    Revoke { email: String },
}

/// A new API token from the system's random source.
pub fn new_token() -> Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| format!("no random bytes: {error}"))?;
    Ok(token_from_bytes(&bytes))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as i64)
}

/// A SQL text literal; the statements run through wrangler's command line, which binds
/// nothing.
fn text(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

fn execute(database: &Database, args: &[&str]) -> Result<String> {
    let mut command = project_command("wrangler");
    command.args(["d1", "execute", "DB", "--json", "--yes"]);
    match database {
        Database::Local(dir) => {
            command.arg("--local");
            if let Some(dir) = dir {
                command.arg("--persist-to").arg(dir);
            }
        }
        Database::Production => {
            command.args(["--remote", "--env", "production"]);
        }
    }
    run_for_output(command.args(args))
}

/// The rows of a one-statement query.
fn query(database: &Database, sql: &str) -> Result<Vec<serde_json::Value>> {
    let output = execute(database, &["--command", sql])?;
    let answer: serde_json::Value = serde_json::from_str(&output)
        .map_err(|error| format!("wrangler d1 execute --json: {error}: {output}"))?;
    Ok(answer[0]["results"].as_array().cloned().unwrap_or_default())
}

/// The end of the audit chain.
fn chain_head(database: &Database) -> Result<ChainHead> {
    let rows = query(
        database,
        "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
    )?;
    Ok(match rows.first() {
        Some(row) => ChainHead {
            seq: row["seq"].as_u64().ok_or("audit_log.seq is not a number")?,
            hash: row["hash"]
                .as_str()
                .ok_or("audit_log.hash is not text")?
                .to_owned(),
        },
        None => ChainHead::genesis(),
    })
}

/// Who makes a change from the command line, as the audit trail names them.
fn operator() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    format!("cli:{user}")
}

/// The statements of `changes`, each followed by its audit row, after `head`.
pub fn statements(
    changes: &[Change],
    head: &ChainHead,
    actor: &str,
    now_ms: i64,
) -> Result<String> {
    let mut sql = String::new();
    let mut head = head.clone();
    for change in changes {
        let (statement, action, subject, detail) = match change {
            Change::Add(account) => {
                let email = normalize_email(&account.email);
                if !is_email(&email) {
                    return Err(format!("{:?} is not an email address", account.email));
                }
                (
                    format!(
                        "INSERT INTO accounts (email, name, role, token_hash, created_at) VALUES \
                         ({}, {}, {}, {}, {now_ms}) ON CONFLICT(email) DO UPDATE SET \
                         name = excluded.name, role = excluded.role, \
                         token_hash = excluded.token_hash, revoked_at = NULL;",
                        text(&email),
                        text(&account.name),
                        text(account.role.as_str()),
                        text(&token_hash(&account.token)),
                    ),
                    AuditAction::AccountAdded,
                    email,
                    serde_json::json!({ "role": account.role, "name": account.name }).to_string(),
                )
            }
            Change::Revoke { email } => {
                let email = normalize_email(email);
                (
                    format!(
                        "UPDATE accounts SET revoked_at = {now_ms} WHERE email = {};",
                        text(&email)
                    ),
                    AuditAction::AccountRevoked,
                    email,
                    "{}".to_owned(),
                )
            }
        };
        let entry = append(
            &head,
            AuditEvent {
                at_ms: now_ms,
                actor: actor.to_owned(),
                action,
                subject,
                detail,
            },
        );
        sql.push_str(&statement);
        sql.push('\n');
        sql.push_str(&format!(
            "INSERT INTO audit_log (seq, at_ms, actor, action, subject, detail, prev_hash, hash) \
             VALUES ({}, {}, {}, {}, {}, {}, {}, {});\n",
            entry.seq,
            entry.event.at_ms,
            text(&entry.event.actor),
            text(entry.event.action.as_str()),
            text(&entry.event.subject),
            text(&entry.event.detail),
            text(&entry.prev_hash),
            text(&entry.hash),
        ));
        head = ChainHead {
            seq: entry.seq,
            hash: entry.hash,
        };
    }
    Ok(sql)
}

/// Applies `changes` with their audit rows in one `wrangler d1 execute --file`.
pub fn apply(database: &Database, changes: &[Change]) -> Result {
    let head = chain_head(database)?;
    let sql = statements(changes, &head, &operator(), now_ms())?;
    let dir = root().join("target/tmp");
    std::fs::create_dir_all(&dir).map_err(|error| format!("{}: {error}", dir.display()))?;
    let file = dir.join(format!("officer-{}.sql", std::process::id()));
    std::fs::write(&file, sql).map_err(|error| format!("{}: {error}", file.display()))?;
    let result = execute(database, &["--file", &file.to_string_lossy()]).map(|_| ());
    let _ = std::fs::remove_file(&file);
    result
}

/// The account of `email`: its role and whether it is revoked; `None` if there is none.
fn account(database: &Database, email: &str) -> Result<Option<(String, bool, String)>> {
    let rows = query(
        database,
        &format!(
            "SELECT role, revoked_at, token_hash FROM accounts WHERE email = {}",
            text(&normalize_email(email))
        ),
    )?;
    Ok(rows.first().map(|row| {
        (
            row["role"].as_str().unwrap_or_default().to_owned(),
            !row["revoked_at"].is_null(),
            row["token_hash"].as_str().unwrap_or_default().to_owned(),
        )
    }))
}

/// Makes sure `account` exists with its token, writing (and auditing) only if it does not.
pub fn ensure(database: &Database, account: NewAccount) -> Result {
    let wanted = token_hash(&account.token);
    match self::account(database, &account.email)? {
        Some((role, false, hash)) if hash == wanted && role == account.role.as_str() => Ok(()),
        _ => apply(database, &[Change::Add(account)]),
    }
}

/// `cargo xtask officer add|revoke|list [--remote]`.
#[derive(clap::Args)]
pub struct OfficerArgs {
    #[command(subcommand)]
    pub action: OfficerAction,
    /// Change the production database ([env.production] in wrangler.toml) instead of the
    /// local one `cargo xtask dev` serves.
    #[arg(long, global = true)]
    pub remote: bool,
}

#[derive(Debug, PartialEq, clap::Subcommand)]
pub enum OfficerAction {
    /// Add an account, or give an existing one this role and a new token; the token is
    /// printed once.
    Add {
        email: String,
        #[arg(long, value_parser = role)]
        role: Role,
        /// The name the dashboard shows (the email when not given).
        #[arg(long)]
        name: Option<String>,
    },
    /// Revoke an account: its token and its Access sign-in are refused from then on.
    Revoke { email: String },
    /// List every account with its role and state.
    List,
}

fn role(text: &str) -> Result<Role> {
    Role::parse(text).ok_or_else(|| {
        let roles: Vec<&str> = ROLES.iter().map(|role| role.as_str()).collect();
        format!("one of {}", roles.join(", "))
    })
}

/// `cargo xtask officer …`.
pub fn officer(args: OfficerArgs) -> Result {
    let database = if args.remote {
        Database::Production
    } else {
        Database::Local(None)
    };
    match args.action {
        OfficerAction::Add { email, role, name } => {
            let token = new_token()?;
            let email = normalize_email(&email);
            let name = name.unwrap_or_else(|| email.clone());
            if let Some((_, revoked, _)) = account(&database, &email)? {
                eprintln!(
                    "    {email} has an account{}: it gets this role and a new token; the old token stops working",
                    if revoked { " (revoked)" } else { "" }
                );
            }
            apply(
                &database,
                &[Change::Add(NewAccount {
                    email: email.clone(),
                    name,
                    role,
                    token: token.clone(),
                })],
            )?;
            println!("{email} ({}) can sign in with this API token; it is shown only now:\n\n    {token}\n", role.as_str());
            println!("Use it as `Authorization: Bearer <token>`, or paste it into the dashboard's sign-in at /panel/.");
            Ok(())
        }
        OfficerAction::Revoke { email } => {
            let email = normalize_email(&email);
            match account(&database, &email)? {
                None => Err(format!("{email} has no account")),
                Some((_, true, _)) => Err(format!("{email} is already revoked")),
                Some(_) => {
                    apply(
                        &database,
                        &[Change::Revoke {
                            email: email.clone(),
                        }],
                    )?;
                    println!("{email} is revoked: its token and its Access sign-in are refused from now on.");
                    Ok(())
                }
            }
        }
        OfficerAction::List => {
            let rows = query(
                &database,
                "SELECT email, name, role, created_at, revoked_at FROM accounts ORDER BY email",
            )?;
            println!("{:<36} {:<11} {:<8} name", "email", "role", "state");
            for row in rows {
                println!(
                    "{:<36} {:<11} {:<8} {}",
                    row["email"].as_str().unwrap_or_default(),
                    row["role"].as_str().unwrap_or_default(),
                    if row["revoked_at"].is_null() {
                        "active"
                    } else {
                        "revoked"
                    },
                    row["name"].as_str().unwrap_or_default(),
                );
            }
            Ok(())
        }
    }
}

/// The accounts `cargo xtask test` signs in with, one per role and a revoked one: email,
/// role, token, and the environment variable the HTTP and e2e tests read the token from.
pub const TEST_ACCOUNTS: [(&str, Role, &str, &str); 8] = [
    (
        "admin@valle.test",
        Role::Admin,
        crate::TEST_OFFICER_TOKEN,
        "VALLE_OFFICER_TOKEN",
    ),
    (
        "oficial@valle.test",
        Role::Officer,
        "valle-test-officer",
        "VALLE_TOKEN_OFFICER",
    ),
    (
        "oficial2@valle.test",
        Role::Officer,
        "valle-test-officer-2",
        "VALLE_TOKEN_OFFICER_2",
    ),
    (
        "supervisora@valle.test",
        Role::Supervisor,
        "valle-test-supervisor",
        "VALLE_TOKEN_SUPERVISOR",
    ),
    (
        "auditor@valle.test",
        Role::Auditor,
        "valle-test-auditor",
        "VALLE_TOKEN_AUDITOR",
    ),
    (
        "cartera@valle.test",
        Role::Integrator,
        "valle-test-integrator",
        "VALLE_TOKEN_INTEGRATOR",
    ),
    (
        "dpd@valle.test",
        Role::Dpo,
        "valle-test-dpo",
        "VALLE_TOKEN_DPO",
    ),
    (
        "revocado@valle.test",
        Role::Officer,
        "valle-test-revoked",
        "VALLE_TOKEN_REVOKED",
    ),
];

/// Creates the test accounts in a fresh local state (and revokes the revoked one).
pub fn seed_test_accounts(state: &Path) -> Result {
    let mut changes: Vec<Change> = TEST_ACCOUNTS
        .iter()
        .map(|(email, role, token, _)| {
            Change::Add(NewAccount {
                email: email.to_string(),
                name: email.split('@').next().unwrap_or(email).to_owned(),
                role: *role,
                token: token.to_string(),
            })
        })
        .collect();
    changes.push(Change::Revoke {
        email: "revocado@valle.test".to_owned(),
    });
    apply(&Database::Local(Some(state.to_owned())), &changes)
}

/// The test accounts' tokens as the environment the tests read.
pub fn test_token_env() -> impl Iterator<Item = (&'static str, &'static str)> {
    TEST_ACCOUNTS
        .into_iter()
        .map(|(_, _, token, variable)| (variable, token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_names_an_action_a_role_and_a_database() {
        #[derive(clap::Parser)]
        struct Command {
            #[command(flatten)]
            officer: OfficerArgs,
        }
        let check = |args: &[&str], expected: Option<(OfficerAction, bool)>| {
            let read = <Command as clap::Parser>::try_parse_from(
                std::iter::once("officer").chain(args.iter().copied()),
            )
            .map(|command| (command.officer.action, command.officer.remote));
            assert_eq!(read.ok(), expected, "{args:?}");
        };
        let add = |role, name: Option<&str>| OfficerAction::Add {
            email: "ana@coop.example".into(),
            role,
            name: name.map(str::to_owned),
        };
        check(
            &["add", "ana@coop.example", "--role", "supervisor"],
            Some((add(Role::Supervisor, None), false)),
        );
        check(
            &[
                "add",
                "ana@coop.example",
                "--remote",
                "--role",
                "integrator",
                "--name",
                "Ana",
            ],
            Some((add(Role::Integrator, Some("Ana")), true)),
        );
        check(
            &["--remote", "revoke", "ana@coop.example"],
            Some((
                OfficerAction::Revoke {
                    email: "ana@coop.example".into(),
                },
                true,
            )),
        );
        check(&["list"], Some((OfficerAction::List, false)));
        check(&["add", "ana@coop.example"], None);
        check(&["add", "ana@coop.example", "--role", "owner"], None);
        check(&["revoke"], None);
        check(&["rename", "ana@coop.example"], None);
        check(&[], None);
    }
    use valle_shared::lending::audit::{AuditEntry, Verifier};

    #[test]
    fn changes_are_audited_in_one_chain_and_quotes_stay_inside_literals() {
        let changes = [
            Change::Add(NewAccount {
                email: "Ana@Coop.Example".into(),
                name: "Ana O'Neil".into(),
                role: Role::Supervisor,
                token: "t".into(),
            }),
            Change::Revoke {
                email: "ana@coop.example".into(),
            },
        ];
        let sql = statements(&changes, &ChainHead::genesis(), "cli:test", 7).expect("statements");
        assert!(sql.contains("'Ana O''Neil'"), "{sql}");
        assert!(sql.contains(&format!("'{}'", token_hash("t"))));
        assert!(!sql.contains("'t'"), "the token itself is never written");
        assert_eq!(sql.matches("INSERT INTO audit_log").count(), 2);
        // The two rows chain from the genesis: rebuild them from the text and verify.
        let rows: Vec<AuditEntry> = sql
            .lines()
            .filter_map(|line| {
                line.split_once("VALUES (")
                    .filter(|_| line.starts_with("INSERT INTO audit_log"))
            })
            .map(|(_, values)| {
                let fields: Vec<String> = values
                    .trim_end_matches(");")
                    .split(", ")
                    .map(|field| field.trim_matches('\'').replace("''", "'"))
                    .collect();
                AuditEntry {
                    seq: fields[0].parse().expect("seq"),
                    event: AuditEvent {
                        at_ms: fields[1].parse().expect("at"),
                        actor: fields[2].clone(),
                        action: AuditAction::parse(&fields[3]).expect("action"),
                        subject: fields[4].clone(),
                        detail: fields[5..fields.len() - 2].join(", "),
                    },
                    prev_hash: fields[fields.len() - 2].clone(),
                    hash: fields[fields.len() - 1].clone(),
                }
            })
            .collect();
        let mut verifier = Verifier::default();
        verifier.check(&rows);
        assert!(verifier.report().ok);
        let bad = Change::Add(NewAccount {
            email: "not an email".into(),
            name: String::new(),
            role: Role::Officer,
            token: "t".into(),
        });
        assert!(statements(&[bad], &ChainHead::genesis(), "cli:test", 7).is_err());
    }
}
