//! The inbox sweeper: one object whose durable alarm outlives a crash of the runtime, so
//! events acknowledged before the crash are sent again after it (see
//! [`crate::pipeline::sweep_inbox`]). Its alarm never stops: while events wait it looks every
//! lease, otherwise every [`IDLE_MS`], so a lost wake-up delays a re-send but never loses it.

use serde::{Deserialize, Serialize};
use worker::{durable_object, DurableObject, Env, Request, Response, Result, State};

use super::backend::EdgeBackend;
use super::{now_ms, var_f64};
use crate::bindings::vars;
use crate::observability::log;
use crate::pipeline::sweep_inbox;

/// How often the sweeper looks at an empty inbox.
pub const IDLE_MS: i64 = 60_000;
/// How soon it looks again while it decides events itself (the queue stalled).
const DECIDING_MS: i64 = 1_000;

#[derive(Serialize, Deserialize)]
pub enum SweeperCommand {
    Wake,
}

/// How long an event may stay unsettled after its last send before the sweeper sends it
/// again; well above the queue's own retries (2 s, then 4 s).
fn inbox_lease_ms(env: &Env) -> i64 {
    var_f64(env, vars::INBOX_LEASE_MS).map_or(20_000, |ms| ms as i64)
}

#[durable_object(alarm)]
pub struct InboxSweeperObject {
    state: State,
    env: Env,
}

impl DurableObject for InboxSweeperObject {
    fn new(state: State, env: Env) -> Self {
        InboxSweeperObject { state, env }
    }

    /// Brings the alarm within one lease.
    async fn fetch(&self, mut request: Request) -> Result<Response> {
        let SweeperCommand::Wake = request.json().await?;
        let storage = self.state.storage();
        let lease = inbox_lease_ms(&self.env);
        if storage
            .get_alarm()
            .await?
            .is_none_or(|at| at > now_ms() + lease)
        {
            storage.set_alarm(lease).await?;
        }
        Response::from_json(&true)
    }

    /// Sends lost events again (or decides them itself if the queue stalled), then sets
    /// the next look. A failed sweep is logged and tried again after a lease.
    async fn alarm(&self) -> Result<Response> {
        let lease = inbox_lease_ms(&self.env);
        let backend = EdgeBackend::new(self.env.clone());
        let next = match sweep_inbox(&backend, super::scorers(&self.env)?, now_ms(), lease).await {
            Ok(sweep) => {
                if sweep.resent > 0 || sweep.decided > 0 {
                    log(&format!(
                        "inbox: {} unsettled events sent again, {} decided by the sweeper (queue stalled), {} kept",
                        sweep.resent, sweep.decided, sweep.kept
                    ));
                }
                match (sweep.decided, sweep.kept) {
                    (1.., _) => DECIDING_MS,
                    (0, 1..) => lease,
                    (0, 0) => IDLE_MS,
                }
            }
            Err(error) => {
                log(&format!("inbox sweep failed, retried in a lease: {error}"));
                lease
            }
        };
        self.state.storage().set_alarm(next).await?;
        Response::ok("swept")
    }
}
