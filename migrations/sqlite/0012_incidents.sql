-- Incidents, SQLite dialect.
-- migrations/postgres/0012_incidents.sql is the same schema for PostgreSQL; a test checks the parity.
--
-- What the monitoring detectors raise. One incident that is not resolved per (cause, subject): a
-- detector firing again attaches to it (the partial unique index). `events` is a JSON array of the
-- audit records' sequence numbers that raised it (at most 100; `occurrences` keeps counting).
-- Instants INTEGER microseconds since the Unix epoch.
CREATE TABLE incidents (
    id            TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    cause         TEXT    NOT NULL CHECK (cause <> '' AND length(cause) <= 64),
    subject       TEXT    NOT NULL CHECK (subject <> '' AND length(subject) <= 600),
    severity      TEXT    NOT NULL CHECK (severity IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
    state         TEXT    NOT NULL CHECK (state IN ('open', 'acknowledged', 'resolved')),
    title         TEXT    NOT NULL CHECK (title <> ''),
    details       TEXT    NOT NULL CHECK (json_valid(details)),
    events        TEXT    NOT NULL CHECK (json_valid(events) AND json_type(events) = 'array'),
    occurrences   INTEGER NOT NULL CHECK (occurrences >= 1),
    opened_at     INTEGER NOT NULL,
    last_seen_at  INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    updated_by    TEXT
) STRICT;

CREATE UNIQUE INDEX incidents_one_unresolved ON incidents (cause, subject) WHERE state <> 'resolved';
CREATE INDEX incidents_state ON incidents (state, id);
