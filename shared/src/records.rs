//! What is stored of each decision: the events that become decisions, request ids bound to
//! their bodies, the decision records and the officers' queries over them, and the
//! applicant's receipt.

pub mod decisions;
pub mod events;
pub mod idempotency;
pub mod receipt;
