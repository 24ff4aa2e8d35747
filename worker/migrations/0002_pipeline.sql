-- The edge pipeline: decisions (one per request or event id), dead letters, closed KPI
-- windows and late events. Timestamps are Unix milliseconds.
CREATE TABLE decisions (
    request_id         TEXT PRIMARY KEY NOT NULL,
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
CREATE INDEX decisions_by_time ON decisions (received_at DESC, request_id DESC);
CREATE INDEX decisions_by_branch ON decisions (branch, received_at DESC);
CREATE INDEX decisions_by_band ON decisions (band, received_at DESC);
CREATE INDEX decisions_by_decision ON decisions (decision, received_at DESC);
CREATE INDEX decisions_by_kpi_seq ON decisions (kpi_seq);

CREATE TABLE dead_letters (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id        TEXT NOT NULL UNIQUE,
    payload         TEXT NOT NULL,
    error_code      TEXT NOT NULL,
    error_message   TEXT NOT NULL,
    attempts        INTEGER NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('open', 'replayed', 'superseded')),
    first_failed_at INTEGER NOT NULL,
    last_failed_at  INTEGER NOT NULL,
    replayed_at     INTEGER
);
CREATE INDEX dead_letters_by_status ON dead_letters (status, id DESC);

CREATE TABLE kpi_windows (
    window_index  INTEGER PRIMARY KEY NOT NULL,
    first_seq     INTEGER NOT NULL,
    last_seq      INTEGER NOT NULL,
    start_ms      INTEGER NOT NULL,
    end_ms        INTEGER NOT NULL,
    duration_ms   INTEGER NOT NULL,
    message_count INTEGER NOT NULL,
    rate_per_s    REAL NOT NULL,
    summary       TEXT NOT NULL,
    closed_at     INTEGER NOT NULL
);

CREATE TABLE kpi_event_windows (
    span          TEXT NOT NULL CHECK (span IN ('1m', '1h')),
    branch        TEXT NOT NULL,
    start_ms      INTEGER NOT NULL,
    end_ms        INTEGER NOT NULL,
    message_count INTEGER NOT NULL,
    decisions     INTEGER NOT NULL,
    revised       INTEGER NOT NULL,
    summary       TEXT NOT NULL,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (span, branch, start_ms)
);

CREATE TABLE late_events (
    request_id  TEXT PRIMARY KEY NOT NULL,
    branch      TEXT NOT NULL,
    event_time  INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    watermark   INTEGER NOT NULL
);
