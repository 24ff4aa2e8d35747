//! `POST /api/v1/events`: the events are kept in D1's inbox and sent to the queue before
//! the 202; the queue consumer does the rest.

use std::collections::BTreeSet;

use valle_shared::contract::errors::ErrorBody;
use valle_shared::contract::request::Stage;
use valle_shared::intake::channel::Channel;
use valle_shared::records::events::{parse_events, EventAck, EventsResponse, QueuedEvent};

use super::Request;
use crate::error::ApiError;
use crate::http::HttpResponse;
use crate::pipeline::{failure_observation, FailedRequest};
use crate::store::{EventInbox, EventQueue, RateLimiter, ReviewStore};

impl<B: EventInbox + EventQueue + RateLimiter + ReviewStore> Request<'_, B> {
    /// Checks each event's envelope, keeps and queues the sound ones and answers 202 with
    /// every event's acceptance. It awaits the inbox write and the queue send, nothing else.
    pub(super) async fn events(&self, body: &[u8]) -> Result<HttpResponse, ApiError> {
        let receipts = self.receipt_key()?;
        let now = self.now();
        let mut parsed: Vec<Result<QueuedEvent, ErrorBody>> = parse_events(body, now)?
            .into_iter()
            .map(|item| item.map_err(|error| error.body()))
            .collect();
        self.charge_batch(parsed.len()).await?;
        let sound: Vec<QueuedEvent> = parsed
            .iter()
            .filter_map(|item| item.as_ref().ok())
            .cloned()
            .collect();
        // Kept in D1, then queued, before anything is acknowledged: if either fails the
        // client resends, and a kept event reaches the queue again through the sweeper. An
        // id another request took is refused and not queued.
        if !sound.is_empty() {
            let taken: BTreeSet<String> =
                self.backend.keep(&sound, now).await?.into_iter().collect();
            self.lap(Stage::Keep);
            for item in &mut parsed {
                if item
                    .as_ref()
                    .is_ok_and(|event| taken.contains(&event.event_id))
                {
                    *item = Err(ApiError::IdempotencyMismatch.body(None));
                }
            }
            let accepted: Vec<QueuedEvent> = sound
                .into_iter()
                .filter(|event| !taken.contains(&event.event_id))
                .collect();
            if !accepted.is_empty() {
                self.backend.enqueue(&accepted).await?;
                self.lap(Stage::Enqueue);
                self.after.borrow_mut().events_kept = true;
            }
        }
        let results: Vec<EventAck> = parsed
            .into_iter()
            .enumerate()
            .map(|(index, item)| match item {
                Ok(event) => EventAck {
                    index,
                    receipt: Some(receipts.receipt(&event.event_id)),
                    event_id: Some(event.event_id),
                    accepted: true,
                    error: None,
                },
                Err(error) => {
                    self.refuse(failure_observation(&FailedRequest {
                        request_id: &format!("{}:{index}", self.id),
                        channel: Channel::OfflineSync,
                        received_at_ms: now,
                        event_time_ms: now,
                        latency_ms: 0.0,
                        code: error.code,
                    }));
                    EventAck {
                        index,
                        event_id: None,
                        accepted: false,
                        receipt: None,
                        error: Some(error),
                    }
                }
            })
            .collect();
        let accepted = results.iter().filter(|ack| ack.accepted).count();
        let answer = EventsResponse {
            request_id: self.id.to_owned(),
            accepted,
            rejected: results.len() - accepted,
            results,
        };
        Ok(HttpResponse::json(202, &answer, self.id))
    }
}
