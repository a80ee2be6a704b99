-- Alerts, SQLite dialect.
-- migrations/postgres/0014_alerts.sql is the same schema for PostgreSQL; a test checks the parity.
--
-- `alert_preferences`: what each user wants to be told of, and how (the original guide's
-- configure_user_alerts). `alert_deliveries`: the outbox. One row per alert and channel, written
-- when the alert is raised and sent by any instance's worker, which claims a due row with a
-- conditional UPDATE (lease_owner/lease_until) so one instance sends it; a failure is retried with
-- backoff (next_attempt_at) up to the attempt limit, then the row is dead (the dead letters an
-- administrator reads and retries). `suppressed`: over its recipient's hourly limit, never sent.
-- Rows hold no address: the recipient is resolved when sending (`user:<id>` or `admins`).
-- Instants INTEGER microseconds since the Unix epoch.
CREATE TABLE alert_preferences (
    user_id            TEXT    NOT NULL PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    email              INTEGER NOT NULL CHECK (email IN (0, 1)),
    sms                INTEGER NOT NULL CHECK (sms IN (0, 1)),
    push               INTEGER NOT NULL CHECK (push IN (0, 1)),
    severity_threshold TEXT    NOT NULL CHECK (severity_threshold IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
    alert_types        TEXT    NOT NULL CHECK (json_valid(alert_types) AND json_type(alert_types) = 'array'),
    updated_at         INTEGER NOT NULL
) STRICT;

CREATE TABLE alert_deliveries (
    id              TEXT    NOT NULL PRIMARY KEY CHECK (length(id) = 36),
    alert_id        TEXT    NOT NULL CHECK (length(alert_id) = 36),
    channel         TEXT    NOT NULL CHECK (channel IN ('email', 'sms', 'push', 'webhook')),
    recipient       TEXT    NOT NULL CHECK (recipient <> '' AND length(recipient) <= 100),
    alert           TEXT    NOT NULL CHECK (json_valid(alert)),
    state           TEXT    NOT NULL CHECK (state IN ('pending', 'sent', 'dead', 'suppressed')),
    attempts        INTEGER NOT NULL CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    last_error      TEXT,
    lease_owner     TEXT,
    lease_until     INTEGER,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
) STRICT;

CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX alert_deliveries_state ON alert_deliveries (state, id);
