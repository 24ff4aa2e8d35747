-- How far the queue consumer has got: the newest enqueue time among the messages it has
-- processed (the queue delivers in order), and when it last processed one. The sweeper
-- sends an event again only if the consumer has got a lease past the event's last send (the
-- message was lost) or has processed nothing for a lease, so a consumer that is merely
-- behind is never flooded with copies.
CREATE TABLE inbox_progress (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    reached    INTEGER NOT NULL,
    reached_at INTEGER NOT NULL
);
