-- Webhook subscribers an admin registered. The secret signs every delivery, so it is kept
-- as given; it is never answered by the API. A removed subscriber keeps its row (its dead
-- letters name it) and receives nothing more.
CREATE TABLE webhook_subscriptions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    url         TEXT NOT NULL,
    secret      TEXT NOT NULL,
    events      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    removed_at  INTEGER
);

-- Deliveries given up on (a refusal, or the last attempt failed), one row per subscriber
-- and event: a second failure after a replay updates the row.
CREATE TABLE webhook_dead_letters (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    subscription_id  INTEGER NOT NULL,
    event_id         TEXT NOT NULL,
    kind             TEXT NOT NULL,
    body             TEXT NOT NULL,
    attempts         INTEGER NOT NULL,
    last_status      INTEGER,
    failed_at        INTEGER NOT NULL,
    replayed_at      INTEGER,
    UNIQUE (subscription_id, event_id)
);
