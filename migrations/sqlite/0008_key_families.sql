-- no-transaction
-- Key families, SQLite dialect.
-- migrations/postgres/0008_key_families.sql is the same change for PostgreSQL; a test checks the parity.
--
-- A data key's `purpose` names its family; versions count from 1 within a family. Besides Palisade's
-- own `data` and `audit` keys there are now the encryption service's families, one per data
-- classification (`class:…`, palisade_core::crypto::KeyPurpose::Class), and per-user families
-- (`user:` and the user id as 32 lowercase hex digits) whose deletion crypto-shreds that user's data.
-- The list is closed on purpose: a family the code cannot name back is refused here, not read back
-- as a corrupt row.
--
-- SQLite cannot alter a CHECK constraint, so the table is rebuilt (https://sqlite.org/lang_altertable.html,
-- "Making Other Kinds Of Table Schema Changes"): create the new table, copy every row, drop the old
-- table, rename the new one. audit_log, api_keys and mfa_backup_codes refer to data_keys by name,
-- so they refer to the new table once it is renamed; their rows are untouched.
--
-- Why outside sqlx's transaction (the first line): the store's connections enforce foreign keys,
-- and with them on, DROP TABLE deletes every row first, which breaks the references to it. Deferring
-- the checks (PRAGMA defer_foreign_keys) does not help: the broken references are counted at the
-- drop and the rename does not uncount them, so COMMIT fails. Foreign keys can only be switched off
-- outside a transaction (inside one the pragma does nothing), so this file switches them off, runs
-- its own transaction, proves that no reference dangles before committing, and switches them back
-- on. Should a statement fail, the store closes the connection (SqlStore::migrate), which rolls the
-- transaction back and takes the pragma with it. Running this again after a crash between COMMIT
-- and sqlx's bookkeeping rebuilds the table once more, harmlessly.
PRAGMA foreign_keys = OFF;

BEGIN IMMEDIATE;

-- As in 0001, but for the purpose check.
CREATE TABLE data_keys_0008 (
    id          TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    purpose     TEXT    NOT NULL CHECK (
        purpose IN (
            'data', 'audit',
            'class:public', 'class:internal', 'class:confidential', 'class:restricted', 'class:pii',
            'class:top_secret'
        )
        OR (length(purpose) = 37 AND substr(purpose, 1, 5) = 'user:'
            AND substr(purpose, 6) NOT GLOB '*[^0123456789abcdef]*')
    ),
    version     INTEGER NOT NULL CHECK (version BETWEEN 1 AND 2147483647),
    provider    TEXT    NOT NULL CHECK (provider <> ''),
    wrapped     BLOB    NOT NULL CHECK (length(wrapped) > 0),
    created_at  INTEGER NOT NULL, -- unix microseconds
    UNIQUE (purpose, version)
) STRICT;

INSERT INTO data_keys_0008 (id, purpose, version, provider, wrapped, created_at)
    SELECT id, purpose, version, provider, wrapped, created_at FROM data_keys;

DROP TABLE data_keys;

ALTER TABLE data_keys_0008 RENAME TO data_keys;

-- Every reference must still find its key; a violation fails the insert, and so the migration,
-- before anything is committed.
CREATE TEMP TABLE migration_0008_check (foreign_key_violations INTEGER NOT NULL CHECK (foreign_key_violations = 0));
INSERT INTO migration_0008_check SELECT count(*) FROM pragma_foreign_key_check;
DROP TABLE migration_0008_check;

COMMIT;

PRAGMA foreign_keys = ON;
