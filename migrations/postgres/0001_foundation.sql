-- Palisade foundation schema, PostgreSQL dialect.
-- migrations/sqlite holds the same migration numbers for SQLite; a test checks the parity.
--
-- Instants are timestamptz, whose microsecond precision is exactly what the audit MAC covers.

-- Data keys, wrapped (encrypted) by the master key. Versions count from 1 within a purpose; the
-- unique (purpose, version) pair is what lets exactly one instance create a given version.
CREATE TABLE data_keys (
    id          uuid        PRIMARY KEY,
    purpose     text        NOT NULL CHECK (purpose IN ('data', 'audit')),
    version     integer     NOT NULL CHECK (version > 0),
    provider    text        NOT NULL CHECK (provider <> ''),
    wrapped     bytea       NOT NULL CHECK (octet_length(wrapped) > 0),
    created_at  timestamptz NOT NULL,
    UNIQUE (purpose, version)
);

-- The HMAC-chained audit log. The primary key on seq is what serializes writers: of several
-- instances sealing the same seq, exactly one insert succeeds. `details` is the exact JSON text the
-- MAC covers: text, never jsonb (which would reorder keys and break the MAC). Every record names the
-- audit key that sealed it; that key cannot be deleted while a record refers to it.
CREATE TABLE audit_log (
    seq         bigint      PRIMARY KEY CHECK (seq > 0),
    id          uuid        NOT NULL UNIQUE,
    at          timestamptz NOT NULL,
    kind        text        NOT NULL CHECK (kind <> ''),
    outcome     text        NOT NULL CHECK (outcome IN ('success', 'failure')),
    actor       text,
    subject     text,
    ip          text,
    user_agent  text,
    request_id  text,
    details     text        NOT NULL CHECK (details::jsonb IS NOT NULL),
    key_id      uuid        NOT NULL REFERENCES data_keys (id),
    prev_mac    bytea       NOT NULL CHECK (octet_length(prev_mac) = 32),
    mac         bytea       NOT NULL CHECK (octet_length(mac) = 32)
);

-- The hot store when no Redis is configured. A key holds either an opaque value or a fixed-window
-- counter, never both. Rows past expires_at_ms (unix milliseconds, from the injected clock) are
-- absent to every read and removed by purge_expired. The tables are logged on purpose: revocation
-- markers and lockout counters must survive a crash.
CREATE TABLE hot_entries (
    key           text   PRIMARY KEY,
    value         bytea,
    counter       bigint CHECK (counter > 0),
    expires_at_ms bigint NOT NULL,
    CHECK ((value IS NULL) <> (counter IS NULL))
);

CREATE INDEX hot_entries_expires_at_ms ON hot_entries (expires_at_ms);

-- Sets expire as a whole, like a Redis set: the set row carries the time to live and its members go
-- with it.
CREATE TABLE hot_sets (
    key           text   PRIMARY KEY,
    expires_at_ms bigint NOT NULL
);

CREATE INDEX hot_sets_expires_at_ms ON hot_sets (expires_at_ms);

CREATE TABLE hot_set_members (
    key    text NOT NULL REFERENCES hot_sets (key) ON DELETE CASCADE,
    member text NOT NULL,
    PRIMARY KEY (key, member)
);
