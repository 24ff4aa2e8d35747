//! The CSV export of decisions with the officers' final decisions, written a page of rows
//! at a time so the worker streams it without holding the file.

use crate::contract::time::format_rfc3339_ms;
use crate::lending::review::{ReviewCase, ReviewState};

/// Rows read from D1 per page of the export.
pub const EXPORT_PAGE_ROWS: usize = 500;
/// The file name a browser saves the export as.
pub const EXPORT_FILE_NAME: &str = "valle-decisions.csv";
/// The export's media type.
pub const CSV_MEDIA_TYPE: &str = "text/csv; charset=utf-8";

pub const CSV_COLUMNS: [&str; 20] = [
    "request_id",
    "received_at",
    "event_time",
    "branch",
    "channel",
    "applicant_id",
    "probability",
    "band",
    "model_decision",
    "review_state",
    "final_decision",
    "override",
    "reason",
    "note",
    "decided_by",
    "decided_at",
    "approved_by",
    "approved_at",
    "human_review_requested_at",
    "application",
];

fn writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new())
}

fn finish(writer: csv::Writer<Vec<u8>>) -> Vec<u8> {
    // Writing to a Vec cannot fail; an empty chunk keeps the stream going if it ever did.
    writer.into_inner().unwrap_or_default()
}

/// The header line.
pub fn csv_header() -> Vec<u8> {
    let mut writer = writer();
    let _ = writer.write_record(CSV_COLUMNS);
    finish(writer)
}

/// Cells that a spreadsheet would run as a formula are prefixed with `'` (OWASP: CSV
/// injection); notes and ids come from people and integrators.
fn cell(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

fn time(ms: Option<i64>) -> String {
    ms.map(format_rfc3339_ms).unwrap_or_default()
}

/// One page of rows.
pub fn csv_rows(cases: &[ReviewCase]) -> Vec<u8> {
    let mut writer = writer();
    for ReviewCase { decision, review } in cases {
        let record = [
            cell(&decision.request_id),
            format_rfc3339_ms(decision.received_at_ms),
            format_rfc3339_ms(decision.event_time_ms),
            cell(&decision.branch),
            decision.channel.as_str().to_owned(),
            cell(decision.applicant_id.as_deref().unwrap_or_default()),
            format!("{:.6}", decision.score.probability),
            decision.score.band.as_str().to_owned(),
            decision.score.decision.as_str().to_owned(),
            review.state.as_str().to_owned(),
            review
                .final_decision()
                .map(|decision| decision.as_str().to_owned())
                .unwrap_or_default(),
            review.override_kind.as_str().to_owned(),
            review
                .reason
                .map(|r| r.as_str().to_owned())
                .unwrap_or_default(),
            cell(&review.note),
            cell(review.decided_by.as_deref().unwrap_or_default()),
            time(review.decided_at_ms),
            cell(review.approved_by.as_deref().unwrap_or_default()),
            time(
                review
                    .approved_at_ms
                    .filter(|_| review.state == ReviewState::Approved),
            ),
            time(review.human_review_requested_at_ms),
            serde_json::to_string(&decision.application).unwrap_or_default(),
        ];
        let _ = writer.write_record(&record);
    }
    finish(writer)
}
