//! Valle's core: everything the page and the worker must agree on, with no I/O and no
//! platform crate, so it is tested on the host and runs unchanged in wasm32.
//!
//! - [`application`]: the fields of a loan application and their single-field rules.
//! - [`validation`]: request bytes to a validated [`Application`], with every error at once;
//!   [`codes`]: every stable error code.
//! - [`draft`]: the form's raw inputs to the JSON body the page sends.
//! - [`api`]: the HTTP API's wire types.
//! - [`i18n`]: Spanish and English texts.
//! - [`events`]: decision events sent in batches and queued; [`decisions`]: stored decisions
//!   and the officers' queries.
//! - [`kpi`]: the live KPI aggregator (windows, watermark, performance state), with
//!   [`sketch`] for latency quantiles, [`drift`] for PSI per feature and [`metrics`] for the
//!   Prometheus text.
//! - [`officers`]: accounts, roles and API tokens; [`access`]: Cloudflare Access sign-in;
//!   [`review`]: the review queue, overrides and second approvals; [`audit`]: the
//!   hash-chained audit trail; [`export`]: the decisions CSV.
//! - [`loan_outcomes`]: what became of scored loans; [`performance`]: realized and expected
//!   performance, calibration and vintages; [`fairness`]: rates and disparate impact by
//!   protected attribute; [`monitoring`]: their per-branch Prometheus series;
//!   [`disclosure`]: what the applicant is shown of a score.
//! - [`policy`]: the knock-out and referral rules evaluated before the model's decision;
//!   [`simulation`]: stored applications re-decided under a candidate strategy;
//!   [`challenger`]: the champion against the shadow challenger.
//! - [`idempotency`]: request ids bound to their bodies; [`receipt`]: the applicant's
//!   capability for their own decision; [`retention`]: how long personal data is kept, its
//!   blocking and destruction; [`subject_access`]: everything held about one applicant.
//! - [`ops`]: rate limits, the KPI cache; [`time`]: RFC 3339; [`query`]: query strings and
//!   the paging rules every list endpoint shares.

pub mod access;
pub mod api;
pub mod application;
pub mod audit;
pub mod batch;
pub mod challenger;
pub mod codes;
pub mod decisions;
pub mod disclosure;
pub mod draft;
pub mod drift;
pub mod events;
pub mod export;
pub mod fairness;
pub mod i18n;
pub mod idempotency;
pub mod kpi;
pub mod loan_outcomes;
pub mod metrics;
pub mod model;
pub mod monitoring;
pub mod officers;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod ops;
pub mod performance;
pub mod policy;
pub mod query;
pub mod receipt;
pub mod retention;
pub mod review;
pub mod scorer;
pub mod simulation;
pub mod sketch;
pub mod subject_access;
pub mod time;
pub mod validation;
pub mod webhook_events;
pub mod webhooks;

pub use application::{Application, Field};
pub use i18n::{Lang, Message};
#[cfg(feature = "model")]
pub use model::Model;
pub use model::Score;
pub use validation::{parse_application, ErrorCode, FieldError, RequestError};
