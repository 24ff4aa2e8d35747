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
mod tests;
