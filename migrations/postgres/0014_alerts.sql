-- Alerts, PostgreSQL dialect.
-- migrations/sqlite/0014_alerts.sql is the same schema for SQLite; a test checks the parity.
--
-- `alert_preferences`: what each user wants to be told of, and how (the original guide's
-- configure_user_alerts). `alert_deliveries`: the outbox. One row per alert and channel, written
-- when the alert is raised and sent by any instance's worker, which claims a due row with a
-- conditional UPDATE (lease_owner/lease_until) so one instance sends it; a failure is retried with
-- backoff (next_attempt_at) up to the attempt limit, then the row is dead (the dead letters an
-- administrator reads and retries). `suppressed`: over its recipient's hourly limit, never sent.
-- Rows hold no address: the recipient is resolved when sending (`user:<id>` or `admins`).
CREATE TABLE alert_preferences (
    user_id            uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    email              boolean     NOT NULL,
    sms                boolean     NOT NULL,
    push               boolean     NOT NULL,
    severity_threshold text        NOT NULL CHECK (severity_threshold IN ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL')),
    alert_types        text        NOT NULL CHECK (json_typeof(alert_types::json) = 'array'),
    updated_at         timestamptz NOT NULL
);

CREATE TABLE alert_deliveries (
    id              uuid        PRIMARY KEY,
    alert_id        uuid        NOT NULL,
    channel         text        NOT NULL CHECK (channel IN ('email', 'sms', 'push', 'webhook')),
    recipient       text        NOT NULL CHECK (recipient <> '' AND length(recipient) <= 100),
    alert           text        NOT NULL CHECK (alert::jsonb IS NOT NULL),
    state           text        NOT NULL CHECK (state IN ('pending', 'sent', 'dead', 'suppressed')),
    attempts        integer     NOT NULL CHECK (attempts >= 0),
    next_attempt_at timestamptz NOT NULL,
    last_error      text,
    lease_owner     text,
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL,
    sent_at         timestamptz
);

CREATE INDEX alert_deliveries_due ON alert_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX alert_deliveries_state ON alert_deliveries (state, id);
