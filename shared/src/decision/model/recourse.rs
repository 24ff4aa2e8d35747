//! Recourse: for an application the model or a rule does not approve, the smallest change to
//! what the applicant can act on that reaches `approve`. Only three levers move: the term, a
//! larger down payment (less borrowed for the same good) and a cheaper good (price and amount
//! down together). Age, marital status, prior records and every other field stay as they are.
//!
//! Every suggestion is re-scored by the same model and rules before it is offered, and must
//! pass validation, so what the applicant is told is what would happen.

use serde::{Deserialize, Serialize};

use crate::contract::i18n::Message;
#[cfg(feature = "model")]
use crate::contract::i18n::{format_money, Lang};
use crate::intake::application::{Application, Field};

/// At most this many suggestions, one per lever.
pub const MAX_SUGGESTIONS: usize = 3;

/// What a suggestion changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Lever {
    /// Another term, in months.
    Term,
    /// A larger down payment: a smaller amount for the same price.
    DownPayment,
    /// A cheaper good: price and amount lowered by the same sum.
    CheaperGood,
    /// Another term and a larger down payment, when neither alone is enough.
    TermAndDownPayment,
}

impl Lever {
    /// The wire name, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Lever::Term => "term",
            Lever::DownPayment => "down_payment",
            Lever::CheaperGood => "cheaper_good",
            Lever::TermAndDownPayment => "term_and_down_payment",
        }
    }
}

/// The fields a suggestion may change; everything else is fixed.
pub const ACTIONABLE_FIELDS: [Field; 3] = [Field::TermMonths, Field::Amount, Field::Price];

/// One field's value before and after.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Change {
    pub field: String,
    pub from: f64,
    pub to: f64,
}

/// A change that the model and the rules approve, with the probability it would have.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct Suggestion {
    pub lever: Lever,
    pub changes: Vec<Change>,
    pub probability: f32,
    pub message: Message,
}

impl Suggestion {
    /// `application` with the suggestion applied.
    pub fn apply(&self, application: &Application) -> Option<Application> {
        self.changes
            .iter()
            .try_fold(application.clone(), |copy, change| {
                copy.with_number(Field::from_name(&change.field)?, change.to)
            })
    }
}

/// A candidate application for one lever, with how large a change it is (0 to 1 per lever:
/// months over the term's range, euros over the amount).
#[derive(Clone, Debug, PartialEq)]
#[cfg(feature = "model")]
pub(crate) struct Candidate {
    pub lever: Lever,
    pub application: Application,
    pub size: f64,
}

/// Rounds to cents, so that a difference of two amounts validates as money.
#[cfg(feature = "model")]
fn cents(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// The term's valid months, other than the applicant's, nearest first and shorter first
/// among equals.
#[cfg(feature = "model")]
pub(crate) fn term_candidates(application: &Application) -> Vec<Candidate> {
    let (min, max) = term_range();
    let current = i64::from(application.term_months);
    let mut months: Vec<i64> = (min..=max).filter(|month| *month != current).collect();
    months.sort_by_key(|month| ((month - current).abs(), *month));
    months
        .into_iter()
        .filter_map(|month| {
            let application = application.with_number(Field::TermMonths, month as f64)?;
            Some(Candidate {
                lever: Lever::Term,
                application,
                size: (month - current).abs() as f64 / (max - min) as f64,
            })
        })
        .collect()
}

#[cfg(feature = "model")]
fn term_range() -> (i64, i64) {
    match Field::TermMonths.rule() {
        crate::intake::application::FieldRule::Integer { min, max } => (min, max),
        _ => (6, 72),
    }
}

#[cfg(feature = "model")]
fn amount_minimum() -> f64 {
    match Field::Amount.rule() {
        crate::intake::application::FieldRule::Money { min, .. } => min,
        _ => 100.0,
    }
}

/// The application borrowing `new_amount` (whole euros) instead, with the price kept (a
/// larger down payment) or lowered by the same sum (a cheaper good).
#[cfg(feature = "model")]
pub(crate) fn with_amount(
    application: &Application,
    lever: Lever,
    new_amount: f64,
) -> Option<Candidate> {
    if new_amount < amount_minimum() || new_amount >= application.amount {
        return None;
    }
    let cut = application.amount - new_amount;
    let mut copy = application.with_number(Field::Amount, new_amount)?;
    if lever == Lever::CheaperGood {
        copy = copy.with_number(Field::Price, cents(application.price - cut))?;
    }
    Some(Candidate {
        lever,
        application: copy,
        size: cut / application.amount,
    })
}

/// Amounts 1 %, 2 %, … 95 % lower, in whole euros, for one money lever.
#[cfg(feature = "model")]
pub(crate) fn amount_candidates(application: &Application, lever: Lever) -> Vec<Candidate> {
    let mut last = f64::NAN;
    (1..=95)
        .filter_map(|percent| {
            let new_amount = (application.amount * f64::from(100 - percent) / 100.0).floor();
            if new_amount == last {
                return None;
            }
            last = new_amount;
            with_amount(application, lever, new_amount)
        })
        .collect()
}

/// Terms every 6 months crossed with amounts 5 % to 95 % lower, for when one lever is not
/// enough.
#[cfg(feature = "model")]
pub(crate) fn combined_candidates(application: &Application) -> Vec<Candidate> {
    let (min, max) = term_range();
    let mut candidates = Vec::new();
    for month in (min..=max).step_by(6) {
        let Some(termed) = application.with_number(Field::TermMonths, month as f64) else {
            continue;
        };
        let term_size =
            (month - i64::from(application.term_months)).abs() as f64 / (max - min) as f64;
        for percent in (5..=95).step_by(5) {
            let new_amount = (application.amount * f64::from(100 - percent) / 100.0).floor();
            if let Some(mut candidate) = with_amount(&termed, Lever::DownPayment, new_amount) {
                candidate.lever = Lever::TermAndDownPayment;
                candidate.size += term_size;
                candidates.push(candidate);
            }
        }
    }
    candidates.sort_by(|a, b| a.size.total_cmp(&b.size));
    candidates
}

/// The suggestion for an approving candidate, worded in both languages.
#[cfg(feature = "model")]
pub(crate) fn suggestion(
    original: &Application,
    candidate: &Candidate,
    probability: f32,
) -> Suggestion {
    let suggested = &candidate.application;
    let changes: Vec<Change> = ACTIONABLE_FIELDS
        .iter()
        .filter_map(|field| {
            let (from, to) = (original.number(*field)?, suggested.number(*field)?);
            (from != to).then(|| Change {
                field: field.name().to_owned(),
                from,
                to,
            })
        })
        .collect();
    let text = |lang: Lang| {
        let money = |value: f64| format!("{} €", format_money(value, lang));
        let down = original.amount - suggested.amount;
        let term = || match lang {
            Lang::Es => format!(
                "con un plazo de {} meses en lugar de {}",
                suggested.term_months, original.term_months
            ),
            Lang::En => format!(
                "with a term of {} months instead of {}",
                suggested.term_months, original.term_months
            ),
        };
        let borrow = || match lang {
            Lang::Es => format!(
                "aportando {} más de entrada (pidiendo {} en lugar de {})",
                money(down),
                money(suggested.amount),
                money(original.amount)
            ),
            Lang::En => format!(
                "with a down payment {} larger (borrowing {} instead of {})",
                money(down),
                money(suggested.amount),
                money(original.amount)
            ),
        };
        let lead = match lang {
            Lang::Es => "Se aprobaría ",
            Lang::En => "It would be approved ",
        };
        let body = match candidate.lever {
            Lever::Term => term(),
            Lever::DownPayment => borrow(),
            Lever::CheaperGood => match lang {
                Lang::Es => format!(
                    "con un bien de {} en lugar de {} (pidiendo {} en lugar de {})",
                    money(suggested.price),
                    money(original.price),
                    money(suggested.amount),
                    money(original.amount)
                ),
                Lang::En => format!(
                    "with a good of {} instead of {} (borrowing {} instead of {})",
                    money(suggested.price),
                    money(original.price),
                    money(suggested.amount),
                    money(original.amount)
                ),
            },
            Lever::TermAndDownPayment => match lang {
                Lang::Es => format!("{} y {}", term(), borrow()),
                Lang::En => format!("{} and {}", term(), borrow()),
            },
        };
        format!("{lead}{body}.")
    };
    Suggestion {
        lever: candidate.lever,
        changes,
        probability,
        message: Message::new(text(Lang::Es), text(Lang::En)),
    }
}

#[cfg(feature = "model")]
mod search;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lever_names_are_their_wire_names() {
        for lever in [
            Lever::Term,
            Lever::DownPayment,
            Lever::CheaperGood,
            Lever::TermAndDownPayment,
        ] {
            let wire = serde_json::to_string(&lever).expect("serializes");
            assert_eq!(wire, format!("\"{}\"", lever.as_str()));
        }
    }
}
