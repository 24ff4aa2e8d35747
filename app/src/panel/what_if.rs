//! The what-if form's body and labels, as pure functions: what the supervisor typed
//! becomes the body of `POST /api/v1/simulate`; the edge checks it and names bad fields.

use serde_json::{json, Value};
use valle_shared::decision::model::spec::Thresholds;
use valle_shared::decision::model::Decision;
use valle_shared::decision::simulation::DEFAULT_SIMULATED;

/// What the what-if form holds, as typed.
#[derive(Clone, Debug, PartialEq)]
pub struct WhatIf {
    /// Cut-offs in percent, `20` or `20,5`.
    pub review_percent: String,
    pub decline_percent: String,
    pub rules: bool,
    /// Decide by the shadow challenger's probability instead of the champion's.
    pub challenger: bool,
    pub last: String,
    pub branch: String,
}

impl WhatIf {
    /// The model's own strategy over the default number of applications.
    pub fn from_model(thresholds: Thresholds) -> WhatIf {
        let percent = |cut: f32| format!("{}", (f64::from(cut) * 1000.0).round() / 10.0);
        WhatIf {
            review_percent: percent(thresholds.review),
            decline_percent: percent(thresholds.decline),
            rules: true,
            challenger: false,
            last: DEFAULT_SIMULATED.to_string(),
            branch: String::new(),
        }
    }
}

/// A typed number (comma or point) as JSON, or the text itself, which the edge refuses
/// on its field.
fn number(text: &str, scale: f64) -> Value {
    let trimmed = text.trim();
    match trimmed.replace(',', ".").parse::<f64>() {
        Ok(value) if value.is_finite() => json!(value / scale),
        _ => json!(trimmed),
    }
}

pub fn simulation_body(form: &WhatIf) -> String {
    let last = form
        .last
        .trim()
        .parse::<u64>()
        .map_or_else(|_| json!(form.last.trim()), |n| json!(n));
    let mut body = json!({
        "last": last,
        "thresholds": {
            "review": number(&form.review_percent, 100.0),
            "decline": number(&form.decline_percent, 100.0),
        },
        "policy": if form.rules { "committed" } else { "none" },
        "model": if form.challenger { "challenger" } else { "champion" },
    });
    let branch = form.branch.trim();
    if !branch.is_empty() {
        body["branch"] = json!(branch);
    }
    body.to_string()
}

/// "approve → review": a swap's row label.
pub fn swap_label(from: Decision, to: Decision, text: impl Fn(Decision) -> &'static str) -> String {
    format!("{} → {}", text(from), text(to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_the_simulation_body() {
        let form = WhatIf::from_model(Thresholds {
            review: 0.2,
            decline: 0.5,
        });
        assert_eq!(
            (form.review_percent.as_str(), form.decline_percent.as_str()),
            ("20", "50")
        );
        let body: Value = serde_json::from_str(&simulation_body(&form)).expect("json");
        assert_eq!(
            body,
            json!({"last": 1000, "thresholds": {"review": 0.2, "decline": 0.5}, "policy": "committed", "model": "champion"})
        );
        let typed = WhatIf {
            review_percent: "12,5".into(),
            decline_percent: "x".into(),
            rules: false,
            challenger: true,
            last: " 10000 ".into(),
            branch: " Norte ".into(),
        };
        let body: Value = serde_json::from_str(&simulation_body(&typed)).expect("json");
        assert_eq!(body["thresholds"]["review"], 0.125);
        // What does not parse is sent as typed, for the edge to refuse on its field.
        assert_eq!(body["thresholds"]["decline"], "x");
        assert_eq!(
            (body["last"].as_u64(), body["policy"].as_str()),
            (Some(10_000), Some("none"))
        );
        assert_eq!(body["branch"], "Norte");
        assert_eq!(body["model"], "challenger");
        let label = swap_label(Decision::Review, Decision::Approve, |d| d.as_str());
        assert_eq!(label, "review → approve");
    }
}
