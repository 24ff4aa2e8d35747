-- What became of each scored loan, reported later by officers or the loan book: one row per
-- decision, its latest status. A matured status (good, bad) never changes again.
CREATE TABLE loan_outcomes (
    request_id   TEXT PRIMARY KEY,
    status       TEXT NOT NULL CHECK (status IN ('good', 'bad', 'open')),
    observed_at  INTEGER NOT NULL,
    recorded_by  TEXT NOT NULL,
    recorded_at  INTEGER NOT NULL
);

-- The integrator role (another system that posts outcomes): SQLite cannot change a CHECK,
-- so the accounts table is copied into one that allows it. Nothing references its ids.
CREATE TABLE accounts_with_integrators (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    email       TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('officer', 'supervisor', 'auditor', 'admin', 'integrator')),
    token_hash  TEXT UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
INSERT INTO accounts_with_integrators (id, email, name, role, token_hash, created_at, revoked_at)
SELECT id, email, name, role, token_hash, created_at, revoked_at FROM accounts;
DROP TABLE accounts;
ALTER TABLE accounts_with_integrators RENAME TO accounts;
