-- Compliance, SQLite dialect.
-- migrations/postgres/0015_compliance.sql is the same schema for PostgreSQL; a test checks the parity.
--
-- audit_log gains the v2 seal of personal fields: the MAC of a record sealed from now on covers
-- `personal_digest` (SHA-256 over `personal_salt` and the actor, subject, address, user agent and
-- details) instead of those fields, so an erasure can redact them (clearing the salt) without
-- breaking the chain. Older rows keep NULLs: v1 records, MACed over their fields as before.
ALTER TABLE audit_log ADD COLUMN personal_salt BLOB CHECK (personal_salt IS NULL OR length(personal_salt) = 16);
ALTER TABLE audit_log ADD COLUMN personal_digest BLOB CHECK (personal_digest IS NULL OR length(personal_digest) = 32);
ALTER TABLE audit_log ADD COLUMN redacted_at INTEGER;
CREATE INDEX audit_log_actor ON audit_log (actor, seq);

-- The consent ledger. `consent_texts` keeps each version's full text once, by its SHA-256;
-- `consents` is append-only (a trigger refuses updates): giving and withdrawing are rows, numbered
-- per user and type by `seq`, and UNIQUE (user_id, consent_type, seq) lets one of two concurrent
-- writers have the next number. Rows go with their user (erasure) or by retention, never otherwise.
CREATE TABLE consent_texts (
    hash         BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    consent_type TEXT    NOT NULL CHECK (consent_type <> '' AND length(consent_type) <= 64),
    version      TEXT    NOT NULL CHECK (version <> '' AND length(version) <= 64),
    text         TEXT    NOT NULL CHECK (text <> ''),
    recorded_at  INTEGER NOT NULL,
    UNIQUE (consent_type, version)
) STRICT;

CREATE TABLE consents (
    id           TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    consent_type TEXT    NOT NULL CHECK (consent_type <> '' AND length(consent_type) <= 64),
    seq          INTEGER NOT NULL CHECK (seq > 0),
    action       TEXT    NOT NULL CHECK (action IN ('given', 'withdrawn')),
    version      TEXT    NOT NULL CHECK (version <> '' AND length(version) <= 64),
    text_hash    BLOB    NOT NULL REFERENCES consent_texts (hash),
    method       TEXT    NOT NULL CHECK (method <> '' AND length(method) <= 64),
    ip           TEXT,
    user_agent   TEXT,
    reason       TEXT,
    at           INTEGER NOT NULL,
    valid_until  INTEGER,
    UNIQUE (user_id, consent_type, seq)
) STRICT;

CREATE TRIGGER consents_append_only BEFORE UPDATE ON consents
BEGIN
    SELECT RAISE(ABORT, 'consents are append-only');
END;

CREATE INDEX consents_type ON consents (consent_type, user_id, seq);

-- Erasure requests: the durable schedule. One open request (scheduled or running) per user. Any
-- instance's job claims a due row with a conditional UPDATE (lease_owner/lease_until), works
-- through its steps recording `step` and `audit_cursor` as it goes (so a crashed run resumes where
-- it stopped), and completes it. A completed request forgets the user id (and `requested_by`
-- when they asked themselves) and keeps the pseudonym that replaced it in the audit chain; the
-- user's other requests (cancelled, refused) go with the account.
CREATE TABLE erasure_requests (
    id           TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    user_id      TEXT    CHECK (user_id IS NULL OR length(user_id) = 36),
    pseudonym    TEXT    NOT NULL UNIQUE CHECK (pseudonym LIKE 'erased:%'),
    requested_by TEXT    CHECK (requested_by IS NULL OR length(requested_by) = 36),
    reason       TEXT    NOT NULL CHECK (reason IN ('user_request', 'consent_withdrawn', 'administrator')),
    state        TEXT    NOT NULL CHECK (state IN ('scheduled', 'running', 'completed', 'cancelled', 'refused')),
    step         TEXT    NOT NULL CHECK (step IN ('sessions', 'audit', 'account', 'keys', 'done')),
    audit_cursor INTEGER NOT NULL CHECK (audit_cursor >= 0),
    counts       TEXT    NOT NULL CHECK (json_valid(counts)),
    requested_at INTEGER NOT NULL,
    due_at       INTEGER NOT NULL,
    finished_at  INTEGER,
    outcome      TEXT,
    lease_owner  TEXT,
    lease_until  INTEGER,
    CHECK ((user_id IS NULL) = (state = 'completed'))
) STRICT;

CREATE UNIQUE INDEX erasure_requests_open ON erasure_requests (user_id) WHERE state IN ('scheduled', 'running');
CREATE INDEX erasure_requests_due ON erasure_requests (due_at) WHERE state IN ('scheduled', 'running');

-- Archived prefixes of the audit chain. A checkpoint names the last archived record and its MAC,
-- sealed (HMAC-SHA256) with an audit key: verification starts from the newest checkpoint after
-- checking its seal, so the chain still verifies once the records before it are gone.
CREATE TABLE audit_checkpoints (
    seq          INTEGER NOT NULL PRIMARY KEY CHECK (seq > 0),
    mac          BLOB    NOT NULL CHECK (length(mac) = 32),
    archived     INTEGER NOT NULL CHECK (archived >= 0),
    at           INTEGER NOT NULL,
    key_id       TEXT    NOT NULL REFERENCES data_keys (id),
    seal         BLOB    NOT NULL CHECK (length(seal) = 32)
) STRICT;
