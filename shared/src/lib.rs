//! Valle's core: everything the page and the worker must agree on, with no I/O and no
//! platform crate, so it is tested on the host and runs unchanged in wasm32.
//!
//! The modules are layers, each importing only those listed before it (a test in
//! `tests/layers.rs` holds them to it):
//!
//! - [`contract`]: codes, errors, the body reader, texts, time, ids, paging, paths, limits.
//! - [`intake`]: the application, its validation, the page's draft, batches, branches.
//! - [`decision`]: the model, the policy, disclosure, the scorer protocol, simulation.
//! - [`outcomes`]: loan outcomes, performance, fairness, the challenger.
//! - [`monitoring`]: KPIs, sketches, drift, the Prometheus text.
//! - [`records`]: decision events, idempotency, stored decisions, receipts.
//! - [`lending`]: officers, sign-in, review, audit, the CSV export.
//! - [`webhooks`]: events, signatures, targets and which rows become which events.
//! - [`privacy`]: retention, blocking, erasure and subject access.
//! - [`api`]: the wire answers that combine the layers above.
//! - `openapi` (feature `openapi`): the API's description, generated from the wire types.

pub mod api;
pub mod contract;
pub mod decision;
pub mod intake;
pub mod lending;
pub mod monitoring;
#[cfg(feature = "openapi")]
pub mod openapi;
pub mod outcomes;
pub mod privacy;
pub mod records;
pub mod webhooks;

pub use contract::codes::ErrorCode;
pub use contract::errors::{FieldError, RequestError};
pub use contract::i18n::{Lang, Message};
#[cfg(feature = "model")]
pub use decision::model::Model;
pub use decision::model::Score;
pub use intake::application::{Application, Field};
pub use intake::validation::parse_application;
