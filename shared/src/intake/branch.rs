//! Branches: the office of the cooperative an application is made at, which every count,
//! filter and alert is kept per.

use crate::intake::application::{Application, Charset};

/// The branch a decision counts under when its application names none.
pub const DEFAULT_BRANCH: &str = "principal";

/// The branch a decision counts under: the application's own, or [`DEFAULT_BRANCH`].
pub fn branch_of(application: &Application) -> String {
    application
        .branch
        .clone()
        .unwrap_or_else(|| DEFAULT_BRANCH.to_owned())
}

/// Whether `name` could be an application's branch (the same rule as the field), so a
/// filter on anything else is refused instead of silently matching nothing.
pub fn is_branch(name: &str) -> bool {
    let chars = name.chars().count();
    (1..=64).contains(&chars)
        && name.trim() == name
        && name.chars().all(|c| Charset::Name.allows(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branches_follow_the_application_field_rule() {
        for (name, valid) in [
            ("Centro", true),
            ("San José 2", true),
            ("norte-1", true),
            (" Centro", false),
            ("a|b", false),
            ("", false),
        ] {
            assert_eq!(is_branch(name), valid, "{name:?}");
        }
        assert!(!is_branch(&"x".repeat(65)));
    }
}
