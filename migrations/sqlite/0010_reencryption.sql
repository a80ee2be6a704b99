-- Re-encryption jobs, SQLite dialect.
-- migrations/postgres/0010_reencryption.sql is the same schema for PostgreSQL; a test checks the parity.
--
-- One row per background re-encryption of Palisade's own sealed data (second factors, signing
-- keys) toward the active data key, with its checkpoint: the table being visited (`phase`), the
-- last row id done there (`cursor`) and the counts. At most one job is running at a time (the
-- partial unique index), whichever instance asks. Instants INTEGER microseconds since the Unix epoch.
CREATE TABLE reencryption_jobs (
    id              TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    target_version  INTEGER NOT NULL CHECK (target_version BETWEEN 1 AND 2147483647),
    state           TEXT    NOT NULL CHECK (state IN ('running', 'completed', 'failed')),
    phase           TEXT    NOT NULL CHECK (phase IN ('signing_keys', 'mfa_factors')),
    cursor          TEXT,
    total           INTEGER NOT NULL CHECK (total >= 0),
    scanned         INTEGER NOT NULL CHECK (scanned >= 0),
    rewritten       INTEGER NOT NULL CHECK (rewritten >= 0 AND rewritten <= scanned),
    started_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    finished_at     INTEGER,
    error           TEXT,
    CHECK ((state = 'running') = (finished_at IS NULL))
) STRICT;

CREATE UNIQUE INDEX reencryption_jobs_one_running ON reencryption_jobs (state) WHERE state = 'running';
CREATE INDEX reencryption_jobs_started ON reencryption_jobs (started_at);
