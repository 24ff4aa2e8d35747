//! The KPI Durable Object: one for the cooperative, a materialized view of D1 (see
//! [`crate::kpi`]). Requests read it; only its alarm writes counts from D1, and queues
//! the webhook deliveries of what D1 stored ([`crate::webhooks::producer`]).

use std::cell::{Cell, RefCell};

use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use super::backend::EdgeBackend;
use super::{kpi_config, now_ms};
use crate::kpi::pump::{pump, SCHEDULE};
use crate::kpi::{KpiCommand, KpiService};
use crate::observability::log;
use crate::store::StoreError;
use crate::webhooks::producer::publish;

use super::sql_kv::SqlKv;

fn json<T: serde::Serialize>(value: T) -> std::result::Result<serde_json::Value, StoreError> {
    serde_json::to_value(value).map_err(|error| StoreError::new("kpi_object", error))
}

#[durable_object(alarm)]
pub struct KpiObject {
    state: State,
    service: RefCell<KpiService>,
    kv: std::result::Result<SqlKv, StoreError>,
    log: EdgeBackend,
    /// Alarms in a row that found nothing to do (or failed): the next one waits longer.
    quiet: Cell<u32>,
}

impl KpiObject {
    fn kv(&self) -> Result<&SqlKv> {
        self.kv
            .as_ref()
            .map_err(|error| worker::Error::RustError(error.to_string()))
    }

    /// Makes sure an alarm is set, no later than `within_ms` from now.
    async fn arm(&self, within_ms: i64) -> Result<()> {
        let storage = self.state.storage();
        let due = now_ms() + within_ms;
        if storage.get_alarm().await?.is_none_or(|at| at > due) {
            storage.set_alarm(within_ms).await?;
        }
        Ok(())
    }
}

impl DurableObject for KpiObject {
    fn new(state: State, env: Env) -> Self {
        KpiObject {
            kv: SqlKv::new(&state),
            service: RefCell::new(KpiService::new(kpi_config(&env))),
            log: EdgeBackend::new(env),
            state,
            quiet: Cell::new(0),
        }
    }

    async fn fetch(&self, mut request: Request) -> Result<Response> {
        // The body is read before any state is touched; the rest runs without awaiting
        // until the answer is ready.
        let command: KpiCommand = request.json().await?;
        let kv = self.kv()?;
        let now = now_ms();
        let poke = matches!(command, KpiCommand::Poke);
        let answer = {
            let mut service = self.service.borrow_mut();
            match command {
                KpiCommand::View { window, branch } => service
                    .view(kv, window, branch.as_deref(), now)
                    .and_then(json),
                KpiCommand::Snapshot => service.snapshot(kv, now).and_then(json),
                KpiCommand::Drift { branch } => {
                    service.drift(kv, branch.as_deref(), now).and_then(json)
                }
                KpiCommand::CountRefusals { batch } => service
                    .count_refusals(kv, &batch, now)
                    .and_then(|()| json(true)),
                KpiCommand::Poke => json(true),
            }
        };
        // A poke brings the next alarm close; any other call makes sure one is set.
        self.arm(if poke {
            SCHEDULE.active_ms
        } else {
            SCHEDULE.idle_max_ms
        })
        .await?;
        match answer {
            Ok(value) => Response::from_json(&value),
            Err(error) => Response::error(error.to_string(), 500),
        }
    }

    /// Counts what D1 stored since the last alarm and sends the outbox, then sets the next
    /// alarm: soon while there is work, later while there is none. A failure is retried
    /// by the next alarm, with the same backoff as quiet rounds.
    async fn alarm(&self) -> Result<Response> {
        let kv = self.kv()?;
        let counted = match pump(&self.service, kv, &self.log, &now_ms).await {
            Ok(report) => report.worked(),
            Err(error) => {
                log(&format!(
                    "kpi object: counting from D1 failed, retried: {error}"
                ));
                false
            }
        };
        let published = match publish(kv, &self.log).await {
            Ok(report) => report.queued > 0 || !report.caught_up,
            Err(error) => {
                log(&format!(
                    "kpi object: webhook events not queued, retried: {error}"
                ));
                false
            }
        };
        let worked = counted || published;
        let (delay, quiet) = SCHEDULE.next(self.quiet.get(), worked);
        self.quiet.set(quiet);
        self.state.storage().set_alarm(delay).await?;
        Response::ok("counted")
    }
}
