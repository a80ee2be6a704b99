-- OAuth clients, SQLite dialect.
-- migrations/postgres/0016_oauth_clients.sql is the same schema for PostgreSQL; a test checks the parity.
--
-- The registry of OAuth 2.0 clients. A secret is never stored: `secret_hash` is its keyed hash
-- (HMAC-SHA256 under the data key `hash_key_id`, which cannot be deleted while a client refers to
-- it). Lists are JSON arrays of strings; redirect URIs are compared exactly.
CREATE TABLE oauth_clients (
    client_id                 TEXT    NOT NULL PRIMARY KEY CHECK (length(client_id) BETWEEN 1 AND 64),
    name                      TEXT    NOT NULL CHECK (name <> '' AND length(name) <= 100),
    kind                      TEXT    NOT NULL CHECK (kind IN ('confidential', 'public')),
    secret_hash               BLOB    CHECK (secret_hash IS NULL OR length(secret_hash) = 32),
    hash_key_id               TEXT    REFERENCES data_keys (id),
    redirect_uris             TEXT    NOT NULL CHECK (json_valid(redirect_uris) AND json_type(redirect_uris) = 'array'),
    post_logout_redirect_uris TEXT    NOT NULL CHECK (json_valid(post_logout_redirect_uris)
                                                      AND json_type(post_logout_redirect_uris) = 'array'),
    grant_types               TEXT    NOT NULL CHECK (json_valid(grant_types) AND json_type(grant_types) = 'array'),
    scopes                    TEXT    NOT NULL CHECK (json_valid(scopes) AND json_type(scopes) = 'array'),
    auth_method               TEXT    NOT NULL CHECK (auth_method IN
                                          ('client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none')),
    jwks                      TEXT    CHECK (jwks IS NULL OR json_valid(jwks)),
    jwks_uri                  TEXT,
    created_at                INTEGER NOT NULL,
    created_by                TEXT    CHECK (created_by IS NULL OR length(created_by) = 36),
    CHECK ((secret_hash IS NULL) = (hash_key_id IS NULL)),
    CHECK ((auth_method IN ('client_secret_basic', 'client_secret_post')) = (secret_hash IS NOT NULL)),
    CHECK ((kind = 'public') = (auth_method = 'none'))
) STRICT;
