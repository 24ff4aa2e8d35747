//! What became of a scored loan: `POST /api/v1/outcomes` batches of
//! `{request_id, status: good | bad | open, observed_at}`.
//!
//! [`parse_outcomes`] checks a batch on its own (shapes, duplicates, dates);
//! [`plan_outcomes`] checks it against the stored decisions and outcomes and says what a
//! write changes. An outcome that is already stored changes nothing; a matured one (good or
//! bad) replaces an open one; a matured one never changes again.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::contract::body::{read_object, ObjectBody};
use crate::contract::codes::ErrorCode;
use crate::contract::errors::{FieldError, RequestError};
use crate::contract::i18n::Message;
use crate::contract::request::is_valid_request_id;
use crate::contract::time::parse_rfc3339_ms;

/// Most outcomes in one request.
pub const MAX_OUTCOMES: usize = 1000;
/// Largest body: a thousand outcomes of about 120 bytes, with room.
pub const MAX_OUTCOMES_BYTES: usize = 256 * 1024;
/// How far an `observed_at` may lie ahead of the worker's clock (clocks drift).
pub const MAX_CLOCK_SKEW_MS: i64 = 5 * 60 * 1000;
const DAY_MS: i64 = 86_400_000;
/// The CSV columns the dashboard's upload reads.
pub const CSV_COLUMNS: [&str; 3] = ["request_id", "status", "observed_at"];

/// A loan's state when it was observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum LoanStatus {
    /// Repaid, or running past the performance window without default.
    Good,
    /// Defaulted.
    Bad,
    /// Still running: no label yet.
    Open,
}

pub const LOAN_STATUSES: [LoanStatus; 3] = [LoanStatus::Good, LoanStatus::Bad, LoanStatus::Open];

impl LoanStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LoanStatus::Good => "good",
            LoanStatus::Bad => "bad",
            LoanStatus::Open => "open",
        }
    }

    pub fn parse(text: &str) -> Option<LoanStatus> {
        LOAN_STATUSES.into_iter().find(|s| s.as_str() == text)
    }

    /// Good or bad: the loan has its label, which does not change again.
    pub fn is_matured(self) -> bool {
        self != LoanStatus::Open
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct LoanOutcome {
    pub request_id: String,
    pub status: LoanStatus,
    pub observed_at_ms: i64,
}

/// A decision an outcome names, as stored, with the outcome stored for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownDecision {
    pub request_id: String,
    pub received_at_ms: i64,
    pub outcome: Option<LoanOutcome>,
}

/// What a checked batch writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutcomePlan {
    /// Outcomes for decisions that had none.
    pub recorded: Vec<LoanOutcome>,
    /// Matured outcomes over open ones (each audited with what it replaced).
    pub replaced: Vec<LoanOutcome>,
    /// Outcomes already stored as sent: nothing to write.
    pub unchanged: usize,
}

impl OutcomePlan {
    pub fn writes(&self) -> impl Iterator<Item = &LoanOutcome> {
        self.recorded.iter().chain(&self.replaced)
    }

    pub fn is_empty(&self) -> bool {
        self.recorded.is_empty() && self.replaced.is_empty()
    }

    pub fn answer(&self) -> OutcomesAnswer {
        OutcomesAnswer {
            recorded: self.recorded.len(),
            replaced: self.replaced.len(),
            unchanged: self.unchanged,
        }
    }
}

/// `200 OK` from `POST /api/v1/outcomes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct OutcomesAnswer {
    pub recorded: usize,
    pub replaced: usize,
    pub unchanged: usize,
}

fn item_field(index: usize, name: &str) -> String {
    format!("outcomes[{index}].{name}")
}

/// A date (`2026-11-30`, midnight UTC) or an RFC 3339 timestamp.
pub fn parse_observed_at(text: &str) -> Option<i64> {
    if text.len() == 10 {
        parse_rfc3339_ms(&format!("{text}T00:00:00Z"))
    } else {
        parse_rfc3339_ms(text)
    }
}

/// `{"outcomes": [...]}` with 1 to [`MAX_OUTCOMES`] items, each checked on its own, then
/// for request ids sent twice. Every problem is reported at once, on its item's field.
pub fn parse_outcomes(body: &[u8], now_ms: i64) -> Result<Vec<LoanOutcome>, RequestError> {
    let ObjectBody {
        object: mut envelope,
        mut errors,
    } = read_object(body, MAX_OUTCOMES_BYTES, &["outcomes"])?;
    let items = match envelope.remove("outcomes") {
        Some(Value::Array(items)) if (1..=MAX_OUTCOMES).contains(&items.len()) => items,
        Some(Value::Array(items)) => {
            errors.push(FieldError::new(
                "outcomes",
                ErrorCode::Range,
                Message::new(
                    format!(
                        "El lote tiene {} resultados; se admiten de 1 a {MAX_OUTCOMES}.",
                        items.len()
                    ),
                    format!(
                        "The batch has {} outcomes; 1 to {MAX_OUTCOMES} are allowed.",
                        items.len()
                    ),
                ),
            ));
            return Err(RequestError::Invalid(errors));
        }
        Some(_) => {
            errors.push(FieldError::new(
                "outcomes",
                ErrorCode::Type,
                Message::new("Debe ser una lista.", "Must be an array."),
            ));
            return Err(RequestError::Invalid(errors));
        }
        None => {
            errors.push(FieldError::required("outcomes"));
            return Err(RequestError::Invalid(errors));
        }
    };
    let mut outcomes = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        if let Some(outcome) = parse_item(index, item, now_ms, &mut errors) {
            outcomes.push((index, outcome));
        }
    }
    let mut seen = std::collections::HashMap::new();
    for (index, outcome) in &outcomes {
        if let Some(first) = seen.insert(outcome.request_id.as_str(), *index) {
            errors.push(FieldError::new(
                &item_field(*index, "request_id"),
                ErrorCode::Duplicate,
                Message::new(
                    format!("Este préstamo ya está en outcomes[{first}] del mismo lote."),
                    format!("This loan is already in outcomes[{first}] of the same batch."),
                ),
            ));
        }
    }
    if errors.is_empty() {
        Ok(outcomes.into_iter().map(|(_, outcome)| outcome).collect())
    } else {
        Err(RequestError::Invalid(errors))
    }
}

fn parse_item(
    index: usize,
    item: &Value,
    now_ms: i64,
    errors: &mut Vec<FieldError>,
) -> Option<LoanOutcome> {
    let Value::Object(object) = item else {
        errors.push(FieldError::new(
            &format!("outcomes[{index}]"),
            ErrorCode::Type,
            Message::new("Debe ser un objeto.", "Must be an object."),
        ));
        return None;
    };
    for key in object
        .keys()
        .filter(|key| !CSV_COLUMNS.contains(&key.as_str()))
    {
        errors.push(FieldError::unknown(&item_field(index, key)));
    }
    let text = |name: &str, errors: &mut Vec<FieldError>| match object.get(name) {
        None | Some(Value::Null) => {
            errors.push(FieldError::required(&item_field(index, name)));
            None
        }
        Some(Value::String(text)) => Some(text.as_str()),
        Some(_) => {
            errors.push(FieldError::not_text(&item_field(index, name)));
            None
        }
    };
    let request_id = text("request_id", errors).and_then(|id| {
        let valid = is_valid_request_id(id);
        if !valid {
            errors.push(FieldError::new(
                &item_field(index, "request_id"),
                ErrorCode::Format,
                Message::new(
                    "Identificador no válido: de 1 a 128 letras, cifras o . _ - :",
                    "Invalid id: 1 to 128 letters, digits or . _ - :",
                ),
            ));
        }
        valid.then(|| id.to_owned())
    });
    let status = text("status", errors).and_then(|status| {
        let parsed = LoanStatus::parse(status);
        if parsed.is_none() {
            errors.push(FieldError::new(
                &item_field(index, "status"),
                ErrorCode::Enum,
                Message::new("Debe ser good, bad u open.", "Must be good, bad or open."),
            ));
        }
        parsed
    });
    let observed_at = text("observed_at", errors).and_then(|at| match parse_observed_at(at) {
        None => {
            errors.push(FieldError::new(
                &item_field(index, "observed_at"),
                ErrorCode::Format,
                Message::new(
                    "Fecha no válida: AAAA-MM-DD o RFC 3339.",
                    "Invalid date: YYYY-MM-DD or RFC 3339.",
                ),
            ));
            None
        }
        Some(ms) if ms > now_ms + MAX_CLOCK_SKEW_MS => {
            errors.push(FieldError::new(
                &item_field(index, "observed_at"),
                ErrorCode::Range,
                Message::new("La fecha está en el futuro.", "The date is in the future."),
            ));
            None
        }
        Some(ms) => Some(ms),
    });
    Some(LoanOutcome {
        request_id: request_id?,
        status: status?,
        observed_at_ms: observed_at?,
    })
}

/// What `outcomes` (checked by [`parse_outcomes`], in body order) change against what is
/// stored; `known` holds every stored decision they name. Refused as a whole when one of
/// them names no decision, predates its decision or would change a matured outcome.
pub fn plan_outcomes(
    outcomes: &[LoanOutcome],
    known: &[KnownDecision],
) -> Result<OutcomePlan, RequestError> {
    let mut plan = OutcomePlan::default();
    let mut errors = Vec::new();
    for (index, outcome) in outcomes.iter().enumerate() {
        let Some(decision) = known.iter().find(|k| k.request_id == outcome.request_id) else {
            errors.push(FieldError::new(
                &item_field(index, "request_id"),
                ErrorCode::NotFound,
                Message::new(
                    "No hay ninguna decisión con este identificador.",
                    "No decision has this id.",
                ),
            ));
            continue;
        };
        // By day: a date (midnight) for a loan decided later that day is not early.
        if outcome.observed_at_ms.div_euclid(DAY_MS) < decision.received_at_ms.div_euclid(DAY_MS) {
            errors.push(FieldError::new(
                &item_field(index, "observed_at"),
                ErrorCode::Range,
                Message::new(
                    "La fecha es anterior al día de la decisión.",
                    "The date is before the day of the decision.",
                ),
            ));
            continue;
        }
        match &decision.outcome {
            None => plan.recorded.push(outcome.clone()),
            Some(stored) if stored.status == outcome.status => plan.unchanged += 1,
            Some(stored) if stored.status.is_matured() => errors.push(FieldError::new(
                &item_field(index, "status"),
                ErrorCode::Final,
                Message::new(
                    format!(
                        "El préstamo ya terminó como {}; ese resultado no cambia.",
                        stored.status.as_str()
                    ),
                    format!(
                        "The loan already ended as {}; that outcome does not change.",
                        stored.status.as_str()
                    ),
                ),
            )),
            Some(stored) if outcome.observed_at_ms < stored.observed_at_ms => {
                errors.push(FieldError::new(
                    &item_field(index, "observed_at"),
                    ErrorCode::Range,
                    Message::new(
                        "La fecha es anterior al resultado abierto ya guardado.",
                        "The date is before the open outcome already stored.",
                    ),
                ))
            }
            Some(_) => plan.replaced.push(outcome.clone()),
        }
    }
    if errors.is_empty() {
        Ok(plan)
    } else {
        Err(RequestError::Invalid(errors))
    }
}

/// The dashboard's upload: a CSV with a header naming [`CSV_COLUMNS`] (any order, other
/// columns refused) into `{"outcomes": [...]}` bodies of at most [`MAX_OUTCOMES`] items,
/// each with the CSV line of its first item. The worker checks the values.
pub fn outcomes_csv_to_bodies(text: &str) -> Result<Vec<(usize, String)>, Message> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| Message::new(format!("CSV no válido: {e}"), format!("Invalid CSV: {e}")))?
        .clone();
    let position = |name: &str| header.iter().position(|column| column == name);
    let columns: Option<Vec<usize>> = CSV_COLUMNS.iter().map(|name| position(name)).collect();
    let columns = match columns {
        Some(columns) if header.len() == CSV_COLUMNS.len() => columns,
        _ => {
            return Err(Message::new(
                "La primera línea debe ser request_id,status,observed_at.",
                "The first line must be request_id,status,observed_at.",
            ))
        }
    };
    let mut items = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let record = record.map_err(|e| {
            Message::new(
                format!("Línea {}: {e}", index + 2),
                format!("Line {}: {e}", index + 2),
            )
        })?;
        let mut item = serde_json::Map::new();
        for (name, column) in CSV_COLUMNS.iter().zip(&columns) {
            let value = record.get(*column).unwrap_or_default();
            item.insert((*name).to_owned(), Value::String(value.to_owned()));
        }
        items.push(Value::Object(item));
    }
    if items.is_empty() {
        return Err(Message::new(
            "El archivo no tiene resultados.",
            "The file has no outcomes.",
        ));
    }
    Ok(items
        .chunks(MAX_OUTCOMES)
        .enumerate()
        .map(|(chunk, items)| {
            let body = serde_json::json!({ "outcomes": items }).to_string();
            (chunk * MAX_OUTCOMES + 2, body)
        })
        .collect())
}

#[cfg(test)]
mod tests;
