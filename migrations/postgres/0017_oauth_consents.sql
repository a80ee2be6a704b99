-- OAuth consents, PostgreSQL dialect.
-- migrations/sqlite/0017_oauth_consents.sql is the same schema for SQLite; a test checks the parity.
--
-- What a user agreed an OAuth client may have: one row per user and client, the scopes as a JSON
-- array of strings. The consent page is skipped while every scope asked for is in the row; the
-- user revokes it (DELETE /auth/authorizations/{client_id}), and it goes with the user or the client.
CREATE TABLE oauth_consents (
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  text        NOT NULL REFERENCES oauth_clients (client_id) ON DELETE CASCADE,
    scopes     text        NOT NULL CHECK (json_typeof(scopes::json) = 'array'),
    granted_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

CREATE INDEX oauth_consents_client ON oauth_consents (client_id);
