//! What the lending sections show (the review queue, decisions and approvals, the audit
//! trail, the overrides report and the export), as pure functions: paths, bodies and
//! labels. The components only render them.

use valle_shared::contract::paths::{
    APPROVAL_SUFFIX, AUDIT_PATH, AUDIT_VERIFY_PATH, EXPORT_DECISIONS_PATH, OVERRIDES_REPORT_PATH,
    REVIEWS_PATH,
};
use valle_shared::contract::query::{path_segment, with_query, CURSOR};
use valle_shared::lending::review::{ApprovalAction, ReviewAction, ReviewState};
use valle_shared::Lang;

/// Cases per page of the queue.
pub const QUEUE_PAGE: usize = 25;
/// Audit rows per page.
pub const AUDIT_PAGE: usize = 50;

/// The queue filter that lists only applicants' requests for a person's review.
pub const REQUESTED_FILTER: &str = "requested";

/// The queue's path: every open state (`""`), one, or the applicants' requests.
pub fn queue_path(state: &str, after: Option<u64>) -> String {
    let limit = QUEUE_PAGE.to_string();
    let after = after.map(|after| after.to_string()).unwrap_or_default();
    let (state, requested) = match state {
        REQUESTED_FILTER => ("", "true"),
        state => (state, ""),
    };
    with_query(
        REVIEWS_PATH,
        &[
            ("limit", &limit),
            ("state", state),
            ("requested", requested),
            (CURSOR, &after),
        ],
    )
}

pub fn review_path(request_id: &str) -> String {
    format!("{REVIEWS_PATH}/{}", path_segment(request_id))
}

pub fn approval_path(request_id: &str) -> String {
    format!("{}{APPROVAL_SUFFIX}", review_path(request_id))
}

pub fn audit_path(before: Option<u64>) -> String {
    match before {
        Some(before) => format!("{AUDIT_PATH}?limit={AUDIT_PAGE}&{CURSOR}={before}"),
        None => format!("{AUDIT_PATH}?limit={AUDIT_PAGE}"),
    }
}

pub fn verify_path() -> &'static str {
    AUDIT_VERIFY_PATH
}

/// `from` and `to` of a report or an export from two `<input type="date">` values (either
/// may be empty, and is then left out); `to` includes its whole day.
pub fn range_pairs(from: &str, to: &str) -> [(&'static str, String); 2] {
    let at = |date: &str, time: &str| {
        if date.is_empty() {
            String::new()
        } else {
            format!("{date}T{time}Z")
        }
    };
    [
        ("from", at(from, "00:00:00")),
        ("to", at(to, "23:59:59.999")),
    ]
}

/// `path` with the range and `extra` pairs.
pub fn range_path(path: &str, from: &str, to: &str, extra: &[(&str, &str)]) -> String {
    let range = range_pairs(from, to);
    let pairs: Vec<(&str, &str)> = range
        .iter()
        .map(|(key, value)| (*key, value.as_str()))
        .chain(extra.iter().copied())
        .collect();
    with_query(path, &pairs)
}

pub fn overrides_path(from: &str, to: &str) -> String {
    range_path(OVERRIDES_REPORT_PATH, from, to, &[])
}

pub fn export_path(from: &str, to: &str) -> String {
    range_path(EXPORT_DECISIONS_PATH, from, to, &[])
}

/// The body of an officer's decision.
pub fn decide_body(action: ReviewAction, reason: &str, note: &str) -> String {
    serde_json::json!({ "action": action, "reason": reason, "note": note }).to_string()
}

/// The body of a supervisor's answer to a low-side approval.
pub fn approval_body(action: ApprovalAction, note: &str) -> String {
    serde_json::json!({ "action": action, "note": note }).to_string()
}

/// The state as the queue shows it, with a class for its badge.
pub fn state_badge(state: ReviewState, lang: Lang) -> (String, &'static str) {
    let class = match state {
        ReviewState::Approved => "badge ok",
        ReviewState::Declined => "badge bad",
        ReviewState::AwaitingApproval => "badge warn",
        _ => "badge",
    };
    (state.label().get(lang).to_owned(), class)
}

/// "12 / 40 (30.0 %)".
pub fn rate_text(part: u64, whole: u64, rate: f64) -> String {
    format!("{part} / {whole} ({:.1} %)", rate * 100.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_bodies() {
        assert_eq!(queue_path("", None), "/api/v1/reviews?limit=25");
        assert_eq!(
            queue_path("awaiting_approval", Some(9)),
            "/api/v1/reviews?limit=25&state=awaiting_approval&cursor=9"
        );
        assert_eq!(
            queue_path(REQUESTED_FILTER, None),
            "/api/v1/reviews?limit=25&requested=true"
        );
        assert_eq!(approval_path("a b"), "/api/v1/reviews/a%20b/approval");
        assert_eq!(audit_path(Some(51)), "/api/v1/audit?limit=50&cursor=51");
        assert_eq!(
            export_path("2026-11-01", "2026-11-30"),
            "/api/v1/exports/decisions.csv?from=2026-11-01T00%3A00%3A00Z&to=2026-11-30T23%3A59%3A59.999Z"
        );
        assert_eq!(overrides_path("", ""), "/api/v1/reports/overrides");
        let body: serde_json::Value = serde_json::from_str(&decide_body(
            ReviewAction::RequestInfo,
            "missing_documents",
            "x",
        ))
        .expect("json");
        assert_eq!(body["action"], "request_info");
        let body: serde_json::Value =
            serde_json::from_str(&approval_body(ApprovalAction::Reject, "")).expect("json");
        assert_eq!(body["action"], "reject");
        assert_eq!(rate_text(3, 12, 0.25), "3 / 12 (25.0 %)");
        assert_eq!(
            state_badge(ReviewState::AwaitingApproval, Lang::En),
            ("Awaiting approval".to_owned(), "badge warn")
        );
    }
}
