-- OAuth clients, PostgreSQL dialect.
-- migrations/sqlite/0016_oauth_clients.sql is the same schema for SQLite; a test checks the parity.
--
-- The registry of OAuth 2.0 clients. A secret is never stored: `secret_hash` is its keyed hash
-- (HMAC-SHA256 under the data key `hash_key_id`, which cannot be deleted while a client refers to
-- it). Lists are JSON arrays of strings; redirect URIs are compared exactly.
CREATE TABLE oauth_clients (
    client_id                 text        PRIMARY KEY CHECK (length(client_id) BETWEEN 1 AND 64),
    name                      text        NOT NULL CHECK (name <> '' AND length(name) <= 100),
    kind                      text        NOT NULL CHECK (kind IN ('confidential', 'public')),
    secret_hash               bytea       CHECK (secret_hash IS NULL OR octet_length(secret_hash) = 32),
    hash_key_id               uuid        REFERENCES data_keys (id),
    redirect_uris             text        NOT NULL CHECK (json_typeof(redirect_uris::json) = 'array'),
    post_logout_redirect_uris text        NOT NULL CHECK (json_typeof(post_logout_redirect_uris::json) = 'array'),
    grant_types               text        NOT NULL CHECK (json_typeof(grant_types::json) = 'array'),
    scopes                    text        NOT NULL CHECK (json_typeof(scopes::json) = 'array'),
    auth_method               text        NOT NULL CHECK (auth_method IN
                                              ('client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none')),
    jwks                      text        CHECK (jwks IS NULL OR jwks::jsonb IS NOT NULL),
    jwks_uri                  text,
    created_at                timestamptz NOT NULL,
    created_by                uuid,
    CHECK ((secret_hash IS NULL) = (hash_key_id IS NULL)),
    CHECK ((auth_method IN ('client_secret_basic', 'client_secret_post')) = (secret_hash IS NOT NULL)),
    CHECK ((kind = 'public') = (auth_method = 'none'))
);
