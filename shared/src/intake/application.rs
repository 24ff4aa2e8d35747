//! The loan application: its fields, their rules, and the validated domain type.
//!
//! Field names match the columns of the credit data the model is trained on
//! (Seniority, Home, Time, Age, Marital, Records, Job, Expenses, Income, Assets, Debt,
//! Amount, Price), so the encoder maps them one to one.

use serde::{Deserialize, Serialize};

use crate::contract::i18n::Lang;

/// Declares a closed set of wire strings as a Rust enum with its list of allowed values.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant),+
        }

        impl $name {
            /// Every allowed wire value, in declaration order.
            pub const VALUES: &'static [&'static str] = &[$($wire),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire),+
                }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($wire => Some($name::$variant),)+
                    _ => None,
                }
            }
        }
    };
}

wire_enum!(
    /// Housing situation.
    Home {
        Rent => "rent",
        Owner => "owner",
        Parents => "parents",
        Priv => "priv",
        Other => "other",
        Ignore => "ignore",
    }
);

wire_enum!(
    /// Marital status.
    Marital {
        Single => "single",
        Married => "married",
        Widow => "widow",
        Separated => "separated",
        Divorced => "divorced",
    }
);

wire_enum!(
    /// Whether the applicant has prior default records.
    Records {
        Yes => "yes",
        No => "no",
    }
);

wire_enum!(
    /// Kind of employment.
    Job {
        Fixed => "fixed",
        Partime => "partime",
        Freelance => "freelance",
        Others => "others",
    }
);

/// A validated application. Only `validation::validate` builds one from wire data,
/// so holding an `Application` means every rule has passed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Application {
    pub seniority_years: u32,
    pub home: Home,
    pub term_months: u32,
    pub age: u32,
    pub marital: Marital,
    pub records: Records,
    pub job: Job,
    pub expenses: f64,
    pub income: f64,
    pub assets: f64,
    pub debt: f64,
    pub amount: f64,
    pub price: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applicant_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
}

impl Application {
    /// The value of a numeric field, `None` for choice and text fields.
    pub fn number(&self, field: Field) -> Option<f64> {
        Some(match field {
            Field::SeniorityYears => f64::from(self.seniority_years),
            Field::TermMonths => f64::from(self.term_months),
            Field::Age => f64::from(self.age),
            Field::Expenses => self.expenses,
            Field::Income => self.income,
            Field::Assets => self.assets,
            Field::Debt => self.debt,
            Field::Amount => self.amount,
            Field::Price => self.price,
            _ => return None,
        })
    }

    /// The wire value of a choice field, `None` for numeric and text fields.
    pub fn choice(&self, field: Field) -> Option<&'static str> {
        Some(match field {
            Field::Home => self.home.as_str(),
            Field::Marital => self.marital.as_str(),
            Field::Records => self.records.as_str(),
            Field::Job => self.job.as_str(),
            _ => return None,
        })
    }

    /// A copy with one numeric field replaced; whole-number fields are rounded.
    /// Returns `None` for a field that is not numeric.
    pub fn with_number(&self, field: Field, value: f64) -> Option<Application> {
        let mut copy = self.clone();
        // Baselines are medians of whole numbers, so rounding loses nothing.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let whole = value.round().max(0.0) as u32;
        match field {
            Field::SeniorityYears => copy.seniority_years = whole,
            Field::TermMonths => copy.term_months = whole,
            Field::Age => copy.age = whole,
            Field::Expenses => copy.expenses = value,
            Field::Income => copy.income = value,
            Field::Assets => copy.assets = value,
            Field::Debt => copy.debt = value,
            Field::Amount => copy.amount = value,
            Field::Price => copy.price = value,
            _ => return None,
        }
        Some(copy)
    }

    /// A copy with one choice field replaced, `None` if the value is not allowed there.
    pub fn with_choice(&self, field: Field, value: &str) -> Option<Application> {
        let mut copy = self.clone();
        match field {
            Field::Home => copy.home = Home::parse(value)?,
            Field::Marital => copy.marital = Marital::parse(value)?,
            Field::Records => copy.records = Records::parse(value)?,
            Field::Job => copy.job = Job::parse(value)?,
            _ => return None,
        }
        Some(copy)
    }
}

/// Every field of the wire form, in the order errors are reported and the form is laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Field {
    ApplicantId,
    Branch,
    Age,
    Marital,
    Home,
    Job,
    SeniorityYears,
    Records,
    Income,
    Expenses,
    Assets,
    Debt,
    Amount,
    Price,
    TermMonths,
}

/// Which characters a free-text field accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Charset {
    /// ASCII letters, digits, `.`, `_` and `-`: identifiers from other systems.
    Identifier,
    /// Letters of any script, digits, spaces, `.`, `_` and `-`: human-readable names.
    Name,
}

impl Charset {
    pub fn allows(self, c: char) -> bool {
        match self {
            Charset::Identifier => c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'),
            Charset::Name => c.is_alphanumeric() || matches!(c, ' ' | '.' | '_' | '-'),
        }
    }
}

/// Whether `text` is an applicant id the form would take, so a path may name one.
pub fn is_applicant_id(text: &str) -> bool {
    match Field::ApplicantId.rule() {
        FieldRule::Text { max_chars, charset } => {
            !text.is_empty()
                && text.chars().count() <= max_chars
                && text.chars().all(|c| charset.allows(c))
        }
        _ => false,
    }
}

/// The rule a single field must satisfy on its own.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FieldRule {
    /// A whole number within `min..=max`.
    Integer { min: i64, max: i64 },
    /// An amount of euros within `min..=max`, with at most two decimals.
    Money { min: f64, max: f64 },
    /// One of a closed list of strings.
    Choice(&'static [&'static str]),
    /// Free text of `1..=max_chars` characters drawn from `charset`.
    Text { max_chars: usize, charset: Charset },
}

impl FieldRule {
    /// An amount of euros within `min..=max`: one line in the table of fields.
    const fn money(min: f64, max: f64) -> FieldRule {
        FieldRule::Money { min, max }
    }
}

impl Field {
    pub const ALL: [Field; 15] = [
        Field::ApplicantId,
        Field::Branch,
        Field::Age,
        Field::Marital,
        Field::Home,
        Field::Job,
        Field::SeniorityYears,
        Field::Records,
        Field::Income,
        Field::Expenses,
        Field::Assets,
        Field::Debt,
        Field::Amount,
        Field::Price,
        Field::TermMonths,
    ];

    /// The JSON key of the field.
    pub fn name(self) -> &'static str {
        match self {
            Field::ApplicantId => "applicant_id",
            Field::Branch => "branch",
            Field::Age => "age",
            Field::Marital => "marital",
            Field::Home => "home",
            Field::Job => "job",
            Field::SeniorityYears => "seniority_years",
            Field::Records => "records",
            Field::Income => "income",
            Field::Expenses => "expenses",
            Field::Assets => "assets",
            Field::Debt => "debt",
            Field::Amount => "amount",
            Field::Price => "price",
            Field::TermMonths => "term_months",
        }
    }

    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|field| field.name() == name)
    }

    /// Optional fields may be absent or `null`; every other field is required.
    pub fn is_required(self) -> bool {
        !matches!(self, Field::ApplicantId | Field::Branch)
    }

    /// The single-field rule. Bounds are in euros, months and years; they are wide enough for
    /// every row of the training data and tight enough to catch a misplaced digit.
    pub fn rule(self) -> FieldRule {
        match self {
            Field::ApplicantId => FieldRule::Text {
                max_chars: 64,
                charset: Charset::Identifier,
            },
            Field::Branch => FieldRule::Text {
                max_chars: 64,
                charset: Charset::Name,
            },
            Field::Age => FieldRule::Integer { min: 18, max: 100 },
            Field::SeniorityYears => FieldRule::Integer { min: 0, max: 70 },
            Field::TermMonths => FieldRule::Integer { min: 6, max: 72 },
            Field::Marital => FieldRule::Choice(Marital::VALUES),
            Field::Home => FieldRule::Choice(Home::VALUES),
            Field::Job => FieldRule::Choice(Job::VALUES),
            Field::Records => FieldRule::Choice(Records::VALUES),
            Field::Income => FieldRule::money(0.0, 100_000.0),
            Field::Expenses => FieldRule::money(0.0, 100_000.0),
            Field::Assets => FieldRule::money(0.0, 100_000_000.0),
            Field::Debt => FieldRule::money(0.0, 10_000_000.0),
            Field::Amount => FieldRule::money(100.0, 1_000_000.0),
            Field::Price => FieldRule::money(100.0, 10_000_000.0),
        }
    }

    /// The label shown beside the input and inside error messages.
    pub fn label(self, lang: Lang) -> &'static str {
        let (es, en) = match self {
            Field::ApplicantId => ("Identificador del solicitante", "Applicant ID"),
            Field::Branch => ("Sucursal", "Branch"),
            Field::Age => ("Edad (años)", "Age (years)"),
            Field::Marital => ("Estado civil", "Marital status"),
            Field::Home => ("Vivienda", "Housing"),
            Field::Job => ("Tipo de empleo", "Employment type"),
            Field::SeniorityYears => ("Antigüedad laboral (años)", "Years with employer"),
            Field::Records => ("Antecedentes de impago", "Prior default records"),
            Field::Income => ("Ingresos mensuales (€)", "Monthly income (€)"),
            Field::Expenses => ("Gastos mensuales (€)", "Monthly expenses (€)"),
            Field::Assets => ("Patrimonio (€)", "Assets (€)"),
            Field::Debt => ("Deuda actual (€)", "Current debt (€)"),
            Field::Amount => ("Importe solicitado (€)", "Requested amount (€)"),
            Field::Price => ("Precio del bien (€)", "Price of the good (€)"),
            Field::TermMonths => ("Plazo (meses)", "Term (months)"),
        };
        match lang {
            Lang::Es => es,
            Lang::En => en,
        }
    }
}

/// The display text of an allowed choice value.
pub fn choice_label(value: &str, lang: Lang) -> &'static str {
    let (es, en) = match value {
        "rent" => ("Alquiler", "Rent"),
        "owner" => ("Propietario", "Owner"),
        "parents" => ("Con los padres", "With parents"),
        "priv" => ("Vivienda privada", "Private"),
        "other" => ("Otra", "Other"),
        "ignore" => ("No consta", "Not stated"),
        "single" => ("Soltero/a", "Single"),
        "married" => ("Casado/a", "Married"),
        "widow" => ("Viudo/a", "Widowed"),
        "separated" => ("Separado/a", "Separated"),
        "divorced" => ("Divorciado/a", "Divorced"),
        "yes" => ("Sí", "Yes"),
        "no" => ("No", "No"),
        "fixed" => ("Fijo", "Permanent"),
        "partime" => ("Tiempo parcial", "Part-time"),
        "freelance" => ("Autónomo", "Self-employed"),
        "others" => ("Otros", "Other"),
        _ => ("?", "?"),
    };
    match lang {
        Lang::Es => es,
        Lang::En => en,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_round_trip_and_are_unique() {
        for field in Field::ALL {
            assert_eq!(Field::from_name(field.name()), Some(field));
        }
        let mut names: Vec<_> = Field::ALL.iter().map(|field| field.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Field::ALL.len());
    }

    #[test]
    fn every_choice_has_a_label_in_both_languages() {
        for values in [Home::VALUES, Marital::VALUES, Records::VALUES, Job::VALUES] {
            for value in values {
                assert_ne!(choice_label(value, Lang::Es), "?", "{value}");
                assert_ne!(choice_label(value, Lang::En), "?", "{value}");
            }
        }
    }

    #[test]
    fn wire_enums_parse_only_their_values() {
        assert_eq!(Home::parse("owner"), Some(Home::Owner));
        assert_eq!(Home::parse("Owner"), None);
        assert_eq!(Job::parse("partime").map(Job::as_str), Some("partime"));
        assert_eq!(Records::parse(""), None);
    }
}
