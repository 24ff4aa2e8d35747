-- Decisions are numbered in commit order (`seq`): the KPI object reads the rows after the
-- last one it counted, so no request waits for it and a lost wake-up loses no count. D1
-- has one writer, so a row with a lower number is never committed after a higher one.
-- Dead letters are numbered the same way already (`id`).
CREATE TABLE decisions_numbered (
    seq                INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id         TEXT NOT NULL UNIQUE,
    applicant_id       TEXT,
    branch             TEXT NOT NULL,
    channel            TEXT NOT NULL CHECK (channel IN ('online', 'offline-sync', 'batch')),
    application        TEXT NOT NULL,
    probability        REAL NOT NULL,
    band               TEXT NOT NULL CHECK (band IN ('bajo', 'medio', 'alto')),
    decision           TEXT NOT NULL CHECK (decision IN ('approve', 'review', 'decline')),
    confidence         REAL NOT NULL,
    reasons            TEXT NOT NULL,
    model_name         TEXT NOT NULL,
    model_sha256       TEXT NOT NULL,
    received_at        INTEGER NOT NULL,
    event_time         INTEGER NOT NULL,
    timing             TEXT NOT NULL,
    latency_ms         REAL NOT NULL,
    client_probability REAL,
    mismatch           INTEGER NOT NULL DEFAULT 0,
    -- Place in the KPI aggregator's stream and the count window it fell into.
    kpi_seq            INTEGER,
    kpi_window         INTEGER
);
INSERT INTO decisions_numbered (request_id, applicant_id, branch, channel, application,
    probability, band, decision, confidence, reasons, model_name, model_sha256, received_at,
    event_time, timing, latency_ms, client_probability, mismatch, kpi_seq, kpi_window)
SELECT request_id, applicant_id, branch, channel, application, probability, band, decision,
    confidence, reasons, model_name, model_sha256, received_at, event_time, timing,
    latency_ms, client_probability, mismatch, kpi_seq, kpi_window
FROM decisions ORDER BY received_at, request_id;
DROP TABLE decisions;
ALTER TABLE decisions_numbered RENAME TO decisions;
CREATE INDEX decisions_by_time ON decisions (received_at DESC, request_id DESC);
CREATE INDEX decisions_by_branch ON decisions (branch, received_at DESC);
CREATE INDEX decisions_by_band ON decisions (band, received_at DESC);
CREATE INDEX decisions_by_decision ON decisions (decision, received_at DESC);
-- No index on kpi_seq: nothing reads by it, and every insert would pay for it.

-- How long the consumer worked on an event before it failed, for the KPIs.
ALTER TABLE dead_letters ADD COLUMN latency_ms REAL NOT NULL DEFAULT 0;
