-- Second factors and backup codes, PostgreSQL dialect.
-- migrations/sqlite/0005_mfa.sql is the same schema for SQLite; a test checks the parity.
--
-- A factor's secret part (a TOTP secret, a phone number, an e-mail address) is stored only sealed
-- by the keyring, as an envelope's compact text. A user has at most one factor of each kind; it is
-- pending, and cannot be used, while `confirmed_at` is NULL. Backup codes are stored only as
-- HMAC-SHA256 under the data key `hash_key_id`, one set per user, numbered by `idx`; a code is
-- usable while `used_at` is NULL.
CREATE TABLE mfa_factors (
    id           uuid        PRIMARY KEY,
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind         text        NOT NULL CHECK (kind IN ('totp', 'sms', 'email')),
    sealed       text        NOT NULL CHECK (sealed <> ''),
    created_at   timestamptz NOT NULL,
    confirmed_at timestamptz,
    UNIQUE (user_id, kind)
);

CREATE TABLE mfa_backup_codes (
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    idx         integer     NOT NULL CHECK (idx BETWEEN 0 AND 99),
    code_hash   bytea       NOT NULL CHECK (octet_length(code_hash) = 32),
    hash_key_id uuid        NOT NULL REFERENCES data_keys (id),
    created_at  timestamptz NOT NULL,
    used_at     timestamptz,
    PRIMARY KEY (user_id, idx)
);
