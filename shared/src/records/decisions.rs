//! Stored decisions: the record every scored application becomes, and the officers' queries
//! over them (filters and cursor pagination), parsed from a query string.

use serde::{Deserialize, Serialize};

use crate::contract::codes::ErrorCode;
use crate::contract::errors::FieldError;
use crate::contract::i18n::Message;
use crate::contract::query::{parse_query, query_error, unless_refused, PageRules};
use crate::contract::request::StageTiming;
use crate::contract::time::parse_rfc3339_ms;
use crate::decision::model::{Band, Decision, Score, ShadowScore};
use crate::intake::application::Application;
use crate::intake::branch::is_branch;
use crate::intake::channel::Channel;
use crate::monitoring::kpi::{Observation, Outcome};
use crate::records::events::{ClientScore, QueuedEvent};
use crate::records::idempotency::{is_same_request, Fingerprint};

/// A client's probability further than this from the edge's is a mismatch. Page and edge run
/// the same wasm and agree bit for bit; other clients may round.
pub const MISMATCH_TOLERANCE: f32 = 1e-6;

/// Whether a client's own score disagrees with the edge's (probability or model).
pub fn is_mismatch(client: &ClientScore, edge: &Score) -> bool {
    (client.probability - edge.probability).abs() > MISMATCH_TOLERANCE
        || client
            .model_version
            .as_ref()
            .is_some_and(|version| version != &edge.model_version)
}

/// One decision, as stored in D1 and returned by `GET /api/v1/decisions/{request_id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct DecisionRecord {
    pub request_id: String,
    pub applicant_id: Option<String>,
    pub branch: String,
    pub channel: Channel,
    pub application: Application,
    pub score: Score,
    pub received_at_ms: i64,
    pub event_time_ms: i64,
    /// Per-stage latency of the request that made it.
    pub timing: Vec<StageTiming>,
    pub client_probability: Option<f32>,
    pub mismatch: bool,
    /// Position in the KPI aggregator's stream, and the count window it fell into.
    pub kpi_seq: Option<u64>,
    pub kpi_window: Option<u64>,
    /// The shadow challenger's verdict, when the shadow was on (officers only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shadow: Option<ShadowScore>,
    /// What the request that made it was ([`crate::records::idempotency`]): kept in storage, never
    /// answered.
    #[serde(skip)]
    pub fingerprint: Option<Fingerprint>,
}

impl DecisionRecord {
    /// Whether `incoming`, which repeats this decision's request id, is the request that
    /// stored it; if not, the repeat is refused and told nothing of this one.
    pub fn is_repeated_by(&self, incoming: &DecisionRecord) -> bool {
        is_same_request(
            self.fingerprint.as_ref(),
            &self.application,
            incoming.fingerprint.as_ref(),
            &incoming.application,
        )
    }

    /// The total latency the KPIs count for this decision.
    pub fn latency_ms(&self) -> f64 {
        self.timing
            .iter()
            .find(|stage| stage.name == crate::contract::request::Stage::Total.as_str())
            .map_or(0.0, |stage| stage.ms)
    }

    /// What the KPI aggregator counts for this decision; a recomputation from stored rows
    /// uses the same function, so it sees exactly what the aggregator saw.
    pub fn observation(&self) -> Observation {
        Observation {
            request_id: self.request_id.clone(),
            branch: self.branch.clone(),
            channel: self.channel,
            received_at_ms: self.received_at_ms,
            event_time_ms: self.event_time_ms,
            latency_ms: self.latency_ms(),
            outcome: Outcome::Decided {
                band: self.score.band,
                decision: self.score.decision,
                probability: self.score.probability,
                confidence: self.score.confidence,
                mismatch: self.mismatch,
            },
            drift_bins: crate::monitoring::drift::Binning::embedded_bins_of(
                &self.application,
                self.score.probability,
            ),
        }
    }
}

/// A dead letter: an accepted event that could not become a decision, kept with the exact
/// event so an officer can replay it, corrected or not.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct DeadLetter {
    pub id: i64,
    pub event_id: String,
    /// The event as it was first queued, application text included; kept as it came.
    pub payload: QueuedEvent,
    /// The event as its latest failure had it, when its application differs from
    /// `payload`'s (an officer's correction that failed again, or a resend).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latest_payload: Option<QueuedEvent>,
    pub error_code: ErrorCode,
    pub error_message: String,
    pub attempts: u32,
    pub status: DeadLetterStatus,
    pub first_failed_at_ms: i64,
    pub last_failed_at_ms: i64,
    pub replayed_at_ms: Option<i64>,
}

/// Where a dead letter stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeadLetterStatus {
    /// Waiting for an officer's replay.
    Open,
    /// A replay made it a decision.
    Replayed,
    /// A later delivery of the same event made it a decision.
    Superseded,
}

impl DeadLetterStatus {
    pub const ALL: [DeadLetterStatus; 3] = [
        DeadLetterStatus::Open,
        DeadLetterStatus::Replayed,
        DeadLetterStatus::Superseded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeadLetterStatus::Open => "open",
            DeadLetterStatus::Replayed => "replayed",
            DeadLetterStatus::Superseded => "superseded",
        }
    }

    pub fn from_name(name: &str) -> Option<DeadLetterStatus> {
        DeadLetterStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == name)
    }
}

/// A page of dead letters, newest first: `GET /api/v1/dead-letters`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct DeadLetterPage {
    pub dead_letters: Vec<DeadLetter>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<i64>,
}

/// `200 OK` from `POST /api/v1/dead-letters/{id}/replay`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct ReplayResponse {
    pub dead_letter_id: i64,
    pub status: DeadLetterStatus,
    /// The event was already a decision (an earlier replay or delivery stored it).
    pub replayed: bool,
    pub decision: DecisionRecord,
}

/// `GET /api/v1/decisions`: filters, page size and where to continue.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DecisionQuery {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub branch: Option<String>,
    pub band: Option<Band>,
    pub decision: Option<Decision>,
    pub channel: Option<Channel>,
    pub limit: usize,
    pub cursor: Option<Cursor>,
}

pub const DEFAULT_PAGE: usize = crate::contract::query::DEFAULT_LIMIT;
pub const MAX_PAGE: usize = 500;

/// How the decision list pages: by the opaque `cursor` of the previous page.
pub const DECISION_PAGES: PageRules = PageRules::up_to(MAX_PAGE);

/// Where the next page starts: decisions are listed newest first by (received_at, request_id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub received_at_ms: i64,
    pub request_id: String,
}

impl Cursor {
    /// Where the page after `record` starts.
    pub fn after(record: &DecisionRecord) -> Cursor {
        Cursor {
            received_at_ms: record.received_at_ms,
            request_id: record.request_id.clone(),
        }
    }

    /// Whether `record` comes after the cursor, newest first (arrival, then request id).
    pub fn precedes(&self, record: &DecisionRecord) -> bool {
        (record.received_at_ms, record.request_id.as_str())
            < (self.received_at_ms, self.request_id.as_str())
    }

    /// `<received_at_ms>.<request_id>`; opaque to clients.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.received_at_ms, self.request_id)
    }

    pub fn decode(text: &str) -> Option<Cursor> {
        let (ms, id) = text.split_once('.')?;
        Some(Cursor {
            received_at_ms: ms.parse().ok().filter(|ms: &i64| *ms >= 0)?,
            request_id: id.to_owned(),
        })
        .filter(|cursor| crate::contract::request::is_valid_request_id(&cursor.request_id))
    }
}

impl std::str::FromStr for Cursor {
    type Err = ();

    fn from_str(text: &str) -> Result<Cursor, ()> {
        Cursor::decode(text).ok_or(())
    }
}

/// A page of decisions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(schemars::JsonSchema))]
pub struct DecisionPage {
    pub decisions: Vec<DecisionRecord>,
    /// Pass as `cursor` to get the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl DecisionPage {
    /// The page of `limit` from rows read newest first with one more than `limit`: the
    /// extra row only says that another page follows.
    pub fn from_rows(mut rows: Vec<DecisionRecord>, limit: usize) -> DecisionPage {
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = more
            .then(|| rows.last())
            .flatten()
            .map(|last| Cursor::after(last).encode());
        DecisionPage {
            decisions: rows,
            next_cursor,
        }
    }
}

impl DecisionQuery {
    /// Parses `from`, `to` (RFC 3339), `branch`, `band`, `decision`, `channel`, `limit` and
    /// `cursor`; reports every bad parameter at once.
    pub fn parse(query: &str) -> Result<DecisionQuery, Vec<FieldError>> {
        let mut parsed = DecisionQuery::default();
        let mut period = Period::default();
        let page = DECISION_PAGES.parse::<Cursor>(query, |key, value, errors| {
            if period.take(key, value, errors) {
                return true;
            }
            let named = || serde_json::Value::String(value.to_owned());
            match key {
                "band" => {
                    let read = serde_json::from_value(named()).ok();
                    parsed.band = chosen(read, key, &["bajo", "medio", "alto"], errors);
                }
                "decision" => {
                    let read = serde_json::from_value(named()).ok();
                    let names = ["approve", "review", "decline"];
                    parsed.decision = chosen(read, key, &names, errors);
                }
                "channel" => {
                    let names = ["online", "offline-sync", "batch"];
                    parsed.channel = chosen(Channel::parse(value), key, &names, errors);
                }
                _ => return false,
            }
            true
        });
        let mut errors = match page {
            Ok(page) => {
                (parsed.limit, parsed.cursor) = (page.limit, page.cursor);
                Vec::new()
            }
            Err(errors) => errors,
        };
        Period::check_order(period.from_ms, period.to_ms, &mut errors);
        (parsed.from_ms, parsed.to_ms, parsed.branch) =
            (period.from_ms, period.to_ms, period.branch);
        unless_refused(parsed, errors)
    }
}

/// `read`, or, when the value is none of `names`, `E_ENUM` saying which they are.
fn chosen<T>(
    read: Option<T>,
    key: &str,
    names: &[&str],
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    if read.is_none() {
        let (last, rest) = names.split_last().unwrap_or((&"", &[]));
        let rest = rest.join(", ");
        errors.push(query_error(
            key,
            ErrorCode::Enum,
            Some(Message::new(
                format!("Debe ser {rest} o {last}."),
                format!("Must be {rest} or {last}."),
            )),
        ));
    }
    read
}

/// `from`, `to` (RFC 3339) and `branch`: the filters the decision list and the reports share.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Period {
    pub from_ms: Option<i64>,
    pub to_ms: Option<i64>,
    pub branch: Option<String>,
}

impl Period {
    /// Takes the parameter if it is one of the period's (a bad value adds its error);
    /// `false` leaves it to the caller.
    pub fn take(&mut self, key: &str, value: &str, errors: &mut Vec<FieldError>) -> bool {
        let time = |errors: &mut Vec<FieldError>| {
            let ms = parse_rfc3339_ms(value);
            if ms.is_none() {
                errors.push(query_error(
                    key,
                    ErrorCode::Format,
                    Some(Message::new(
                        "Debe ser una fecha RFC 3339, p. ej. 2026-11-23T10:00:00Z.",
                        "Must be an RFC 3339 time, e.g. 2026-11-23T10:00:00Z.",
                    )),
                ));
            }
            ms
        };
        match key {
            "from" => self.from_ms = time(errors),
            "to" => self.to_ms = time(errors),
            "branch" if is_branch(value) => self.branch = Some(value.to_owned()),
            "branch" => errors.push(query_error(
                "branch",
                ErrorCode::Format,
                Some(Message::new(
                    "La sucursal debe tener de 1 a 64 letras, cifras, espacios, '.', '_' o '-'.",
                    "The branch must be 1 to 64 letters, digits, spaces, '.', '_' or '-'.",
                )),
            )),
            _ => return false,
        }
        true
    }

    /// `to` before `from` is an error on `to`.
    pub fn check_order(from_ms: Option<i64>, to_ms: Option<i64>, errors: &mut Vec<FieldError>) {
        if let (Some(from), Some(to)) = (from_ms, to_ms) {
            if from > to {
                errors.push(query_error(
                    "to",
                    ErrorCode::Cross,
                    Some(Message::new(
                        "to debe ser posterior a from.",
                        "to must not be before from.",
                    )),
                ));
            }
        }
    }

    /// Parses a report's query: the period and nothing else but `extra`, whose values the
    /// caller checks.
    pub fn parse(
        query: &str,
        extra: &mut dyn FnMut(&str, &str, &mut Vec<FieldError>) -> bool,
    ) -> Result<Period, Vec<FieldError>> {
        let mut period = Period::default();
        let mut errors = Vec::new();
        for (key, value) in parse_query(query) {
            if !period.take(&key, &value, &mut errors) && !extra(&key, &value, &mut errors) {
                errors.push(query_error(&key, ErrorCode::UnknownField, None));
            }
        }
        Period::check_order(period.from_ms, period.to_ms, &mut errors);
        unless_refused(period, errors)
    }
}

#[cfg(test)]
mod tests;
