-- Devices and scored login attempts, PostgreSQL dialect.
-- migrations/sqlite/0007_devices_risk.sql is the same schema for SQLite; a test checks the parity.
--
-- A device is known by a keyed hash of its fingerprint (HMAC-SHA256, 32 bytes), never by the raw
-- material, and is unique per user: the unique (user_id, fingerprint) pair is what lets two
-- concurrent first logins from one device make one row.
CREATE TABLE devices (
    id            uuid        PRIMARY KEY,
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    fingerprint   bytea       NOT NULL CHECK (octet_length(fingerprint) = 32),
    name          text        NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    device_type   text,
    os            text,
    browser       text,
    first_seen_at timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    last_ip       text,
    last_country  text,
    last_city     text,
    trust_level   text        NOT NULL CHECK (trust_level IN ('low', 'medium', 'high')),
    approved      boolean     NOT NULL,
    UNIQUE (user_id, fingerprint)
);

CREATE INDEX devices_user_id ON devices (user_id, last_seen_at);

-- One row per scored login attempt. `assessment` is the whole assessment as JSON (score, decision,
-- the factors that fired and those that could not be evaluated), kept as text like the other JSON
-- columns; `score` and `decision` repeat it so the database can check and query them. Coordinates
-- are both present or both absent. Forgetting a device keeps its attempts and drops the link (the
-- index on device_id keeps that cheap). The attempts a user succeeded with are their login
-- history, read newest first through the partial index.
CREATE TABLE risk_records (
    id          uuid             PRIMARY KEY,
    user_id     uuid             NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    at          timestamptz      NOT NULL,
    ip          text,
    country     text,
    city        text,
    latitude    double precision,
    longitude   double precision,
    accuracy_km bigint           CHECK (accuracy_km BETWEEN 0 AND 4294967295),
    asn         bigint           CHECK (asn BETWEEN 0 AND 4294967295),
    device_id   uuid             REFERENCES devices (id) ON DELETE SET NULL,
    score       double precision NOT NULL CHECK (score BETWEEN 0 AND 1),
    decision    text             NOT NULL CHECK (decision IN ('allow', 'mfa', 'enhanced_mfa', 'block')),
    assessment  text             NOT NULL CHECK (json_typeof(assessment::json) = 'object'),
    result      text             NOT NULL CHECK (result IN ('pending', 'succeeded', 'blocked')),
    CHECK ((latitude IS NULL) = (longitude IS NULL))
);

CREATE INDEX risk_records_user_id ON risk_records (user_id, at);
CREATE INDEX risk_records_succeeded ON risk_records (user_id, at) WHERE result = 'succeeded';
CREATE INDEX risk_records_at ON risk_records (at);
CREATE INDEX risk_records_device_id ON risk_records (device_id) WHERE device_id IS NOT NULL;

-- Ranked sets of the hot store, like Redis sorted sets: each member has an integer rank, and the set
-- expires as a whole, the set row carrying the time to live (unix milliseconds, from the injected
-- clock) and its members going with it. Members order by rank, then bytewise (collation "C", as
-- Redis and SQLite compare them), whatever the database's collation.
CREATE TABLE hot_ranked_sets (
    key           text   PRIMARY KEY,
    expires_at_ms bigint NOT NULL
);

CREATE INDEX hot_ranked_sets_expires_at_ms ON hot_ranked_sets (expires_at_ms);

CREATE TABLE hot_ranked_set_members (
    key    text   NOT NULL REFERENCES hot_ranked_sets (key) ON DELETE CASCADE,
    member text   COLLATE "C" NOT NULL,
    rank   bigint NOT NULL,
    PRIMARY KEY (key, member)
);

CREATE INDEX hot_ranked_set_members_rank ON hot_ranked_set_members (key, rank, member);
