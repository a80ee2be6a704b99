-- Compliance, PostgreSQL dialect.
-- migrations/sqlite/0015_compliance.sql is the same schema for SQLite; a test checks the parity.
--
-- audit_log gains the v2 seal of personal fields: the MAC of a record sealed from now on covers
-- `personal_digest` (SHA-256 over `personal_salt` and the actor, subject, address, user agent and
-- details) instead of those fields, so an erasure can redact them (clearing the salt) without
-- breaking the chain. Older rows keep NULLs: v1 records, MACed over their fields as before.
ALTER TABLE audit_log ADD COLUMN personal_salt bytea CHECK (personal_salt IS NULL OR octet_length(personal_salt) = 16);
ALTER TABLE audit_log ADD COLUMN personal_digest bytea CHECK (personal_digest IS NULL OR octet_length(personal_digest) = 32);
ALTER TABLE audit_log ADD COLUMN redacted_at timestamptz;
CREATE INDEX audit_log_actor ON audit_log (actor, seq);

-- The consent ledger. `consent_texts` keeps each version's full text once, by its SHA-256;
-- `consents` is append-only (a trigger refuses updates): giving and withdrawing are rows, numbered
-- per user and type by `seq`, and UNIQUE (user_id, consent_type, seq) lets one of two concurrent
-- writers have the next number. Rows go with their user (erasure) or by retention, never otherwise.
CREATE TABLE consent_texts (
    hash         bytea       PRIMARY KEY CHECK (octet_length(hash) = 32),
    consent_type text        NOT NULL CHECK (consent_type <> '' AND length(consent_type) <= 64),
    version      text        NOT NULL CHECK (version <> '' AND length(version) <= 64),
    text         text        NOT NULL CHECK (text <> ''),
    recorded_at  timestamptz NOT NULL,
    UNIQUE (consent_type, version)
);

CREATE TABLE consents (
    id           uuid        PRIMARY KEY,
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    consent_type text        NOT NULL CHECK (consent_type <> '' AND length(consent_type) <= 64),
    seq          bigint      NOT NULL CHECK (seq > 0),
    action       text        NOT NULL CHECK (action IN ('given', 'withdrawn')),
    version      text        NOT NULL CHECK (version <> '' AND length(version) <= 64),
    text_hash    bytea       NOT NULL REFERENCES consent_texts (hash),
    method       text        NOT NULL CHECK (method <> '' AND length(method) <= 64),
    ip           text,
    user_agent   text,
    reason       text,
    at           timestamptz NOT NULL,
    valid_until  timestamptz,
    UNIQUE (user_id, consent_type, seq)
);

CREATE FUNCTION consents_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'consents are append-only';
END;
$$;

CREATE TRIGGER consents_append_only BEFORE UPDATE ON consents
    FOR EACH ROW EXECUTE FUNCTION consents_append_only();

CREATE INDEX consents_type ON consents (consent_type, user_id, seq);

-- Erasure requests: the durable schedule. One open request (scheduled or running) per user. Any
-- instance's job claims a due row with a conditional UPDATE (lease_owner/lease_until), works
-- through its steps recording `step` and `audit_cursor` as it goes (so a crashed run resumes where
-- it stopped), and completes it. A completed request forgets the user id (and `requested_by`
-- when they asked themselves) and keeps the pseudonym that replaced it in the audit chain; the
-- user's other requests (cancelled, refused) go with the account.
CREATE TABLE erasure_requests (
    id           uuid        PRIMARY KEY,
    user_id      uuid,
    pseudonym    text        NOT NULL UNIQUE CHECK (pseudonym LIKE 'erased:%'),
    requested_by uuid,
    reason       text        NOT NULL CHECK (reason IN ('user_request', 'consent_withdrawn', 'administrator')),
    state        text        NOT NULL CHECK (state IN ('scheduled', 'running', 'completed', 'cancelled', 'refused')),
    step         text        NOT NULL CHECK (step IN ('sessions', 'audit', 'account', 'keys', 'done')),
    audit_cursor bigint      NOT NULL CHECK (audit_cursor >= 0),
    counts       text        NOT NULL CHECK (counts::jsonb IS NOT NULL),
    requested_at timestamptz NOT NULL,
    due_at       timestamptz NOT NULL,
    finished_at  timestamptz,
    outcome      text,
    lease_owner  text,
    lease_until  timestamptz,
    CHECK ((user_id IS NULL) = (state = 'completed'))
);

CREATE UNIQUE INDEX erasure_requests_open ON erasure_requests (user_id) WHERE state IN ('scheduled', 'running');
CREATE INDEX erasure_requests_due ON erasure_requests (due_at) WHERE state IN ('scheduled', 'running');

-- Archived prefixes of the audit chain. A checkpoint names the last archived record and its MAC,
-- sealed (HMAC-SHA256) with an audit key: verification starts from the newest checkpoint after
-- checking its seal, so the chain still verifies once the records before it are gone.
CREATE TABLE audit_checkpoints (
    seq          bigint      PRIMARY KEY CHECK (seq > 0),
    mac          bytea       NOT NULL CHECK (octet_length(mac) = 32),
    archived     bigint      NOT NULL CHECK (archived >= 0),
    at           timestamptz NOT NULL,
    key_id       uuid        NOT NULL REFERENCES data_keys (id),
    seal         bytea       NOT NULL CHECK (octet_length(seal) = 32)
);
