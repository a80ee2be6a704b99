-- Devices and scored login attempts, SQLite dialect.
-- migrations/postgres/0007_devices_risk.sql is the same schema for PostgreSQL; a test checks the parity.
--
-- As before: ids are hyphenated uuid text, instants INTEGER microseconds since the Unix epoch,
-- STRICT tables. A device is known by a keyed hash of its fingerprint (HMAC-SHA256, 32 bytes),
-- never by the raw material, and is unique per user: the unique (user_id, fingerprint) pair is what
-- lets two concurrent first logins from one device make one row. `approved` is 0 or 1.
CREATE TABLE devices (
    id            TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    user_id       TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    fingerprint   BLOB    NOT NULL CHECK (length(fingerprint) = 32),
    name          TEXT    NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    device_type   TEXT,
    os            TEXT,
    browser       TEXT,
    first_seen_at INTEGER NOT NULL, -- unix microseconds
    last_seen_at  INTEGER NOT NULL, -- unix microseconds
    last_ip       TEXT,
    last_country  TEXT,
    last_city     TEXT,
    trust_level   TEXT    NOT NULL CHECK (trust_level IN ('low', 'medium', 'high')),
    approved      INTEGER NOT NULL CHECK (approved IN (0, 1)),
    UNIQUE (user_id, fingerprint)
) STRICT;

CREATE INDEX devices_user_id ON devices (user_id, last_seen_at);

-- One row per scored login attempt. `assessment` is the whole assessment as JSON (score, decision,
-- the factors that fired and those that could not be evaluated); `score` and `decision` repeat it
-- so the database can check and query them. Coordinates are both present or both absent. Forgetting
-- a device keeps its attempts and drops the link. The attempts a user succeeded with are their login
-- history, read newest first through the partial index.
CREATE TABLE risk_records (
    id          TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    user_id     TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    at          INTEGER NOT NULL, -- unix microseconds
    ip          TEXT,
    country     TEXT,
    city        TEXT,
    latitude    REAL,
    longitude   REAL,
    accuracy_km INTEGER CHECK (accuracy_km BETWEEN 0 AND 4294967295),
    asn         INTEGER CHECK (asn BETWEEN 0 AND 4294967295),
    device_id   TEXT    REFERENCES devices (id) ON DELETE SET NULL,
    score       REAL    NOT NULL CHECK (score BETWEEN 0 AND 1),
    decision    TEXT    NOT NULL CHECK (decision IN ('allow', 'mfa', 'enhanced_mfa', 'block')),
    assessment  TEXT    NOT NULL CHECK (json_valid(assessment) AND json_type(assessment) = 'object'),
    result      TEXT    NOT NULL CHECK (result IN ('pending', 'succeeded', 'blocked')),
    CHECK ((latitude IS NULL) = (longitude IS NULL))
) STRICT;

CREATE INDEX risk_records_user_id ON risk_records (user_id, at);
CREATE INDEX risk_records_succeeded ON risk_records (user_id, at) WHERE result = 'succeeded';
CREATE INDEX risk_records_at ON risk_records (at);
CREATE INDEX risk_records_device_id ON risk_records (device_id) WHERE device_id IS NOT NULL;

-- Ranked sets of the hot store, like Redis sorted sets: each member has an integer rank, and the set
-- expires as a whole, the set row carrying the time to live (unix milliseconds, from the injected
-- clock) and its members going with it. Members order by rank, then bytewise.
CREATE TABLE hot_ranked_sets (
    key           TEXT    NOT NULL PRIMARY KEY,
    expires_at_ms INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE INDEX hot_ranked_sets_expires_at_ms ON hot_ranked_sets (expires_at_ms);

CREATE TABLE hot_ranked_set_members (
    key    TEXT    NOT NULL REFERENCES hot_ranked_sets (key) ON DELETE CASCADE,
    member TEXT    NOT NULL,
    rank   INTEGER NOT NULL,
    PRIMARY KEY (key, member)
) STRICT, WITHOUT ROWID;

CREATE INDEX hot_ranked_set_members_rank ON hot_ranked_set_members (key, rank, member);
