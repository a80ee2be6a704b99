-- API keys, PostgreSQL dialect.
-- migrations/sqlite/0003_api_keys.sql is the same schema for SQLite; a test checks the parity.
--
-- Only a keyed hash of the secret is stored: HMAC-SHA256 under the data key `hash_key_id`.
-- `scopes` and `ip_allow` are JSON arrays of strings, kept as text like the audit details. Rate
-- limits are requests per window, NULL for none (bigint: the port's limits are u32). Ids are uuid
-- v7, so ordering by id orders by creation.
CREATE TABLE api_keys (
    id           uuid        PRIMARY KEY,
    owner        uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name         text        NOT NULL CHECK (name <> ''),
    secret_hash  bytea       NOT NULL CHECK (octet_length(secret_hash) = 32),
    hash_key_id  uuid        NOT NULL REFERENCES data_keys (id),
    scopes       text        NOT NULL CHECK (json_typeof(scopes::json) = 'array'),
    ip_allow     text        NOT NULL CHECK (json_typeof(ip_allow::json) = 'array'),
    per_minute   bigint      CHECK (per_minute BETWEEN 1 AND 4294967295),
    per_hour     bigint      CHECK (per_hour BETWEEN 1 AND 4294967295),
    per_day      bigint      CHECK (per_day BETWEEN 1 AND 4294967295),
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz,
    last_used_at timestamptz,
    revoked_at   timestamptz
);

CREATE INDEX api_keys_owner ON api_keys (owner, id);
