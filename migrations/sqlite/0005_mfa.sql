-- Second factors and backup codes, SQLite dialect.
-- migrations/postgres/0005_mfa.sql is the same schema for PostgreSQL; a test checks the parity.
--
-- As before: ids are hyphenated uuid text, instants INTEGER microseconds since the Unix epoch,
-- STRICT tables. A factor's secret part (a TOTP secret, a phone number, an e-mail address) is
-- stored only sealed by the keyring, as an envelope's compact text. A user has at most one factor
-- of each kind; it is pending, and cannot be used, while `confirmed_at` is NULL. Backup codes are
-- stored only as HMAC-SHA256 under the data key `hash_key_id`, one set per user, numbered by `idx`;
-- a code is usable while `used_at` is NULL.
CREATE TABLE mfa_factors (
    id           TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         TEXT    NOT NULL CHECK (kind IN ('totp', 'sms', 'email')),
    sealed       TEXT    NOT NULL CHECK (sealed <> ''),
    created_at   INTEGER NOT NULL, -- unix microseconds
    confirmed_at INTEGER,          -- unix microseconds; NULL while pending
    UNIQUE (user_id, kind)
) STRICT;

CREATE TABLE mfa_backup_codes (
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL CHECK (idx BETWEEN 0 AND 99),
    code_hash   BLOB    NOT NULL CHECK (length(code_hash) = 32),
    hash_key_id TEXT    NOT NULL REFERENCES data_keys (id),
    created_at  INTEGER NOT NULL, -- unix microseconds
    used_at     INTEGER,          -- unix microseconds; NULL while usable
    PRIMARY KEY (user_id, idx)
) STRICT;
