-- Passkeys (WebAuthn credentials), PostgreSQL dialect.
-- migrations/sqlite/0006_passkeys.sql is the same schema for SQLite; a test checks the parity.
--
-- A passkey is keyed by its credential id (raw bytes; WebAuthn allows at most 1023), which is
-- unique across all users: an authenticator's answer names the credential, and the credential
-- names its owner. `passkey` is webauthn-rs's `Passkey` serialised as a JSON object (public key,
-- algorithm, signature counter, flags), kept as text like the other JSON columns, so that the
-- conditional replacement after a use compares exactly the text it read: nothing secret, so it is
-- stored as it is. A user may have several passkeys, listed oldest first; `name` is what the user
-- calls it (at most 100 characters).
CREATE TABLE passkeys (
    credential_id bytea       PRIMARY KEY CHECK (octet_length(credential_id) BETWEEN 1 AND 1023),
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    passkey       text        NOT NULL CHECK (json_typeof(passkey::json) = 'object'),
    created_at    timestamptz NOT NULL,
    last_used_at  timestamptz
);

CREATE INDEX passkeys_user_id ON passkeys (user_id, created_at);
