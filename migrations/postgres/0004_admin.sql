-- Administrators, PostgreSQL dialect (migrations/sqlite/0004_admin.sql is the same for SQLite).
-- An administrator's logins carry the `admin` scope; the first one is made with
-- `palisade user grant-admin`.
ALTER TABLE users ADD COLUMN admin BOOLEAN NOT NULL DEFAULT false;
