//! wrangler.toml declares every binding and var the worker looks up by name (`bindings.rs`),
//! with the rate limits the worker derives `Retry-After` from, and sends every API path to the
//! worker before the asset server: for local development (the top level) and for
//! `[env.production]` alike.

use toml::{Table, Value};
use valle_shared::contract::ops::RateClass;
use valle_shared::contract::paths;
use valle_worker::bindings::{self, vars};

fn config() -> Table {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../wrangler.toml");
    std::fs::read_to_string(path)
        .expect("wrangler.toml")
        .parse()
        .expect("wrangler.toml is TOML")
}

/// Keys wrangler does not inherit from the top level into an environment.
const NOT_INHERITED: [&str; 5] = [
    "vars",
    "d1_databases",
    "durable_objects",
    "queues",
    "ratelimits",
];

/// Each environment's configuration as wrangler reads it: the top level for `wrangler dev`,
/// and for production the top level without what is not inherited, with
/// `[env.production]` laid over it.
fn environments() -> Vec<(&'static str, Table)> {
    let local = config();
    let mut production = local.clone();
    production.remove("env");
    for key in NOT_INHERITED {
        production.remove(key);
    }
    let overrides = local
        .get("env")
        .and_then(|env| env.get("production"))
        .and_then(Value::as_table)
        .expect("[env.production]");
    for (key, value) in overrides {
        production.insert(key.clone(), value.clone());
    }
    vec![("local", local), ("production", production)]
}

fn tables(value: Option<&Value>) -> Vec<&Table> {
    value
        .and_then(Value::as_array)
        .map(|items| items.iter().filter_map(Value::as_table).collect())
        .unwrap_or_default()
}

fn text<'a>(table: &'a Table, key: &str) -> &'a str {
    table.get(key).and_then(Value::as_str).unwrap_or_default()
}

#[test]
fn every_binding_the_worker_names_is_declared() {
    for (env, config) in environments() {
        // Printed with the failure, which says which environment it is.
        eprintln!("environment: {env}");
        let d1 = tables(config.get("d1_databases"));
        assert_eq!(
            d1.iter().map(|db| text(db, "binding")).collect::<Vec<_>>(),
            [bindings::DB]
        );

        let objects = tables(
            config
                .get("durable_objects")
                .and_then(|d| d.get("bindings")),
        );
        let declared: Vec<(&str, &str)> = objects
            .iter()
            .map(|object| (text(object, "name"), text(object, "class_name")))
            .collect();
        assert_eq!(
            declared,
            [
                (bindings::KPI, "KpiObject"),
                (bindings::SWEEPER, "InboxSweeperObject")
            ]
        );
        // Each class was created by a migration and not deleted since.
        let mut live = Vec::new();
        for migration in tables(config.get("migrations")) {
            for class in migration
                .get("new_sqlite_classes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                live.push(class.as_str().unwrap_or_default());
            }
            for class in migration
                .get("deleted_classes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                live.retain(|name| Some(*name) != class.as_str());
            }
        }
        assert_eq!(live, ["KpiObject", "InboxSweeperObject"]);

        let queues = config.get("queues");
        let producers: Vec<(&str, &str)> = tables(queues.and_then(|q| q.get("producers")))
            .iter()
            .map(|producer| (text(producer, "binding"), text(producer, "queue")))
            .collect();
        assert_eq!(
            producers,
            [
                (bindings::EVENTS, bindings::EVENTS_QUEUE),
                (bindings::DEAD_LETTERS, bindings::DEAD_LETTER_QUEUE),
                (bindings::WEBHOOKS, bindings::WEBHOOKS_QUEUE)
            ]
        );
        let consumers = tables(queues.and_then(|q| q.get("consumers")));
        let names: Vec<&str> = consumers.iter().map(|c| text(c, "queue")).collect();
        assert_eq!(
            names,
            [
                bindings::EVENTS_QUEUE,
                bindings::DEAD_LETTER_QUEUE,
                bindings::WEBHOOKS_QUEUE
            ]
        );
        assert_eq!(
            text(consumers[0], "dead_letter_queue"),
            bindings::DEAD_LETTER_QUEUE
        );
        // A consumer batch is one D1 write: as many messages as the platform allows.
        assert_eq!(
            consumers[0]
                .get("max_batch_size")
                .and_then(Value::as_integer),
            Some(100)
        );
    }
}

#[test]
fn each_rate_limit_binding_has_the_limit_the_worker_answers_with() {
    for (env, config) in environments() {
        // Printed with the failure, which says which environment it is.
        eprintln!("environment: {env}");
        let limits = tables(config.get("ratelimits"));
        assert_eq!(limits.len(), RateClass::ALL.len());
        let mut namespaces: Vec<&str> = limits.iter().map(|l| text(l, "namespace_id")).collect();
        namespaces.sort_unstable();
        namespaces.dedup();
        assert_eq!(namespaces.len(), limits.len(), "one namespace per binding");
        for class in RateClass::ALL {
            let declared = limits
                .iter()
                .find(|limit| text(limit, "name") == bindings::rate_limiter(class))
                .unwrap_or_else(|| panic!("{class:?} has no binding"));
            let simple = declared
                .get("simple")
                .and_then(Value::as_table)
                .expect("simple");
            let number = |key: &str| {
                simple
                    .get(key)
                    .and_then(Value::as_integer)
                    .map(|n| n as u64)
            };
            assert_eq!(number("limit"), Some(class.limit().limit), "{class:?}");
            assert_eq!(number("period"), Some(class.limit().period_s), "{class:?}");
            assert!(
                [10, 60].contains(&class.limit().period_s),
                "the binding allows 10 or 60 s"
            );
        }
    }
}

#[test]
fn the_retention_job_runs_each_night_in_every_environment() {
    for (env, config) in environments() {
        let crons: Vec<&str> = config
            .get("triggers")
            .and_then(|triggers| triggers.get("crons"))
            .and_then(Value::as_array)
            .map(|crons| crons.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert_eq!(crons, [bindings::RETENTION_CRON], "{env}");
    }
}

#[test]
fn every_var_is_declared_and_api_paths_reach_the_worker_first() {
    for (env, config) in environments() {
        // Printed with the failure, which says which environment it is.
        eprintln!("environment: {env}");
        let declared = config
            .get("vars")
            .and_then(Value::as_table)
            .expect("[vars]");
        for var in vars::DECLARED {
            assert!(declared.contains_key(var), "{var} is not in [vars]");
        }
        let first: Vec<&str> = config
            .get("assets")
            .and_then(|assets| assets.get("run_worker_first"))
            .and_then(Value::as_array)
            .expect("run_worker_first")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let reaches_worker = |path: &str| {
            first.iter().any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => path.starts_with(prefix),
                None => path == *pattern,
            })
        };
        for path in [
            paths::SCORE_PATH,
            paths::SCORE_BATCH_PATH,
            paths::EVENTS_PATH,
            paths::DECISIONS_PATH,
            paths::DEAD_LETTERS_PATH,
            paths::KPIS_PATH,
            paths::KPI_WINDOWS_PATH,
            paths::DRIFT_PATH,
            paths::HEALTH_PATH,
            paths::METRICS_PATH,
            "/api/v1/no-such-route",
        ] {
            assert!(
                reaches_worker(path),
                "{path} goes to the asset server first"
            );
        }
        assert!(!reaches_worker("/"), "the page is the asset server's");
        assert!(!reaches_worker("/panel"));
    }
}
