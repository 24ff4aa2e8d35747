//! What became of scored loans and what it says about the model: outcomes, realized against
//! expected performance, fairness by protected attribute, and the champion against the
//! challenger.

pub mod challenger;
pub mod fairness;
pub mod loan_outcomes;
pub mod performance;
