//! The batch's answer, assembled from what was scored and what was refused: one result per
//! item in the order sent, each score as the applicant is shown it.

use super::{BatchItem, BatchResponse};
use crate::contract::errors::ErrorBody;
use crate::contract::request::StageTiming;
use crate::decision::disclosure::Disclosure;
use crate::decision::model::{ModelVersion, Score};

/// One item that was scored and stored (or found stored: a replay).
pub struct ScoredItem {
    pub index: usize,
    pub request_id: String,
    pub replayed: bool,
    /// The stored score, with every reason; the answer discloses what the policy allows.
    pub score: Score,
}

/// Everything a batch's answer is made of.
pub struct BatchParts {
    pub request_id: String,
    pub model_version: ModelVersion,
    pub scored: Vec<ScoredItem>,
    /// Items refused on their own, with the error each would get alone.
    pub refused: Vec<(usize, ErrorBody)>,
    pub timing: Vec<StageTiming>,
}

impl BatchResponse {
    pub fn assemble(parts: BatchParts, disclosure: Disclosure) -> BatchResponse {
        let mut results: Vec<BatchItem> = parts
            .scored
            .into_iter()
            .map(|item| BatchItem {
                index: item.index,
                request_id: Some(item.request_id),
                replayed: item.replayed,
                score: Some(disclosure.for_applicant(&item.score)),
                error: None,
            })
            .chain(parts.refused.into_iter().map(|(index, error)| BatchItem {
                index,
                request_id: None,
                replayed: false,
                score: None,
                error: Some(error),
            }))
            .collect();
        results.sort_by_key(|item| item.index);
        let accepted = results.iter().filter(|item| item.score.is_some()).count();
        BatchResponse {
            request_id: parts.request_id,
            model_version: parts.model_version,
            accepted,
            rejected: results.len() - accepted,
            results,
            timing: parts.timing,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::codes::ErrorCode;
    use crate::contract::errors::{FieldError, RequestError};
    use crate::contract::i18n::Message;
    use crate::decision::model::Model;
    use crate::intake::validation::parse_application;

    fn scored(index: usize, replayed: bool) -> ScoredItem {
        let application = parse_application(
            br#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married",
                "records":"no","job":"freelance","expenses":73,"income":129,"assets":0,
                "debt":0,"amount":800,"price":846}"#,
        )
        .expect("a valid application");
        let model = Model::embedded().expect("the model");
        ScoredItem {
            index,
            request_id: format!("batch:{index}"),
            replayed,
            score: model.score(&application).expect("a score"),
        }
    }

    fn refusal() -> ErrorBody {
        let error = RequestError::Invalid(vec![FieldError::new(
            "age",
            ErrorCode::Range,
            Message::new("Edad fuera de rango.", "Age out of range."),
        )]);
        ErrorBody::of_request(&error, None)
    }

    #[test]
    fn results_come_in_item_order_with_counts_and_disclosed_scores() {
        let disclosure = Disclosure::committed();
        let model_version = Model::embedded().expect("the model").version().clone();
        let answer = BatchResponse::assemble(
            BatchParts {
                request_id: "batch".into(),
                model_version: model_version.clone(),
                scored: vec![scored(2, true), scored(0, false)],
                refused: vec![(1, refusal())],
                timing: Vec::new(),
            },
            disclosure,
        );
        assert_eq!(answer.request_id, "batch");
        assert_eq!(answer.model_version, model_version);
        assert_eq!((answer.accepted, answer.rejected), (2, 1));
        let indexes: Vec<usize> = answer.results.iter().map(|item| item.index).collect();
        assert_eq!(indexes, [0, 1, 2]);
        let first = &answer.results[0];
        assert_eq!(first.request_id.as_deref(), Some("batch:0"));
        assert!(!first.replayed && first.error.is_none());
        assert_eq!(
            first.score,
            Some(disclosure.for_applicant(&scored(0, false).score))
        );
        let refused = &answer.results[1];
        assert!(refused.score.is_none() && refused.request_id.is_none());
        assert_eq!(refused.error, Some(refusal()));
        assert!(answer.results[2].replayed);
    }

    #[test]
    fn an_empty_batch_answers_no_results() {
        let answer = BatchResponse::assemble(
            BatchParts {
                request_id: "empty".into(),
                model_version: Model::embedded().expect("the model").version().clone(),
                scored: Vec::new(),
                refused: Vec::new(),
                timing: Vec::new(),
            },
            Disclosure::committed(),
        );
        assert_eq!((answer.accepted, answer.rejected), (0, 0));
        assert!(answer.results.is_empty());
    }
}
