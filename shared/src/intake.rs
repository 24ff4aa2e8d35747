//! A loan application as it arrives: its fields and their rules, the validation of request
//! bytes into an [`application::Application`] with every error at once, the page's draft,
//! batches of items, and the branch and channel a decision is counted under.

pub mod application;
pub mod batch;
pub mod branch;
pub mod channel;
pub mod draft;
pub mod validation;
