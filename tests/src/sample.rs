//! Realistic applicants for the load generator.
//!
//! Applicants are drawn by resampling the 250 held-out rows of models/golden.json (a random
//! quarter of the credit data, so the same distribution as training) and nudging their
//! numbers a little, which keeps the joint structure (amount against price, age against
//! seniority) that independent draws per field would break. A test checks the result against
//! the training bins: every field's PSI stays below 0.1. Drift mode then shifts chosen fields
//! on purpose.

use valle_shared::intake::application::FieldRule;
use valle_shared::outcomes::fairness::age_band;
use valle_shared::{parse_application, Application, Field};

/// A small, seedable generator (SplitMix64): runs are reproducible with `--seed`.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.unit() * n as f64) as usize % n.max(1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// One shift of drift mode: `income*0.6`, `age+10`, `expenses-5`, `home=parents`.
#[derive(Clone, Debug, PartialEq)]
pub enum Shift {
    Scale(String, f64),
    Add(String, f64),
    Set(String, String),
}

/// Whether a field holds a number, and whether it holds one of a list, by shared's own rules.
fn is_numeric(field: &str) -> bool {
    Field::from_name(field).is_some_and(|field| {
        matches!(
            field.rule(),
            FieldRule::Integer { .. } | FieldRule::Money { .. }
        )
    })
}

fn is_choice(field: &str) -> bool {
    Field::from_name(field).is_some_and(|field| matches!(field.rule(), FieldRule::Choice(_)))
}

impl Shift {
    pub fn parse(text: &str) -> Result<Shift, String> {
        let numeric = |field: &str| {
            is_numeric(field)
                .then(|| field.to_owned())
                .ok_or_else(|| format!("--drift {text}: {field} is not a numeric field"))
        };
        let number = |value: &str| {
            value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("--drift {text}: {value} is not a number"))
        };
        if let Some((field, factor)) = text.split_once('*') {
            return Ok(Shift::Scale(numeric(field)?, number(factor)?));
        }
        if let Some((field, delta)) = text.split_once('+') {
            return Ok(Shift::Add(numeric(field)?, number(delta)?));
        }
        if let Some((field, delta)) = text.split_once('-') {
            return Ok(Shift::Add(numeric(field)?, -number(delta)?));
        }
        if let Some((field, value)) = text.split_once('=') {
            if is_choice(field) {
                return Ok(Shift::Set(field.to_owned(), value.to_owned()));
            }
            return Err(format!("--drift {text}: {field} is not a choice field"));
        }
        Err(format!(
            "--drift {text}: expected FIELD*FACTOR, FIELD+DELTA, FIELD-DELTA or FIELD=VALUE"
        ))
    }

    fn apply(&self, application: &mut serde_json::Value) {
        let round = |value: f64| serde_json::json!(value.round().max(0.0) as u64);
        match self {
            Shift::Scale(field, factor) => {
                if let Some(value) = application[field].as_f64() {
                    application[field] = round(value * factor);
                }
            }
            Shift::Add(field, delta) => {
                if let Some(value) = application[field].as_f64() {
                    application[field] = round(value + delta);
                }
            }
            Shift::Set(field, value) => application[field] = serde_json::json!(value),
        }
    }
}

/// Draws applicants; see the module documentation.
pub struct Sampler {
    rows: Vec<serde_json::Value>,
    shifts: Vec<Shift>,
    branch: Option<String>,
    /// Applicants of this age band (`valle_shared::outcomes::fairness::age_band`) all have prior
    /// default records: a population skewed against the band.
    skew_age: Option<String>,
}

/// Applications that must be refused, one of each kind of mistake, as JSON objects (so an
/// event carrying one passes the envelope check and fails in the consumer).
const INVALID: [&str; 6] = [
    // A required field missing.
    r#"{"seniority_years":9,"home":"rent","term_months":60,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846}"#,
    // A number as text.
    r#"{"seniority_years":9,"home":"rent","term_months":60,"age":"30","marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846}"#,
    // Out of range.
    r#"{"seniority_years":9,"home":"rent","term_months":60,"age":230,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846}"#,
    // A loan larger than the price.
    r#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":1800,"price":846}"#,
    // A value outside the list.
    r#"{"seniority_years":9,"home":"castle","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846}"#,
    // An unknown field.
    r#"{"seniority_years":9,"home":"rent","term_months":60,"age":30,"marital":"married","records":"no","job":"freelance","expenses":73,"income":129,"assets":0,"debt":0,"amount":800,"price":846,"salary":5}"#,
];

impl Sampler {
    pub fn new(shifts: Vec<Shift>, branch: Option<String>) -> Sampler {
        let golden: serde_json::Value =
            serde_json::from_str(include_str!("../../models/golden.json")).unwrap_or_default();
        let rows = golden["rows"]
            .as_array()
            .map(|rows| rows.iter().map(|row| row["application"].clone()).collect())
            .unwrap_or_default();
        Sampler {
            rows,
            shifts,
            branch,
            skew_age: None,
        }
    }

    /// The same sampler, skewed against the applicants of age band `band`.
    pub fn skewed_against(self, band: Option<String>) -> Sampler {
        Sampler {
            skew_age: band,
            ..self
        }
    }

    pub fn rows(&self) -> usize {
        self.rows.len()
    }

    /// A valid applicant as JSON text (the branch set when the sampler has one). With drift
    /// shifts that make some rows invalid, other rows are tried; if none fits, the shifted
    /// row is sent anyway and the server's refusal shows in the report.
    pub fn valid(&self, rng: &mut Rng) -> String {
        let mut last = String::new();
        for _ in 0..20 {
            let mut application = self.rows[rng.below(self.rows.len())].clone();
            nudge(&mut application, rng);
            for shift in &self.shifts {
                shift.apply(&mut application);
            }
            let age = application["age"].as_u64().unwrap_or_default() as u32;
            if self.skew_age.as_deref() == Some(age_band(age).as_str()) {
                application["records"] = serde_json::json!("yes");
            }
            if let Some(branch) = &self.branch {
                application["branch"] = serde_json::json!(branch);
            }
            last = application.to_string();
            if parse_application(last.as_bytes()).is_ok() {
                return last;
            }
        }
        last
    }

    /// An application the validator refuses.
    pub fn invalid(&self, rng: &mut Rng) -> String {
        let mut application: serde_json::Value =
            serde_json::from_str(INVALID[rng.below(INVALID.len())]).unwrap_or_default();
        if let Some(branch) = &self.branch {
            application["branch"] = serde_json::json!(branch);
        }
        application.to_string()
    }
}

/// Moves a row's continuous numbers a little (half the rows keep theirs), as another
/// applicant with a similar profile; a nudge that breaks a rule is undone. Expenses (a
/// household standard with a few values) and loan amounts (mostly round, right on the
/// training bins' edges) are kept: nudging them measurably drifts their PSI.
fn nudge(application: &mut serde_json::Value, rng: &mut Rng) {
    if rng.chance(0.5) {
        return;
    }
    let original = application.clone();
    for field in ["income", "assets", "price"] {
        if let Some(value) = application[field].as_f64() {
            let factor = 0.9 + 0.2 * rng.unit();
            application[field] = serde_json::json!((value * factor).round() as u64);
        }
    }
    if let Some(age) = application["age"].as_u64() {
        application["age"] = serde_json::json!(age + rng.below(3) as u64);
    }
    if parse_application(application.to_string().as_bytes()).is_err() {
        *application = original;
    }
}

/// Parses an application the sampler made (for tests and verification).
pub fn parse(text: &str) -> Option<Application> {
    parse_application(text.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use valle_shared::monitoring::drift::{Binning, DriftCounts, DriftSummary};
    use valle_shared::Model;

    fn drift_of(sampler: &Sampler, n: usize) -> DriftSummary {
        let binning = Binning::embedded().expect("bins");
        let model = Model::embedded().expect("model");
        let mut rng = Rng::new(7);
        let mut counts = DriftCounts::default();
        for _ in 0..n {
            let application = parse(&sampler.valid(&mut rng)).expect("sampled rows are valid");
            let probability = model.probability(&application).expect("scores");
            counts.add(binning, &binning.bins_of(&application, probability));
        }
        DriftSummary::of(binning, &counts, 0)
    }

    fn psi(summary: &DriftSummary, feature: &str) -> f64 {
        summary
            .features
            .iter()
            .find(|f| f.feature == feature)
            .and_then(|f| f.psi)
            .expect(feature)
    }

    #[test]
    fn samples_look_like_training() {
        let sampler = Sampler::new(Vec::new(), None);
        assert_eq!(sampler.rows(), 250);
        let summary = drift_of(&sampler, 4_000);
        for feature in &summary.features {
            assert!(
                feature.psi.is_some_and(|psi| psi < 0.1),
                "{} PSI {:?}",
                feature.feature,
                feature.psi
            );
        }
    }

    #[test]
    fn drift_mode_moves_the_chosen_fields_only() {
        let shifts = ["income*0.6", "home=parents"]
            .iter()
            .map(|text| Shift::parse(text).expect("shift"))
            .collect();
        let summary = drift_of(&Sampler::new(shifts, None), 2_000);
        assert!(psi(&summary, "income") >= 0.2);
        assert!(psi(&summary, "home") >= 0.2);
        assert!(psi(&summary, "term_months") < 0.1);
    }

    #[test]
    fn shifts_parse_or_explain() {
        assert_eq!(Shift::parse("age+10"), Ok(Shift::Add("age".into(), 10.0)));
        assert_eq!(Shift::parse("debt-5"), Ok(Shift::Add("debt".into(), -5.0)));
        assert_eq!(
            Shift::parse("income*0.5"),
            Ok(Shift::Scale("income".into(), 0.5))
        );
        for bad in ["salary*2", "home*2", "age=old", "income*x", "income"] {
            assert!(Shift::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn invalid_rows_are_refused_and_branches_are_set() {
        let sampler = Sampler::new(Vec::new(), Some("carga".into()));
        let mut rng = Rng::new(1);
        for _ in 0..50 {
            assert!(parse(&sampler.invalid(&mut rng)).is_none());
            let valid = parse(&sampler.valid(&mut rng)).expect("valid");
            assert_eq!(valid.branch.as_deref(), Some("carga"));
        }
    }

    #[test]
    fn a_skewed_population_has_records_in_one_age_band_only() {
        let sampler = Sampler::new(Vec::new(), None).skewed_against(Some("26-35".into()));
        let mut rng = Rng::new(7);
        let (mut inside, mut outside_with_records, mut outside) = (0, 0, 0);
        for _ in 0..500 {
            let application = parse(&sampler.valid(&mut rng)).expect("valid");
            if age_band(application.age) == "26-35" {
                inside += 1;
                assert_eq!(application.records.as_str(), "yes");
            } else {
                outside += 1;
                outside_with_records += usize::from(application.records.as_str() == "yes");
            }
        }
        assert!(inside > 50 && outside > 50, "{inside} {outside}");
        assert!(
            outside_with_records * 4 < outside,
            "{outside_with_records} of {outside}"
        );
    }
}
