-- Passkeys (WebAuthn credentials), SQLite dialect.
-- migrations/postgres/0006_passkeys.sql is the same schema for PostgreSQL; a test checks the parity.
--
-- As before: ids are hyphenated uuid text, instants INTEGER microseconds since the Unix epoch,
-- STRICT tables. A passkey is keyed by its credential id (raw bytes; WebAuthn allows at most 1023),
-- which is unique across all users: an authenticator's answer names the credential, and the
-- credential names its owner. `passkey` is webauthn-rs's `Passkey` serialised as a JSON object
-- (public key, algorithm, signature counter, flags): nothing secret, so it is stored as it is, and
-- replaced after each use only if it is still the form that use started from. A user may have
-- several passkeys, listed oldest first; `name` is what the user calls it.
CREATE TABLE passkeys (
    credential_id BLOB    NOT NULL PRIMARY KEY CHECK (length(credential_id) BETWEEN 1 AND 1023),
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    passkey       TEXT    NOT NULL CHECK (json_valid(passkey) AND json_type(passkey) = 'object'),
    created_at    INTEGER NOT NULL, -- unix microseconds
    last_used_at  INTEGER           -- unix microseconds; NULL: never used
) STRICT;

CREATE INDEX passkeys_user_id ON passkeys (user_id, created_at);
