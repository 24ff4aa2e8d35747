-- Idempotency keys bound to their request: each decision and each kept event carries the
-- fingerprint of the request that made it (valle_shared::idempotency). Older rows keep NULL
-- and are matched by their stored application.
ALTER TABLE decisions ADD COLUMN fingerprint TEXT;
ALTER TABLE event_inbox ADD COLUMN fingerprint TEXT;
-- A dead letter keeps the payload of its first failure; a later, different one (a failed
-- correction, a resend) is kept beside it.
ALTER TABLE dead_letters ADD COLUMN latest_payload TEXT;
