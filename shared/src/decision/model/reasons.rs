//! Reason codes, computed without looking inside the model: each field in turn is set to the
//! typical training applicant's value, and the drop in probability is that field's push on
//! the risk. The four largest pushes up are the reasons an adverse-action notice gives.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::contract::i18n::{format_money, Lang, Message};
use crate::decision::model::spec::BaselineValue;
use crate::decision::model::ModelError;
use crate::intake::application::{choice_label, Application, Field, FieldRule};

/// How many reasons a score carries at most.
pub const MAX_REASONS: usize = 4;

/// One factor that raised the applicant's risk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Reason {
    /// Stable: `R_<FIELD>_HIGH` / `R_<FIELD>_LOW` for numbers, `R_<FIELD>_<VALUE>` for choices.
    pub code: String,
    pub field: String,
    /// Probability points this field adds against the typical applicant's value.
    pub impact: f32,
    pub message: Message,
}

#[derive(Clone, Debug, PartialEq)]
enum Typical {
    Number(f64),
    Choice(String),
}

/// The training baseline per field, resolved against the application's fields.
#[derive(Clone, Debug, PartialEq)]
pub struct ReasonFinder {
    typical: Vec<(Field, Typical)>,
}

impl ReasonFinder {
    /// Needs a baseline for every numeric and choice field of the application.
    pub fn new(baseline: &BTreeMap<String, BaselineValue>) -> Result<ReasonFinder, ModelError> {
        let mut typical = Vec::new();
        for field in Field::ALL {
            let value = baseline.get(field.name());
            let resolved = match (field.rule(), value) {
                (FieldRule::Text { .. }, _) => continue,
                (
                    FieldRule::Integer { .. } | FieldRule::Money { .. },
                    Some(BaselineValue::Number(n)),
                ) => Typical::Number(*n),
                (FieldRule::Choice(values), Some(BaselineValue::Choice(choice)))
                    if values.contains(&choice.as_str()) =>
                {
                    Typical::Choice(choice.clone())
                }
                _ => {
                    return Err(ModelError::Spec(format!(
                        "baseline for {} is missing or of the wrong kind",
                        field.name()
                    )))
                }
            };
            typical.push((field, resolved));
        }
        Ok(ReasonFinder { typical })
    }

    /// The applicant with one field at a time set to its typical value, for each field that
    /// differs from it, and which field each copy changed.
    pub fn counterfactuals(&self, application: &Application) -> (Vec<Application>, Vec<Field>) {
        let mut rows = Vec::new();
        let mut fields = Vec::new();
        for (field, typical) in &self.typical {
            let copy = match typical {
                Typical::Number(value) if application.number(*field) != Some(*value) => {
                    application.with_number(*field, *value)
                }
                Typical::Choice(value) if application.choice(*field) != Some(value.as_str()) => {
                    application.with_choice(*field, value)
                }
                _ => None,
            };
            if let Some(copy) = copy {
                rows.push(copy);
                fields.push(*field);
            }
        }
        (rows, fields)
    }

    /// The fields whose typical value lowers the probability most, largest first.
    pub fn top_reasons(
        &self,
        application: &Application,
        probability: f32,
        fields: &[Field],
        counterfactual: &[f32],
    ) -> Vec<Reason> {
        let mut pushes: Vec<(Field, f32)> = fields
            .iter()
            .zip(counterfactual)
            .map(|(field, without)| (*field, probability - without))
            .filter(|(_, impact)| *impact > 0.0)
            .collect();
        // Stable sort keeps form order among equal impacts, so reasons are deterministic.
        pushes.sort_by(|a, b| b.1.total_cmp(&a.1));
        pushes
            .into_iter()
            .take(MAX_REASONS)
            .filter_map(|(field, impact)| self.reason(application, field, impact))
            .collect()
    }

    fn reason(&self, application: &Application, field: Field, impact: f32) -> Option<Reason> {
        let typical = self
            .typical
            .iter()
            .find(|(candidate, _)| *candidate == field)
            .map(|(_, typical)| typical)?;
        let upper = field.name().to_ascii_uppercase();
        let (code, message) = match typical {
            Typical::Number(usual) => {
                let value = application.number(field)?;
                let high = value > *usual;
                let text = |lang: Lang| {
                    let (label, value, usual) = (
                        field.label(lang),
                        format_money(value, lang),
                        format_money(*usual, lang),
                    );
                    match (lang, high) {
                        (Lang::Es, true) => format!(
                            "{label}: por encima de lo habitual ({value} frente a {usual})."
                        ),
                        (Lang::Es, false) => format!(
                            "{label}: por debajo de lo habitual ({value} frente a {usual})."
                        ),
                        (Lang::En, true) => {
                            format!("{label}: above the usual ({value} against {usual}).")
                        }
                        (Lang::En, false) => {
                            format!("{label}: below the usual ({value} against {usual}).")
                        }
                    }
                };
                let direction = if high { "HIGH" } else { "LOW" };
                (
                    format!("R_{upper}_{direction}"),
                    Message::new(text(Lang::Es), text(Lang::En)),
                )
            }
            Typical::Choice(_) => {
                let value = application.choice(field)?;
                let text =
                    |lang: Lang| format!("{}: {}.", field.label(lang), choice_label(value, lang));
                (
                    format!("R_{upper}_{}", value.to_ascii_uppercase()),
                    Message::new(text(Lang::Es), text(Lang::En)),
                )
            }
        };
        Some(Reason {
            code,
            field: field.name().to_owned(),
            impact,
            message,
        })
    }
}
