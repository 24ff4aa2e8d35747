//! Deciding an application: the ONNX model and its reasons and recourse, the policy's rules
//! around it, what the applicant is shown of a score, the page's scoring-worker protocol and
//! the re-decision of stored applications under a candidate strategy.

pub mod disclosure;
pub mod model;
pub mod policy;
pub mod scorer;
pub mod simulation;
