//! Pure functions behind the form: which errors to show where, and what the submit button
//! may do. No rule of the application is decided here; they all come from `valle_shared`.

use std::collections::BTreeSet;

use valle_shared::contract::errors::{FieldError, RequestError};
use valle_shared::intake::validation::{cross_rule_fields, parse_application};
use valle_shared::{Application, Field};

/// What the shared validator makes of the body the form would send.
pub type Outcome = Result<Application, RequestError>;

pub fn validate_body(body: &str) -> Outcome {
    parse_application(body.as_bytes())
}

/// The errors to show under `field`: those reported on it, once the person has touched it
/// (or, for a cross-field rule, any field the rule reads), or after a submit attempt.
pub fn visible_errors(
    field: Field,
    outcome: &Outcome,
    touched: &BTreeSet<Field>,
    show_all: bool,
) -> Vec<FieldError> {
    let errors = match outcome {
        Err(error) => error.field_errors(),
        Ok(_) => &[],
    };
    errors
        .iter()
        .filter(|error| Field::from_name(&error.field) == Some(field))
        .filter(|error| {
            show_all
                || match error.rule {
                    Some(rule) => cross_rule_fields(rule)
                        .iter()
                        .any(|field| touched.contains(field)),
                    None => touched.contains(&field),
                }
        })
        .cloned()
        .collect()
}

/// How many problems stand between the form and a submit.
pub fn error_count(outcome: &Outcome) -> usize {
    match outcome {
        Ok(_) => 0,
        Err(RequestError::Invalid(errors)) => errors.len(),
        Err(_) => 1,
    }
}

/// The form's values for a typical applicant, from the first row of the credit data.
pub fn example_inputs() -> Vec<(Field, &'static str)> {
    vec![
        (Field::ApplicantId, "SOC-000123"),
        (Field::Branch, "Centro"),
        (Field::Age, "30"),
        (Field::Marital, "married"),
        (Field::Home, "rent"),
        (Field::Job, "freelance"),
        (Field::SeniorityYears, "9"),
        (Field::Records, "no"),
        (Field::Income, "129"),
        (Field::Expenses, "73"),
        (Field::Assets, "0"),
        (Field::Debt, "0"),
        (Field::Amount, "800"),
        (Field::Price, "846"),
        (Field::TermMonths, "60"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use valle_shared::contract::codes::ErrorCode;
    use valle_shared::intake::draft::Draft;

    fn example() -> Draft {
        example_inputs()
            .into_iter()
            .fold(Draft::new(), |draft, (field, text)| draft.with(field, text))
    }

    fn check(draft: &Draft, touched: &[Field], show_all: bool, field: Field, codes: &[ErrorCode]) {
        let outcome = validate_body(&draft.to_body());
        let touched: BTreeSet<Field> = touched.iter().copied().collect();
        let shown: Vec<ErrorCode> = visible_errors(field, &outcome, &touched, show_all)
            .iter()
            .map(|error| error.code)
            .collect();
        assert_eq!(shown, codes, "{field:?}");
    }

    #[test]
    fn the_example_is_valid() {
        assert!(validate_body(&example().to_body()).is_ok());
        assert!(validate_body("{}").is_err());
    }

    #[test]
    fn errors_wait_for_a_touch_or_a_submit() {
        let blank = Draft::new();
        check(&blank, &[], false, Field::Age, &[]);
        check(
            &blank,
            &[Field::Age],
            false,
            Field::Age,
            &[ErrorCode::Required],
        );
        check(&blank, &[], true, Field::Age, &[ErrorCode::Required]);
        check(&blank, &[Field::Age], false, Field::Income, &[]);
    }

    #[test]
    fn cross_errors_show_when_any_involved_field_was_touched() {
        let draft = example().with(Field::Price, "700");
        check(
            &draft,
            &[Field::Price],
            false,
            Field::Amount,
            &[ErrorCode::Cross],
        );
        check(
            &draft,
            &[Field::Amount],
            false,
            Field::Amount,
            &[ErrorCode::Cross],
        );
        check(&draft, &[Field::Age], false, Field::Amount, &[]);
    }

    #[test]
    fn counting() {
        assert_eq!(error_count(&validate_body(&example().to_body())), 0);
        assert_eq!(error_count(&validate_body("{}")), 13);
        assert_eq!(error_count(&validate_body("[]")), 1);
    }
}
