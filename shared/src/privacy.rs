//! Personal data over its life: how long it is kept, its blocking and destruction, and
//! everything held about one applicant.

pub mod retention;
pub mod subject_access;
