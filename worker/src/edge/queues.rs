//! The events queue and its dead-letter queue, and the inbox that backs them.

use serde::Serialize;
use valle_shared::records::events::QueuedEvent;
use worker::{BatchMessageBuilder, MessageBuilder, Queue, SendMessage};

use super::backend::EdgeBackend;
use super::sweeper::SweeperCommand;
use crate::bindings;
use crate::store::{EventInbox, EventQueue, InboxState, NewDeadLetter, StoreError, Unsettled};

/// Queue messages stay well under the 128 KB message and 256 KB batch limits.
const QUEUE_BATCH_BYTES: usize = 200 * 1024;
const QUEUE_BATCH_MESSAGES: usize = 100;

fn queue_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::new("queue", error)
}

/// Sends messages with `send_batch`, as few calls as the platform's limits allow; each
/// message is its body, its approximate size and an optional delay.
pub(super) async fn send_all<T: Serialize>(
    queue: &Queue,
    messages: Vec<(T, usize, Option<u32>)>,
) -> Result<(), StoreError> {
    let mut chunk: Vec<SendMessage<T>> = Vec::new();
    let mut bytes = 0;
    for (body, size, delay) in messages {
        if !chunk.is_empty()
            && (bytes + size > QUEUE_BATCH_BYTES || chunk.len() == QUEUE_BATCH_MESSAGES)
        {
            let batch = BatchMessageBuilder::new()
                .messages(std::mem::take(&mut chunk))
                .build();
            queue.send_batch(batch).await.map_err(queue_error)?;
            bytes = 0;
        }
        let message = MessageBuilder::new(body);
        chunk.push(match delay {
            Some(seconds) => message.delay_seconds(seconds).build(),
            None => message.build(),
        });
        bytes += size;
    }
    if !chunk.is_empty() {
        let batch = BatchMessageBuilder::new().messages(chunk).build();
        queue.send_batch(batch).await.map_err(queue_error)?;
    }
    Ok(())
}

fn size_of(event: &QueuedEvent) -> usize {
    event.application.len() + 512
}

impl EdgeBackend {
    fn queue(&self, binding: &str) -> Result<Queue, StoreError> {
        self.env.queue(binding).map_err(queue_error)
    }
}

impl EventQueue for EdgeBackend {
    async fn enqueue(&self, events: &[QueuedEvent]) -> Result<(), StoreError> {
        let messages = events
            .iter()
            .map(|event| (event, size_of(event), None))
            .collect();
        send_all(&self.queue(bindings::EVENTS)?, messages).await
    }

    async fn requeue(&self, events: &[(QueuedEvent, u32)]) -> Result<(), StoreError> {
        let messages = events
            .iter()
            .map(|(event, delay)| (event, size_of(event), Some(*delay)))
            .collect();
        send_all(&self.queue(bindings::EVENTS)?, messages).await
    }

    async fn send_dead_letters(&self, letters: &[NewDeadLetter]) -> Result<(), StoreError> {
        let messages = letters
            .iter()
            .map(|letter| {
                (
                    letter,
                    size_of(&letter.payload) + letter.error_message.len(),
                    None,
                )
            })
            .collect();
        send_all(&self.queue(bindings::DEAD_LETTERS)?, messages).await
    }
}

impl EventInbox for EdgeBackend {
    async fn keep(&self, events: &[QueuedEvent], now_ms: i64) -> Result<Vec<String>, StoreError> {
        self.keep_events(events, now_ms).await
    }

    async fn take_unsettled(&self, take: Unsettled) -> Result<Vec<QueuedEvent>, StoreError> {
        self.take_unsettled_events(take).await
    }

    async fn inbox_state(&self) -> Result<InboxState, StoreError> {
        self.read_inbox_state().await
    }

    async fn wake_sweeper(&self) -> Result<(), StoreError> {
        self.object::<bool>(
            bindings::SWEEPER,
            bindings::SWEEPER_OBJECT,
            &SweeperCommand::Wake,
        )
        .await
        .map(|_| ())
    }
}
