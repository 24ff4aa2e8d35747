//! What-if: the last stored applications re-decided under a candidate strategy (other
//! thresholds, with or without the policy rules, by the champion's probability or the shadow
//! challenger's), against the decisions they were given.
//! `POST /api/v1/simulate` (supervisors) answers [`SimulationReport`]; the maths is here so
//! that a test can recompute it from the stored rows on its own.
//!
//! The expected bad rate of a strategy is the mean predicted probability of default over
//! the applications it approves: what the approved book would lose while the model stays
//! calibrated (the performance tab checks that).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::contract::body::{read_object, ObjectBody};
use crate::contract::codes::ErrorCode;
use crate::contract::errors::{FieldError, RequestError};
use crate::contract::i18n::Message;
use crate::decision::model::spec::Thresholds;
use crate::decision::model::{classify, Decision};
use crate::decision::policy::{decide, Policy};
use crate::intake::application::Application;
use crate::intake::branch::is_branch;

/// Most stored applications one simulation re-decides.
pub const MAX_SIMULATED: usize = 10_000;
/// How many when the request does not say.
pub const DEFAULT_SIMULATED: usize = 1_000;
/// Largest request body.
pub const MAX_SIMULATION_BYTES: usize = 4 * 1024;
/// Request ids shown per kind of swap, for officers to open.
pub const SWAP_EXAMPLES: usize = 10;

pub const DECISIONS: [Decision; 3] = [Decision::Approve, Decision::Review, Decision::Decline];

/// Whether the candidate strategy applies the committed policy rules.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum PolicyChoice {
    #[default]
    Committed,
    None,
}

/// Whose probability the candidate strategy decides by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ModelChoice {
    #[default]
    Champion,
    /// The shadow challenger's stored probability; decisions it did not score are left out.
    Challenger,
}

/// A strategy to compare with the decisions as given.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Strategy {
    pub thresholds: Thresholds,
    pub policy: PolicyChoice,
    #[serde(default)]
    pub model: ModelChoice,
}

/// `POST /api/v1/simulate`'s body, checked.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SimulationRequest {
    /// How many of the most recent stored applications.
    pub last: usize,
    /// Only this branch's applications, when given.
    pub branch: Option<String>,
    pub strategy: Strategy,
}

/// One stored application as the simulation reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredDecision {
    pub request_id: String,
    pub application: Application,
    pub probability: f32,
    pub decision: Decision,
    /// The shadow challenger's probability, when it scored the decision.
    pub shadow_probability: Option<f32>,
}

/// Counts and rates of one strategy over the same applications.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct StrategyFigures {
    pub approve: usize,
    pub review: usize,
    pub decline: usize,
    /// Approved over all.
    pub approval_rate: Option<f64>,
    /// Mean predicted probability of default over the approved.
    pub expected_bad_rate: Option<f64>,
}

/// Applications moving from one decision to another.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Swap {
    pub from: Decision,
    pub to: Decision,
    pub count: usize,
    /// The most recent of them, at most [`SWAP_EXAMPLES`].
    pub examples: Vec<String>,
}

/// `200 OK` from `POST /api/v1/simulate`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct SimulationReport {
    /// Applications re-decided.
    pub rows: usize,
    /// Applications read but left out: the strategy's model did not score them.
    #[serde(default)]
    pub skipped: usize,
    pub strategy: Strategy,
    /// The decisions as they were given.
    pub current: StrategyFigures,
    pub candidate: StrategyFigures,
    /// Every pair of different decisions with at least one application, approve → review →
    /// decline order.
    pub swaps: Vec<Swap>,
    pub unchanged: usize,
}

/// The probability the strategy decides by, if its model scored the application.
pub fn strategy_probability(stored: &StoredDecision, strategy: &Strategy) -> Option<f32> {
    match strategy.model {
        ModelChoice::Champion => Some(stored.probability),
        ModelChoice::Challenger => stored.shadow_probability,
    }
}

/// The candidate strategy's decision on one stored application, and the probability it
/// decided by; `None` when its model did not score it.
pub fn redecide(
    stored: &StoredDecision,
    strategy: &Strategy,
    policy: &Policy,
) -> Option<(Decision, f32)> {
    let probability = strategy_probability(stored, strategy)?;
    let (_, model_decision, _) = classify(probability, strategy.thresholds);
    let decision = match strategy.policy {
        PolicyChoice::Committed => decide(model_decision, &policy.evaluate(&stored.application)),
        PolicyChoice::None => model_decision,
    };
    Some((decision, probability))
}

fn index(decision: Decision) -> usize {
    match decision {
        Decision::Approve => 0,
        Decision::Review => 1,
        Decision::Decline => 2,
    }
}

#[derive(Default)]
struct Tally {
    counts: [usize; 3],
    approved_probability: f64,
}

impl Tally {
    fn add(&mut self, decision: Decision, probability: f32) {
        self.counts[index(decision)] += 1;
        if decision == Decision::Approve {
            self.approved_probability += f64::from(probability);
        }
    }

    fn figures(&self) -> StrategyFigures {
        let total: usize = self.counts.iter().sum();
        let approved = self.counts[0];
        StrategyFigures {
            approve: approved,
            review: self.counts[1],
            decline: self.counts[2],
            approval_rate: (total > 0).then(|| approved as f64 / total as f64),
            expected_bad_rate: (approved > 0).then(|| self.approved_probability / approved as f64),
        }
    }
}

/// The report over `stored` (most recent first).
pub fn simulate(
    stored: &[StoredDecision],
    strategy: &Strategy,
    policy: &Policy,
) -> SimulationReport {
    let (mut current, mut candidate) = (Tally::default(), Tally::default());
    let mut swaps: Vec<Swap> = DECISIONS
        .iter()
        .flat_map(|from| DECISIONS.iter().map(move |to| (*from, *to)))
        .filter(|(from, to)| from != to)
        .map(|(from, to)| Swap {
            from,
            to,
            count: 0,
            examples: Vec::new(),
        })
        .collect();
    let (mut unchanged, mut skipped, mut rows) = (0, 0, 0);
    for row in stored {
        let Some((redecided, probability)) = redecide(row, strategy, policy) else {
            skipped += 1;
            continue;
        };
        rows += 1;
        current.add(row.decision, row.probability);
        candidate.add(redecided, probability);
        if redecided == row.decision {
            unchanged += 1;
            continue;
        }
        if let Some(swap) = swaps
            .iter_mut()
            .find(|swap| swap.from == row.decision && swap.to == redecided)
        {
            swap.count += 1;
            if swap.examples.len() < SWAP_EXAMPLES {
                swap.examples.push(row.request_id.clone());
            }
        }
    }
    swaps.retain(|swap| swap.count > 0);
    SimulationReport {
        rows,
        skipped,
        strategy: *strategy,
        current: current.figures(),
        candidate: candidate.figures(),
        swaps,
        unchanged,
    }
}

/// `{"last"?: 1..=10000, "branch"?, "thresholds"?: {"review", "decline"}, "policy"?:
/// "committed" | "none"}`; thresholds default to the model's, `last` to
/// [`DEFAULT_SIMULATED`], every branch. Every problem is reported at once, on its field.
pub fn parse_simulation(body: &[u8], model: Thresholds) -> Result<SimulationRequest, RequestError> {
    let ObjectBody { object, mut errors } = read_object(
        body,
        MAX_SIMULATION_BYTES,
        &["last", "branch", "thresholds", "policy", "model"],
    )?;
    let last = match object.get("last") {
        None | Some(Value::Null) => Some(DEFAULT_SIMULATED),
        Some(value) => match value.as_u64() {
            Some(n) if (1..=MAX_SIMULATED as u64).contains(&n) => Some(n as usize),
            _ => {
                errors.push(FieldError::new(
                    "last",
                    ErrorCode::Range,
                    Message::new(
                        format!("Debe ser un número entero de 1 a {MAX_SIMULATED}."),
                        format!("Must be a whole number from 1 to {MAX_SIMULATED}."),
                    ),
                ));
                None
            }
        },
    };
    let branch = match object.get("branch") {
        None | Some(Value::Null) => Some(None),
        Some(Value::String(name)) if is_branch(name) => Some(Some(name.clone())),
        Some(_) => {
            errors.push(FieldError::new(
                "branch",
                ErrorCode::Format,
                Message::new(
                    "La sucursal debe tener de 1 a 64 letras, cifras, espacios, '.', '_' o '-'.",
                    "The branch must be 1 to 64 letters, digits, spaces, '.', '_' or '-'.",
                ),
            ));
            None
        }
    };
    let thresholds = match object.get("thresholds") {
        None | Some(Value::Null) => Some(model),
        Some(Value::Object(given)) => {
            let cut = |name: &str, errors: &mut Vec<FieldError>| {
                let field = format!("thresholds.{name}");
                match given.get(name).and_then(Value::as_f64) {
                    Some(cut) if cut > 0.0 && cut < 1.0 => Some(cut as f32),
                    _ => {
                        errors.push(FieldError::new(
                            &field,
                            ErrorCode::Range,
                            Message::new(
                                "Debe ser una probabilidad entre 0 y 1 (sin incluirlos).",
                                "Must be a probability between 0 and 1 (exclusive).",
                            ),
                        ));
                        None
                    }
                }
            };
            for key in given.keys() {
                if !["review", "decline"].contains(&key.as_str()) {
                    errors.push(FieldError::unknown(&format!("thresholds.{key}")));
                }
            }
            let (review, decline) = (cut("review", &mut errors), cut("decline", &mut errors));
            match (review, decline) {
                (Some(review), Some(decline)) if review <= decline => {
                    Some(Thresholds { review, decline })
                }
                (Some(_), Some(_)) => {
                    errors.push(FieldError::new(
                        "thresholds",
                        ErrorCode::Cross,
                        Message::new(
                            "El umbral de revisión no puede superar el de denegación.",
                            "The review threshold cannot exceed the decline threshold.",
                        ),
                    ));
                    None
                }
                _ => None,
            }
        }
        Some(_) => {
            errors.push(FieldError::new(
                "thresholds",
                ErrorCode::Type,
                Message::new("Debe ser un objeto.", "Must be an object."),
            ));
            None
        }
    };
    let policy = choice(
        object.get("policy"),
        "policy",
        [
            ("committed", PolicyChoice::Committed),
            ("none", PolicyChoice::None),
        ],
        &mut errors,
    );
    let model = choice(
        object.get("model"),
        "model",
        [
            ("champion", ModelChoice::Champion),
            ("challenger", ModelChoice::Challenger),
        ],
        &mut errors,
    );
    match (last, branch, thresholds, policy, model) {
        (Some(last), Some(branch), Some(thresholds), Some(policy), Some(model))
            if errors.is_empty() =>
        {
            Ok(SimulationRequest {
                last,
                branch,
                strategy: Strategy {
                    thresholds,
                    policy,
                    model,
                },
            })
        }
        _ => Err(RequestError::Invalid(errors)),
    }
}

/// A field that names one of two choices; absent or null is the first, the default.
fn choice<T: Copy>(
    value: Option<&Value>,
    key: &'static str,
    [(default_name, default), (other_name, other)]: [(&str, T); 2],
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    match value {
        None | Some(Value::Null) => Some(default),
        Some(Value::String(text)) if text == default_name => Some(default),
        Some(Value::String(text)) if text == other_name => Some(other),
        Some(_) => {
            errors.push(FieldError::new(
                key,
                ErrorCode::Enum,
                Message::new(
                    format!("Debe ser {default_name} o {other_name}."),
                    format!("Must be {default_name} or {other_name}."),
                ),
            ));
            None
        }
    }
}

#[cfg(test)]
mod tests;
