//! The data-protection operations: erasure and subject access, by the applicant with their
//! receipt and by the data-protection officer, and the retention job.

use serde_json::json;

use super::operations::{object, operation, receipt_header};
use super::{path_parameter, request_id_schema, Content, Method, Operation, Schemas, Tag};
use crate::api::HumanReviewResponse;
use crate::contract::paths::{
    APPLICANTS_PATH, CONTEST_SUFFIX, DECISIONS_PATH, ERASURE_SUFFIX, RETENTION_RUN_PATH,
    SUBJECT_EXPORT_SUFFIX,
};
use crate::lending::officers::Permission;
use crate::lending::review::MAX_CONTEST_CHARS;
use crate::privacy::retention::{Erasure, RetentionRun};
use crate::privacy::subject_access::SubjectAccess;

/// What blocking means, for each erasure operation's description.
macro_rules! blocking {
    () => {
        "Blocking (LOPDGDD art. 32): the personal data leaves every ordinary read \
    (decisions, reviews, exports, webhooks, simulation) at once and is kept only for legal \
    claims until `destroy_after_ms`, when the retention job destroys it; scores, bands, \
    decisions and outcomes stay in every aggregate."
    };
}

pub(super) fn operations(schemas: &mut Schemas) -> Vec<Operation> {
    let request_id = || {
        path_parameter(
            "request_id",
            "The decision's request id.",
            request_id_schema(),
        )
    };
    let applicant_id = || {
        path_parameter(
            "applicant_id",
            "The applicant id the applications carried.",
            json!({ "type": "string", "minLength": 1, "maxLength": 64, "pattern": "^[A-Za-z0-9._-]+$" }),
        )
    };
    vec![
        Operation {
            parameters: vec![request_id(), receipt_header()],
            body: Some(object(
                json!({ "comment": { "type": "string", "minLength": 1, "maxLength": MAX_CONTEST_CHARS } }),
                &["comment"],
            )),
            ..operation(Method::Post, &format!("{DECISIONS_PATH}/{{request_id}}{CONTEST_SUFFIX}"), "contest_decision", Tag::DataProtection)
                .summary("The applicant contests a decision")
                .description("With the decision's receipt and a comment: the application joins the officers' queue with the comment, as a request for human review does.")
                .success(200, Content::Json(schemas.of::<HumanReviewResponse>()))
        },
        Operation {
            parameters: vec![request_id(), receipt_header()],
            ..operation(Method::Post, &format!("{DECISIONS_PATH}/{{request_id}}{ERASURE_SUFFIX}"), "erase_decision", Tag::DataProtection)
                .summary("The applicant asks for their decision's erasure")
                .description(concat!("With the decision's receipt; that decision only, since anyone may type an applicant id. ", blocking!()))
                .success(200, Content::Json(schemas.of::<Erasure>()))
        },
        Operation {
            parameters: vec![request_id(), receipt_header()],
            ..operation(Method::Get, &format!("{DECISIONS_PATH}/{{request_id}}{SUBJECT_EXPORT_SUFFIX}"), "export_decision", Tag::DataProtection)
                .summary("The applicant's own subject-access export")
                .description("With the decision's receipt: the decision, its application, versions, reasons, review, outcome and the webhook events about it, with how it was made.")
                .success(200, Content::Json(schemas.of::<SubjectAccess>()))
        },
        Operation {
            parameters: vec![applicant_id()],
            ..operation(Method::Post, &format!("{APPLICANTS_PATH}/{{applicant_id}}{ERASURE_SUFFIX}"), "erase_applicant", Tag::DataProtection)
                .summary("Erase an applicant (GDPR art. 17)")
                .description(concat!("Every decision of the applicant at once. Audited under a fresh erasure id, never the applicant's. ", blocking!()))
                .permission(Permission::ProtectData)
                .success(200, Content::Json(schemas.of::<Erasure>()))
        },
        Operation {
            parameters: vec![applicant_id()],
            ..operation(Method::Get, &format!("{APPLICANTS_PATH}/{{applicant_id}}{SUBJECT_EXPORT_SUFFIX}"), "export_applicant", Tag::DataProtection)
                .summary("Everything held about an applicant (GDPR art. 15)")
                .description("Every decision with its application, versions, reasons, review, outcome, webhook events and audit rows; blocked ones say until when they are kept. The one read of blocked data: audited.")
                .permission(Permission::ProtectData)
                .success(200, Content::Json(schemas.of::<SubjectAccess>()))
        },
        Operation {
            body: Some(object(
                json!({
                    "now_ms": { "type": "integer", "minimum": 0, "description": "The job's clock, in the local environment only (tests); refused elsewhere." },
                    "branch": { "type": "string", "minLength": 1, "maxLength": 64, "description": "Confines the run to one branch, in the local environment only (tests); refused elsewhere." },
                }),
                &[],
            )),
            ..operation(Method::Post, RETENTION_RUN_PATH, "run_retention", Tag::DataProtection)
                .summary("Run the retention job now")
                .description("What the hourly Cron Trigger runs: blocks decisions whose readable period under models/retention.json ended, destroys blocked data past its period (leaving coarse bins for the aggregates), deletes records past theirs. Idempotent and paged; `complete: false` means the next run goes on.")
                .permission(Permission::ProtectData)
                .success(200, Content::Json(schemas.of::<RetentionRun>()))
        },
    ]
}
