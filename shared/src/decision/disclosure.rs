//! What the applicant is shown of a score. Age and marital status are model inputs and
//! protected characteristics; `models/disclosure.json` says whether reason codes naming them
//! reach the applicant (`"hide"`, the default the model card asks for until a legal review,
//! or `"show"`). The page and the worker compile the same file in, so both show the same;
//! officers always see every reason.

use serde::{Deserialize, Serialize};

use crate::decision::model::Score;
use crate::intake::application::Field;

/// The setting, as committed beside the model.
pub const DISCLOSURE_JSON: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../models/disclosure.json"
));
/// The fields whose reasons the setting governs.
pub const PROTECTED_FIELDS: [Field; 2] = [Field::Age, Field::Marital];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum ProtectedReasons {
    Hide,
    Show,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Disclosure {
    pub protected_reasons: ProtectedReasons,
}

impl Disclosure {
    /// The committed setting; a file that does not parse hides, the safe side (a test
    /// keeps the file parsing).
    pub fn committed() -> Disclosure {
        serde_json::from_str(DISCLOSURE_JSON).unwrap_or(Disclosure {
            protected_reasons: ProtectedReasons::Hide,
        })
    }

    /// `score` as the applicant sees it: without reasons on protected fields when hidden.
    pub fn for_applicant(self, score: &Score) -> Score {
        let mut shown = score.clone();
        if self.protected_reasons == ProtectedReasons::Hide {
            shown
                .reasons
                .retain(|reason| !PROTECTED_FIELDS.iter().any(|f| f.name() == reason.field));
        }
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::i18n::Message;
    use crate::decision::model::reasons::Reason;
    use crate::decision::model::{Band, Decision, ModelVersion};

    fn reason(field: &str) -> Reason {
        Reason {
            code: format!("R_{}_X", field.to_uppercase()),
            field: field.to_owned(),
            impact: 0.1,
            message: Message::new("", ""),
        }
    }

    #[test]
    fn the_committed_setting_parses_and_hides_protected_reasons() {
        let parsed: Disclosure = serde_json::from_str(DISCLOSURE_JSON).expect("disclosure.json");
        assert_eq!(parsed, Disclosure::committed());
        let score = Score {
            probability: 0.4,
            band: Band::Medio,
            decision: Decision::Review,
            confidence: 0.5,
            reasons: vec![
                reason("age"),
                reason("records"),
                reason("marital"),
                reason("debt"),
            ],
            model_version: ModelVersion {
                name: "m".to_owned(),
                sha256: "s".to_owned(),
            },
            policy_version: None,
            policy_hits: Vec::new(),
            recourse: Vec::new(),
        };
        let hidden = Disclosure {
            protected_reasons: ProtectedReasons::Hide,
        }
        .for_applicant(&score);
        let fields: Vec<&str> = hidden.reasons.iter().map(|r| r.field.as_str()).collect();
        assert_eq!(fields, ["records", "debt"]);
        assert_eq!(hidden.probability, score.probability);
        let shown = Disclosure {
            protected_reasons: ProtectedReasons::Show,
        }
        .for_applicant(&score);
        assert_eq!(shown, score);
    }
}
