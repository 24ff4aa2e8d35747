//! D1 behind the storage traits: the one write of each request or batch, the officers'
//! reads, the event inbox, and the log the KPI object reads.

use valle_shared::contract::query::Page;
use valle_shared::decision::simulation::StoredDecision;
use valle_shared::monitoring::kpi::CountWindow;
use valle_shared::records::decisions::{
    DeadLetterStatus, DecisionPage, DecisionQuery, DecisionRecord,
};
use valle_shared::records::events::QueuedEvent;

use super::backend::{d1_error, decode, EdgeBackend};
use crate::observability::log;
use crate::sql::{self, dead_letters, decisions, inbox, kpis};
use crate::store::D1Write;
use crate::store::{
    DeadLetter, DeadLetterStore, DecisionLog, DecisionStore, InboxState, LogPage, LogPosition,
    LoggedDecision, OutcomeStore, Outcomes, StoreError, Stored, Unsettled,
};

impl OutcomeStore for EdgeBackend {
    async fn store(&self, outcomes: Outcomes<'_>, now_ms: i64) -> Result<Stored, StoreError> {
        let statements = sql::store_outcomes(&outcomes, now_ms);
        if statements.is_empty() {
            return Ok(Stored::default());
        }
        let results = self.batch(&statements).await?;
        if outcomes.decisions.is_empty() {
            return Ok(Stored::default());
        }
        let rows: Vec<decisions::ExistingRow> = results
            .first()
            .map(|result| result.results())
            .transpose()
            .map_err(d1_error)?
            .unwrap_or_default();
        let (existing, destroyed) = decisions::ExistingRow::split(rows);
        Ok(Stored {
            existing,
            destroyed,
        })
    }
}

impl DecisionStore for EdgeBackend {
    async fn get_decision(&self, request_id: &str) -> Result<Option<DecisionRecord>, StoreError> {
        let rows: Vec<decisions::DecisionRow> = self.rows(&decisions::select(request_id)).await?;
        Ok(decode(rows).into_iter().next())
    }

    async fn recent_decisions(
        &self,
        limit: usize,
        branch: Option<&str>,
    ) -> Result<Vec<StoredDecision>, StoreError> {
        let rows: Vec<decisions::RecentRow> = self.rows(&decisions::recent(limit, branch)).await?;
        rows.into_iter()
            .map(StoredDecision::try_from)
            .collect::<Result<_, _>>()
            .map_err(|error| StoreError::new("d1", error))
    }

    async fn list_decisions(&self, query: &DecisionQuery) -> Result<DecisionPage, StoreError> {
        let rows: Vec<decisions::DecisionRow> = self.rows(&decisions::list(query)).await?;
        Ok(DecisionPage::from_rows(decode(rows), query.limit))
    }

    async fn list_count_windows(
        &self,
        limit: usize,
        before_index: Option<u64>,
    ) -> Result<Vec<CountWindow>, StoreError> {
        let rows: Vec<kpis::CountWindowRow> = self
            .rows(&kpis::list_count_windows(limit, before_index))
            .await?;
        Ok(decode(rows))
    }
}

impl DeadLetterStore for EdgeBackend {
    async fn get_dead_letter(&self, id: i64) -> Result<Option<DeadLetter>, StoreError> {
        let rows: Vec<dead_letters::DeadLetterRow> = self.rows(&dead_letters::select(id)).await?;
        Ok(decode(rows).into_iter().next())
    }

    async fn list_dead_letters(
        &self,
        status: Option<DeadLetterStatus>,
        page: &Page<i64>,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let rows: Vec<dead_letters::DeadLetterRow> =
            self.rows(&dead_letters::list(status, page)).await?;
        Ok(decode(rows))
    }

    async fn count_open_dead_letters(&self) -> Result<u64, StoreError> {
        let rows: Vec<dead_letters::CountRow> = self.rows(&dead_letters::count_open()).await?;
        Ok(rows.first().map_or(0, |count| count.open))
    }
}

impl EdgeBackend {
    pub(super) async fn keep_events(
        &self,
        events: &[QueuedEvent],
        now_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        let results = self.batch(&inbox::keep(events, now_ms)).await?;
        let mut taken = Vec::new();
        for result in results.iter().step_by(inbox::KEEP_RESULTS_PER_CHUNK) {
            let rows: Vec<inbox::TakenRow> = result.results().map_err(d1_error)?;
            taken.extend(rows.into_iter().map(|row| row.event_id));
        }
        Ok(taken)
    }

    pub(super) async fn take_unsettled_events(
        &self,
        take: Unsettled,
    ) -> Result<Vec<QueuedEvent>, StoreError> {
        let rows: Vec<inbox::KeptEventRow> = self.rows(&inbox::take_unsettled(take)).await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| match serde_json::from_str(&row.event) {
                Ok(event) => Some(event),
                Err(error) => {
                    log(&format!("inbox: unreadable kept event skipped: {error}"));
                    None
                }
            })
            .collect())
    }

    pub(super) async fn read_inbox_state(&self) -> Result<InboxState, StoreError> {
        let rows: Vec<InboxState> = self.rows(&inbox::state()).await?;
        Ok(rows.first().copied().unwrap_or_default())
    }
}

impl DecisionLog for EdgeBackend {
    async fn read_log(&self, after: LogPosition, limit: usize) -> Result<LogPage, StoreError> {
        let results = self
            .batch(&[
                decisions::read_log(after.decision_seq, limit),
                dead_letters::read_log(after.dead_letter_id, limit),
            ])
            .await?;
        let (Some(decided), Some(failed)) = (results.first(), results.get(1)) else {
            return Err(d1_error("the log read answered too few results"));
        };
        let decided: Vec<decisions::LogRow> = decided.results().map_err(d1_error)?;
        let failed: Vec<dead_letters::LogRow> = failed.results().map_err(d1_error)?;
        Ok(LogPage {
            decisions: decode::<_, LoggedDecision>(decided),
            dead_letters: decode(failed),
        })
    }

    async fn log_head(&self) -> Result<LogPosition, StoreError> {
        let rows: Vec<LogPosition> = self.rows(&decisions::log_head()).await?;
        Ok(rows.first().copied().unwrap_or_default())
    }

    async fn write_kpis(&self, writes: &[D1Write], now_ms: i64) -> Result<(), StoreError> {
        let statements: Vec<_> = writes
            .iter()
            .flat_map(|write| kpis::write(write, now_ms))
            .collect();
        if statements.is_empty() {
            return Ok(());
        }
        self.batch(&statements).await.map(|_| ())
    }
}
