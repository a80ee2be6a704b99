-- API keys, SQLite dialect.
-- migrations/postgres/0003_api_keys.sql is the same schema for PostgreSQL; a test checks the parity.
--
-- As before: ids are hyphenated uuid text, instants INTEGER microseconds since the Unix epoch,
-- STRICT tables. Only a keyed hash of the secret is stored: HMAC-SHA256 under the data key
-- `hash_key_id`. `scopes` and `ip_allow` are JSON arrays of strings (text). Rate limits are
-- requests per window, NULL for none. Ids are uuid v7, so ordering by id orders by creation.
CREATE TABLE api_keys (
    id           TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    owner        TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         TEXT    NOT NULL CHECK (name <> ''),
    secret_hash  BLOB    NOT NULL CHECK (length(secret_hash) = 32),
    hash_key_id  TEXT    NOT NULL REFERENCES data_keys (id),
    scopes       TEXT    NOT NULL CHECK (json_valid(scopes) AND json_type(scopes) = 'array'),
    ip_allow     TEXT    NOT NULL CHECK (json_valid(ip_allow) AND json_type(ip_allow) = 'array'),
    per_minute   INTEGER CHECK (per_minute BETWEEN 1 AND 4294967295),
    per_hour     INTEGER CHECK (per_hour BETWEEN 1 AND 4294967295),
    per_day      INTEGER CHECK (per_day BETWEEN 1 AND 4294967295),
    created_at   INTEGER NOT NULL, -- unix microseconds
    expires_at   INTEGER,          -- unix microseconds; NULL: never
    last_used_at INTEGER,          -- unix microseconds; NULL: never used
    revoked_at   INTEGER           -- unix microseconds; NULL while live
) STRICT;

CREATE INDEX api_keys_owner ON api_keys (owner, id);
