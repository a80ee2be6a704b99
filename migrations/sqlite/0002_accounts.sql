-- Accounts, refresh-token families and JWT signing keys, SQLite dialect.
-- migrations/postgres/0002_accounts.sql is the same schema for PostgreSQL; a test checks the parity.
--
-- As in 0001: ids are hyphenated uuid text, instants INTEGER microseconds since the Unix epoch,
-- STRICT tables. Constraint and index names matter where the store reads them back: a unique
-- violation on `users.username` or `users.email` is how `insert_user` tells which one is taken.

-- Accounts. `username` is the canonical form (palisade_core::user::Username), so one UNIQUE
-- constraint makes `Alice` and `ALICE` one account. `locked` is the administrative lock.
CREATE TABLE users (
    id                  TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    username            TEXT    NOT NULL CHECK (length(username) BETWEEN 1 AND 64),
    email               TEXT    CHECK (length(email) BETWEEN 3 AND 254),
    password_hash       TEXT    NOT NULL CHECK (password_hash <> ''),
    password_changed_at INTEGER NOT NULL, -- unix microseconds
    created_at          INTEGER NOT NULL, -- unix microseconds
    locked              INTEGER NOT NULL DEFAULT 0 CHECK (locked IN (0, 1)),
    CONSTRAINT users_username_key UNIQUE (username)
) STRICT;

-- An e-mail address belongs to at most one account; accounts without one are not in the index.
CREATE UNIQUE INDEX users_email_key ON users (email) WHERE email IS NOT NULL;

-- Hashes a user's password had before, to refuse their reuse. `position` counts up per user (the
-- newest is the highest); `replaced_at` is when the hash stopped being the password.
CREATE TABLE password_history (
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    position    INTEGER NOT NULL CHECK (position > 0),
    hash        TEXT    NOT NULL CHECK (hash <> ''),
    replaced_at INTEGER NOT NULL, -- unix microseconds
    PRIMARY KEY (user_id, position)
) STRICT, WITHOUT ROWID;

-- One family per login: every refresh token rotated from it. Revoking the family (logout, reuse of
-- a spent token, password change) ends every token in it at once. The (id, user_id, session_id)
-- key lets each token name its family, owner and session together, so they cannot disagree.
CREATE TABLE refresh_families (
    id             TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    user_id        TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id     TEXT    NOT NULL CHECK (length(session_id) = 36),
    created_at     INTEGER NOT NULL, -- unix microseconds
    revoked_at     INTEGER,          -- unix microseconds; NULL while live
    revoked_reason TEXT    CHECK (revoked_reason IN ('logout', 'reuse', 'password_change', 'session_ended')),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL)),
    UNIQUE (id, user_id, session_id)
) STRICT;

CREATE INDEX refresh_families_session_id ON refresh_families (session_id);
CREATE INDEX refresh_families_user_id ON refresh_families (user_id);

-- Refresh tokens, stored only as their SHA-256. `spent_at` is set when the token is rotated; a spent
-- token presented again (outside the grace window) revokes its family. `parent` records the lineage
-- only: a parent may be purged before its children.
CREATE TABLE refresh_tokens (
    hash       BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
    family_id  TEXT    NOT NULL,
    parent     BLOB    CHECK (length(parent) = 32),
    user_id    TEXT    NOT NULL,
    session_id TEXT    NOT NULL,
    issued_at  INTEGER NOT NULL, -- unix microseconds
    expires_at INTEGER NOT NULL, -- unix microseconds
    spent_at   INTEGER,          -- unix microseconds; NULL while unspent
    CHECK (expires_at > issued_at),
    FOREIGN KEY (family_id, user_id, session_id)
        REFERENCES refresh_families (id, user_id, session_id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

-- A token with a child is spent. Rotation stores the child in one statement (SQLite has no
-- data-modifying WITH; PostgreSQL's rotation statement spends the parent itself), and this marks
-- the parent spent in that same statement. A retry within the grace window stores a second child
-- and keeps the first spend time.
CREATE TRIGGER refresh_tokens_spend_parent AFTER INSERT ON refresh_tokens
WHEN NEW.parent IS NOT NULL
BEGIN
    UPDATE refresh_tokens SET spent_at = COALESCE(spent_at, NEW.issued_at) WHERE hash = NEW.parent;
END;

-- JWT signing keys. The private key is sealed by the keyring (compact envelope text); the public key
-- is a JWK object, absent exactly for HS256, which has nothing public. The unique (algorithm,
-- version) pair lets exactly one instance create a given version.
CREATE TABLE signing_keys (
    kid         TEXT    NOT NULL PRIMARY KEY CHECK (length(kid) BETWEEN 1 AND 128),
    algorithm   TEXT    NOT NULL CHECK (algorithm IN ('EdDSA', 'ES256', 'RS256', 'HS256')),
    version     INTEGER NOT NULL CHECK (version BETWEEN 1 AND 2147483647),
    private_key TEXT    NOT NULL CHECK (private_key <> ''),
    public_jwk  TEXT    CHECK (json_valid(public_jwk) AND json_type(public_jwk) = 'object'),
    created_at  INTEGER NOT NULL, -- unix microseconds
    retired_at  INTEGER,          -- unix microseconds; NULL while it may sign
    CHECK ((algorithm = 'HS256') = (public_jwk IS NULL)),
    UNIQUE (algorithm, version)
) STRICT;
