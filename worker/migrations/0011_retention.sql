-- Retention, blocking and erasure (shared/src/retention.rs, models/retention.json).
-- readable_until: when the personal fields stop being readable. Rows stored before this
-- migration are stamped "now" (their received time), so the retention job looks at each
-- once and stamps it with the policy's own period.
ALTER TABLE decisions ADD COLUMN readable_until INTEGER;
UPDATE decisions SET readable_until = received_at;
-- Set when the personal fields leave every ordinary read path; who did it; when they go.
ALTER TABLE decisions ADD COLUMN blocked_at INTEGER;
ALTER TABLE decisions ADD COLUMN blocked_by TEXT CHECK (blocked_by IN ('applicant', 'dpo', 'retention'));
ALTER TABLE decisions ADD COLUMN destroy_after INTEGER;
-- Set when they are destroyed: `application` is then '{}' and `residue` holds the bins the
-- aggregates count.
ALTER TABLE decisions ADD COLUMN destroyed_at INTEGER;
ALTER TABLE decisions ADD COLUMN residue TEXT;
CREATE INDEX decisions_by_applicant ON decisions (applicant_id) WHERE applicant_id IS NOT NULL;
CREATE INDEX decisions_readable ON decisions (readable_until) WHERE blocked_at IS NULL;
CREATE INDEX decisions_blocked ON decisions (destroy_after) WHERE blocked_at IS NOT NULL AND destroyed_at IS NULL;
CREATE INDEX decisions_destroyed ON decisions (received_at) WHERE destroyed_at IS NOT NULL;

-- An applicant's own request to have a person look again, with what they wrote.
ALTER TABLE reviews ADD COLUMN contest_comment TEXT;

-- The data-protection officer's role.
CREATE TABLE accounts_with_dpo (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    email       TEXT NOT NULL UNIQUE,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL CHECK (role IN ('officer', 'supervisor', 'auditor', 'admin', 'integrator', 'dpo')),
    token_hash  TEXT UNIQUE,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
);
INSERT INTO accounts_with_dpo (id, email, name, role, token_hash, created_at, revoked_at)
SELECT id, email, name, role, token_hash, created_at, revoked_at FROM accounts;
DROP TABLE accounts;
ALTER TABLE accounts_with_dpo RENAME TO accounts;
