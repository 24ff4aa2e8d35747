-- Officers as people: named accounts with roles and hashed API tokens, the review of each
-- application an officer has touched, and the hash-chained audit trail of officer writes.

CREATE TABLE accounts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    email       TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('officer', 'supervisor', 'auditor', 'admin')),
    -- SHA-256 (hex) of the account's API token; the token itself is never stored.
    token_hash  TEXT UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);

-- A review row exists only once someone acted: an application the model referred and no
-- one touched is in the queue through `decisions_to_review`, without a row here.
CREATE TABLE reviews (
    request_id     TEXT PRIMARY KEY,
    state          TEXT NOT NULL CHECK (state IN ('automatic', 'pending', 'info_requested',
                       'awaiting_approval', 'approved', 'declined')),
    proposed       TEXT NOT NULL CHECK (proposed IN ('approve', 'review', 'decline')),
    action         TEXT CHECK (action IN ('approve', 'decline', 'request_info')),
    reason         TEXT,
    note           TEXT NOT NULL DEFAULT '',
    override_kind  TEXT NOT NULL DEFAULT 'none' CHECK (override_kind IN ('none', 'high_side', 'low_side')),
    decided_by     TEXT,
    decided_at     INTEGER,
    approval       TEXT CHECK (approval IN ('confirm', 'reject')),
    approval_note  TEXT NOT NULL DEFAULT '',
    approved_by    TEXT,
    approved_at    INTEGER,
    human_review_requested_at INTEGER,
    version        INTEGER NOT NULL,
    -- The write that made this version: the audit row of the same write checks it.
    write_id       TEXT NOT NULL
);
CREATE INDEX reviews_open ON reviews (state) WHERE state IN ('pending', 'info_requested', 'awaiting_approval');
CREATE INDEX reviews_by_decided_at ON reviews (decided_at) WHERE decided_by IS NOT NULL;
CREATE INDEX decisions_to_review ON decisions (seq) WHERE decision = 'review';

-- `seq` is given by the writer as the previous row's plus one: two writers that read the
-- same end of the chain collide on the key, and one of them reads it again.
CREATE TABLE audit_log (
    seq        INTEGER PRIMARY KEY,
    at_ms      INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    detail     TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
