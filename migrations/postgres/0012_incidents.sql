-- Incidents, PostgreSQL dialect.
-- migrations/sqlite/0012_incidents.sql is the same schema for SQLite; a test checks the parity.
--
-- What the monitoring detectors raise. One incident that is not resolved per (cause, subject): a
-- detector firing again attaches to it (the partial unique index). `events` is a JSON array of the
-- audit records' sequence numbers that raised it (at most 100; `occurrences` keeps counting).
CREATE TABLE incidents (
    id            uuid        PRIMARY KEY,
    cause         text        NOT NULL CHECK (cause <> '' AND length(cause) <= 64),
    subject       text        NOT NULL CHECK (subject <> '' AND length(subject) <= 600),
    severity      text        NOT NULL CHECK (severity IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
    state         text        NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
    title         text        NOT NULL CHECK (title <> ''),
    details       text        NOT NULL CHECK (details::jsonb IS NOT NULL),
    events        text        NOT NULL CHECK (json_typeof(events::json) = 'array'),
    occurrences   bigint      NOT NULL CHECK (occurrences >= 1),
    opened_at     timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    updated_by    text
);

CREATE UNIQUE INDEX incidents_one_unresolved ON incidents (cause, subject) WHERE state <> 'resolved';
CREATE INDEX incidents_state ON incidents (state, id);
