//! An [`Application`] to the model's input vector, as `feature_spec.json` describes it.
//! Mirrors `raw_feature` in `models/train.py`; `models/golden.json` pins the two together.

use crate::decision::model::spec::{FeatureDef, FeatureKind};
use crate::decision::model::ModelError;
use crate::intake::application::{Application, Field, FieldRule};

/// A feature with its fields resolved, so encoding does no string lookups.
#[derive(Clone, Debug, PartialEq)]
enum Step {
    Value(Field),
    OneHot(Field, String),
    Log1p(Field),
    Ratio(Field, Field, f64),
    Log1pRatio(Field, Field, f64),
    InstallmentToIncome(f64),
    DisposableToIncome(f64),
    SignedLog1pNetWorth,
}

/// The compiled feature list.
#[derive(Clone, Debug, PartialEq)]
pub struct Encoder {
    steps: Vec<(Step, f64, f64)>,
}

fn numeric_field(name: &str) -> Result<Field, ModelError> {
    match Field::from_name(name).map(|field| (field, field.rule())) {
        Some((field, FieldRule::Integer { .. } | FieldRule::Money { .. })) => Ok(field),
        _ => Err(ModelError::Spec(format!("{name} is not a numeric field"))),
    }
}

fn choice_field(name: &str, value: &str) -> Result<Field, ModelError> {
    match Field::from_name(name).map(|field| (field, field.rule())) {
        Some((field, FieldRule::Choice(values))) if values.contains(&value) => Ok(field),
        _ => Err(ModelError::Spec(format!(
            "{name}={value} is not a choice of the application"
        ))),
    }
}

impl Encoder {
    /// Resolves every feature; fails on a field or value the application does not have.
    pub fn new(features: &[FeatureDef]) -> Result<Encoder, ModelError> {
        let steps = features
            .iter()
            .map(|feature| {
                let step = match &feature.kind {
                    FeatureKind::Value { field } => Step::Value(numeric_field(field)?),
                    FeatureKind::OneHot { field, value } => {
                        Step::OneHot(choice_field(field, value)?, value.clone())
                    }
                    FeatureKind::Log1p { field } => Step::Log1p(numeric_field(field)?),
                    FeatureKind::Ratio {
                        numerator,
                        denominator,
                        floor,
                    } => Step::Ratio(
                        numeric_field(numerator)?,
                        numeric_field(denominator)?,
                        *floor,
                    ),
                    FeatureKind::Log1pRatio {
                        numerator,
                        denominator,
                        floor,
                    } => Step::Log1pRatio(
                        numeric_field(numerator)?,
                        numeric_field(denominator)?,
                        *floor,
                    ),
                    FeatureKind::InstallmentToIncome { floor } => Step::InstallmentToIncome(*floor),
                    FeatureKind::DisposableToIncome { floor } => Step::DisposableToIncome(*floor),
                    FeatureKind::SignedLog1pNetWorth => Step::SignedLog1pNetWorth,
                };
                if !(feature.std.is_finite() && feature.std > 0.0 && feature.mean.is_finite()) {
                    return Err(ModelError::Spec(format!(
                        "{}: mean and std must be finite, std positive",
                        feature.name
                    )));
                }
                Ok((step, feature.mean, feature.std))
            })
            .collect::<Result<Vec<_>, ModelError>>()?;
        Ok(Encoder { steps })
    }

    /// How many inputs the model takes.
    pub fn width(&self) -> usize {
        self.steps.len()
    }

    /// Appends the scaled features of `application` to `out`.
    pub fn encode_into(&self, application: &Application, out: &mut Vec<f32>) {
        let number = |field: Field| application.number(field).unwrap_or(0.0);
        for (step, mean, std) in &self.steps {
            let raw = match step {
                Step::Value(field) => number(*field),
                Step::OneHot(field, value) => {
                    if application.choice(*field) == Some(value.as_str()) {
                        1.0
                    } else {
                        0.0
                    }
                }
                Step::Log1p(field) => number(*field).ln_1p(),
                Step::Ratio(numerator, denominator, floor) => {
                    number(*numerator) / number(*denominator).max(*floor)
                }
                Step::Log1pRatio(numerator, denominator, floor) => {
                    (number(*numerator) / number(*denominator).max(*floor)).ln_1p()
                }
                Step::InstallmentToIncome(floor) => {
                    (application.amount / f64::from(application.term_months))
                        / application.income.max(*floor)
                }
                Step::DisposableToIncome(floor) => {
                    (application.income - application.expenses - application.debt / 12.0)
                        / application.income.max(*floor)
                }
                Step::SignedLog1pNetWorth => {
                    let net = application.assets - application.debt;
                    net.abs().ln_1p().copysign(net)
                }
            };
            // Narrowing to f32 is the model's input precision, as in train.py.
            #[allow(clippy::cast_possible_truncation)]
            out.push(((raw - mean) / std) as f32);
        }
    }

    pub fn encode(&self, application: &Application) -> Vec<f32> {
        let mut out = Vec::with_capacity(self.width());
        self.encode_into(application, &mut out);
        out
    }
}
