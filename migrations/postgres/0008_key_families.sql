-- Key families, PostgreSQL dialect.
-- migrations/sqlite/0008_key_families.sql is the same change for SQLite; a test checks the parity.
--
-- A data key's `purpose` names its family; versions count from 1 within a family. Besides Palisade's
-- own `data` and `audit` keys there are now the encryption service's families, one per data
-- classification (`class:…`, palisade_core::crypto::KeyPurpose::Class), and per-user families
-- (`user:` and the user id as 32 lowercase hex digits) whose deletion crypto-shreds that user's data.
-- The list is closed on purpose: a family the code cannot name back is refused here, not read back
-- as a corrupt row.
--
-- `data_keys_purpose_check` is the name PostgreSQL gave 0001's column check. Both changes are one
-- statement, so the table is never without a check; adding the new one checks the existing rows.
ALTER TABLE data_keys
    DROP CONSTRAINT data_keys_purpose_check,
    ADD CONSTRAINT data_keys_purpose_check CHECK (
        purpose IN (
            'data', 'audit',
            'class:public', 'class:internal', 'class:confidential', 'class:restricted', 'class:pii',
            'class:top_secret'
        )
        OR purpose ~ '^user:[0123456789abcdef]{32}$'
    );
