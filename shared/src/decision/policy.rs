//! Policy rules: the cooperative's knock-outs, evaluated before the model's decision counts.
//! `models/policy.json` is versioned beside the model and compiled into the page's scorer and
//! the worker, so both evaluate the same bytes the same way.
//!
//! A rule is a list of tests that must all hold (`"expenses >= income"`,
//! `"amount / term_months > income - expenses"`, `"records = yes"`) and an action: `decline`
//! or `review`. A rule never makes a decision more lenient: the decision is the strictest of
//! the model's and every rule that holds. Rules may not test a protected field (age, marital
//! status); such a file is refused when it loads.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::contract::i18n::Message;
use crate::decision::disclosure::PROTECTED_FIELDS;
use crate::decision::model::Decision;
use crate::intake::application::{Application, Field, FieldRule};

/// The committed rule set.
pub const POLICY_JSON: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../models/policy.json"
));

/// Which rule set produced a decision: its name and version, and the sha256 of its file.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct PolicyVersion {
    pub name: String,
    pub sha256: String,
}

/// What a rule does when it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum RuleAction {
    Review,
    Decline,
}

impl RuleAction {
    pub fn decision(self) -> Decision {
        match self {
            RuleAction::Review => Decision::Review,
            RuleAction::Decline => Decision::Decline,
        }
    }
}

/// A rule that held for an application, with the reason the applicant is given.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct RuleHit {
    /// Stable: `P_<WHAT>`.
    pub code: String,
    pub action: RuleAction,
    pub message: Message,
}

/// Why a rule set could not load.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PolicyError {
    #[error("policy file: {0}")]
    File(String),
    #[error("rule {code}: {problem}")]
    Rule { code: String, problem: String },
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    name: String,
    version: u32,
    rules: Vec<RuleFile>,
}

#[derive(Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
struct RuleFile {
    code: String,
    action: RuleAction,
    when: Vec<String>,
    message: Message,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Operand {
    Field(Field),
    Number(f64),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Arithmetic {
    Add,
    Subtract,
    Multiply,
    Divide,
}

/// Operands combined left to right, without precedence: `a - b * c` is `(a - b) * c`, which
/// is why the committed rules are written so that the order reads naturally.
#[derive(Clone, Debug, PartialEq)]
struct Expression {
    first: Operand,
    rest: Vec<(Arithmetic, Operand)>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Comparison {
    Above,
    AtLeast,
    Below,
    AtMost,
}

#[derive(Clone, Debug, PartialEq)]
enum Test {
    Compare {
        left: Expression,
        comparison: Comparison,
        right: Expression,
    },
    Choice {
        field: Field,
        value: &'static str,
        equal: bool,
    },
}

#[derive(Clone, Debug, PartialEq)]
struct Rule {
    code: String,
    action: RuleAction,
    tests: Vec<Test>,
    message: Message,
}

/// A loaded rule set.
#[derive(Clone, Debug, PartialEq)]
pub struct Policy {
    version: PolicyVersion,
    rules: Vec<Rule>,
}

static COMMITTED: LazyLock<Result<Policy, PolicyError>> =
    LazyLock::new(|| Policy::load(POLICY_JSON));

impl Policy {
    /// The rule set compiled into this binary, parsed on first use.
    pub fn committed() -> Result<&'static Policy, PolicyError> {
        COMMITTED.as_ref().map_err(Clone::clone)
    }

    /// Parses a rule set; every test must name a known, unprotected field of the right kind.
    pub fn load(json: &str) -> Result<Policy, PolicyError> {
        let file: PolicyFile =
            serde_json::from_str(json).map_err(|error| PolicyError::File(error.to_string()))?;
        let mut rules = Vec::with_capacity(file.rules.len());
        for rule in file.rules {
            let problem = |problem: String| PolicyError::Rule {
                code: rule.code.clone(),
                problem,
            };
            if !is_rule_code(&rule.code) {
                return Err(problem(
                    "codes are P_ followed by capitals, digits, _".into(),
                ));
            }
            if rules.iter().any(|known: &Rule| known.code == rule.code) {
                return Err(problem("code used twice".into()));
            }
            if rule.when.is_empty() {
                return Err(problem("a rule needs at least one test".into()));
            }
            let tests = rule
                .when
                .iter()
                .map(|text| parse_test(text).map_err(&problem))
                .collect::<Result<Vec<_>, _>>()?;
            rules.push(Rule {
                code: rule.code,
                action: rule.action,
                tests,
                message: rule.message,
            });
        }
        let sha256 = hex::encode(Sha256::digest(json.as_bytes()));
        Ok(Policy {
            version: PolicyVersion {
                name: format!("{} v{}", file.name, file.version),
                sha256,
            },
            rules,
        })
    }

    pub fn version(&self) -> &PolicyVersion {
        &self.version
    }

    /// The rules that hold for `application`, in file order.
    pub fn evaluate(&self, application: &Application) -> Vec<RuleHit> {
        self.rules
            .iter()
            .filter(|rule| rule.tests.iter().all(|test| holds(test, application)))
            .map(|rule| RuleHit {
                code: rule.code.clone(),
                action: rule.action,
                message: rule.message.clone(),
            })
            .collect()
    }

    /// The codes of every rule, in file order.
    pub fn codes(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|rule| rule.code.as_str())
    }
}

/// The decision once the rules have spoken: the strictest of the model's and the hits'.
pub fn decide(model_decision: Decision, hits: &[RuleHit]) -> Decision {
    hits.iter()
        .map(|hit| hit.action.decision())
        .fold(model_decision, |strictest, decision| {
            if severity(decision) > severity(strictest) {
                decision
            } else {
                strictest
            }
        })
}

fn severity(decision: Decision) -> u8 {
    match decision {
        Decision::Approve => 0,
        Decision::Review => 1,
        Decision::Decline => 2,
    }
}

fn is_rule_code(code: &str) -> bool {
    code.strip_prefix("P_").is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    })
}

fn field_named(name: &str) -> Result<Field, String> {
    let field = Field::from_name(name).ok_or_else(|| format!("unknown field {name:?}"))?;
    if PROTECTED_FIELDS.contains(&field) {
        return Err(format!("{name} is protected and may not decide"));
    }
    Ok(field)
}

fn parse_test(text: &str) -> Result<Test, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let position = |wanted: &[&str]| words.iter().position(|word| wanted.contains(word));
    if position(&["=", "!="]).is_some() {
        let [name, sign, value] = words[..] else {
            return Err(format!("{text:?}: a choice test is `field = value`"));
        };
        let field = field_named(name)?;
        let FieldRule::Choice(values) = field.rule() else {
            return Err(format!("{name} is not a choice field"));
        };
        let value = values
            .iter()
            .find(|allowed| **allowed == value)
            .ok_or_else(|| format!("{value:?} is not a value of {name}"))?;
        return Ok(Test::Choice {
            field,
            value,
            equal: sign == "=",
        });
    }
    let at =
        position(&[">", ">=", "<", "<="]).ok_or_else(|| format!("{text:?} has no comparison"))?;
    let comparison = match words[at] {
        ">" => Comparison::Above,
        ">=" => Comparison::AtLeast,
        "<" => Comparison::Below,
        _ => Comparison::AtMost,
    };
    Ok(Test::Compare {
        left: parse_expression(&words[..at])?,
        comparison,
        right: parse_expression(&words[at + 1..])?,
    })
}

fn parse_operand(word: &str) -> Result<Operand, String> {
    if let Ok(number) = word.parse::<f64>() {
        return if number.is_finite() {
            Ok(Operand::Number(number))
        } else {
            Err(format!("{word:?} is not a finite number"))
        };
    }
    let field = field_named(word)?;
    match field.rule() {
        FieldRule::Integer { .. } | FieldRule::Money { .. } => Ok(Operand::Field(field)),
        _ => Err(format!("{word} is not a numeric field")),
    }
}

fn parse_expression(words: &[&str]) -> Result<Expression, String> {
    let (first, rest) = words
        .split_first()
        .ok_or_else(|| "an empty side of a comparison".to_owned())?;
    if rest.len() % 2 != 0 {
        return Err(format!("{:?} ends in an operator", words.join(" ")));
    }
    let rest = rest
        .chunks(2)
        .map(|pair| {
            let arithmetic = match pair[0] {
                "+" => Arithmetic::Add,
                "-" => Arithmetic::Subtract,
                "*" => Arithmetic::Multiply,
                "/" => Arithmetic::Divide,
                other => return Err(format!("{other:?} is not + - * /")),
            };
            Ok((arithmetic, parse_operand(pair[1])?))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok(Expression {
        first: parse_operand(first)?,
        rest,
    })
}

fn value(operand: Operand, application: &Application) -> Option<f64> {
    match operand {
        Operand::Number(number) => Some(number),
        Operand::Field(field) => application.number(field),
    }
}

/// The expression's value; `None` on a division by zero, so a test over it does not hold.
fn evaluate(expression: &Expression, application: &Application) -> Option<f64> {
    let mut total = value(expression.first, application)?;
    for (arithmetic, operand) in &expression.rest {
        let operand = value(*operand, application)?;
        total = match arithmetic {
            Arithmetic::Add => total + operand,
            Arithmetic::Subtract => total - operand,
            Arithmetic::Multiply => total * operand,
            Arithmetic::Divide if operand == 0.0 => return None,
            Arithmetic::Divide => total / operand,
        };
    }
    Some(total)
}

fn holds(test: &Test, application: &Application) -> bool {
    match test {
        Test::Choice {
            field,
            value,
            equal,
        } => (application.choice(*field) == Some(value)) == *equal,
        Test::Compare {
            left,
            comparison,
            right,
        } => match (evaluate(left, application), evaluate(right, application)) {
            (Some(left), Some(right)) => match comparison {
                Comparison::Above => left > right,
                Comparison::AtLeast => left >= right,
                Comparison::Below => left < right,
                Comparison::AtMost => left <= right,
            },
            _ => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intake::validation::parse_application;

    const APPLICANT: &str = r#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846}"#;

    fn applicant(changes: &[(&str, serde_json::Value)]) -> Application {
        let mut body: serde_json::Value = serde_json::from_str(APPLICANT).expect("json");
        for (key, value) in changes {
            body[*key] = value.clone();
        }
        parse_application(body.to_string().as_bytes()).expect("valid")
    }

    #[test]
    fn the_committed_rules_load_and_hold_where_they_should() {
        let policy = Policy::committed().expect("models/policy.json loads");
        assert_eq!(policy.version().name, "valle-policy v1");
        assert_eq!(policy.version().sha256.len(), 64);
        let check = |changes: &[(&str, serde_json::Value)], codes: &[&str]| {
            let hits = policy.evaluate(&applicant(changes));
            let got: Vec<&str> = hits.iter().map(|hit| hit.code.as_str()).collect();
            assert_eq!(got, codes, "{changes:?}");
        };
        check(&[], &[]);
        check(
            &[("expenses", 129.into())],
            &[
                "P_EXPENSES_AT_OR_ABOVE_INCOME",
                "P_INSTALMENT_ABOVE_DISPOSABLE_INCOME",
            ],
        );
        check(
            &[("expenses", 128.into())],
            &["P_INSTALMENT_ABOVE_DISPOSABLE_INCOME"],
        );
        // 800 / 12 = 66.7 against 129 - 73 = 56.
        check(
            &[("term_months", 12.into())],
            &["P_INSTALMENT_ABOVE_DISPOSABLE_INCOME"],
        );
        check(&[("records", "yes".into())], &[]);
        check(
            &[
                ("records", "yes".into()),
                ("amount", 1291.into()),
                ("price", 1300.into()),
            ],
            &["P_RECORDS_AND_LARGE_AMOUNT"],
        );
        check(
            &[
                ("records", "yes".into()),
                ("amount", 1290.into()),
                ("price", 1300.into()),
            ],
            &[],
        );
    }

    #[test]
    fn the_decision_is_the_strictest_of_the_model_and_the_hits() {
        let hit = |action| RuleHit {
            code: "P_X".into(),
            action,
            message: Message::new("", ""),
        };
        let check = |model, actions: &[RuleAction], expected| {
            let hits: Vec<RuleHit> = actions.iter().copied().map(hit).collect();
            assert_eq!(decide(model, &hits), expected, "{model:?} {actions:?}");
        };
        use Decision::{Approve, Decline, Review};
        use RuleAction as A;
        check(Approve, &[], Approve);
        check(Approve, &[A::Review], Review);
        check(Approve, &[A::Review, A::Decline], Decline);
        check(Review, &[A::Review], Review);
        check(Decline, &[A::Review], Decline);
        check(Review, &[A::Decline, A::Review], Decline);
    }

    #[test]
    fn bad_rule_sets_are_refused_with_the_rule_and_the_reason() {
        let check = |when: &str, action: &str, expected: &str| {
            let json = format!(
                r#"{{"name":"t","version":1,"rules":[{{"code":"P_T","action":"{action}","when":["{when}"],"message":{{"es":"","en":""}}}}]}}"#
            );
            let error = Policy::load(&json).err().map(|error| error.to_string());
            assert!(
                error
                    .as_deref()
                    .is_some_and(|error| error.contains(expected)),
                "{when}: {error:?}"
            );
        };
        check("age > 60", "decline", "age is protected");
        check("marital = single", "review", "marital is protected");
        check("salary > 3", "review", "unknown field");
        check("home > 3", "review", "home is not a numeric field");
        check("income = 3", "review", "income is not a choice field");
        check("records = maybe", "review", "not a value of records");
        check("income 3", "review", "no comparison");
        check("income > income /", "review", "ends in an operator");
        check("income > income % 2", "review", "is not + - * /");
        check("income > inf", "review", "not a finite number");
        check("income > 1", "approve", "unknown variant");
        assert!(Policy::load("{}").is_err());
        let twice = r#"{"name":"t","version":1,"rules":[
            {"code":"P_T","action":"review","when":["income > 1"],"message":{"es":"","en":""}},
            {"code":"P_T","action":"review","when":["income > 2"],"message":{"es":"","en":""}}]}"#;
        assert!(Policy::load(twice)
            .err()
            .is_some_and(|error| error.to_string().contains("code used twice")));
    }

    #[test]
    fn a_division_by_zero_makes_its_test_fail_instead_of_holding() {
        let json = r#"{"name":"t","version":1,"rules":[
            {"code":"P_DEBT_OVER_ASSETS","action":"review","when":["debt / assets > 2"],"message":{"es":"","en":""}},
            {"code":"P_ARITHMETIC","action":"review","when":["income - expenses * 2 >= 112", "income + 1 < 131"],"message":{"es":"","en":""}}]}"#;
        let policy = Policy::load(json).expect("loads");
        let codes = |application: &Application| -> Vec<String> {
            policy
                .evaluate(application)
                .into_iter()
                .map(|hit| hit.code)
                .collect()
        };
        // assets 0: debt / assets has no value. (129 - 73) * 2 = 112, left to right.
        assert_eq!(codes(&applicant(&[("debt", 5.into())])), ["P_ARITHMETIC"]);
        assert_eq!(
            codes(&applicant(&[("debt", 5.into()), ("assets", 2.into())])),
            ["P_DEBT_OVER_ASSETS", "P_ARITHMETIC"]
        );
    }
}
