-- Key retirement, SQLite dialect.
-- migrations/postgres/0009_key_retirement.sql is the same schema for PostgreSQL; a test checks the parity.
--
-- Per key family, the lowest version that may still decrypt (Vault's `min_decryption_version`):
-- versions below it are retired, their envelopes refused with KEY_VERSION_RETIRED until an
-- administrator moves the minimum back. A family without a row retires nothing (minimum 1). The
-- family names are those of data_keys.purpose; instants INTEGER microseconds since the Unix epoch.
CREATE TABLE key_families (
    purpose                 TEXT    NOT NULL PRIMARY KEY CHECK (purpose <> '' AND length(purpose) <= 64),
    min_decryption_version  INTEGER NOT NULL CHECK (min_decryption_version BETWEEN 1 AND 2147483647),
    updated_at              INTEGER NOT NULL
) STRICT;
