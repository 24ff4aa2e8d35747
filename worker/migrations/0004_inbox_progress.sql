-- How far the queue consumer has got: the newest last-send time among settled events, and
-- when an event was last settled. The sweeper sends an event again only if the consumer
-- has moved a lease past it (it was skipped: lost) or has stopped settling altogether, so
-- a consumer that is merely behind is never flooded with copies.
CREATE TABLE inbox_progress (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    settled_sent_at INTEGER NOT NULL,
    settled_at      INTEGER NOT NULL
);
