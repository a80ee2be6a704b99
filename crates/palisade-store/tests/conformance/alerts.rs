//! The alert store port — each user's preferences (absent until set, read back exactly, replaced,
//! refused by the schema when malformed, gone with their user); the outbox: deliveries written all
//! or none and read back exactly, the due ones (pending, due, unleased; earliest first), claims (one
//! winner of 20), how a claim ends (sent, retried, dead; only by its owner; long errors clipped), the
//! listing's filter, order and cursor, and a dead letter's retry — identical on SQLite and PostgreSQL.

use std::sync::Arc;

use palisade_core::monitoring::Severity;
use palisade_core::monitoring::alert::{
    AlertPreferences, AlertType, Channel, Delivery, DeliveryOutcome, DeliveryState,
};
use palisade_core::user::{User, UserId};
use serde_json::json;
use time::{Duration, OffsetDateTime};
use tokio::sync::Barrier;

use crate::mfa::{T0, owner};
use crate::support::{DurableHarness, conformance};
use crate::users::{inserted, user};

conformance!(
    DurableHarness,
    [sqlite, postgres],
    [
        preferences_are_absent_until_set_then_read_back_exactly,
        setting_preferences_again_replaces_them,
        preferences_of_an_unknown_user_are_refused,
        the_schema_refuses_malformed_preferences,
        enqueued_deliveries_read_back_with_every_field,
        enqueue_is_all_or_none,
        the_schema_refuses_malformed_deliveries,
        due_deliveries_are_pending_due_and_unleased_earliest_first,
        a_claim_holds_only_a_pending_row_without_a_live_lease,
        concurrent_claims_have_one_winner,
        finishing_as_sent_records_it_and_releases_the_claim,
        finishing_as_retry_keeps_it_pending_until_it_is_due_again,
        finishing_as_dead_makes_a_dead_letter,
        only_the_claims_owner_finishes_it,
        long_errors_are_clipped_to_500_characters,
        deliveries_list_newest_first_filtered_and_paged,
        retry_revives_only_a_dead_delivery,
    ]
);

const US: Duration = Duration::microseconds(1);

/// A time-ordered id: `n` orders the ids like their creation would (uuid v7 layout, `n` last).
fn id(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x0190_a000_0000_7000_8000_0000_0000_0000 | n)
}

fn numbered(ns: &[u128]) -> Vec<uuid::Uuid> {
    ns.iter().copied().map(id).collect()
}

fn ids(deliveries: &[Delivery]) -> Vec<uuid::Uuid> {
    deliveries.iter().map(|d| d.id).collect()
}

/// A pending delivery `n` (its id `id(n)`) to the administrators' webhook, never tried, written at
/// `T0` and due at `due`.
pub(crate) fn delivery(n: u128, due: OffsetDateTime) -> Delivery {
    Delivery {
        id: id(n),
        alert_id: id(0x1000 + n),
        channel: Channel::Webhook,
        recipient: "admins".into(),
        alert: json!({
            "alert_id": id(0x1000 + n).to_string(),
            "alert_type": "security_incident",
            "severity": "HIGH",
            "title": format!("Security incident {n}"),
            "message": "Palisade opened a HIGH incident.",
            "user_id": null,
            "incident_id": id(0x2000 + n).to_string(),
            "created_at": "2026-05-01T12:00:00Z",
        }),
        state: DeliveryState::Pending,
        attempts: 0,
        next_attempt_at: due,
        last_error: None,
        created_at: T0,
        sent_at: None,
    }
}

/// Delivery `n` in `state`, due at `T0`.
fn in_state(n: u128, state: DeliveryState) -> Delivery {
    Delivery { state, ..delivery(n, T0) }
}

async fn enqueued(h: &DurableHarness, deliveries: &[Delivery]) {
    h.store.enqueue_deliveries(deliveries).await.unwrap();
}

/// Every delivery, newest first.
async fn all(h: &DurableHarness) -> Vec<Delivery> {
    h.store.deliveries(None, None, 1000).await.unwrap()
}

/// Delivery `n` as stored.
async fn stored(h: &DurableHarness, n: u128) -> Option<Delivery> {
    all(h).await.into_iter().find(|d| d.id == id(n))
}

async fn delivery_rows(h: &DurableHarness) -> String {
    h.database.fetch_text("SELECT CAST(COUNT(*) AS TEXT) FROM alert_deliveries").await.unwrap()
}

/// Each delivery's claim, in id order: its owner, `+` while it has a lease; `-` when unclaimed.
async fn claims(h: &DurableHarness) -> Vec<String> {
    h.database
        .fetch_texts(
            "SELECT COALESCE(lease_owner, '-') || CASE WHEN lease_until IS NULL THEN '' ELSE '+' END \
             FROM alert_deliveries ORDER BY id",
        )
        .await
        .unwrap()
}

/// The ids of the deliveries due at `now`, in the order given.
async fn due(h: &DurableHarness, now: OffsetDateTime, limit: u32) -> Vec<uuid::Uuid> {
    ids(&h.store.due_deliveries(now, limit).await.unwrap())
}

/// Claims delivery `n` for `owner` at `now` for `lease`.
async fn claim(h: &DurableHarness, n: u128, owner: &str, now: OffsetDateTime, lease: Duration) -> bool {
    h.store.claim_delivery(id(n), owner, now + lease, now).await.unwrap()
}

async fn finish(h: &DurableHarness, n: u128, owner: &str, outcome: &DeliveryOutcome) -> bool {
    h.store.finish_delivery(id(n), owner, outcome).await.unwrap()
}

fn preferences(
    (email, sms, push): (bool, bool, bool),
    severity_threshold: Severity,
    alert_types: &[AlertType],
) -> AlertPreferences {
    AlertPreferences { email, sms, push, severity_threshold, alert_types: alert_types.to_vec() }
}

/// When alice's preferences were last set, in microseconds since the epoch.
async fn alices_preferences_updated_at(h: &DurableHarness) -> String {
    let sql = if h.database.sqlite_path().is_some() {
        "SELECT CAST(p.updated_at AS TEXT) FROM alert_preferences p JOIN users u ON u.id = p.user_id \
         WHERE u.username = 'alice'"
    } else {
        "SELECT CAST(CAST(EXTRACT(EPOCH FROM p.updated_at) * 1000000 AS BIGINT) AS TEXT) \
         FROM alert_preferences p JOIN users u ON u.id = p.user_id WHERE u.username = 'alice'"
    };
    h.database.fetch_text(sql).await.unwrap()
}

fn micros(at: OffsetDateTime) -> String {
    (at.unix_timestamp_nanos() / 1000).to_string()
}

pub async fn preferences_are_absent_until_set_then_read_back_exactly(h: &DurableHarness) {
    use AlertType::{LoginAnomaly, NewDevice, SecurityIncident, SuspiciousActivity};
    let (alice, bob) = (owner(h, "alice").await, owner(h, "bob").await);
    assert_eq!(h.store.alert_preferences(alice.id).await.unwrap(), None, "none until set: not the defaults");

    // Every field apart from the defaults, the types out of their declared order.
    let chosen = preferences((false, true, false), Severity::Critical, &[SecurityIncident, LoginAnomaly]);
    h.store.set_alert_preferences(alice.id, &chosen, T0).await.unwrap();
    assert_eq!(h.store.alert_preferences(alice.id).await.unwrap(), Some(chosen.clone()));
    assert_eq!(h.store.alert_preferences(bob.id).await.unwrap(), None, "only alice's are set");

    // Table: each of these, set for bob, reads back as set (every severity; none, one and every type,
    // in an order of their own; every channel on and off).
    let cases = [
        preferences((true, false, false), Severity::Low, &[]),
        preferences((false, false, false), Severity::Medium, &[NewDevice]),
        preferences(
            (true, true, true),
            Severity::High,
            &[SuspiciousActivity, NewDevice, SecurityIncident, LoginAnomaly],
        ),
        preferences((false, false, true), Severity::Critical, &[NewDevice, SuspiciousActivity]),
        AlertPreferences::default(),
    ];
    for case in cases {
        h.store.set_alert_preferences(bob.id, &case, T0).await.unwrap();
        assert_eq!(h.store.alert_preferences(bob.id).await.unwrap(), Some(case));
    }
    assert_eq!(h.store.alert_preferences(alice.id).await.unwrap(), Some(chosen), "bob's never touched alice's");
    let nobody = UserId::generate();
    assert_eq!(h.store.alert_preferences(nobody).await.unwrap(), None, "an unknown user has none");
}

pub async fn setting_preferences_again_replaces_them(h: &DurableHarness) {
    let alice = owner(h, "alice").await;
    let first = preferences((true, true, true), Severity::Low, &AlertType::CHOOSABLE);
    h.store.set_alert_preferences(alice.id, &first, T0).await.unwrap();
    assert_eq!(alices_preferences_updated_at(h).await, micros(T0));

    let later = T0 + Duration::minutes(5) + Duration::microseconds(7);
    let second = preferences((false, false, false), Severity::High, &[AlertType::NewDevice]);
    h.store.set_alert_preferences(alice.id, &second, later).await.unwrap();
    assert_eq!(h.store.alert_preferences(alice.id).await.unwrap(), Some(second), "every field replaced");
    assert_eq!(alices_preferences_updated_at(h).await, micros(later), "and when");
    let rows = h.database.fetch_text("SELECT CAST(COUNT(*) AS TEXT) FROM alert_preferences").await.unwrap();
    assert_eq!(rows, "1", "one row per user");
}

pub async fn preferences_of_an_unknown_user_are_refused(h: &DurableHarness) {
    let nobody = UserId::generate();
    let set = h.store.set_alert_preferences(nobody, &AlertPreferences::default(), T0).await;
    assert!(set.is_err(), "preferences of no user are stored: {set:?}");
    assert_eq!(h.store.alert_preferences(nobody).await.unwrap(), None);
    let rows = h.database.fetch_text("SELECT CAST(COUNT(*) AS TEXT) FROM alert_preferences").await.unwrap();
    assert_eq!(rows, "0");
}

pub async fn the_schema_refuses_malformed_preferences(h: &DurableHarness) {
    // Users with known ids, so that the raw rows below can name them.
    let alice = User { id: UserId::from_uuid(id(0xa1)), ..user("alice", None) };
    let bob = User { id: UserId::from_uuid(id(0xb0)), ..user("bob", None) };
    inserted(h, &alice).await;
    inserted(h, &bob).await;
    let sqlite = h.database.sqlite_path().is_some();
    // Each row as the store writes them, but for one column.
    let well_formed = if sqlite {
        "INSERT INTO alert_preferences VALUES ('0190a000-0000-7000-8000-0000000000a1', 1, 0, 1, 'MEDIUM', \
         '[\"new_device\",\"login_anomaly\"]', 0)"
    } else {
        "INSERT INTO alert_preferences VALUES ('0190a000-0000-7000-8000-0000000000a1', true, false, true, 'MEDIUM', \
         '[\"new_device\",\"login_anomaly\"]', now())"
    };
    let violations: [(&str, &'static str, &'static str); 9] = [
        (
            "a severity in lower case",
            "INSERT INTO alert_preferences VALUES ('0190a000-0000-7000-8000-0000000000b0', 1, 0, 1, 'medium', '[]', 0)",
            "INSERT INTO alert_preferences VALUES ('0190a000-0000-7000-8000-0000000000b0', true, false, true, \
             'medium', '[]', now())",
        ),
        (
            "a severity outside the four",
            "INSERT INTO alert_preferences VALUES ('0190a000-0000-7000-8000-0000000000b0', 1, 0, 1, 'SEVERE', '[]', 0)",
            "INSERT INTO alert_preferences VALUES ('0190a000-0000-7000-8000-0000000000b0', true, false, true, \
             'SEVERE', '[]', now())",
        ),
        (
            "types that are a JSON object",
            "INSERT INTO alert_preferences VALUES ('0190a000-0000-7000-8000-0000000000b0', 1, 0, 1, 'LOW', \
             '{\"new_device\":true}', 0)",
            "INSERT INTO alert_preferences VALUES ('0190a000-0000-7000-8000-0000000000b0', true, false, true, 'LOW', \
             '{\"new_device\":true}', now())",
        ),
        (
            "types that are a JSON string",
            "INSERT INTO alert_preferences VALUES ('0190a000-0000-7000-8000-0000000000b0', 1, 0, 1, 'LOW', \
             '\"new_device\"', 0)",
            "INSERT INTO alert_preferences VALUES ('0190a000-0000-7000-8000-0000000000b0', true, false, true, 'LOW', \
             '\"new_device\"', now())",
        ),
        (
            "types that are not JSON",
            "INSERT INTO alert_preferences VALUES ('0190a000-0000-7000-8000-0000000000b0', 1, 0, 1, 'LOW', \
             '[new_device', 0)",
            "INSERT INTO alert_preferences VALUES ('0190a000-0000-7000-8000-0000000000b0', true, false, true, 'LOW', \
             '[new_device', now())",
        ),
        (
            "no e-mail choice",
            "INSERT INTO alert_preferences VALUES ('0190a000-0000-7000-8000-0000000000b0', NULL, 0, 1, 'LOW', '[]', 0)",
            "INSERT INTO alert_preferences VALUES ('0190a000-0000-7000-8000-0000000000b0', NULL, false, true, 'LOW', \
             '[]', now())",
        ),
        (
            "an SMS choice that is not a boolean",
            "INSERT INTO alert_preferences VALUES ('0190a000-0000-7000-8000-0000000000b0', 1, 2, 1, 'LOW', '[]', 0)",
            "INSERT INTO alert_preferences VALUES ('0190a000-0000-7000-8000-0000000000b0', true, 2, true, 'LOW', \
             '[]', now())",
        ),
        (
            "preferences of a missing user",
            "INSERT INTO alert_preferences VALUES ('0190a000-0000-7000-8000-0000000000c0', 1, 0, 1, 'LOW', '[]', 0)",
            "INSERT INTO alert_preferences VALUES ('0190a000-0000-7000-8000-0000000000c0', true, false, true, 'LOW', \
             '[]', now())",
        ),
        (
            "a second row for one user",
            "INSERT INTO alert_preferences VALUES ('0190a000-0000-7000-8000-0000000000a1', 1, 0, 1, 'LOW', '[]', 0)",
            "INSERT INTO alert_preferences VALUES ('0190a000-0000-7000-8000-0000000000a1', true, false, true, 'LOW', \
             '[]', now())",
        ),
    ];
    assert_eq!(h.database.execute(well_formed).await.unwrap(), 1);
    for (what, sqlite_sql, postgres_sql) in violations {
        let sql = if sqlite { sqlite_sql } else { postgres_sql };
        assert!(h.database.execute(sql).await.is_err(), "the schema accepts {what}");
    }
    // The raw row reads back, and nothing else went in.
    let expected = preferences((true, false, true), Severity::Medium, &[AlertType::NewDevice, AlertType::LoginAnomaly]);
    assert_eq!(h.store.alert_preferences(alice.id).await.unwrap(), Some(expected));
    assert_eq!(h.store.alert_preferences(bob.id).await.unwrap(), None);

    // A type the store does not know is an error, never read as absent or as the defaults.
    let unknown = "UPDATE alert_preferences SET alert_types = '[\"new_device\",\"telepathy\"]'";
    assert_eq!(h.database.execute(unknown).await.unwrap(), 1);
    assert!(h.store.alert_preferences(alice.id).await.is_err(), "an unknown type read as a preference");

    // The preferences go with their user.
    h.store.set_alert_preferences(bob.id, &AlertPreferences::default(), T0).await.unwrap();
    assert_eq!(h.database.execute("DELETE FROM users WHERE username = 'alice'").await.unwrap(), 1);
    assert_eq!(h.store.alert_preferences(alice.id).await.unwrap(), None, "deleting the user deletes them");
    assert_eq!(h.store.alert_preferences(bob.id).await.unwrap(), Some(AlertPreferences::default()));
}

pub async fn enqueued_deliveries_read_back_with_every_field(h: &DurableHarness) {
    assert_eq!(all(h).await, [], "none yet");
    let t = T0 + Duration::microseconds(1_234_567);
    // One of each channel and state, instants to the microsecond, every optional field both ways, one
    // alert shared by two channels, and an alert object with every kind of JSON value.
    let email = Delivery {
        channel: Channel::Email,
        recipient: format!("user:{}", id(0xa1)),
        alert_id: id(0x1000),
        alert: json!({
            "title": "Nouvel appareil ✓",
            "nested": { "list": [1, -2.5, true, null, "x"], "empty": {} },
            "big": 9_007_199_254_740_993_u64,
            "quote": "a \"b\" \\ c",
        }),
        next_attempt_at: t + US,
        created_at: t,
        ..delivery(1, t)
    };
    let sms = Delivery {
        channel: Channel::Sms,
        recipient: format!("user:{}", id(0xa1)),
        alert_id: id(0x1000),
        state: DeliveryState::Sent,
        attempts: 3,
        last_error: Some("the gateway said 503 — later".into()),
        sent_at: Some(t + Duration::microseconds(90_000_001)),
        ..delivery(2, t)
    };
    let push = Delivery {
        channel: Channel::Push,
        state: DeliveryState::Dead,
        attempts: 6,
        last_error: Some("connection refused".into()),
        next_attempt_at: T0 - Duration::days(400),
        ..delivery(3, t)
    };
    let webhook = Delivery { state: DeliveryState::Suppressed, alert: json!({}), ..delivery(4, t + Duration::HOUR) };
    let batch = [push.clone(), email.clone(), webhook.clone(), sms.clone()];
    enqueued(h, &batch).await;
    assert_eq!(all(h).await, [webhook, push, sms, email], "every field as written, newest first");

    // Sub-microsecond instants are stored truncated, like every instant of the durable store.
    let fine = Delivery {
        next_attempt_at: T0 + Duration::nanoseconds(1_999),
        created_at: T0 + Duration::nanoseconds(999),
        sent_at: Some(T0 + Duration::nanoseconds(2_000_000_001)),
        ..delivery(5, T0)
    };
    enqueued(h, std::slice::from_ref(&fine)).await;
    let truncated =
        Delivery { next_attempt_at: T0 + US, created_at: T0, sent_at: Some(T0 + Duration::seconds(2)), ..fine };
    assert_eq!(stored(h, 5).await, Some(truncated));
    assert_eq!(delivery_rows(h).await, "5");
    assert_eq!(claims(h).await, ["-"; 5], "written unclaimed");
}

pub async fn enqueue_is_all_or_none(h: &DurableHarness) {
    enqueued(h, &[]).await;
    assert_eq!(delivery_rows(h).await, "0", "an empty batch writes nothing, and is no error");

    // A batch with a duplicate id: nothing of it is stored, not even the rows before the duplicate.
    let (a, b) = (delivery(1, T0), delivery(2, T0));
    let a_again = Delivery { recipient: "user:someone".into(), ..delivery(1, T0) };
    assert!(h.store.enqueue_deliveries(&[a.clone(), b.clone(), a_again]).await.is_err(), "a duplicate id");
    assert_eq!(delivery_rows(h).await, "0", "none of the batch");

    // A batch with a row the schema refuses: the same.
    let empty_recipient = Delivery { recipient: String::new(), ..delivery(3, T0) };
    assert!(h.store.enqueue_deliveries(&[a.clone(), b.clone(), empty_recipient]).await.is_err());
    assert_eq!(delivery_rows(h).await, "0", "none of the batch");

    // The same rows without the bad one go in; a later batch reusing a stored id changes nothing.
    enqueued(h, &[a.clone(), b.clone()]).await;
    let c = delivery(3, T0);
    let b_again = Delivery { state: DeliveryState::Dead, ..b.clone() };
    assert!(h.store.enqueue_deliveries(&[c, b_again]).await.is_err(), "an id already stored");
    assert_eq!(all(h).await, [b, a], "the stored rows as they were, and not c");
}

pub async fn the_schema_refuses_malformed_deliveries(h: &DurableHarness) {
    let sqlite = h.database.sqlite_path().is_some();
    // Each row as the store writes them, but for one column.
    let well_formed = if sqlite {
        "INSERT INTO alert_deliveries VALUES ('0190a000-0000-7000-8000-000000000001', \
         '0190a000-0000-7000-8000-000000001001', 'email', 'admins', '{}', 'pending', 0, 0, NULL, NULL, NULL, 0, NULL)"
    } else {
        "INSERT INTO alert_deliveries VALUES ('0190a000-0000-7000-8000-000000000001', \
         '0190a000-0000-7000-8000-000000001001', 'email', 'admins', '{}', 'pending', 0, now(), NULL, NULL, NULL, \
         now(), NULL)"
    };
    let violations: [(&str, &'static str, &'static str); 8] = [
        (
            "a channel outside the four",
            "INSERT INTO alert_deliveries VALUES ('0190a000-0000-7000-8000-000000000002', \
             '0190a000-0000-7000-8000-000000001001', 'slack', 'admins', '{}', 'pending', 0, 0, NULL, NULL, NULL, 0, \
             NULL)",
            "INSERT INTO alert_deliveries VALUES ('0190a000-0000-7000-8000-000000000002', \
             '0190a000-0000-7000-8000-000000001001', 'slack', 'admins', '{}', 'pending', 0, now(), NULL, NULL, NULL, \
             now(), NULL)",
        ),
        (
            "a state outside the four",
            "INSERT INTO alert_deliveries VALUES ('0190a000-0000-7000-8000-000000000002', \
             '0190a000-0000-7000-8000-000000001001', 'email', 'admins', '{}', 'failed', 0, 0, NULL, NULL, NULL, 0, \
             NULL)",
            "INSERT INTO alert_deliveries VALUES ('0190a000-0000-7000-8000-000000000002', \
             '0190a000-0000-7000-8000-000000001001', 'email', 'admins', '{}', 'failed', 0, now(), NULL, NULL, NULL, \
             now(), NULL)",
        ),
        (
            "negative attempts",
            "INSERT INTO alert_deliveries VALUES ('0190a000-0000-7000-8000-000000000002', \
             '0190a000-0000-7000-8000-000000001001', 'email', 'admins', '{}', 'pending', -1, 0, NULL, NULL, NULL, 0, \
             NULL)",
            "INSERT INTO alert_deliveries VALUES ('0190a000-0000-7000-8000-000000000002', \
             '0190a000-0000-7000-8000-000000001001', 'email', 'admins', '{}', 'pending', -1, now(), NULL, NULL, NULL, \
             now(), NULL)",
        ),
        (
            "an empty recipient",
            "INSERT INTO alert_deliveries VALUES ('0190a000-0000-7000-8000-000000000002', \
             '0190a000-0000-7000-8000-000000001001', 'email', '', '{}', 'pending', 0, 0, NULL, NULL, NULL, 0, NULL)",
            "INSERT INTO alert_deliveries VALUES ('0190a000-0000-7000-8000-000000000002', \
             '0190a000-0000-7000-8000-000000001001', 'email', '', '{}', 'pending', 0, now(), NULL, NULL, NULL, \
             now(), NULL)",
        ),
        (
            "a recipient of 101 characters",
            "INSERT INTO alert_deliveries VALUES ('0190a000-0000-7000-8000-000000000002', \
             '0190a000-0000-7000-8000-000000001001', 'email', substr(hex(zeroblob(51)), 1, 101), '{}', 'pending', \
             0, 0, NULL, NULL, NULL, 0, NULL)",
            "INSERT INTO alert_deliveries VALUES ('0190a000-0000-7000-8000-000000000002', \
             '0190a000-0000-7000-8000-000000001001', 'email', repeat('x', 101), '{}', 'pending', 0, now(), NULL, \
             NULL, NULL, now(), NULL)",
        ),
        (
            "an alert that is not JSON",
            "INSERT INTO alert_deliveries VALUES ('0190a000-0000-7000-8000-000000000002', \
             '0190a000-0000-7000-8000-000000001001', 'email', 'admins', '{', 'pending', 0, 0, NULL, NULL, NULL, 0, \
             NULL)",
            "INSERT INTO alert_deliveries VALUES ('0190a000-0000-7000-8000-000000000002', \
             '0190a000-0000-7000-8000-000000001001', 'email', 'admins', '{', 'pending', 0, now(), NULL, NULL, NULL, \
             now(), NULL)",
        ),
        (
            "an id that is not a UUID",
            "INSERT INTO alert_deliveries VALUES ('0190a000-7000-8000-000000000002', \
             '0190a000-0000-7000-8000-000000001001', 'email', 'admins', '{}', 'pending', 0, 0, NULL, NULL, NULL, 0, \
             NULL)",
            "INSERT INTO alert_deliveries VALUES ('0190a000-7000-8000-000000000002', \
             '0190a000-0000-7000-8000-000000001001', 'email', 'admins', '{}', 'pending', 0, now(), NULL, NULL, NULL, \
             now(), NULL)",
        ),
        (
            "a second row with one id",
            "INSERT INTO alert_deliveries VALUES ('0190a000-0000-7000-8000-000000000001', \
             '0190a000-0000-7000-8000-000000001001', 'sms', 'admins', '{}', 'pending', 0, 0, NULL, NULL, NULL, 0, NULL)",
            "INSERT INTO alert_deliveries VALUES ('0190a000-0000-7000-8000-000000000001', \
             '0190a000-0000-7000-8000-000000001001', 'sms', 'admins', '{}', 'pending', 0, now(), NULL, NULL, NULL, \
             now(), NULL)",
        ),
    ];
    assert_eq!(h.database.execute(well_formed).await.unwrap(), 1);
    for (what, sqlite_sql, postgres_sql) in violations {
        let sql = if sqlite { sqlite_sql } else { postgres_sql };
        assert!(h.database.execute(sql).await.is_err(), "the schema accepts {what}");
    }
    assert_eq!(delivery_rows(h).await, "1");
    // The store reads the raw row.
    let found = all(h).await;
    assert_eq!((ids(&found), found.first().map(|d| d.channel)), (numbered(&[1]), Some(Channel::Email)));
}

pub async fn due_deliveries_are_pending_due_and_unleased_earliest_first(h: &DurableHarness) {
    let now = T0 + Duration::HOUR;
    assert_eq!(due(h, now, 100).await, numbered(&[]), "none yet: nothing, and no error");
    // Written out of id order, so that neither the insertion order nor the id order is the due order.
    let batch = [
        delivery(7, now - Duration::minutes(10)), // due, ties with 3: after it by id
        delivery(1, now + US),                    // due a microsecond from now
        delivery(2, now),                         // due exactly now
        delivery(3, now - Duration::minutes(10)), // the earliest
        Delivery { state: DeliveryState::Sent, ..delivery(4, now - Duration::days(1)) },
        Delivery { state: DeliveryState::Dead, ..delivery(5, now - Duration::days(1)) },
        Delivery { state: DeliveryState::Suppressed, ..delivery(6, now - Duration::days(1)) },
        delivery(10, now - Duration::minutes(1)), // its lease passed a second ago
        delivery(9, now - Duration::minutes(5)),  // its lease ends exactly now
        delivery(8, now - Duration::minutes(5)),  // under a lease a microsecond longer
    ];
    enqueued(h, &batch).await;
    // Leases taken earlier, at T0.
    assert!(claim(h, 8, "other", T0, Duration::HOUR + US).await);
    assert!(claim(h, 9, "other", T0, Duration::HOUR).await);
    assert!(claim(h, 10, "other", T0, Duration::HOUR - Duration::seconds(1)).await);

    let found = h.store.due_deliveries(now, 100).await.unwrap();
    assert_eq!(ids(&found), numbered(&[3, 7, 9, 10, 2]), "pending, due and unleased, the earliest due first");
    let expected: Vec<Delivery> =
        [3, 7, 9, 10, 2].into_iter().map(|n| batch.iter().find(|d| d.id == id(n)).unwrap().clone()).collect();
    assert_eq!(found, expected, "every field");

    assert_eq!(due(h, now, 2).await, numbered(&[3, 7]), "at most the limit, the earliest");
    assert_eq!(due(h, now, 4).await, numbered(&[3, 7, 9, 10]));
    assert_eq!(due(h, now, 0).await, numbered(&[]), "a limit of 0 returns nothing");
    // A microsecond later, 1 is due and 8's lease has passed.
    assert_eq!(due(h, now + US, 100).await, numbered(&[3, 7, 8, 9, 10, 2, 1]));
    // A microsecond earlier, 2 is not due yet and 9 is still leased.
    assert_eq!(due(h, now - US, 100).await, numbered(&[3, 7, 10]));
    assert_eq!(due(h, now - Duration::minutes(10) - US, 100).await, numbered(&[]), "nothing due yet");
    assert_eq!(due(h, T0 + Duration::days(3), 100).await, numbered(&[3, 7, 8, 9, 10, 2, 1]), "never the others");
}

pub async fn a_claim_holds_only_a_pending_row_without_a_live_lease(h: &DurableHarness) {
    let lease = Duration::seconds(60);
    enqueued(
        h,
        &[
            delivery(1, T0),
            in_state(2, DeliveryState::Sent),
            in_state(3, DeliveryState::Dead),
            in_state(4, DeliveryState::Suppressed),
        ],
    )
    .await;
    for (n, state) in [(2, "sent"), (3, "dead"), (4, "suppressed")] {
        assert!(!claim(h, n, "a", T0, lease).await, "a {state} delivery is claimed");
    }
    assert!(!h.store.claim_delivery(id(5), "a", T0 + lease, T0).await.unwrap(), "an absent delivery is claimed");
    assert_eq!(claims(h).await, ["-", "-", "-", "-"]);

    assert!(claim(h, 1, "a", T0, lease).await);
    assert_eq!(claims(h).await, ["a+", "-", "-", "-"]);
    // While the lease lives, nobody claims it, its holder neither, and it is not due.
    assert!(!claim(h, 1, "b", T0 + lease - US, lease).await, "a live lease is taken");
    assert!(!claim(h, 1, "a", T0, lease).await, "a live lease is renewed");
    assert_eq!(due(h, T0 + lease - US, 100).await, numbered(&[]), "a claimed row is due");
    assert_eq!(claims(h).await, ["a+", "-", "-", "-"], "still a's");
    // When it ends (at `until` exactly), it is due again and another instance claims it.
    assert_eq!(due(h, T0 + lease, 100).await, numbered(&[1]));
    assert!(claim(h, 1, "b", T0 + lease, lease).await, "an ended lease is not taken");
    assert_eq!(claims(h).await, ["b+", "-", "-", "-"]);
    assert_eq!(due(h, T0 + lease * 2 - US, 100).await, numbered(&[]), "b's lease runs from its claim");
    // The first holder's claim counts no more.
    let sent = DeliveryOutcome::Sent(T0 + lease);
    assert!(!finish(h, 1, "a", &sent).await, "a finished b's claim");
    assert!(finish(h, 1, "b", &sent).await);
    assert!(!claim(h, 1, "c", T0 + Duration::days(1), lease).await, "a sent delivery is claimed");
}

pub async fn concurrent_claims_have_one_winner(h: &DurableHarness) {
    const CLAIMS: usize = 20;
    enqueued(h, &[delivery(1, T0)]).await;
    let barrier = Arc::new(Barrier::new(CLAIMS));
    let tasks: Vec<_> = (0..CLAIMS)
        .map(|n| {
            let (store, barrier) = (h.store.clone(), barrier.clone());
            tokio::spawn(async move {
                let owner = format!("instance-{n}");
                barrier.wait().await;
                let claimed = store.claim_delivery(id(1), &owner, T0 + Duration::seconds(60), T0).await.unwrap();
                (owner, claimed)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (owner, claimed) = task.await.unwrap();
        if claimed {
            winners.push(owner);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one of {CLAIMS} claims: {winners:?}");
    let winner = winners.first().unwrap();
    assert_eq!(claims(h).await, [format!("{winner}+")], "the lease is the winner's");
    for n in 0..CLAIMS {
        let owner = format!("instance-{n}");
        if &owner != winner {
            assert!(!finish(h, 1, &owner, &DeliveryOutcome::Sent(T0)).await, "{owner} lost, yet finished");
        }
    }
    assert!(finish(h, 1, winner, &DeliveryOutcome::Sent(T0)).await);
    assert_eq!(stored(h, 1).await.unwrap().attempts, 1, "sent once");
}

pub async fn finishing_as_sent_records_it_and_releases_the_claim(h: &DurableHarness) {
    // Tried twice before, the last failure recorded.
    let tried = Delivery { attempts: 2, last_error: Some("timed out".into()), ..delivery(1, T0) };
    let untouched = delivery(2, T0);
    enqueued(h, &[tried.clone(), untouched.clone()]).await;
    assert!(claim(h, 1, "a", T0, Duration::seconds(60)).await);
    assert!(claim(h, 2, "a", T0, Duration::seconds(60)).await);

    let at = T0 + Duration::microseconds(2_500_001);
    assert!(finish(h, 1, "a", &DeliveryOutcome::Sent(at)).await);
    let sent = Delivery { state: DeliveryState::Sent, attempts: 3, last_error: None, sent_at: Some(at), ..tried };
    assert_eq!(stored(h, 1).await, Some(sent.clone()), "sent, when, one attempt more; the old error cleared");
    assert_eq!(claims(h).await, ["-", "a+"], "its claim released, the other row's kept");
    assert_eq!(stored(h, 2).await, Some(untouched), "only that row");

    // Finished once: the claim is gone, so again is refused and changes nothing.
    assert!(!finish(h, 1, "a", &DeliveryOutcome::Sent(at + Duration::seconds(1))).await, "finished twice");
    let retry = DeliveryOutcome::Retry { at: T0 + Duration::HOUR, error: "late".into() };
    assert!(!finish(h, 1, "a", &retry).await, "retried after it was sent");
    assert!(!finish(h, 1, "a", &DeliveryOutcome::Dead("late".into())).await, "dead after it was sent");
    assert_eq!(stored(h, 1).await, Some(sent));
    assert_eq!(due(h, T0 + Duration::days(1), 100).await, numbered(&[2]), "a sent row is never due");
}

pub async fn finishing_as_retry_keeps_it_pending_until_it_is_due_again(h: &DurableHarness) {
    let pending = delivery(1, T0);
    enqueued(h, std::slice::from_ref(&pending)).await;
    let lease = Duration::seconds(60);
    let mut expected = pending;
    // Two failures in a row, each due again later, the attempts counting up.
    for (attempt, backoff) in [(1_u32, Duration::seconds(2)), (2, Duration::seconds(4))] {
        let now = expected.next_attempt_at;
        assert!(claim(h, 1, "a", now, lease).await, "attempt {attempt}");
        let at = now + backoff + US;
        let error = format!("503 on attempt {attempt}");
        assert!(finish(h, 1, "a", &DeliveryOutcome::Retry { at, error: error.clone() }).await);
        expected = Delivery { attempts: attempt, next_attempt_at: at, last_error: Some(error), ..expected };
        assert_eq!(stored(h, 1).await.as_ref(), Some(&expected), "pending, due at `at`, why, one attempt more");
        assert_eq!(claims(h).await, ["-"], "the claim released");
        // Not due (and so not claimed by the worker) before `at`, though the lease would still live.
        assert_eq!(due(h, at - US, 100).await, numbered(&[]), "due before its retry");
        assert_eq!(due(h, at, 100).await, numbered(&[1]));
    }
    // Released: another instance claims it at once, even within the first lease's time.
    let now = expected.next_attempt_at;
    assert!(claim(h, 1, "b", now, lease).await);
    assert!(!finish(h, 1, "a", &DeliveryOutcome::Sent(now)).await, "a's claim ended with its retry");
    assert!(finish(h, 1, "b", &DeliveryOutcome::Sent(now)).await);
    let sent = Delivery { state: DeliveryState::Sent, attempts: 3, last_error: None, sent_at: Some(now), ..expected };
    assert_eq!(stored(h, 1).await, Some(sent));
}

pub async fn finishing_as_dead_makes_a_dead_letter(h: &DurableHarness) {
    let tried = Delivery { attempts: 5, last_error: Some("503".into()), ..delivery(1, T0 + Duration::minutes(30)) };
    enqueued(h, &[tried.clone(), delivery(2, T0)]).await;
    let now = T0 + Duration::minutes(30);
    assert!(claim(h, 1, "a", now, Duration::seconds(60)).await);
    assert!(finish(h, 1, "a", &DeliveryOutcome::Dead("connection refused".into())).await);
    let dead =
        Delivery { state: DeliveryState::Dead, attempts: 6, last_error: Some("connection refused".into()), ..tried };
    assert_eq!(stored(h, 1).await, Some(dead.clone()), "dead, why, one attempt more; never sent");
    assert_eq!(claims(h).await, ["-", "-"], "the claim released");
    assert_eq!(due(h, T0 + Duration::days(1), 100).await, numbered(&[2]), "a dead letter is never due");
    assert!(!claim(h, 1, "b", T0 + Duration::days(1), Duration::seconds(60)).await, "a dead letter is claimed");
    assert_eq!(h.store.deliveries(Some(DeliveryState::Dead), None, 100).await.unwrap(), [dead], "listed as dead");
}

pub async fn only_the_claims_owner_finishes_it(h: &DurableHarness) {
    let lease = Duration::seconds(60);
    let outcomes = [
        DeliveryOutcome::Sent(T0 + Duration::seconds(1)),
        DeliveryOutcome::Retry { at: T0 + Duration::seconds(2), error: "503".into() },
        DeliveryOutcome::Dead("gone".into()),
    ];
    let pending = delivery(1, T0);
    enqueued(h, std::slice::from_ref(&pending)).await;
    // Unclaimed, nobody finishes it.
    for outcome in &outcomes {
        assert!(!finish(h, 1, "a", outcome).await, "an unclaimed row finished: {outcome:?}");
        assert!(!h.store.finish_delivery(id(2), "a", outcome).await.unwrap(), "an absent row finished");
    }
    assert_eq!(stored(h, 1).await.as_ref(), Some(&pending), "nothing changed");
    assert_eq!(delivery_rows(h).await, "1");

    // Claimed by a: b's finish, of any kind, is refused and changes nothing, not even the lease.
    assert!(claim(h, 1, "a", T0, lease).await);
    for outcome in &outcomes {
        assert!(!finish(h, 1, "b", outcome).await, "b finished a's claim: {outcome:?}");
        assert!(!finish(h, 1, "", outcome).await, "an empty owner finished a's claim: {outcome:?}");
        assert_eq!(stored(h, 1).await.as_ref(), Some(&pending), "nothing changed");
        assert_eq!(claims(h).await, ["a+"], "a's claim stays");
    }
    assert!(!claim(h, 1, "b", T0 + lease - US, lease).await, "a's lease still lives");
    // a's own finish counts.
    assert!(finish(h, 1, "a", &DeliveryOutcome::Dead("gone".into())).await);
    assert_eq!(stored(h, 1).await.map(|d| (d.state, d.attempts)), Some((DeliveryState::Dead, 1)));
}

pub async fn long_errors_are_clipped_to_500_characters(h: &DurableHarness) {
    // Characters, not bytes: `é` is two bytes, `✓` three; a clip at a byte count would split one.
    let cases = [
        ("short".to_owned(), "short".to_owned()),
        (String::new(), String::new()),
        ("é".repeat(500), "é".repeat(500)),
        ("é".repeat(501), format!("{}…", "é".repeat(500))),
        (format!("{}✓✓", "x".repeat(499)), format!("{}✓…", "x".repeat(499))),
        ("y".repeat(5000), format!("{}…", "y".repeat(500))),
    ];
    let mut n = 0;
    for (error, kept) in cases {
        for dead in [false, true] {
            n += 1;
            enqueued(h, &[delivery(n, T0)]).await;
            assert!(claim(h, n, "a", T0, Duration::seconds(60)).await);
            let outcome = if dead {
                DeliveryOutcome::Dead(error.clone())
            } else {
                DeliveryOutcome::Retry { at: T0 + Duration::seconds(2), error: error.clone() }
            };
            assert!(finish(h, n, "a", &outcome).await);
            let stored = stored(h, n).await.unwrap().last_error.unwrap();
            assert_eq!(stored, kept, "{} characters, dead: {dead}", error.chars().count());
        }
    }
}

pub async fn deliveries_list_newest_first_filtered_and_paged(h: &DurableHarness) {
    use DeliveryState::{Dead, Pending, Sent, Suppressed};
    assert_eq!(h.store.deliveries(None, None, 100).await.unwrap(), [], "none yet: nothing, and no error");
    // Written out of id order, with due and written instants against the id order: the listing is by id.
    let plan = [(3, Dead), (1, Pending), (6, Sent), (2, Dead), (5, Pending), (4, Suppressed), (7, Dead)];
    let batch: Vec<Delivery> = plan
        .iter()
        .map(|&(n, state)| {
            let minutes = 100 - i64::try_from(n).unwrap();
            Delivery {
                state,
                created_at: T0 + Duration::minutes(minutes),
                ..delivery(n, T0 + Duration::minutes(minutes))
            }
        })
        .collect();
    enqueued(h, &batch).await;
    let mut newest_first = batch.clone();
    newest_first.sort_by_key(|d| std::cmp::Reverse(d.id));
    assert_eq!(h.store.deliveries(None, None, 100).await.unwrap(), newest_first, "every field, newest first by id");

    let list = |state: Option<DeliveryState>, before: Option<u128>, limit: u32| async move {
        ids(&h.store.deliveries(state, before.map(id), limit).await.unwrap())
    };
    // Table: (state, before, limit) → ids.
    type Case = (Option<DeliveryState>, Option<u128>, u32, &'static [u128]);
    let cases: [Case; 14] = [
        (Some(Dead), None, 100, &[7, 3, 2]),
        (Some(Pending), None, 100, &[5, 1]),
        (Some(Sent), None, 100, &[6]),
        (Some(Suppressed), None, 100, &[4]),
        (None, None, 3, &[7, 6, 5]),
        (None, Some(5), 3, &[4, 3, 2]),
        (None, Some(2), 3, &[1]),
        (None, Some(1), 3, &[]),
        (Some(Dead), None, 2, &[7, 3]),
        (Some(Dead), Some(3), 2, &[2]),
        (Some(Pending), Some(5), 100, &[1]),
        (Some(Sent), Some(6), 100, &[]),
        (None, Some(100), 2, &[7, 6]),
        (None, None, 0, &[]),
    ];
    for (state, before, limit, expected) in cases {
        assert_eq!(list(state, before, limit).await, numbered(expected), "{state:?} before {before:?}, {limit}");
    }
}

pub async fn retry_revives_only_a_dead_delivery(h: &DurableHarness) {
    let dead = Delivery {
        state: DeliveryState::Dead,
        attempts: 6,
        last_error: Some("connection refused".into()),
        next_attempt_at: T0 + Duration::minutes(20),
        ..delivery(1, T0)
    };
    let sent = Delivery { state: DeliveryState::Sent, attempts: 1, sent_at: Some(T0), ..delivery(2, T0) };
    let suppressed = in_state(3, DeliveryState::Suppressed);
    let pending = Delivery { attempts: 2, ..delivery(4, T0) };
    enqueued(h, &[dead.clone(), sent.clone(), suppressed.clone(), pending.clone()]).await;
    let now = T0 + Duration::HOUR + US;
    for (what, n) in [("sent", 2), ("suppressed", 3), ("pending", 4), ("absent", 5)] {
        assert_eq!(h.store.retry_delivery(id(n), now).await.unwrap(), None, "a {what} delivery is retried");
    }
    assert_eq!(all(h).await, [pending.clone(), suppressed, sent, dead.clone()], "nothing changed");
    assert_eq!(due(h, now, 100).await, numbered(&[4]));

    let revived = h.store.retry_delivery(id(1), now).await.unwrap().expect("a dead letter is retried");
    // Whether the last error stays is the adapter's choice: the port says nothing of it.
    let expected = Delivery {
        state: DeliveryState::Pending,
        attempts: 0,
        next_attempt_at: now,
        last_error: revived.last_error.clone(),
        ..dead
    };
    assert_eq!(revived, expected, "pending, its attempts reset, due now");
    assert_eq!(stored(h, 1).await, Some(revived), "returned as stored");
    assert_eq!(due(h, now - US, 100).await, numbered(&[4]), "due at now, not before");
    assert_eq!(due(h, now, 100).await, numbered(&[4, 1]));
    assert_eq!(h.store.retry_delivery(id(1), now).await.unwrap(), None, "revived once: it is pending now");

    // Through the worker's path: claimed, dead again, then revived and claimed by another instance.
    assert!(claim(h, 1, "a", now, Duration::seconds(60)).await);
    assert!(finish(h, 1, "a", &DeliveryOutcome::Dead("still refused".into())).await);
    let later = now + Duration::seconds(1);
    let again = h.store.retry_delivery(id(1), later).await.unwrap().unwrap();
    assert_eq!((again.state, again.attempts, again.next_attempt_at), (DeliveryState::Pending, 0, later));
    assert_eq!(claims(h).await, ["-", "-", "-", "-"], "no claim survives");
    assert!(claim(h, 1, "b", later, Duration::seconds(60)).await);
}
