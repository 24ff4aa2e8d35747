//! The names wrangler.toml gives the worker's bindings and vars, in one place: the edge glue
//! looks them up by these constants, and a host test checks wrangler.toml declares each one.

use valle_shared::contract::ops::RateClass;

/// The D1 database: decisions, dead letters, the event inbox, closed KPI windows.
pub const DB: &str = "DB";
/// The KPI aggregator's Durable Object namespace, and the one object in it.
pub const KPI: &str = "KPI";
pub const KPI_OBJECT: &str = "global";
/// The inbox sweeper's Durable Object namespace, and the one object in it.
pub const SWEEPER: &str = "SWEEPER";
pub const SWEEPER_OBJECT: &str = "inbox";
/// Producer bindings of the events queue and its dead-letter queue.
pub const EVENTS: &str = "EVENTS";
pub const DEAD_LETTERS: &str = "DEAD_LETTERS";
/// The queues themselves, as a consumer sees their names.
pub const EVENTS_QUEUE: &str = "valle-events";
pub const DEAD_LETTER_QUEUE: &str = "valle-events-dlq";
/// The webhooks queue: one message per delivery (producer binding, and its name).
pub const WEBHOOKS: &str = "WEBHOOKS";
pub const WEBHOOKS_QUEUE: &str = "valle-webhooks";
/// When the Cron Trigger runs the retention job (`[triggers] crons`): every hour, so runs
/// cut short by a plan's CPU limit still keep up (each page it writes is kept).
pub const RETENTION_CRON: &str = "17 * * * *";
/// The Workers Rate Limiting bindings (`[[ratelimits]]`), one per class; their limits and
/// periods are `RateClass::limit`.
pub const fn rate_limiter(class: RateClass) -> &'static str {
    match class {
        RateClass::Public => "RATE_LIMITER",
        RateClass::Decision => "DECISION_RATE_LIMITER",
        RateClass::Officer => "OFFICER_RATE_LIMITER",
        RateClass::FailedCredentials => "CREDENTIAL_RATE_LIMITER",
    }
}

/// `[vars]` and secrets the worker reads.
pub mod vars {
    /// Cloudflare Access sign-in (`valle_shared::lending::access::AccessConfig`): off unless all three
    /// are set.
    pub const ACCESS_ISSUER: &str = "ACCESS_ISSUER";
    pub const ACCESS_AUD: &str = "ACCESS_AUD";
    pub const ACCESS_JWKS_URL: &str = "ACCESS_JWKS_URL";
    pub const ALLOWED_ORIGINS: &str = "ALLOWED_ORIGINS";
    pub const KPI_COUNT_WINDOW: &str = "KPI_COUNT_WINDOW";
    pub const KPI_OUT_OF_ORDERNESS_MS: &str = "KPI_OUT_OF_ORDERNESS_MS";
    pub const KPI_ALLOWED_LATENESS_MS: &str = "KPI_ALLOWED_LATENESS_MS";
    pub const KPI_DRIFT_MIN_DECISIONS: &str = "KPI_DRIFT_MIN_DECISIONS";
    pub const INBOX_LEASE_MS: &str = "INBOX_LEASE_MS";
    /// Branches `/metrics` labels on their own (`valle_shared::monitoring::series`).
    pub const MONITORED_BRANCHES: &str = "MONITORED_BRANCHES";
    /// `"on"`: the shadow challenger scores every decision (stored, never answered).
    pub const SHADOW_MODEL: &str = "SHADOW_MODEL";
    /// Which environment this is: [`LOCAL`] under `wrangler dev`, where what is safe only
    /// on one's own machine is allowed; anything else is treated as production.
    pub const ENVIRONMENT: &str = "ENVIRONMENT";
    pub const LOCAL: &str = "local";
    /// Every var above: wrangler.toml must declare each.
    pub const DECLARED: [&str; 12] = [
        ENVIRONMENT,
        ACCESS_ISSUER,
        ACCESS_AUD,
        ACCESS_JWKS_URL,
        ALLOWED_ORIGINS,
        KPI_COUNT_WINDOW,
        KPI_OUT_OF_ORDERNESS_MS,
        KPI_ALLOWED_LATENESS_MS,
        KPI_DRIFT_MIN_DECISIONS,
        INBOX_LEASE_MS,
        MONITORED_BRANCHES,
        SHADOW_MODEL,
    ];

    /// The secret applicants' receipts are made with (`wrangler secret put RECEIPT_KEY`);
    /// never a var, never in wrangler.toml.
    pub const RECEIPT_KEY: &str = valle_shared::records::receipt::RECEIPT_KEY_SECRET;
}
