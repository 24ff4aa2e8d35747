//! What the KPI object reads and writes: its position in D1's decision log, the rows it
//! reads back, the writes it stages through its outbox, its snapshot, and the sink the
//! request path pokes.

use serde::{Deserialize, Deserializer, Serialize};
use valle_shared::monitoring::drift::DriftReport;
use valle_shared::monitoring::kpi::{CountWindow, EventWindow, KpiView, LateEvent, Observation};

use super::StoreError;

/// How far the KPI object has read D1: the newest decision row (`decisions.seq`) and dead
/// letter (`dead_letters.id`) it has counted. Both only grow, in commit order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogPosition {
    pub decision_seq: u64,
    pub dead_letter_id: u64,
}

/// One stored decision as the KPI object reads it back.
#[derive(Clone, Debug, PartialEq)]
pub struct LoggedDecision {
    pub seq: u64,
    pub observation: Observation,
    /// Counted by a version of Valle that counted on the request path (it has a place).
    pub counted_before: bool,
}

/// D1 rows after a position, in commit order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogPage {
    pub decisions: Vec<LoggedDecision>,
    /// Each first failure of an event, with its dead letter's id.
    pub dead_letters: Vec<(u64, Observation)>,
}

/// Where one decision landed in the KPI stream: its D1 row, its sequence number and the
/// count window it fell into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Place {
    pub row: u64,
    pub seq: u64,
    pub window: u64,
}

/// A write D1 still has to receive.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum D1Write {
    /// The places of the decisions one counting round counted, written in one statement.
    DecisionPlaces {
        places: Vec<Place>,
    },
    /// One decision's place, as a version that counted on the request path queued it.
    DecisionPlace {
        request_id: String,
        seq: u64,
        count_window: u64,
    },
    CountWindow(Box<CountWindow>),
    EventWindow(Box<EventWindow>),
    Late(LateEvent),
}

#[derive(Deserialize)]
struct DecisionPlaceFields {
    request_id: String,
    seq: u64,
    count_window: u64,
}

#[derive(Deserialize)]
struct DecisionPlacesFields {
    places: Vec<Place>,
}

impl<'de> Deserialize<'de> for D1Write {
    /// Reads the tagged form by hand: serde's derived reader for internally tagged enums
    /// buffers the content, and that buffer cannot read the latency sketch's integer map
    /// keys back ("0": 1).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<D1Write, D::Error> {
        use serde::de::Error;
        let mut value = serde_json::Value::deserialize(deserializer)?;
        let kind = value
            .as_object_mut()
            .and_then(|fields| fields.remove("kind"))
            .ok_or_else(|| D::Error::missing_field("kind"))?;
        let read = |value: serde_json::Value| -> Result<D1Write, serde_json::Error> {
            Ok(match kind.as_str() {
                Some("decision_places") => {
                    let DecisionPlacesFields { places } = serde_json::from_value(value)?;
                    D1Write::DecisionPlaces { places }
                }
                Some("decision_place") => {
                    let DecisionPlaceFields {
                        request_id,
                        seq,
                        count_window,
                    } = serde_json::from_value(value)?;
                    D1Write::DecisionPlace {
                        request_id,
                        seq,
                        count_window,
                    }
                }
                Some("count_window") => D1Write::CountWindow(serde_json::from_value(value)?),
                Some("event_window") => D1Write::EventWindow(serde_json::from_value(value)?),
                Some("late") => D1Write::Late(serde_json::from_value(value)?),
                _ => {
                    return Err(serde_json::Error::io(std::io::Error::other(format!(
                        "unknown D1 write kind {kind}"
                    ))))
                }
            })
        };
        read(value).map_err(D::Error::custom)
    }
}

/// What the KPI object reads from and writes to D1 (at the edge, from inside the object).
pub trait DecisionLog {
    /// Up to `limit` decisions and `limit` dead letters stored after `after`.
    async fn read_log(&self, after: LogPosition, limit: usize) -> Result<LogPage, StoreError>;
    /// Where the log ends now.
    async fn log_head(&self) -> Result<LogPosition, StoreError>;
    /// Writes the KPI object's outbox entries, all or none.
    async fn write_kpis(&self, writes: &[D1Write], now_ms: i64) -> Result<(), StoreError>;
}

/// Everything `/metrics` needs from the aggregator.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KpiSnapshot {
    pub core: valle_shared::monitoring::kpi::Core,
    pub recent: KpiView,
    /// Drift of all branches; absent only if the embedded drift bins are broken.
    #[serde(default)]
    pub drift: Option<DriftReport>,
    /// The object's wasm linear memory (none on the host).
    #[serde(default)]
    pub memory_bytes: Option<u64>,
    /// Rows in the object's storage.
    #[serde(default)]
    pub storage_rows: Option<u64>,
    /// When the object last read D1's log to its end.
    #[serde(default)]
    pub caught_up_at_ms: Option<i64>,
}

/// Refused requests counted together, under an id unique to the batch: a batch sent again
/// because its answer was lost is counted once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefusalBatch {
    pub id: String,
    pub observations: Vec<Observation>,
}

/// The KPI aggregator (a Durable Object at the edge), as requests see it.
pub trait KpiSink {
    async fn view(
        &self,
        window: valle_shared::monitoring::kpi::View,
        branch: Option<&str>,
    ) -> Result<KpiView, StoreError>;
    async fn snapshot(&self) -> Result<KpiSnapshot, StoreError>;
    /// PSI per monitored field for the last 24 h of one branch (or all).
    async fn drift(&self, branch: Option<&str>) -> Result<Option<DriftReport>, StoreError>;
    /// Counts refused requests; they have no row in D1. Called after the answer with the
    /// refusals of many requests together.
    async fn count_refusals(&self, batch: &RefusalBatch) -> Result<(), StoreError>;
    /// Tells the object new rows are in D1, so it reads them soon; without it, it still
    /// finds them within its reconcile interval.
    async fn poke(&self) -> Result<(), StoreError>;
}
