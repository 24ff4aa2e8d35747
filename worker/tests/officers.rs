//! The officers' routes on the host: the token, decisions with a cursor, dead-letter
//! replay, the KPI cache, drift and `/metrics`.

mod support;

use serde_json::Value;
use valle_shared::api::{KpiResponse, ScoreResponse};
use valle_shared::contract::codes::ErrorCode;
use valle_shared::contract::ops::RateLimit;
use valle_shared::contract::query::CURSOR;
use valle_shared::records::decisions::DeadLetterStatus;
use valle_worker::http::RequestHead;
use valle_worker::memory::block_on;
use valle_worker::store::DeadLetterStore;

use support::{counted, event, Harness, TOKEN, VALID};

#[test]
fn officer_routes_need_the_token() {
    let harness = Harness::new(RateLimit::default());
    for target in [
        "/api/v1/decisions",
        "/api/v1/decisions/x",
        "/api/v1/dead-letters",
        "/api/v1/kpis",
        "/api/v1/kpis/windows",
        "/api/v1/drift",
        "/metrics",
    ] {
        for auth in [
            None,
            Some("Bearer wrong"),
            Some("Basic b2ZmaWNlcg=="),
            Some("Bearer officer-secre"),
        ] {
            let mut head = RequestHead::new("GET", target);
            if let Some(auth) = auth {
                head = head.with_header("authorization", auth);
            }
            let response = harness.send(head, "");
            assert_eq!(response.status, 401, "{target} {auth:?}");
            assert_eq!(
                response.header("www-authenticate"),
                Some("Bearer realm=\"valle\"")
            );
        }
    }
    let post = RequestHead::new("POST", "/api/v1/dead-letters/1/replay");
    assert_eq!(harness.send(post, "").status, 401);
    assert_eq!(harness.officer("/api/v1/kpis").0, 200);
    assert_eq!(harness.officer("/api/v1/decisions/missing").0, 404);
}

#[test]
fn kpis_are_cached_then_served_stale_while_refreshing() {
    let harness = Harness::new(RateLimit::default());
    harness.score("k-1");
    let (status, first) = harness.officer("/api/v1/kpis?window=5m");
    assert_eq!(status, 200);
    let first: KpiResponse = serde_json::from_value(first).expect("kpis");
    assert_eq!((first.stale, first.view.summary.decisions), (false, 1));
    assert_eq!(first.cache_key, "kpis|window=5m|branch=*");
    harness.score("k-2");
    // Within the TTL: the cached view, still one decision.
    let (_, cached) = harness.officer("/api/v1/kpis?window=5m");
    let cached: KpiResponse = serde_json::from_value(cached).expect("kpis");
    assert_eq!(
        (
            cached.stale,
            cached.view.summary.decisions,
            cached.cache.hits
        ),
        (false, 1, 1)
    );
    // The KPI object counts k-2 at its next alarm (its poke came too soon after k-1's).
    counted(&harness.backend);
    // Past the TTL: the stale view, marked, and a refresh behind it.
    harness.advance(1_500);
    let (_, stale) = harness.officer("/api/v1/kpis?window=5m");
    let stale: KpiResponse = serde_json::from_value(stale).expect("kpis");
    assert_eq!((stale.stale, stale.view.summary.decisions), (true, 1));
    let (_, fresh) = harness.officer("/api/v1/kpis?window=5m");
    let fresh: KpiResponse = serde_json::from_value(fresh).expect("kpis");
    assert_eq!((fresh.stale, fresh.view.summary.decisions), (false, 2));
    let (status, bad) = harness.officer("/api/v1/kpis?window=7m&branch=%20Norte&x=1");
    assert_eq!(status, 400);
    let fields: Vec<&str> = bad["error"]["fields"]
        .as_array()
        .map(|f| f.iter().filter_map(|e| e["field"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(fields, ["window", "branch", "x"]);
}

#[test]
fn a_dead_letter_replayed_with_a_corrected_application_becomes_a_decision() {
    let harness = Harness::new(RateLimit::default());
    let invalid = event(7, r#"{"age":17}"#);
    let deliveries = [valle_worker::pipeline::Delivery {
        body: serde_json::to_value(&invalid).expect("json"),
        sent_at_ms: 0,
    }];
    let outcomes = block_on(valle_worker::pipeline::consume_events(
        &harness.backend,
        support::model(),
        &deliveries,
        &|| 0.0,
    ));
    assert!(outcomes.iter().all(Result::is_ok));
    let replay = |body: &str| {
        let head = RequestHead::new("POST", "/api/v1/dead-letters/1/replay")
            .with_header("authorization", &format!("Bearer {TOKEN}"))
            .with_header("content-type", "application/json");
        harness.send(head, body)
    };
    // Replaying as it was fails again, with the field errors, and stays open.
    let again = replay("");
    assert_eq!(again.status, 400);
    let letter = block_on(harness.backend.get_dead_letter(1))
        .expect("get")
        .expect("letter");
    assert_eq!(
        (letter.status, letter.attempts),
        (DeadLetterStatus::Open, 2)
    );
    assert_eq!(letter.latest_payload, None, "the same application again");
    // A correction that fails too is kept beside the original, which stays as it came.
    let still_wrong = VALID.replace(r#""age":30"#, r#""age":16"#);
    assert_eq!(
        replay(&format!(r#"{{"application":{still_wrong}}}"#)).status,
        400
    );
    let letter = block_on(harness.backend.get_dead_letter(1))
        .expect("get")
        .expect("letter");
    assert_eq!(letter.payload, invalid);
    let latest = letter.latest_payload.expect("the failed correction");
    assert!(
        latest.application.contains(r#""age":16"#),
        "{}",
        latest.application
    );
    let fixed = replay(&format!(r#"{{"application":{VALID}}}"#));
    assert_eq!(
        fixed.status,
        200,
        "{}",
        String::from_utf8_lossy(&fixed.body)
    );
    let letter = block_on(harness.backend.get_dead_letter(1))
        .expect("get")
        .expect("letter");
    assert_eq!(letter.status, DeadLetterStatus::Replayed);
    assert!(harness.backend.d1.decision(&invalid.event_id).is_some());
    assert_eq!(
        replay("").status,
        200,
        "a second replay answers the stored decision"
    );
    assert_eq!(harness.backend.d1.decision_count(), 1);
    let (status, _) = harness.officer("/api/v1/dead-letters/1/replay");
    assert_eq!(status, 405);
    // The failure and the decision are each counted once.
    let totals = counted(&harness.backend).core.totals;
    assert_eq!((totals.decisions, totals.errors()), (1, 1));
}

#[test]
fn decisions_are_listed_newest_first_with_a_cursor() {
    let harness = Harness::new(RateLimit::default());
    for i in 0..5 {
        harness.advance(10);
        let response = harness.score(&format!("list-{i}"));
        let answer: ScoreResponse = serde_json::from_slice(&response.body).expect("score");
        assert!(!answer.replayed);
    }
    let (status, page) = harness.officer("/api/v1/decisions?limit=2&branch=principal");
    assert_eq!(status, 200);
    let ids = |page: &Value| -> Vec<String> {
        page["decisions"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter_map(|r| r["request_id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    assert_eq!(ids(&page), ["list-4", "list-3"]);
    let cursor = page["next_cursor"].as_str().expect("cursor").to_owned();
    let (_, next) = harness.officer(&format!(
        "/api/v1/decisions?limit=2&branch=principal&cursor={cursor}"
    ));
    assert_eq!(ids(&next), ["list-2", "list-1"]);
    let (status, bad) = harness.officer("/api/v1/decisions?band=negro");
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some(ErrorCode::Query.as_str()))
    );
    let (status, one) = harness.officer("/api/v1/decisions/list-0");
    assert_eq!((status, one["request_id"].as_str()), (200, Some("list-0")));
}

#[test]
fn drift_is_reported_per_field_and_in_the_metrics() {
    let harness = Harness::new(RateLimit {
        limit: 1_000,
        period_s: 10,
    });
    for i in 0..5 {
        assert_eq!(harness.score(&format!("drift-{i}")).status, 200);
    }
    counted(&harness.backend);
    let (status, report) = harness.officer("/api/v1/drift");
    assert_eq!(status, 200, "{report}");
    let report: valle_shared::monitoring::drift::DriftReport =
        serde_json::from_value(report).expect("drift report");
    assert_eq!(report.rolling_24h.decisions, 5);
    assert_eq!(report.rolling_24h.features.len(), 14);
    // Five identical applications are far from training, but too few to alert on.
    assert!(!report.rolling_24h.enough_data);
    assert!(report.rolling_24h.alerts.is_empty());
    assert!(report.rolling_24h.max_psi.is_some_and(|psi| psi > 0.2));
    let (status, other) = harness.officer("/api/v1/drift?branch=sur");
    assert_eq!(status, 200);
    assert_eq!(other["rolling_24h"]["decisions"], 0);
    let (status, bad) = harness.officer("/api/v1/drift?branch=%20x&window=1h");
    assert_eq!(status, 400);
    let codes: Vec<&str> = bad["error"]["fields"]
        .as_array()
        .expect("fields")
        .iter()
        .filter_map(|field| field["code"].as_str())
        .collect();
    assert_eq!(
        codes,
        [ErrorCode::Format.as_str(), ErrorCode::UnknownField.as_str()],
        "{bad}"
    );
    let head = RequestHead::new("GET", "/metrics")
        .with_header("authorization", &format!("Bearer {TOKEN}"));
    let text = String::from_utf8(harness.send(head, "").body).expect("utf-8");
    for line in [
        "valle_drift_decisions{window=\"24h\"} 5",
        "valle_request_duration_seconds_count{channel=\"online\"} 5",
        "valle_kpi_lag_seconds 0",
    ] {
        assert!(text.lines().any(|got| got == line), "{line} in {text}");
    }
    assert!(text.contains("valle_drift_psi{feature=\"income\",window=\"1h\"} "));
    assert!(text
        .lines()
        .any(|line| line.starts_with("valle_kpi_object_rows ")));
}

#[test]
fn every_list_endpoint_pages_by_the_same_rules() {
    let harness = Harness::new(RateLimit {
        limit: 1_000,
        period_s: 10,
    });
    let lists = [
        ("/api/v1/decisions", 500),
        ("/api/v1/dead-letters", 500),
        ("/api/v1/audit", 500),
        ("/api/v1/reviews", 200),
        ("/api/v1/kpis/windows", 1000),
        ("/api/v1/webhooks/dead-letters", 500),
    ];
    for (path, max) in lists {
        let (status, body) = harness.officer(&format!("{path}?limit={max}"));
        assert_eq!(status, 200, "{path}: {body}");
        // Every list names where the next page starts the same way, null after the last.
        assert!(body["next_cursor"].is_null(), "{path}: {body}");
        assert!(
            body.as_object()
                .is_some_and(|answer| answer.contains_key("next_cursor")),
            "{path}: {body}"
        );
        let (status, body) = harness.officer(&format!(
            "{path}?limit={}&{CURSOR}=not%20a%20cursor&nope=1",
            max + 1
        ));
        let fields: Vec<(&str, &str)> = body["error"]["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| {
                (
                    f["field"].as_str().unwrap_or_default(),
                    f["code"].as_str().unwrap_or_default(),
                )
            })
            .collect();
        assert_eq!(
            (status, body["error"]["code"].as_str(), fields),
            (
                400,
                Some(ErrorCode::Query.as_str()),
                vec![
                    ("limit", ErrorCode::Range.as_str()),
                    (CURSOR, ErrorCode::Format.as_str()),
                    ("nope", ErrorCode::UnknownField.as_str()),
                ]
            ),
            "{path}"
        );
    }
}
