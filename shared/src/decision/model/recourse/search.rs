//! The search: every candidate of the three levers scored in one run of the model, the
//! nearest approving one per lever, and the money levers narrowed to the euro.

use super::{
    amount_candidates, combined_candidates, suggestion, term_candidates, with_amount, Candidate,
    Lever, Suggestion, MAX_SUGGESTIONS,
};
use crate::decision::model::{classify, Decision, Model, ModelError};
use crate::decision::policy::decide;
use crate::intake::application::Application;
use crate::intake::validation::parse_application;

impl Model {
    /// Changes of term, down payment or price that the model and the rules would approve,
    /// smallest first, at most one per lever; empty when nothing within the valid ranges is
    /// enough. Every suggestion passes validation.
    pub fn recourse(&self, application: &Application) -> Result<Vec<Suggestion>, ModelError> {
        let levers = [
            term_candidates(application),
            amount_candidates(application, Lever::DownPayment),
            amount_candidates(application, Lever::CheaperGood),
        ];
        let rows: Vec<Application> = levers
            .iter()
            .flatten()
            .map(|candidate| candidate.application.clone())
            .collect();
        let probabilities = self.probability_batch(&rows)?;
        let mut scored = probabilities.into_iter();
        let mut suggestions = Vec::with_capacity(MAX_SUGGESTIONS);
        for candidates in &levers {
            let lever_probabilities: Vec<f32> = scored.by_ref().take(candidates.len()).collect();
            let found = candidates
                .iter()
                .zip(&lever_probabilities)
                .position(|(candidate, probability)| self.approves(candidate, *probability));
            let Some(index) = found else { continue };
            let (candidate, probability) = (&candidates[index], lever_probabilities[index]);
            let (candidate, probability) = match candidate.lever {
                Lever::Term => (candidate.clone(), probability),
                lever => {
                    let refused = index.checked_sub(1).map_or(application.amount, |before| {
                        candidates[before].application.amount
                    });
                    self.narrow(
                        application,
                        lever,
                        refused,
                        (candidate.clone(), probability),
                    )?
                }
            };
            suggestions.push(suggestion(application, &candidate, probability));
        }
        if suggestions.is_empty() {
            let candidates = combined_candidates(application);
            let rows: Vec<Application> = candidates
                .iter()
                .map(|candidate| candidate.application.clone())
                .collect();
            let probabilities = self.probability_batch(&rows)?;
            if let Some((candidate, probability)) = candidates
                .iter()
                .zip(probabilities)
                .find(|(candidate, probability)| self.approves(candidate, *probability))
            {
                suggestions.push(suggestion(application, candidate, probability));
            }
        }
        suggestions.sort_by(|a, b| size(application, a).total_cmp(&size(application, b)));
        Ok(suggestions)
    }

    /// The final decision on a candidate is `approve`, and it is a valid application.
    fn approves(&self, candidate: &Candidate, probability: f32) -> bool {
        let (_, model_decision, _) = classify(probability, self.thresholds());
        model_decision == Decision::Approve
            && decide(
                model_decision,
                &self.policy().evaluate(&candidate.application),
            ) == Decision::Approve
            && serde_json::to_vec(&candidate.application)
                .ok()
                .is_some_and(|body| parse_application(&body).is_ok())
    }

    /// The largest whole-euro amount between `refused` (not approved) and the approved
    /// candidate's that is still approved, by bisection. The approved end always stays
    /// approved, so what comes back has been scored.
    fn narrow(
        &self,
        application: &Application,
        lever: Lever,
        refused: f64,
        approved: (Candidate, f32),
    ) -> Result<(Candidate, f32), ModelError> {
        let mut refused = refused.floor();
        let mut approved = approved;
        while refused - approved.0.application.amount > 1.0 {
            let middle = ((refused + approved.0.application.amount) / 2.0).floor();
            let Some(candidate) = with_amount(application, lever, middle) else {
                break;
            };
            let probability = self.probability(&candidate.application)?;
            if self.approves(&candidate, probability) {
                approved = (candidate, probability);
            } else {
                refused = middle;
            }
        }
        Ok(approved)
    }
}

/// How large a suggestion's change is, as the candidates measure it.
fn size(application: &Application, suggestion: &Suggestion) -> f64 {
    let Some(suggested) = suggestion.apply(application) else {
        return f64::INFINITY;
    };
    let (min, max) = super::term_range();
    let months = (i64::from(suggested.term_months) - i64::from(application.term_months)).abs();
    months as f64 / (max - min) as f64
        + (application.amount - suggested.amount) / application.amount
}
