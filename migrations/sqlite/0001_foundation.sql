-- Palisade foundation schema, SQLite dialect.
-- migrations/postgres holds the same migration numbers for PostgreSQL; a test checks the parity.
--
-- SQLite has no uuid or timestamp types: ids are hyphenated uuid text (36 characters) and instants
-- are INTEGER microseconds since the Unix epoch, which round-trip exactly (the audit MAC covers them).
-- STRICT tables make SQLite enforce the declared column types.

-- Data keys, wrapped (encrypted) by the master key. Versions count from 1 within a purpose; the
-- unique (purpose, version) pair is what lets exactly one instance create a given version.
CREATE TABLE data_keys (
    id          TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    purpose     TEXT    NOT NULL CHECK (purpose IN ('data', 'audit')),
    version     INTEGER NOT NULL CHECK (version BETWEEN 1 AND 2147483647),
    provider    TEXT    NOT NULL CHECK (provider <> ''),
    wrapped     BLOB    NOT NULL CHECK (length(wrapped) > 0),
    created_at  INTEGER NOT NULL, -- unix microseconds
    UNIQUE (purpose, version)
) STRICT;

-- The HMAC-chained audit log. The primary key on seq is what serializes writers: of several
-- instances sealing the same seq, exactly one insert succeeds. `details` is the exact JSON text the
-- MAC covers, so it is stored as text and never re-encoded. Every record names the audit key that
-- sealed it; that key cannot be deleted while a record refers to it.
CREATE TABLE audit_log (
    seq         INTEGER NOT NULL PRIMARY KEY CHECK (seq > 0),
    id          TEXT    NOT NULL UNIQUE CHECK (length(id) = 36),
    at          INTEGER NOT NULL, -- unix microseconds
    kind        TEXT    NOT NULL CHECK (kind <> ''),
    outcome     TEXT    NOT NULL CHECK (outcome IN ('success', 'failure')),
    actor       TEXT,
    subject     TEXT,
    ip          TEXT,
    user_agent  TEXT,
    request_id  TEXT,
    details     TEXT    NOT NULL CHECK (json_valid(details)),
    key_id      TEXT    NOT NULL REFERENCES data_keys (id),
    prev_mac    BLOB    NOT NULL CHECK (length(prev_mac) = 32),
    mac         BLOB    NOT NULL CHECK (length(mac) = 32)
) STRICT;

-- The hot store when no Redis is configured. A key holds either an opaque value or a fixed-window
-- counter, never both. Rows past expires_at_ms (unix milliseconds, from the injected clock) are
-- absent to every read and removed by purge_expired.
CREATE TABLE hot_entries (
    key           TEXT    NOT NULL PRIMARY KEY,
    value         BLOB,
    counter       INTEGER CHECK (counter > 0),
    expires_at_ms INTEGER NOT NULL,
    CHECK ((value IS NULL) <> (counter IS NULL))
) STRICT, WITHOUT ROWID;

CREATE INDEX hot_entries_expires_at_ms ON hot_entries (expires_at_ms);

-- Sets expire as a whole, like a Redis set: the set row carries the time to live and its members go
-- with it.
CREATE TABLE hot_sets (
    key           TEXT    NOT NULL PRIMARY KEY,
    expires_at_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX hot_sets_expires_at_ms ON hot_sets (expires_at_ms);

CREATE TABLE hot_set_members (
    key    TEXT NOT NULL REFERENCES hot_sets (key) ON DELETE CASCADE,
    member TEXT NOT NULL,
    PRIMARY KEY (key, member)
) STRICT, WITHOUT ROWID;
