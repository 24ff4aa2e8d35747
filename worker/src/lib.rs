//! Valle's edge worker: thin glue between Cloudflare Workers and `valle_shared`.
//!
//! [`routes`] and [`error`] are plain Rust, tested on the host; `edge` (wasm32 only) is the
//! platform entry point that only converts requests and responses.

pub mod cors;
pub mod error;
pub mod http;
pub mod kpi_object;
pub mod memory;
pub mod pipeline;
pub mod routes;
pub mod sql;
pub mod store;

#[cfg(target_arch = "wasm32")]
mod edge;
