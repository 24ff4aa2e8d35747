//! What every request and answer of the API is held to, whatever it is about: stable
//! error codes and the errors that carry them, the one JSON body reader, bilingual texts,
//! time, ids, query strings and paging, request ids and stages, paths and rate limits.
//! The lowest layer: it imports nothing else of the crate.

pub mod body;
pub mod codes;
pub mod errors;
pub mod i18n;
pub mod ids;
pub mod ops;
pub mod paths;
pub mod query;
pub mod request;
pub mod time;
