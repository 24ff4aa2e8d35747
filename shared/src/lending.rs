//! The officers' side of lending: accounts, roles and sign-in, the review queue with its
//! overrides and second approvals, the hash-chained audit trail and the decisions CSV.

pub mod access;
pub mod audit;
pub mod export;
pub mod officers;
pub mod review;

#[cfg(test)]
mod tests {
    use crate::contract::i18n::{Lang, Message};

    #[test]
    fn every_label_is_distinct_within_its_kind_in_both_languages() {
        use super::audit::{LinkProblem, AUDIT_ACTIONS};
        use super::officers::ROLES;
        use super::review::{OVERRIDES, REASON_CODES, REVIEW_ACTIONS, REVIEW_STATES};

        fn check(kind: &str, labels: impl IntoIterator<Item = Message>) {
            let labels: Vec<Message> = labels.into_iter().collect();
            for lang in [Lang::Es, Lang::En] {
                let mut seen = std::collections::HashSet::new();
                for label in &labels {
                    let text = label.get(lang);
                    assert!(!text.trim().is_empty(), "{kind}: an empty {lang:?} label");
                    assert!(seen.insert(text), "{kind}: {text:?} twice in {lang:?}");
                }
            }
        }
        check("audit actions", AUDIT_ACTIONS.map(|action| action.label()));
        check(
            "link problems",
            [LinkProblem::Gap, LinkProblem::PrevHash, LinkProblem::Hash].map(LinkProblem::label),
        );
        check("overrides", OVERRIDES.map(|kind| kind.label()));
        check("reason codes", REASON_CODES.map(|code| code.label()));
        check(
            "review actions",
            REVIEW_ACTIONS.map(|action| action.label()),
        );
        check("review states", REVIEW_STATES.map(|state| state.label()));
        check("roles", ROLES.map(|role| role.label()));
    }
}
