-- Accounts, refresh-token families and JWT signing keys, PostgreSQL dialect.
-- migrations/sqlite/0002_accounts.sql is the same schema for SQLite; a test checks the parity.
--
-- Instants are timestamptz (microsecond precision), as in 0001. Constraint and index names matter
-- where the store reads them back: a unique violation of `users_username_key` or `users_email_key`
-- is how `insert_user` tells which one is taken.

-- Accounts. `username` is the canonical form (palisade_core::user::Username), so one UNIQUE
-- constraint makes `Alice` and `ALICE` one account. `locked` is the administrative lock.
CREATE TABLE users (
    id                  uuid        PRIMARY KEY,
    username            text        NOT NULL CHECK (char_length(username) BETWEEN 1 AND 64),
    email               text        CHECK (char_length(email) BETWEEN 3 AND 254),
    password_hash       text        NOT NULL CHECK (password_hash <> ''),
    password_changed_at timestamptz NOT NULL,
    created_at          timestamptz NOT NULL,
    locked              boolean     NOT NULL DEFAULT false,
    CONSTRAINT users_username_key UNIQUE (username)
);

-- An e-mail address belongs to at most one account; accounts without one are not in the index.
CREATE UNIQUE INDEX users_email_key ON users (email) WHERE email IS NOT NULL;

-- Hashes a user's password had before, to refuse their reuse. `position` counts up per user (the
-- newest is the highest); `replaced_at` is when the hash stopped being the password.
CREATE TABLE password_history (
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    position    bigint      NOT NULL CHECK (position > 0),
    hash        text        NOT NULL CHECK (hash <> ''),
    replaced_at timestamptz NOT NULL,
    PRIMARY KEY (user_id, position)
);

-- One family per login: every refresh token rotated from it. Revoking the family (logout, reuse of
-- a spent token, password change) ends every token in it at once. The (id, user_id, session_id)
-- key lets each token name its family, owner and session together, so they cannot disagree.
CREATE TABLE refresh_families (
    id             uuid        PRIMARY KEY,
    user_id        uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id     uuid        NOT NULL,
    created_at     timestamptz NOT NULL,
    revoked_at     timestamptz,
    revoked_reason text        CHECK (revoked_reason IN ('logout', 'reuse', 'password_change', 'session_ended')),
    CHECK ((revoked_at IS NULL) = (revoked_reason IS NULL)),
    UNIQUE (id, user_id, session_id)
);

CREATE INDEX refresh_families_session_id ON refresh_families (session_id);
CREATE INDEX refresh_families_user_id ON refresh_families (user_id);

-- Refresh tokens, stored only as their SHA-256. `spent_at` is set when the token is rotated (by the
-- rotation statement itself; SQLite's schema has a trigger for it); a spent token presented again
-- (outside the grace window) revokes its family. `parent` records the lineage only: a parent may be
-- purged before its children.
CREATE TABLE refresh_tokens (
    hash       bytea       PRIMARY KEY CHECK (octet_length(hash) = 32),
    family_id  uuid        NOT NULL,
    parent     bytea       CHECK (octet_length(parent) = 32),
    user_id    uuid        NOT NULL,
    session_id uuid        NOT NULL,
    issued_at  timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    spent_at   timestamptz,
    CHECK (expires_at > issued_at),
    FOREIGN KEY (family_id, user_id, session_id)
        REFERENCES refresh_families (id, user_id, session_id) ON DELETE CASCADE
);

CREATE INDEX refresh_tokens_family_id ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);

-- JWT signing keys. The private key is sealed by the keyring (compact envelope text); the public key
-- is a JWK object, absent exactly for HS256, which has nothing public. The unique (algorithm,
-- version) pair lets exactly one instance create a given version.
CREATE TABLE signing_keys (
    kid         text        PRIMARY KEY CHECK (char_length(kid) BETWEEN 1 AND 128),
    algorithm   text        NOT NULL CHECK (algorithm IN ('EdDSA', 'ES256', 'RS256', 'HS256')),
    version     integer     NOT NULL CHECK (version > 0),
    private_key text        NOT NULL CHECK (private_key <> ''),
    public_jwk  text        CHECK (jsonb_typeof(public_jwk::jsonb) = 'object'),
    created_at  timestamptz NOT NULL,
    retired_at  timestamptz,
    CHECK ((algorithm = 'HS256') = (public_jwk IS NULL)),
    UNIQUE (algorithm, version)
);
