-- OAuth consents, SQLite dialect.
-- migrations/postgres/0017_oauth_consents.sql is the same schema for PostgreSQL; a test checks the parity.
--
-- What a user agreed an OAuth client may have: one row per user and client, the scopes as a JSON
-- array of strings. The consent page is skipped while every scope asked for is in the row; the
-- user revokes it (DELETE /auth/authorizations/{client_id}), and it goes with the user or the client.
CREATE TABLE oauth_consents (
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT    NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    scopes     TEXT    NOT NULL CHECK (json_valid(scopes) AND json_type(scopes) = 'array'),
    granted_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
) STRICT;

CREATE INDEX oauth_consents_client ON oauth_consents (client_id);
