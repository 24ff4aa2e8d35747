//! What the officers' dashboard shows, as pure functions of Valle's wire types: the KPI
//! cards, state and drift labels, and the API paths its filters make. The components in
//! [`crate::panel`] only render these.

use valle_shared::api::KpiResponse;
use valle_shared::contract::errors::RequestError;
use valle_shared::contract::i18n::format_money;
use valle_shared::contract::paths::{DEAD_LETTERS_PATH, DECISIONS_PATH, DRIFT_PATH, KPIS_PATH};
use valle_shared::contract::query::{path_segment, with_query, CURSOR};
use valle_shared::contract::time::format_rfc3339_ms;
use valle_shared::intake::application::{choice_label, FieldRule};
use valle_shared::monitoring::drift::DriftBand;
use valle_shared::monitoring::kpi::{PerformanceState, View};
use valle_shared::records::decisions::DeadLetterStatus;
use valle_shared::{Application, Field, Lang};

use crate::chrome::ui;

/// Where the signed-in token lives: session storage, so it goes with the tab and never
/// appears in a URL or in local storage.
pub const TOKEN_KEY: &str = "valle-officer-token";

/// How often the dashboard refreshes while the tab is visible.
pub const POLL_MS: u64 = 2_000;

/// Decisions per page of the table.
pub const PAGE_SIZE: usize = 20;

/// "12.3 ms"; "—" when undefined (no decisions yet).
pub fn format_ms(ms: Option<f64>) -> String {
    match ms {
        Some(ms) if ms >= 100.0 => format!("{ms:.0} ms"),
        Some(ms) => format!("{ms:.1} ms"),
        None => "—".to_owned(),
    }
}

/// "97.5 %"; "—" when undefined.
pub fn format_percent(share: Option<f64>) -> String {
    share.map_or_else(|| "—".to_owned(), |share| format!("{:.1} %", share * 100.0))
}

/// "0.42"; "—" when undefined.
pub fn format_ratio(ratio: Option<f64>) -> String {
    ratio.map_or_else(|| "—".to_owned(), |ratio| format!("{ratio:.2}"))
}

/// "2026-11-24 10:41:07 UTC" from epoch milliseconds.
pub fn format_time(ms: i64) -> String {
    let text = format_rfc3339_ms(ms);
    format!("{} {} UTC", &text[..10], &text[11..19])
}

/// "10:41" (UTC), for chart axes.
pub fn format_clock(ms: i64) -> String {
    format_rfc3339_ms(ms)[11..16].to_owned()
}

/// One KPI card: a stable test id, a label and the value as shown.
#[derive(Clone, Debug, PartialEq)]
pub struct Card {
    pub id: &'static str,
    pub label: &'static str,
    pub value: String,
}

/// The cards the dashboard shows for one KPI view, in reading order.
pub fn kpi_cards(response: &KpiResponse, lang: Lang) -> Vec<Card> {
    let view = &response.view;
    let summary = &view.summary;
    let card = |id, es, en, value| Card {
        id,
        label: ui(lang, es, en),
        value,
    };
    vec![
        card(
            "kpi-decisions",
            "Decisiones",
            "Decisions",
            summary.decisions.to_string(),
        ),
        card(
            "kpi-throughput",
            "Ritmo",
            "Throughput",
            format!("{:.2}/s", view.throughput_per_s),
        ),
        card(
            "kpi-p50",
            "Latencia p50 en línea",
            "Online latency p50",
            format_ms(summary.latency_ms.p50),
        ),
        card(
            "kpi-p95",
            "Latencia p95 en línea",
            "Online latency p95",
            format_ms(summary.latency_ms.p95),
        ),
        card(
            "kpi-p99",
            "Latencia p99 en línea",
            "Online latency p99",
            format_ms(summary.latency_ms.p99),
        ),
        card(
            "kpi-success",
            "Éxito",
            "Success rate",
            format_percent(summary.success_rate),
        ),
        card(
            "kpi-risk-ratio",
            "Riesgo alto / bajo",
            "High / low risk",
            format_ratio(summary.default_risk_ratio),
        ),
        card(
            "kpi-confidence",
            "Confianza media",
            "Mean confidence",
            format_percent(summary.mean_confidence),
        ),
        card(
            "kpi-late",
            "Eventos tardíos",
            "Late events",
            view.late_events.to_string(),
        ),
        card(
            "kpi-dead-letters",
            "Cartas muertas abiertas",
            "Open dead letters",
            response
                .dead_letters_open
                .map_or_else(|| "—".to_owned(), |open| open.to_string()),
        ),
    ]
}

pub fn state_text(state: PerformanceState, lang: Lang) -> &'static str {
    match state {
        PerformanceState::Excelente => ui(lang, "Excelente", "Excellent"),
        PerformanceState::Bueno => ui(lang, "Bueno", "Good"),
        PerformanceState::Regular => ui(lang, "Regular", "Fair"),
        PerformanceState::Critico => ui(lang, "Crítico", "Critical"),
    }
}

/// The CSS class (and test value) of a performance state.
pub fn state_class(state: PerformanceState) -> &'static str {
    match state {
        PerformanceState::Excelente => "excelente",
        PerformanceState::Bueno => "bueno",
        PerformanceState::Regular => "regular",
        PerformanceState::Critico => "critico",
    }
}

pub fn drift_text(band: Option<DriftBand>, lang: Lang) -> &'static str {
    match band {
        Some(DriftBand::Stable) => ui(lang, "Estable", "Stable"),
        Some(DriftBand::Moderate) => ui(lang, "Moderada", "Moderate"),
        Some(DriftBand::Significant) => ui(lang, "Significativa", "Significant"),
        None => ui(lang, "Sin datos", "No data"),
    }
}

/// The CSS class (and test value) of a drift band.
pub fn drift_class(band: Option<DriftBand>) -> &'static str {
    band.map_or("none", DriftBand::as_str)
}

/// PSI with three decimals; "—" without data.
pub fn format_psi(psi: Option<f64>) -> String {
    psi.map_or_else(|| "—".to_owned(), |psi| format!("{psi:.3}"))
}

pub fn kpis_path(view: View, branch: &str) -> String {
    with_query(
        KPIS_PATH,
        &[("window", view.as_str()), ("branch", branch.trim())],
    )
}

pub fn drift_path(branch: &str) -> String {
    with_query(DRIFT_PATH, &[("branch", branch.trim())])
}

/// The decisions table's filters, as the officer typed or picked them ("" = any).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DecisionFilters {
    pub branch: String,
    pub band: String,
    pub decision: String,
    pub channel: String,
}

pub fn decisions_path(filters: &DecisionFilters, cursor: Option<&str>) -> String {
    let limit = PAGE_SIZE.to_string();
    with_query(
        DECISIONS_PATH,
        &[
            ("branch", filters.branch.trim()),
            ("band", &filters.band),
            ("decision", &filters.decision),
            ("channel", &filters.channel),
            ("limit", &limit),
            ("cursor", cursor.unwrap_or_default()),
        ],
    )
}

pub fn decision_path(request_id: &str) -> String {
    format!("{DECISIONS_PATH}/{}", path_segment(request_id))
}

pub fn dead_letters_path(status: Option<DeadLetterStatus>, before: Option<i64>) -> String {
    let before = before.map(|id| id.to_string()).unwrap_or_default();
    let status = status.map_or("", DeadLetterStatus::as_str);
    let limit = PAGE_SIZE.to_string();
    with_query(
        DEAD_LETTERS_PATH,
        &[("status", status), ("limit", &limit), (CURSOR, &before)],
    )
}

pub fn replay_path(id: i64) -> String {
    format!("{DEAD_LETTERS_PATH}/{id}/replay")
}

/// Every field of a stored application as label and shown value, in form order.
pub fn application_rows(application: &Application, lang: Lang) -> Vec<(&'static str, String)> {
    Field::ALL
        .into_iter()
        .map(|field| {
            let value = match field.rule() {
                FieldRule::Money { .. } => application
                    .number(field)
                    .map(|value| format_money(value, lang)),
                FieldRule::Integer { .. } => application.number(field).map(|v| format!("{v}")),
                FieldRule::Choice(_) => application
                    .choice(field)
                    .map(|value| choice_label(value, lang).to_owned()),
                FieldRule::Text { .. } => match field.name() {
                    "applicant_id" => application.applicant_id.clone(),
                    "branch" => application.branch.clone(),
                    _ => None,
                },
            };
            (field.label(lang), value.unwrap_or_else(|| "—".to_owned()))
        })
        .collect()
}

/// The replay body: the officer's corrected application, or nothing to replay as it was.
/// Only checks that a correction is JSON, refused as the edge refuses a body that is not;
/// the edge validates it like any application.
pub fn replay_body(correction: &str) -> Result<Option<String>, RequestError> {
    let correction = correction.trim();
    if correction.is_empty() {
        return Ok(None);
    }
    let application: serde_json::Value =
        serde_json::from_str(correction).map_err(|error| RequestError::Malformed {
            detail: format!("correction: {error}"),
        })?;
    Ok(Some(
        serde_json::json!({ "application": application }).to_string(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use valle_shared::monitoring::kpi::{Percentiles, Summary};

    #[test]
    fn numbers_are_formatted_for_people() {
        for (got, want) in [
            (format_ms(Some(12.345)), "12.3 ms"),
            (format_ms(Some(250.4)), "250 ms"),
            (format_ms(None), "—"),
            (format_percent(Some(0.975)), "97.5 %"),
            (format_percent(None), "—"),
            (format_ratio(Some(0.4249)), "0.42"),
            (format_psi(Some(0.24079)), "0.241"),
            (format_psi(None), "—"),
            (format_time(1_764_000_000_000), "2025-11-24 16:00:00 UTC"),
            (format_clock(1_764_000_060_000), "16:01"),
        ] {
            assert_eq!(got, want);
        }
    }

    fn check_path(got: String, want: &str) {
        assert_eq!(got, want);
    }

    #[test]
    fn filters_make_encoded_paths_and_empty_ones_are_left_out() {
        check_path(
            decisions_path(&DecisionFilters::default(), None),
            "/api/v1/decisions?limit=20",
        );
        check_path(
            decisions_path(
                &DecisionFilters {
                    branch: " san josé ".into(),
                    band: "alto".into(),
                    decision: "decline".into(),
                    channel: "offline-sync".into(),
                },
                Some("1764000000000.a&b"),
            ),
            "/api/v1/decisions?branch=san+jos%C3%A9&band=alto&decision=decline&channel=offline-sync&limit=20&cursor=1764000000000.a%26b",
        );
        check_path(decision_path("id/../x"), "/api/v1/decisions/id%2F..%2Fx");
        check_path(
            dead_letters_path(Some(DeadLetterStatus::Open), None),
            "/api/v1/dead-letters?status=open&limit=20",
        );
        check_path(
            dead_letters_path(None, Some(41)),
            "/api/v1/dead-letters?limit=20&cursor=41",
        );
        check_path(replay_path(7), "/api/v1/dead-letters/7/replay");
        check_path(kpis_path(View::OneHour, ""), "/api/v1/kpis?window=1h");
        check_path(
            kpis_path(View::FiveMinutes, "norte"),
            "/api/v1/kpis?window=5m&branch=norte",
        );
        check_path(drift_path(""), "/api/v1/drift");
    }

    #[test]
    fn a_stored_application_is_shown_field_by_field() {
        let application = valle_shared::parse_application(
            br#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846,"branch":"norte"}"#,
        )
        .expect("a valid application");
        let rows = application_rows(&application, Lang::Es);
        assert_eq!(rows.len(), Field::ALL.len());
        let value = |field: Field| {
            rows.iter()
                .find(|(label, _)| *label == field.label(Lang::Es))
                .map(|(_, value)| value.clone())
                .unwrap_or_default()
        };
        assert_eq!(value(Field::Age), "30");
        assert_eq!(value(Field::Home), choice_label("rent", Lang::Es));
        assert_eq!(value(Field::Income), format_money(129.0, Lang::Es));
        assert_eq!(value(Field::Branch), "norte");
        assert_eq!(value(Field::ApplicantId), "—");
    }

    #[test]
    fn a_replay_sends_the_correction_or_nothing() {
        assert_eq!(replay_body("  "), Ok(None));
        assert_eq!(
            replay_body(r#"{"age": 30}"#),
            Ok(Some(r#"{"application":{"age":30}}"#.to_owned()))
        );
        assert_eq!(
            replay_body("{age: 30").map_err(|error| error.code()),
            Err(valle_shared::contract::codes::ErrorCode::Json)
        );
    }

    #[test]
    fn cards_show_every_kpi_and_dashes_when_undefined() {
        let mut response: KpiResponse = serde_json::from_value(serde_json::json!({
            "view": {
                "window": "5m", "branch": null, "from_ms": 0, "to_ms": 300000,
                "throughput_per_s": 0.5, "series": [], "late_events": 3, "revisions": 0,
                "watermark_ms": null, "state": "BUENO", "alerts": [],
                "summary": serde_json::to_value(Summary::default()).unwrap_or_default(),
            },
            "stale": false, "cache_key": "k", "computed_at_ms": 0,
            "cache": {"hits": 0, "stale_hits": 0, "misses": 1, "hit_rate": null},
            "dead_letters_open": 2,
        }))
        .expect("a KPI answer");
        let ids = |cards: &[Card]| cards.iter().map(|c| c.id).collect::<Vec<_>>();
        let cards = kpi_cards(&response, Lang::Es);
        assert_eq!(
            ids(&cards),
            [
                "kpi-decisions",
                "kpi-throughput",
                "kpi-p50",
                "kpi-p95",
                "kpi-p99",
                "kpi-success",
                "kpi-risk-ratio",
                "kpi-confidence",
                "kpi-late",
                "kpi-dead-letters"
            ]
        );
        let value = |cards: &[Card], id| {
            cards
                .iter()
                .find(|c| c.id == id)
                .map(|c| c.value.clone())
                .unwrap_or_default()
        };
        assert_eq!(value(&cards, "kpi-p99"), "—");
        assert_eq!(value(&cards, "kpi-late"), "3");
        assert_eq!(value(&cards, "kpi-dead-letters"), "2");
        assert_eq!(value(&cards, "kpi-throughput"), "0.50/s");

        response.view.summary.decisions = 40;
        response.view.summary.latency_ms = Percentiles {
            p50: Some(9.0),
            p95: Some(20.0),
            p99: Some(31.25),
            max: Some(40.0),
            ..Percentiles::default()
        };
        response.view.summary.success_rate = Some(0.95);
        let cards = kpi_cards(&response, Lang::En);
        assert_eq!(cards[0].label, "Decisions");
        assert_eq!(value(&cards, "kpi-decisions"), "40");
        assert_eq!(value(&cards, "kpi-p99"), "31.2 ms");
        assert_eq!(value(&cards, "kpi-success"), "95.0 %");
    }

    #[test]
    fn states_and_drift_bands_have_labels_and_classes() {
        for state in PerformanceState::ALL {
            assert!(!state_text(state, Lang::Es).is_empty());
            assert_eq!(
                state_class(state),
                serde_json::to_value(state)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_lowercase))
                    .unwrap_or_default()
            );
        }
        assert_eq!(drift_class(Some(DriftBand::Significant)), "significant");
        assert_eq!(drift_class(None), "none");
        assert_eq!(drift_text(Some(DriftBand::Moderate), Lang::En), "Moderate");
    }
}
