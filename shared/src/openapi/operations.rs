//! Every operation of the HTTP API, in the order the document lists them.

use serde_json::{json, Value};

use super::{path_parameter, query, request_id_schema, Content, Method, Operation, Schemas, Tag};
use crate::api::*;
use crate::contract::paths::*;
use crate::contract::query::{
    PageRules, AUDIT_PAGES, CURSOR, DEAD_LETTER_PAGES, REVIEW_PAGES, WINDOW_PAGES,
};
use crate::contract::request::REQUEST_ID_HEADER;
use crate::decision::model::spec::Thresholds;
use crate::decision::model::{Band, Decision};
use crate::decision::simulation::{ModelChoice, PolicyChoice, SimulationReport, MAX_SIMULATED};
use crate::intake::application::Application;
use crate::intake::batch::BatchKind;
use crate::intake::channel::Channel;
use crate::lending::audit::{AuditPage, VerifyReport};
use crate::lending::export::CSV_MEDIA_TYPE;
use crate::lending::officers::{Me, Permission};
use crate::lending::review::{
    ApprovalRequest, DecideRequest, OverrideReport, ReviewCase, ReviewPage, ReviewState,
};
use crate::monitoring::drift::DriftReport;
use crate::monitoring::kpi::View;
use crate::monitoring::metrics::PROMETHEUS_MEDIA_TYPE;
use crate::outcomes::challenger::ChallengerReport;
use crate::outcomes::fairness::FairnessReport;
use crate::outcomes::loan_outcomes::{LoanStatus, OutcomesAnswer, MAX_OUTCOMES};
use crate::outcomes::performance::PerformanceReport;
use crate::records::decisions::{
    DeadLetterPage, DeadLetterStatus, DecisionPage, DecisionRecord, ReplayResponse, DECISION_PAGES,
};
use crate::records::events::{ClientScore, EventsResponse};

/// The operations, their schemas built into `schemas`.
pub fn operations(schemas: &mut Schemas) -> Vec<Operation> {
    let request_id = path_parameter(
        "request_id",
        "The decision's request id.",
        request_id_schema(),
    );
    let period = period(schemas);
    let decision_filters = decision_filters(schemas);
    let mut list = vec![
        Operation {
            body: Some(schemas.of::<Application>()),
            parameters: vec![idempotency_key()],
            ..operation(Method::Post, SCORE_PATH, "score", Tag::Scoring)
                .summary("Score one application")
                .description("Validates the application, scores it, decides, and stores the decision before answering. Repeating a request id with the same application answers the stored decision; with another, 422 `E_IDEMPOTENCY_MISMATCH`. The answer carries the applicant's receipt.")
                .success(200, Content::Json(schemas.of::<ScoreResponse>()))
        },
        Operation {
            body: Some(batch_envelope(BatchKind::Applications, schemas.of::<Application>())),
            ..operation(Method::Post, SCORE_BATCH_PATH, "score_batch", Tag::Scoring)
                .summary("Score a batch of applications")
                .description("Each item is validated and scored on its own: an invalid item is an error in its slot, never a refusal of the batch.")
                .success(200, Content::Json(schemas.of::<BatchResponse>()))
        },
        Operation {
            body: Some(batch_envelope(
                BatchKind::Events,
                object(
                    json!({
                        "event_id": { "type": "string", "format": "uuid" },
                        "event_time": { "type": "string", "format": "date-time" },
                        "application": schemas.of::<Application>(),
                        "client_score": schemas.of::<ClientScore>(),
                    }),
                    &["event_id", "event_time", "application"],
                ),
            )),
            parameters: vec![query(
                "channel",
                "Where the events come from.",
                schemas.of::<Channel>(),
            )],
            ..operation(Method::Post, EVENTS_PATH, "ingest_events", Tag::Scoring)
                .summary("Ingest a stream of application events")
                .description("Accepted events go onto the queue and are scored exactly once by event id; the answer says which were accepted and which refused.")
                .success(202, Content::Json(schemas.of::<EventsResponse>()))
        },
        Operation {
            parameters: vec![request_id.clone(), receipt_header()],
            ..operation(Method::Post, &format!("{DECISIONS_PATH}/{{request_id}}{HUMAN_REVIEW_SUFFIX}"), "request_human_review", Tag::Review)
                .summary("Ask for a person to review a decision")
                .description("The applicant's right to human review, with the decision's receipt: the application joins the officers' queue unless a person has decided it already.")
                .success(200, Content::Json(schemas.of::<HumanReviewResponse>()))
        },
        Operation {
            parameters: vec![request_id.clone(), receipt_header()],
            ..operation(Method::Get, &format!("{DECISIONS_PATH}/{{request_id}}{APPLICANT_SUFFIX}"), "applicant_decision", Tag::Review)
                .summary("The applicant reads back their decision")
                .description("With the decision's receipt: the application as stored, the score as the applicant is shown it, and where its review stands.")
                .success(200, Content::Json(schemas.of::<ApplicantDecision>()))
        },
        Operation {
            parameters: vec![
                query("state", "Only applications in this open state.", json!({ "enum": open_states() })),
                query("requested", "Only those whose applicant asked for a person.", json!({ "type": "boolean" })),
            ]
            .into_iter()
            .chain(paging(REVIEW_PAGES))
            .collect(),
            ..operation(Method::Get, REVIEWS_PATH, "review_queue", Tag::Review)
                .summary("The review queue, oldest first")
                .permission(Permission::Read)
                .success(200, Content::Json(schemas.of::<ReviewPage>()))
        },
        Operation {
            parameters: vec![request_id.clone()],
            ..operation(Method::Get, &format!("{REVIEWS_PATH}/{{request_id}}"), "get_review", Tag::Review)
                .summary("A decision with its review")
                .permission(Permission::Read)
                .success(200, Content::Json(schemas.of::<ReviewCase>()))
        },
        Operation {
            parameters: vec![request_id.clone()],
            body: Some(schemas.of::<DecideRequest>()),
            ..operation(Method::Post, &format!("{REVIEWS_PATH}/{{request_id}}"), "decide", Tag::Review)
                .summary("An officer decides an application")
                .description("Approve, decline or ask for information, with a reason code. Overriding the model low needs a second officer's approval.")
                .permission(Permission::Decide)
                .success(200, Content::Json(schemas.of::<ReviewCase>()))
        },
        Operation {
            parameters: vec![request_id.clone()],
            body: Some(schemas.of::<ApprovalRequest>()),
            ..operation(Method::Post, &format!("{REVIEWS_PATH}/{{request_id}}{APPROVAL_SUFFIX}"), "approve", Tag::Review)
                .summary("A second officer approves or rejects an override")
                .permission(Permission::Approve)
                .success(200, Content::Json(schemas.of::<ReviewCase>()))
        },
        Operation {
            parameters: period.clone(),
            ..operation(Method::Get, OVERRIDES_REPORT_PATH, "overrides_report", Tag::Review)
                .summary("Overrides by officer and reason")
                .permission(Permission::Report)
                .success(200, Content::Json(schemas.of::<OverrideReport>()))
        },
        Operation {
            parameters: vec![
                query("window", "The KPI view.", json!({ "enum": [View::FiveMinutes.as_str(), View::OneHour.as_str(), View::OneDay.as_str()], "default": View::FiveMinutes.as_str() })),
                branch(),
            ],
            ..operation(Method::Get, KPIS_PATH, "kpis", Tag::Monitoring)
                .summary("Live KPIs")
                .description("From the edge's cache when fresh; a stale answer says so and is refreshed after it goes out.")
                .permission(Permission::Read)
                .success(200, Content::Json(schemas.of::<KpiResponse>()))
        },
        Operation {
            parameters: paging(WINDOW_PAGES),
            ..operation(Method::Get, KPI_WINDOWS_PATH, "kpi_windows", Tag::Monitoring)
                .summary("Closed count windows, newest first")
                .permission(Permission::Read)
                .success(200, Content::Json(schemas.of::<CountWindowList>()))
        },
        Operation {
            parameters: vec![branch()],
            ..operation(Method::Get, DRIFT_PATH, "drift", Tag::Monitoring)
                .summary("Drift of the monitored fields")
                .description("PSI per field for each hour of the last 24 h and for their merge.")
                .permission(Permission::Read)
                .success(200, Content::Json(schemas.of::<DriftReport>()))
        },
        Operation {
            parameters: decision_filters
                .iter()
                .cloned()
                .chain(paging(DECISION_PAGES))
                .collect(),
            ..operation(Method::Get, DECISIONS_PATH, "list_decisions", Tag::Monitoring)
                .summary("Stored decisions, newest first")
                .permission(Permission::Read)
                .success(200, Content::Json(schemas.of::<DecisionPage>()))
        },
        Operation {
            parameters: vec![request_id.clone()],
            ..operation(Method::Get, &format!("{DECISIONS_PATH}/{{request_id}}"), "get_decision", Tag::Monitoring)
                .summary("One stored decision")
                .permission(Permission::Read)
                .success(200, Content::Json(schemas.of::<DecisionRecord>()))
        },
        Operation {
            parameters: decision_filters,
            ..operation(Method::Get, EXPORT_DECISIONS_PATH, "export_decisions", Tag::Monitoring)
                .summary("Decisions with their reviews, as CSV")
                .description("Streams every matching decision; the export is written to the audit trail.")
                .permission(Permission::Export)
                .success(200, Content::Text(CSV_MEDIA_TYPE))
        },
        Operation {
            body: Some(envelope(
                "outcomes",
                MAX_OUTCOMES,
                object(
                    json!({
                        "request_id": { "type": "string", "format": "uuid" },
                        "status": schemas.of::<LoanStatus>(),
                        "observed_at": { "type": "string", "description": "RFC 3339, or a date (YYYY-MM-DD)." },
                    }),
                    &["request_id", "status", "observed_at"],
                ),
            )),
            ..operation(Method::Post, OUTCOMES_PATH, "record_outcomes", Tag::Outcomes)
                .summary("Record loan outcomes")
                .description("An outcome replaces an earlier one of the same loan only when observed later.")
                .permission(Permission::RecordOutcomes)
                .success(200, Content::Json(schemas.of::<OutcomesAnswer>()))
        },
        Operation {
            parameters: period
                .iter()
                .cloned()
                .chain([query("vintage", "Group by month of decision.", json!({ "enum": ["month"] }))])
                .collect(),
            ..operation(Method::Get, PERFORMANCE_PATH, "performance", Tag::Outcomes)
                .summary("Back-testing against observed outcomes")
                .permission(Permission::Read)
                .success(200, Content::Json(schemas.of::<PerformanceReport>()))
        },
        Operation {
            parameters: period.clone(),
            ..operation(Method::Get, FAIRNESS_PATH, "fairness", Tag::Outcomes)
                .summary("Approval and error rates by group")
                .permission(Permission::Read)
                .success(200, Content::Json(schemas.of::<FairnessReport>()))
        },
        Operation {
            parameters: period,
            ..operation(Method::Get, CHALLENGER_PATH, "challenger", Tag::Outcomes)
                .summary("The champion against the shadow challenger")
                .permission(Permission::Read)
                .success(200, Content::Json(schemas.of::<ChallengerReport>()))
        },
        Operation {
            body: Some(object(
                json!({
                    "last": { "type": "integer", "minimum": 1, "maximum": MAX_SIMULATED, "description": "How many of the most recent stored applications." },
                    "branch": { "type": "string" },
                    "thresholds": schemas.of::<Thresholds>(),
                    "policy": schemas.of::<PolicyChoice>(),
                    "model": schemas.of::<ModelChoice>(),
                }),
                &[],
            )),
            ..operation(Method::Post, SIMULATE_PATH, "simulate", Tag::Outcomes)
                .summary("What if: re-decide stored applications by another strategy")
                .permission(Permission::Simulate)
                .success(200, Content::Json(schemas.of::<SimulationReport>()))
        },
        operation(Method::Get, HEALTH_PATH, "health", Tag::Operations)
            .summary("Whether storage and the model answer")
            .success(200, Content::Json(schemas.of::<Health>()))
            .other(503, "Something Valle needs is down.", schemas.of::<Health>()),
        operation(Method::Get, METRICS_PATH, "metrics", Tag::Operations)
            .summary("Prometheus metrics")
            .permission(Permission::Operate)
            .success(200, Content::Text(PROMETHEUS_MEDIA_TYPE)),
        Operation {
            parameters: vec![query("status", "Only dead letters in this state.", schemas.of::<DeadLetterStatus>())]
                .into_iter()
                .chain(paging(DEAD_LETTER_PAGES))
                .collect(),
            ..operation(Method::Get, DEAD_LETTERS_PATH, "dead_letters", Tag::Operations)
                .summary("Events that could not be stored, newest first")
                .permission(Permission::Operate)
                .success(200, Content::Json(schemas.of::<DeadLetterPage>()))
        },
        Operation {
            parameters: vec![path_parameter("id", "The dead letter's id.", json!({ "type": "integer", "minimum": 1 }))],
            ..operation(Method::Post, &format!("{DEAD_LETTERS_PATH}/{{id}}/replay"), "replay_dead_letter", Tag::Operations)
                .summary("Replay a dead letter")
                .description("Scores the stored event again, exactly once by its event id, and writes the replay to the audit trail.")
                .permission(Permission::Operate)
                .success(200, Content::Json(schemas.of::<ReplayResponse>()))
        },
        Operation {
            parameters: paging(AUDIT_PAGES),
            ..operation(Method::Get, AUDIT_PATH, "audit", Tag::Operations)
                .summary("The audit trail, newest first")
                .permission(Permission::Audit)
                .success(200, Content::Json(schemas.of::<AuditPage>()))
        },
        operation(Method::Get, AUDIT_VERIFY_PATH, "verify_audit", Tag::Operations)
            .summary("Check the audit trail's hash chain")
            .description("Names the first broken link, if any.")
            .permission(Permission::Audit)
            .success(200, Content::Json(schemas.of::<VerifyReport>())),
        operation(Method::Get, OPENAPI_PATH, "openapi", Tag::Operations)
            .summary("This description")
            .description("A static file beside the page; its rendering for people is at `/docs/`.")
            .success(200, Content::Json(json!({ "type": "object" }))),
        operation(Method::Get, ME_PATH, "me", Tag::Account)
            .summary("The signed-in account and what it may do")
            .permission(Permission::Account)
            .success(200, Content::Json(schemas.of::<Me>())),
    ];
    list.extend(super::webhook_operations::operations(schemas));
    list.extend(super::data_protection_operations::operations(schemas));
    list.sort_by_key(|operation| Tag::ALL.iter().position(|tag| *tag == operation.tag));
    list
}

pub(super) fn operation(method: Method, path: &str, id: &'static str, tag: Tag) -> Operation {
    Operation {
        method,
        path: path.to_owned(),
        id,
        tag,
        summary: "",
        description: "",
        permission: None,
        parameters: Vec::new(),
        body: None,
        success: (200, Content::Json(json!({}))),
        other: Vec::new(),
    }
}

impl Operation {
    pub(super) fn summary(self, summary: &'static str) -> Operation {
        Operation { summary, ..self }
    }

    pub(super) fn description(self, description: &'static str) -> Operation {
        Operation {
            description,
            ..self
        }
    }

    pub(super) fn permission(self, permission: Permission) -> Operation {
        Operation {
            permission: Some(permission),
            ..self
        }
    }

    pub(super) fn success(self, status: u16, content: Content) -> Operation {
        Operation {
            success: (status, content),
            ..self
        }
    }

    fn other(mut self, status: u16, description: &'static str, schema: Value) -> Operation {
        self.other.push((status, description, schema));
        self
    }
}

/// An object of exactly these properties, `required` among them.
pub(super) fn object(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// `{key: [item, ...]}` with 1 to `max` items, as every batch body is.
fn envelope(key: &str, max: usize, item: Value) -> Value {
    object(
        json!({ key: { "type": "array", "minItems": 1, "maxItems": max, "items": item } }),
        &[key],
    )
}

/// A body `parse_batch` or `parse_events` reads: the kind's key, with its item limit.
fn batch_envelope(kind: BatchKind, item: Value) -> Value {
    envelope(kind.key(), kind.max_items(), item)
}

fn idempotency_key() -> Value {
    json!({
        "name": REQUEST_ID_HEADER,
        "in": "header",
        "required": false,
        "description": "The request's id (a UUID): repeating it with the same body answers the stored decision; with another body, 422 `E_IDEMPOTENCY_MISMATCH`, which tells nothing of the first.",
        "schema": request_id_schema(),
    })
}

/// The applicant's receipt for the decision the path names.
pub(super) fn receipt_header() -> Value {
    json!({
        "name": crate::records::receipt::RECEIPT_HEADER,
        "in": "header",
        "required": true,
        "description": "The receipt the decision's answer carried (`receipt`). Without the decision's own receipt the answer is the 404 of an unknown id.",
        "schema": { "type": "string", "maxLength": 64 },
    })
}

fn branch() -> Value {
    query(
        "branch",
        "Only this branch.",
        json!({ "type": "string", "minLength": 1, "maxLength": 64 }),
    )
}

/// `from`, `to` and `branch`, which every report reads.
fn period(_schemas: &mut Schemas) -> Vec<Value> {
    let time = json!({ "type": "string", "format": "date-time" });
    vec![
        query("from", "From this time on (RFC 3339).", time.clone()),
        query("to", "Up to this time (RFC 3339); not before `from`.", time),
        branch(),
    ]
}

/// The period and the decision filters of the decision list and its export.
fn decision_filters(schemas: &mut Schemas) -> Vec<Value> {
    let mut filters = period(schemas);
    filters.extend([
        query("band", "Only this risk band.", schemas.of::<Band>()),
        query(
            "decision",
            "Only this model decision.",
            schemas.of::<Decision>(),
        ),
        query("channel", "Only this channel.", schemas.of::<Channel>()),
    ]);
    filters
}

/// `limit` and the cursor of an endpoint's page rules.
pub(super) fn paging(rules: PageRules) -> Vec<Value> {
    vec![
        query(
            "limit",
            "Items per page.",
            json!({ "type": "integer", "minimum": 1, "maximum": rules.max_limit, "default": rules.default_limit }),
        ),
        query(
            CURSOR,
            "The `next_cursor` of the previous page.",
            json!({ "type": "string", "minLength": 1 }),
        ),
    ]
}

fn open_states() -> Vec<Value> {
    [
        ReviewState::Pending,
        ReviewState::InfoRequested,
        ReviewState::AwaitingApproval,
    ]
    .iter()
    .map(|state| json!(state))
    .collect()
}
