-- Valle's first migration: the schema's own bookkeeping. Decision tables arrive with the
-- edge-pipeline migrations; D1 records applied migrations in d1_migrations itself.
CREATE TABLE IF NOT EXISTS valle_meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);
INSERT OR IGNORE INTO valle_meta (key, value) VALUES ('schema_created_by', '0001_init');
