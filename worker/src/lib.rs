//! Valle's edge worker: thin glue between Cloudflare Workers and `valle_shared`.
//!
//! Everything but `edge` is plain Rust, tested on the host over `memory` (the `testing`
//! feature, never deployed); `edge` (wasm32 only) is the platform entry point and the
//! bindings behind the [`store`] traits, and only converts.

pub mod access_keys;
pub mod background;
pub mod bindings;
pub mod body;
pub mod cors;
pub mod error;
pub mod http;
pub mod kpi;
pub mod kpi_cache;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
pub mod observability;
pub mod pipeline;
pub mod retention;
pub mod routes;
pub mod sql;
pub mod store;
pub mod webhooks;

#[cfg(target_arch = "wasm32")]
mod edge;
