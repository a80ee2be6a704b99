-- Re-encryption jobs, PostgreSQL dialect.
-- migrations/sqlite/0010_reencryption.sql is the same schema for SQLite; a test checks the parity.
--
-- One row per background re-encryption of Palisade's own sealed data (second factors, signing
-- keys) toward the active data key, with its checkpoint: the table being visited (`phase`), the
-- last row id done there (`cursor`) and the counts. At most one job is running at a time (the
-- partial unique index), whichever instance asks.
CREATE TABLE reencryption_jobs (
    id              uuid        PRIMARY KEY,
    target_version  integer     NOT NULL CHECK (target_version BETWEEN 1 AND 2147483647),
    state           text        NOT NULL CHECK (state IN ('running', 'completed', 'failed')),
    phase           text        NOT NULL CHECK (phase IN ('signing_keys', 'mfa_factors')),
    cursor          text,
    total           bigint      NOT NULL CHECK (total >= 0),
    scanned         bigint      NOT NULL CHECK (scanned >= 0),
    rewritten       bigint      NOT NULL CHECK (rewritten >= 0 AND rewritten <= scanned),
    started_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    finished_at     timestamptz,
    error           text,
    CHECK ((state = 'running') = (finished_at IS NULL))
);

CREATE UNIQUE INDEX reencryption_jobs_one_running ON reencryption_jobs (state) WHERE state = 'running';
CREATE INDEX reencryption_jobs_started ON reencryption_jobs (started_at);
