-- Security events, PostgreSQL dialect.
-- migrations/sqlite/0011_security_events.sql is the same schema for SQLite; a test checks the parity.
--
-- Security events are audit records (Palisade's own, and applications' reports under `event.<type>`
-- kinds): these indexes serve `GET /monitoring/events`, newest first, by subject (a user), by kind
-- (an event type) and by time.
CREATE INDEX audit_log_subject ON audit_log (subject, seq);
CREATE INDEX audit_log_kind ON audit_log (kind, seq);
CREATE INDEX audit_log_at ON audit_log (at);
