-- Administrators, SQLite dialect (migrations/postgres/0004_admin.sql is the same for PostgreSQL).
-- An administrator's logins carry the `admin` scope; the first one is made with
-- `palisade user grant-admin`.
ALTER TABLE users ADD COLUMN admin INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1));
