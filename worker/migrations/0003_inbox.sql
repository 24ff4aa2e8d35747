-- Events acknowledged with 202 stay here until their outcome (a decision or a dead letter)
-- is stored. The queue is the fast path; this table is what makes the acknowledgement
-- durable: a sweeper sends an event again if it is still here after a lease.
CREATE TABLE event_inbox (
    event_id   TEXT PRIMARY KEY NOT NULL,
    event      TEXT NOT NULL,
    kept_at    INTEGER NOT NULL,
    sent_at    INTEGER NOT NULL,
    sends      INTEGER NOT NULL DEFAULT 1
);
CREATE INDEX event_inbox_by_sent ON event_inbox (sent_at);
