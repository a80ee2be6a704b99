-- Automatic responses to incidents, PostgreSQL dialect.
-- migrations/sqlite/0013_incident_actions.sql is the same schema for SQLite; a test checks the parity.
--
-- One row per action taken on an incident's behalf: an address blocked, an account locked (both
-- until `expires_at`), sessions ended, an API key revoked. `reverted_at`/`reverted_by` are set
-- together, once: by an administrator, or `expiry` when a timed action lapsed. The live address
-- blocks are read every second by every instance (the partial index).
CREATE TABLE incident_actions (
    id           uuid        PRIMARY KEY,
    incident_id  uuid        NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    kind         text        NOT NULL CHECK (kind IN ('block_ip', 'lock_account', 'end_sessions', 'revoke_api_key')),
    target       text        NOT NULL CHECK (target <> '' AND length(target) <= 600),
    taken_at     timestamptz NOT NULL,
    expires_at   timestamptz,
    reverted_at  timestamptz,
    reverted_by  text,
    CHECK ((reverted_at IS NULL) = (reverted_by IS NULL)),
    CHECK ((expires_at IS NULL) = (kind IN ('end_sessions', 'revoke_api_key')))
);

CREATE INDEX incident_actions_incident ON incident_actions (incident_id, id);
CREATE INDEX incident_actions_live ON incident_actions (kind, expires_at) WHERE reverted_at IS NULL;
