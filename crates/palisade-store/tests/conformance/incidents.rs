//! The incident store port — raising (open or attach, one open incident per cause and subject),
//! the event cap, concurrent raises, state changes fenced on the expected state, the listing's
//! order, filters and cursor; the actions taken on an incident's behalf — read back, listed, reverted
//! once (also when 20 revert at once), live until reverted or expired, lapsed in expiry order; the
//! dashboard's counts — incidents per slice of their opening (to the microsecond, bounds between two
//! microseconds, far apart, refused buckets) and cause, and the unresolved per severity —
//! identical on SQLite and PostgreSQL.

use std::sync::Arc;

use palisade_core::monitoring::{
    Incident, IncidentAction, IncidentFilter, IncidentRaise, IncidentState, MAX_ATTACHED_EVENTS, ResponseKind, Severity,
};
use serde_json::json;
use time::{Duration, OffsetDateTime};
use tokio::sync::Barrier;

use crate::mfa::T0;
use crate::support::{DurableHarness, conformance};

conformance!(
    DurableHarness,
    [sqlite, postgres],
    [
        the_first_raise_opens_an_incident_with_every_field_as_given,
        a_second_raise_attaches_and_never_lowers_the_severity,
        another_subject_or_cause_opens_its_own_incident,
        attached_events_keep_the_newest_up_to_the_cap,
        concurrent_raises_open_one_incident_and_lose_no_event,
        state_changes_only_from_the_expected_state,
        a_raise_attaches_to_an_acknowledged_incident_keeping_its_state,
        after_resolving_a_raise_opens_a_new_incident,
        listings_are_newest_first_by_id,
        listings_filter_by_state_and_minimum_severity,
        listings_page_with_the_before_cursor_and_limit,
        an_unknown_incident_is_none,
        the_schema_refuses_malformed_incidents,
        an_action_reads_back_with_every_field_as_recorded,
        incident_actions_are_oldest_first_and_only_that_incidents,
        revert_incident_action_reverts_once,
        concurrent_reverts_have_one_winner,
        live_actions_are_of_the_kind_neither_reverted_nor_expired,
        lapsed_actions_come_oldest_expiry_first_up_to_the_limit,
        the_schema_refuses_malformed_incident_actions,
        incident_counts_slice_by_opened_at_to_the_microsecond,
        incident_counts_round_bounds_between_two_microseconds_up,
        incident_counts_agree_across_centuries,
        incident_counts_refuse_a_bucket_shorter_than_a_microsecond_or_not_whole,
        unresolved_incidents_count_open_and_acknowledged_per_severity,
    ]
);

/// A time-ordered id: `n` orders the ids like their creation would (uuid v7 layout, `n` last).
fn id(n: u128) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x0190_a000_0000_7000_8000_0000_0000_0000 | n)
}

/// A raise of `cause` about `subject`, at `T0 + seconds`, by events `events`.
fn raise(
    id: uuid::Uuid,
    cause: &str,
    subject: &str,
    severity: Severity,
    events: &[i64],
    seconds: i64,
) -> IncidentRaise {
    IncidentRaise {
        id,
        cause: cause.into(),
        subject: subject.into(),
        severity,
        title: format!("{cause} on {subject} ({})", severity.as_str()),
        details: json!({ "cause": cause, "failures": events.len(), "window_s": 300, "ips": ["203.0.113.9"] }),
        events: events.to_vec(),
        at: T0 + Duration::seconds(seconds),
    }
}

/// The incident a first `raise` opens.
fn opened(raise: &IncidentRaise) -> Incident {
    Incident {
        id: raise.id,
        cause: raise.cause.clone(),
        subject: raise.subject.clone(),
        severity: raise.severity,
        state: IncidentState::Open,
        title: raise.title.clone(),
        details: raise.details.clone(),
        events: raise.events.clone(),
        occurrences: 1,
        opened_at: raise.at,
        last_seen_at: raise.at,
        updated_at: raise.at,
        updated_by: None,
    }
}

async fn raised(h: &DurableHarness, raise: &IncidentRaise) -> (Incident, bool) {
    let (incident, was_opened) = h.store.raise_incident(raise).await.unwrap();
    assert_eq!(h.store.incident(incident.id).await.unwrap().as_ref(), Some(&incident), "returned as stored");
    (incident, was_opened)
}

/// Opens an incident with `raise` and checks it opened.
async fn open(h: &DurableHarness, raise: &IncidentRaise) -> Incident {
    let (incident, was_opened) = raised(h, raise).await;
    assert!(was_opened, "{} {} opens", raise.cause, raise.subject);
    assert_eq!(incident, opened(raise));
    incident
}

async fn incident_rows(h: &DurableHarness) -> String {
    h.database.fetch_text("SELECT CAST(COUNT(*) AS TEXT) FROM incidents").await.unwrap()
}

fn ids(incidents: &[Incident]) -> Vec<uuid::Uuid> {
    incidents.iter().map(|i| i.id).collect()
}

fn all(limit: u32) -> IncidentFilter {
    IncidentFilter { limit, ..IncidentFilter::default() }
}

pub async fn the_first_raise_opens_an_incident_with_every_field_as_given(h: &DurableHarness) {
    assert_eq!(h.store.incidents(&all(100)).await.unwrap(), [], "none yet");
    let first = raise(id(1), "brute_force", "user:alice", Severity::Medium, &[7, 9, 12], 0);
    let incident = open(h, &first).await;
    assert_eq!(h.store.incidents(&all(100)).await.unwrap(), [incident]);
    assert_eq!(incident_rows(h).await, "1");
}

pub async fn a_second_raise_attaches_and_never_lowers_the_severity(h: &DurableHarness) {
    let first = raise(id(1), "brute_force", "user:alice", Severity::Medium, &[7, 9], 0);
    let original = open(h, &first).await;

    // Another id, title, details and a higher severity, a minute later.
    let second = IncidentRaise {
        title: "something else".into(),
        details: json!({ "failures": 40 }),
        ..raise(id(2), "brute_force", "user:alice", Severity::High, &[15, 21], 60)
    };
    let (attached, was_opened) = raised(h, &second).await;
    assert!(!was_opened, "the open incident takes the raise");
    let expected = Incident {
        severity: Severity::High,
        events: vec![7, 9, 15, 21],
        occurrences: 2,
        last_seen_at: T0 + Duration::seconds(60),
        ..original.clone()
    };
    assert_eq!(attached, expected, "id, title, details, opened_at, updated_at and state stay");
    assert_eq!(h.store.incident(id(2)).await.unwrap(), None, "the second raise's id is not used");

    // Lower severity: attached, and the severity stays the highest seen.
    let third = raise(id(3), "brute_force", "user:alice", Severity::Low, &[30], 120);
    let (attached, was_opened) = raised(h, &third).await;
    assert!(!was_opened);
    let expected = Incident {
        events: vec![7, 9, 15, 21, 30],
        occurrences: 3,
        last_seen_at: T0 + Duration::seconds(120),
        ..expected
    };
    assert_eq!(attached, expected, "severity is never lowered");

    // A raise with no events still counts.
    let fourth = raise(id(4), "brute_force", "user:alice", Severity::Critical, &[], 180);
    let (attached, _) = raised(h, &fourth).await;
    assert_eq!(
        attached,
        Incident {
            severity: Severity::Critical,
            occurrences: 4,
            last_seen_at: T0 + Duration::seconds(180),
            ..expected
        }
    );
    assert_eq!(incident_rows(h).await, "1");
}

pub async fn another_subject_or_cause_opens_its_own_incident(h: &DurableHarness) {
    let alice = open(h, &raise(id(1), "brute_force", "user:alice", Severity::High, &[1], 0)).await;
    let bob = open(h, &raise(id(2), "brute_force", "user:bob", Severity::Low, &[2], 10)).await;
    let alice_reuse = open(h, &raise(id(3), "token_reuse", "user:alice", Severity::Critical, &[3], 20)).await;
    // Neither touched the first.
    assert_eq!(h.store.incident(alice.id).await.unwrap().as_ref(), Some(&alice));

    // Each later raise attaches to its own.
    let (attached, was_opened) = raised(h, &raise(id(4), "brute_force", "user:bob", Severity::Low, &[4], 30)).await;
    assert!(!was_opened);
    assert_eq!((attached.id, attached.events.as_slice(), attached.occurrences), (bob.id, &[2, 4][..], 2));
    assert_eq!(h.store.incident(alice.id).await.unwrap().as_ref(), Some(&alice));
    assert_eq!(h.store.incident(alice_reuse.id).await.unwrap().as_ref(), Some(&alice_reuse));
    assert_eq!(incident_rows(h).await, "3");
}

pub async fn attached_events_keep_the_newest_up_to_the_cap(h: &DurableHarness) {
    let cap = i64::try_from(MAX_ATTACHED_EVENTS).unwrap();
    // Exactly the cap: all kept.
    let full: Vec<i64> = (1..=cap).collect();
    let at_cap = open(h, &raise(id(1), "stuffing", "global", Severity::Medium, &full, 0)).await;
    assert_eq!(at_cap.events, full);
    let (attached, _) = raised(h, &raise(id(2), "stuffing", "global", Severity::Medium, &[cap + 1, cap + 2], 1)).await;
    assert_eq!(attached.events, (3..=cap + 2).collect::<Vec<_>>(), "the two oldest dropped");
    assert_eq!(attached.occurrences, 2, "the count goes on");

    // Over the cap in the first raise: the newest kept.
    let many: Vec<i64> = (1..=cap + 50).collect();
    let (first, was_opened) = raised(h, &raise(id(3), "spraying", "ip:203.0.113.9", Severity::Low, &many, 0)).await;
    assert!(was_opened);
    assert_eq!(first.events, (51..=cap + 50).collect::<Vec<_>>());
    // Over the cap in an attached raise: still the newest, in order.
    let more: Vec<i64> = (1000..1000 + cap + 10).collect();
    let (attached, _) = raised(h, &raise(id(4), "spraying", "ip:203.0.113.9", Severity::Low, &more, 1)).await;
    assert_eq!(attached.events, more[10..].to_vec());
    assert_eq!(attached.occurrences, 2);
}

pub async fn concurrent_raises_open_one_incident_and_lose_no_event(h: &DurableHarness) {
    const RAISES: u128 = 20;
    let barrier = Arc::new(Barrier::new(20));
    let tasks: Vec<_> = (0..RAISES)
        .map(|n| {
            let (store, barrier) = (h.store.clone(), barrier.clone());
            let seq = i64::try_from(n).unwrap();
            // One of them critical: the severity must end at the highest whatever the order.
            let severity = if n == 7 { Severity::Critical } else { Severity::Low };
            let raise = raise(id(n + 1), "brute_force", "user:alice", severity, &[seq], seq);
            tokio::spawn(async move {
                barrier.wait().await;
                store.raise_incident(&raise).await.unwrap()
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    assert_eq!(outcomes.iter().filter(|(_, was_opened)| *was_opened).count(), 1, "exactly one of 20 opens");
    let the_id = outcomes.first().unwrap().0.id;
    assert!(outcomes.iter().all(|(incident, _)| incident.id == the_id), "the others attach to it");

    let stored = h.store.incident(the_id).await.unwrap().unwrap();
    assert_eq!(stored.occurrences, 20, "no raise lost");
    let mut events = stored.events.clone();
    events.sort_unstable();
    assert_eq!(events, (0..20).collect::<Vec<i64>>(), "no event lost: {:?}", stored.events);
    assert_eq!(stored.severity, Severity::Critical);
    assert_eq!(stored.state, IncidentState::Open);
    // Each caller saw a distinct count: every raise read the one before it.
    let mut counts: Vec<u64> = outcomes.iter().map(|(incident, _)| incident.occurrences).collect();
    counts.sort_unstable();
    assert_eq!(counts, (1..=20).collect::<Vec<u64>>());
    assert_eq!(incident_rows(h).await, "1");
}

pub async fn state_changes_only_from_the_expected_state(h: &DurableHarness) {
    use IncidentState::{Acknowledged, Open, Resolved};
    let incident = open(h, &raise(id(1), "hijack", "user:alice", Severity::High, &[5], 0)).await;
    let (t1, t2) = (T0 + Duration::minutes(5), T0 + Duration::minutes(9));

    assert_eq!(h.store.set_incident_state(incident.id, Acknowledged, Resolved, "bob", t1).await.unwrap(), None);
    assert_eq!(h.store.set_incident_state(incident.id, Resolved, Acknowledged, "bob", t1).await.unwrap(), None);
    assert_eq!(h.store.incident(incident.id).await.unwrap().as_ref(), Some(&incident), "nothing changed");

    let acknowledged = h.store.set_incident_state(incident.id, Open, Acknowledged, "alice", t1).await.unwrap();
    let expected =
        Incident { state: Acknowledged, updated_at: t1, updated_by: Some("alice".into()), ..incident.clone() };
    assert_eq!(acknowledged.as_ref(), Some(&expected));
    assert_eq!(h.store.incident(incident.id).await.unwrap().as_ref(), Some(&expected));

    // A second acknowledgement (it is no longer open), or a resolution from open: refused.
    assert_eq!(h.store.set_incident_state(incident.id, Open, Acknowledged, "carol", t2).await.unwrap(), None);
    assert_eq!(h.store.set_incident_state(incident.id, Open, Resolved, "carol", t2).await.unwrap(), None);
    assert_eq!(h.store.incident(incident.id).await.unwrap().as_ref(), Some(&expected), "nothing changed");

    let resolved = h.store.set_incident_state(incident.id, Acknowledged, Resolved, "bob", t2).await.unwrap();
    let expected = Incident { state: Resolved, updated_at: t2, updated_by: Some("bob".into()), ..incident.clone() };
    assert_eq!(resolved.as_ref(), Some(&expected));
    assert_eq!(h.store.set_incident_state(incident.id, Acknowledged, Resolved, "carol", t2).await.unwrap(), None);
    assert_eq!(h.store.incident(incident.id).await.unwrap().as_ref(), Some(&expected));

    // Open straight to resolved, on another incident.
    let other = open(h, &raise(id(2), "hijack", "user:bob", Severity::Low, &[6], 0)).await;
    let resolved = h.store.set_incident_state(other.id, Open, Resolved, "alice", t1).await.unwrap();
    assert_eq!(resolved, Some(Incident { state: Resolved, updated_at: t1, updated_by: Some("alice".into()), ..other }));
}

pub async fn a_raise_attaches_to_an_acknowledged_incident_keeping_its_state(h: &DurableHarness) {
    let incident = open(h, &raise(id(1), "api_key_abuse", "api_key:k1", Severity::Medium, &[1], 0)).await;
    let t1 = T0 + Duration::minutes(1);
    let acknowledged = h
        .store
        .set_incident_state(incident.id, IncidentState::Open, IncidentState::Acknowledged, "alice", t1)
        .await
        .unwrap()
        .unwrap();
    let (attached, was_opened) =
        raised(h, &raise(id(2), "api_key_abuse", "api_key:k1", Severity::High, &[2], 120)).await;
    assert!(!was_opened, "an acknowledged incident is still the one for its cause and subject");
    assert_eq!(
        attached,
        Incident {
            severity: Severity::High,
            events: vec![1, 2],
            occurrences: 2,
            last_seen_at: T0 + Duration::seconds(120),
            ..acknowledged
        },
        "state, updated_at and updated_by stay"
    );
}

pub async fn after_resolving_a_raise_opens_a_new_incident(h: &DurableHarness) {
    let first = raise(id(1), "brute_force", "user:alice", Severity::Critical, &[1, 2], 0);
    let old = open(h, &first).await;
    raised(h, &raise(id(2), "brute_force", "user:alice", Severity::Low, &[3], 10)).await;
    let resolved = h
        .store
        .set_incident_state(old.id, IncidentState::Open, IncidentState::Resolved, "alice", T0 + Duration::minutes(1))
        .await
        .unwrap()
        .unwrap();

    let later = raise(id(3), "brute_force", "user:alice", Severity::Low, &[9], 600);
    let new = open(h, &later).await;
    assert_ne!(new.id, old.id);
    assert_eq!(h.store.incident(old.id).await.unwrap().as_ref(), Some(&resolved), "the resolved one stays");
    // The next raise attaches to the new one, not the resolved one.
    let (attached, was_opened) = raised(h, &raise(id(4), "brute_force", "user:alice", Severity::Low, &[10], 660)).await;
    assert!(!was_opened);
    assert_eq!((attached.id, attached.events.as_slice(), attached.occurrences), (new.id, &[9, 10][..], 2));
    assert_eq!(h.store.incident(old.id).await.unwrap().as_ref(), Some(&resolved));
    assert_eq!(incident_rows(h).await, "2");
}

/// Opens incidents 1 to 6 (ids in that order), inserted out of order so that the insertion order
/// is not the id order: (n, state, severity) as listed.
async fn six_incidents(h: &DurableHarness) -> Vec<Incident> {
    use IncidentState::{Acknowledged, Open, Resolved};
    let plan = [
        (3, Resolved, Severity::High),
        (1, Open, Severity::Low),
        (5, Open, Severity::Critical),
        (2, Acknowledged, Severity::Medium),
        (6, Open, Severity::Medium),
        (4, Acknowledged, Severity::High),
    ];
    let mut incidents = Vec::new();
    for (n, state, severity) in plan {
        let seq = i64::try_from(n).unwrap();
        let incident = open(h, &raise(id(n), "brute_force", &format!("user:{n}"), severity, &[seq], seq)).await;
        let at = T0 + Duration::hours(1);
        let incident = match state {
            Open => incident,
            to => h.store.set_incident_state(incident.id, Open, to, "alice", at).await.unwrap().unwrap(),
        };
        incidents.push(incident);
    }
    incidents.sort_by_key(|i| std::cmp::Reverse(i.id));
    incidents
}

fn numbered(ns: &[u128]) -> Vec<uuid::Uuid> {
    ns.iter().copied().map(id).collect()
}

pub async fn listings_are_newest_first_by_id(h: &DurableHarness) {
    let newest_first = six_incidents(h).await;
    assert_eq!(ids(&newest_first), numbered(&[6, 5, 4, 3, 2, 1]));
    assert_eq!(h.store.incidents(&all(100)).await.unwrap(), newest_first, "every field, newest first");
}

pub async fn listings_filter_by_state_and_minimum_severity(h: &DurableHarness) {
    six_incidents(h).await;
    let list = |state: Option<IncidentState>, min_severity: Option<Severity>| {
        let filter = IncidentFilter { state, min_severity, before: None, limit: 100 };
        async move { ids(&h.store.incidents(&filter).await.unwrap()) }
    };
    assert_eq!(list(Some(IncidentState::Open), None).await, numbered(&[6, 5, 1]));
    assert_eq!(list(Some(IncidentState::Acknowledged), None).await, numbered(&[4, 2]));
    assert_eq!(list(Some(IncidentState::Resolved), None).await, numbered(&[3]));
    assert_eq!(list(None, Some(Severity::Low)).await, numbered(&[6, 5, 4, 3, 2, 1]), "low is every severity");
    assert_eq!(list(None, Some(Severity::Medium)).await, numbered(&[6, 5, 4, 3, 2]));
    assert_eq!(list(None, Some(Severity::High)).await, numbered(&[5, 4, 3]), "at least high");
    assert_eq!(list(None, Some(Severity::Critical)).await, numbered(&[5]));
    assert_eq!(list(Some(IncidentState::Open), Some(Severity::Medium)).await, numbered(&[6, 5]));
    assert_eq!(list(Some(IncidentState::Resolved), Some(Severity::Critical)).await, numbered(&[]));
    // The severity filter sees the severity as raised since.
    raised(h, &raise(id(7), "brute_force", "user:1", Severity::Critical, &[70], 70)).await;
    assert_eq!(list(None, Some(Severity::Critical)).await, numbered(&[5, 1]));
}

pub async fn listings_page_with_the_before_cursor_and_limit(h: &DurableHarness) {
    six_incidents(h).await;
    let page = |before: Option<u128>, limit: u32, state: Option<IncidentState>| {
        let filter = IncidentFilter { state, min_severity: None, before: before.map(id), limit };
        async move { ids(&h.store.incidents(&filter).await.unwrap()) }
    };
    assert_eq!(page(None, 2, None).await, numbered(&[6, 5]));
    assert_eq!(page(Some(5), 2, None).await, numbered(&[4, 3]), "strictly before the cursor");
    assert_eq!(page(Some(3), 2, None).await, numbered(&[2, 1]));
    assert_eq!(page(Some(1), 2, None).await, numbered(&[]));
    assert_eq!(page(Some(4), 100, None).await, numbered(&[3, 2, 1]));
    assert_eq!(page(Some(6), 1, Some(IncidentState::Open)).await, numbered(&[5]));
    assert_eq!(page(Some(5), 100, Some(IncidentState::Open)).await, numbered(&[1]));
    // A cursor that names no incident still bounds the listing by id.
    assert_eq!(page(Some(100), 3, None).await, numbered(&[6, 5, 4]));
}

pub async fn an_unknown_incident_is_none(h: &DurableHarness) {
    let unknown = uuid::Uuid::now_v7();
    assert_eq!(h.store.incident(unknown).await.unwrap(), None);
    open(h, &raise(id(1), "hijack", "user:alice", Severity::Low, &[1], 0)).await;
    assert_eq!(h.store.incident(unknown).await.unwrap(), None, "with another incident stored");
    let at = T0 + Duration::minutes(1);
    let changed = h.store.set_incident_state(unknown, IncidentState::Open, IncidentState::Resolved, "alice", at);
    assert_eq!(changed.await.unwrap(), None);
}

pub async fn the_schema_refuses_malformed_incidents(h: &DurableHarness) {
    // Each row as the store writes them, but for one column.
    let sqlite = h.database.sqlite_path().is_some();
    let well_formed = if sqlite {
        "INSERT INTO incidents VALUES ('0190a000-0000-7000-8000-000000000001', 'c', 's', 'LOW', 'open', 't', \
         '{}', '[1]', 1, 0, 0, 0, NULL)"
    } else {
        "INSERT INTO incidents VALUES ('0190a000-0000-7000-8000-000000000001', 'c', 's', 'LOW', 'open', 't', \
         '{}', '[1]', 1, now(), now(), now(), NULL)"
    };
    let violations: [(&str, &'static str, &'static str); 6] = [
        (
            "a severity outside the four",
            "INSERT INTO incidents VALUES ('0190a000-0000-7000-8000-000000000002', 'c', 'x', 'low', 'open', 't', \
             '{}', '[]', 1, 0, 0, 0, NULL)",
            "INSERT INTO incidents VALUES ('0190a000-0000-7000-8000-000000000002', 'c', 'x', 'low', 'open', 't', \
             '{}', '[]', 1, now(), now(), now(), NULL)",
        ),
        (
            "a state outside the three",
            "INSERT INTO incidents VALUES ('0190a000-0000-7000-8000-000000000002', 'c', 'x', 'LOW', 'closed', 't', \
             '{}', '[]', 1, 0, 0, 0, NULL)",
            "INSERT INTO incidents VALUES ('0190a000-0000-7000-8000-000000000002', 'c', 'x', 'LOW', 'closed', 't', \
             '{}', '[]', 1, now(), now(), now(), NULL)",
        ),
        (
            "details that are not JSON",
            "INSERT INTO incidents VALUES ('0190a000-0000-7000-8000-000000000002', 'c', 'x', 'LOW', 'open', 't', \
             '{', '[]', 1, 0, 0, 0, NULL)",
            "INSERT INTO incidents VALUES ('0190a000-0000-7000-8000-000000000002', 'c', 'x', 'LOW', 'open', 't', \
             '{', '[]', 1, now(), now(), now(), NULL)",
        ),
        (
            "events that are not a JSON array",
            "INSERT INTO incidents VALUES ('0190a000-0000-7000-8000-000000000002', 'c', 'x', 'LOW', 'open', 't', \
             '{}', '{}', 1, 0, 0, 0, NULL)",
            "INSERT INTO incidents VALUES ('0190a000-0000-7000-8000-000000000002', 'c', 'x', 'LOW', 'open', 't', \
             '{}', '{}', 1, now(), now(), now(), NULL)",
        ),
        (
            "no occurrence",
            "INSERT INTO incidents VALUES ('0190a000-0000-7000-8000-000000000002', 'c', 'x', 'LOW', 'open', 't', \
             '{}', '[]', 0, 0, 0, 0, NULL)",
            "INSERT INTO incidents VALUES ('0190a000-0000-7000-8000-000000000002', 'c', 'x', 'LOW', 'open', 't', \
             '{}', '[]', 0, now(), now(), now(), NULL)",
        ),
        (
            "a second unresolved incident for one cause and subject",
            "INSERT INTO incidents VALUES ('0190a000-0000-7000-8000-000000000002', 'c', 's', 'LOW', 'acknowledged', \
             't', '{}', '[]', 1, 0, 0, 0, NULL)",
            "INSERT INTO incidents VALUES ('0190a000-0000-7000-8000-000000000002', 'c', 's', 'LOW', 'acknowledged', \
             't', '{}', '[]', 1, now(), now(), now(), NULL)",
        ),
    ];
    assert_eq!(h.database.execute(well_formed).await.unwrap(), 1);
    for (what, sqlite_sql, postgres_sql) in violations {
        let sql = if sqlite { sqlite_sql } else { postgres_sql };
        assert!(h.database.execute(sql).await.is_err(), "the schema accepts {what}");
    }
    // Resolved, a second one for the same cause and subject goes in: the refusal above was the index.
    let resolved = if sqlite {
        "INSERT INTO incidents VALUES ('0190a000-0000-7000-8000-000000000003', 'c', 's', 'LOW', 'resolved', 't', \
         '{}', '[]', 1, 0, 0, 0, 'alice')"
    } else {
        "INSERT INTO incidents VALUES ('0190a000-0000-7000-8000-000000000003', 'c', 's', 'LOW', 'resolved', 't', \
         '{}', '[]', 1, now(), now(), now(), 'alice')"
    };
    assert_eq!(h.database.execute(resolved).await.unwrap(), 1);
    assert_eq!(incident_rows(h).await, "2");
}

/// An action `n` (its id `id(n)`) of `kind` on `incident`'s behalf against `target`, taken at `taken`
/// and, when timed, lasting `lasts`; not reverted.
fn action(
    n: u128,
    incident: uuid::Uuid,
    kind: ResponseKind,
    target: &str,
    taken: OffsetDateTime,
    lasts: Option<Duration>,
) -> IncidentAction {
    IncidentAction {
        id: id(n),
        incident,
        kind,
        target: target.into(),
        taken_at: taken,
        expires_at: lasts.map(|d| taken + d),
        reverted_at: None,
        reverted_by: None,
    }
}

/// Records `action` and checks it reads back as given.
async fn recorded(h: &DurableHarness, action: &IncidentAction) {
    h.store.record_incident_action(action).await.unwrap();
    assert_eq!(h.store.incident_action(action.id).await.unwrap().as_ref(), Some(action), "stored as given");
}

fn action_ids(actions: &[IncidentAction]) -> Vec<uuid::Uuid> {
    actions.iter().map(|a| a.id).collect()
}

async fn action_rows(h: &DurableHarness) -> String {
    h.database.fetch_text("SELECT CAST(COUNT(*) AS TEXT) FROM incident_actions").await.unwrap()
}

pub async fn an_action_reads_back_with_every_field_as_recorded(h: &DurableHarness) {
    let incident = open(h, &raise(id(1), "api_key_abuse", "ip:203.0.113.9", Severity::High, &[1], 0)).await;
    let taken = T0 + Duration::microseconds(1_234_567);
    // One of each kind; timed ones with an expiry, one already reverted, instants to the microsecond.
    let block = action(101, incident.id, ResponseKind::BlockIp, "203.0.113.9", taken, Some(Duration::minutes(15)));
    let lock = IncidentAction {
        reverted_at: Some(taken + Duration::microseconds(60_000_001)),
        reverted_by: Some("alice ✓".into()),
        ..action(
            102,
            incident.id,
            ResponseKind::LockAccount,
            "0190a000-0000-7000-8000-00000000beef",
            taken + Duration::microseconds(1),
            Some(Duration::microseconds(900_000_003)),
        )
    };
    let end = action(103, incident.id, ResponseKind::EndSessions, "user-id", taken, None);
    let key = action(104, incident.id, ResponseKind::RevokeApiKey, &"k".repeat(600), taken, None);
    for a in [&block, &lock, &end, &key] {
        recorded(h, a).await;
    }
    assert_eq!(lock.expires_at, Some(T0 + Duration::microseconds(901_234_571)), "the expiry is to the microsecond");
    assert_eq!(h.store.incident_actions(incident.id).await.unwrap(), [block.clone(), lock, end, key]);
    assert_eq!(h.store.incident_action(id(105)).await.unwrap(), None, "an unknown action");

    // A reused id is an error and changes nothing.
    let again = IncidentAction { target: "198.51.100.1".into(), ..block.clone() };
    assert!(h.store.record_incident_action(&again).await.is_err(), "a duplicate id is an error");
    assert_eq!(h.store.incident_action(block.id).await.unwrap(), Some(block));
    // An action of an incident that is not stored is refused.
    let orphan = action(106, id(2), ResponseKind::EndSessions, "user-id", taken, None);
    assert!(h.store.record_incident_action(&orphan).await.is_err(), "an action of a missing incident");
    assert_eq!(h.store.incident_action(orphan.id).await.unwrap(), None);
    assert_eq!(action_rows(h).await, "4");
}

pub async fn incident_actions_are_oldest_first_and_only_that_incidents(h: &DurableHarness) {
    let alice = open(h, &raise(id(1), "brute_force", "user:alice", Severity::High, &[1], 0)).await;
    let bob = open(h, &raise(id(2), "brute_force", "user:bob", Severity::High, &[2], 0)).await;
    let quiet = open(h, &raise(id(3), "brute_force", "user:carol", Severity::Low, &[3], 0)).await;
    // Actions 101 to 106 in time order, alternating between the two incidents, recorded out of order.
    let actions: Vec<IncidentAction> = (101..=106)
        .map(|n| {
            let incident = if n % 2 == 1 { alice.id } else { bob.id };
            let (kind, lasts) = if n % 3 == 0 {
                (ResponseKind::EndSessions, None)
            } else {
                (ResponseKind::LockAccount, Some(Duration::minutes(15)))
            };
            let seq = i64::try_from(n).unwrap();
            action(n, incident, kind, &format!("target-{n}"), T0 + Duration::seconds(seq), lasts)
        })
        .collect();
    for n in [4, 1, 5, 0, 3, 2] {
        recorded(h, &actions[n]).await;
    }
    let of = |incident: uuid::Uuid| actions.iter().filter(|a| a.incident == incident).cloned().collect::<Vec<_>>();
    assert_eq!(action_ids(&of(alice.id)), numbered(&[101, 103, 105]));
    assert_eq!(h.store.incident_actions(alice.id).await.unwrap(), of(alice.id), "every field, oldest first");
    assert_eq!(h.store.incident_actions(bob.id).await.unwrap(), of(bob.id));
    assert_eq!(h.store.incident_actions(quiet.id).await.unwrap(), [], "an incident without actions");
    assert_eq!(h.store.incident_actions(id(99)).await.unwrap(), [], "an unknown incident");
}

pub async fn revert_incident_action_reverts_once(h: &DurableHarness) {
    let incident = open(h, &raise(id(1), "brute_force", "user:alice", Severity::High, &[1], 0)).await;
    let lock = action(101, incident.id, ResponseKind::LockAccount, "alice-id", T0, Some(Duration::minutes(15)));
    let other = action(102, incident.id, ResponseKind::EndSessions, "alice-id", T0, None);
    recorded(h, &lock).await;
    recorded(h, &other).await;
    let (t1, t2) = (T0 + Duration::microseconds(61_000_001), T0 + Duration::minutes(2));

    let reverted = h.store.revert_incident_action(lock.id, "bob", t1).await.unwrap();
    let expected = IncidentAction { reverted_at: Some(t1), reverted_by: Some("bob".into()), ..lock.clone() };
    assert_eq!(reverted.as_ref(), Some(&expected), "the action as stored after");
    assert_eq!(h.store.incident_action(lock.id).await.unwrap().as_ref(), Some(&expected));

    // A second revert, even by the expiry sweep, finds it reverted and changes nothing.
    assert_eq!(h.store.revert_incident_action(lock.id, "expiry", t2).await.unwrap(), None);
    assert_eq!(h.store.revert_incident_action(lock.id, "bob", t1).await.unwrap(), None, "even the same revert");
    assert_eq!(h.store.incident_action(lock.id).await.unwrap().as_ref(), Some(&expected), "the first revert stays");
    assert_eq!(h.store.incident_action(other.id).await.unwrap().as_ref(), Some(&other), "only that action");

    assert_eq!(h.store.revert_incident_action(id(103), "bob", t1).await.unwrap(), None, "an unknown action");
    assert_eq!(action_rows(h).await, "2", "and nothing is made up for it");

    // One recorded reverted already cannot be reverted again.
    let recorded_reverted = IncidentAction {
        reverted_at: Some(T0),
        reverted_by: Some("carol".into()),
        ..action(104, incident.id, ResponseKind::RevokeApiKey, "key-id", T0, None)
    };
    recorded(h, &recorded_reverted).await;
    assert_eq!(h.store.revert_incident_action(recorded_reverted.id, "bob", t2).await.unwrap(), None);
    assert_eq!(h.store.incident_action(recorded_reverted.id).await.unwrap(), Some(recorded_reverted));
}

pub async fn concurrent_reverts_have_one_winner(h: &DurableHarness) {
    let incident = open(h, &raise(id(1), "brute_force", "user:alice", Severity::High, &[1], 0)).await;
    let lock = action(101, incident.id, ResponseKind::LockAccount, "alice-id", T0, Some(Duration::minutes(15)));
    recorded(h, &lock).await;
    let barrier = Arc::new(Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (store, barrier) = (h.store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.revert_incident_action(id(101), &format!("admin-{i}"), T0 + Duration::seconds(i)).await.unwrap()
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        winners.extend(task.await.unwrap());
    }
    let names: Vec<_> = winners.iter().map(|a| a.reverted_by.clone()).collect();
    assert_eq!(winners.len(), 1, "exactly one of 20 concurrent reverts reverts: {names:?}");
    let winner = winners.pop().unwrap();
    let by = winner.reverted_by.clone().unwrap();
    let i: i64 = by.strip_prefix("admin-").unwrap().parse().unwrap();
    let expected = IncidentAction { reverted_at: Some(T0 + Duration::seconds(i)), reverted_by: Some(by), ..lock };
    assert_eq!(winner, expected, "both fields from the one winning caller");
    assert_eq!(h.store.incident_action(expected.id).await.unwrap(), Some(expected), "as stored");
}

pub async fn live_actions_are_of_the_kind_neither_reverted_nor_expired(h: &DurableHarness) {
    use ResponseKind::{BlockIp, EndSessions, LockAccount, RevokeApiKey};
    let incident = open(h, &raise(id(1), "api_key_abuse", "ip:203.0.113.9", Severity::High, &[1], 0)).await;
    let now = T0 + Duration::hours(1);
    let micros = Duration::microseconds;
    // (n, kind, expiry relative to now or untimed, reverted), all taken an hour before now.
    let plan: [(u128, ResponseKind, Option<Duration>, bool); 11] = [
        (101, BlockIp, Some(micros(1)), false),             // live for another microsecond
        (102, BlockIp, Some(Duration::ZERO), false),        // lapses at now: not live
        (103, BlockIp, Some(-Duration::minutes(1)), false), // lapsed
        (104, BlockIp, Some(Duration::minutes(10)), true),  // reverted
        (105, BlockIp, Some(Duration::days(30)), false),    // live
        (106, LockAccount, Some(Duration::minutes(10)), false),
        (107, LockAccount, Some(-micros(1)), false),
        (108, EndSessions, None, false), // untimed: live until reverted
        (109, EndSessions, None, true),
        (110, RevokeApiKey, None, false),
        (111, RevokeApiKey, None, true),
    ];
    let taken = T0;
    let mut actions = Vec::new();
    for (n, kind, expiry, reverted) in plan {
        let mut a = action(n, incident.id, kind, &format!("target-{n}"), taken, None);
        a.expires_at = expiry.map(|d| now + d);
        if reverted {
            (a.reverted_at, a.reverted_by) = (Some(now - Duration::minutes(5)), Some("alice".into()));
        }
        actions.push(a);
    }
    for a in actions.iter().rev() {
        recorded(h, a).await;
    }
    let live = |kind: ResponseKind, at: OffsetDateTime| async move {
        action_ids(&h.store.live_incident_actions(kind, at).await.unwrap())
    };
    assert_eq!(
        h.store.live_incident_actions(BlockIp, now).await.unwrap(),
        [actions[0].clone(), actions[4].clone()],
        "every field, by id; expiry at now is not live"
    );
    assert_eq!(live(LockAccount, now).await, numbered(&[106]));
    assert_eq!(live(EndSessions, now).await, numbered(&[108]), "untimed and not reverted");
    assert_eq!(live(RevokeApiKey, now).await, numbered(&[110]));
    // Earlier, the ones lapsed by now were live; the reverted one stays out whatever the time.
    assert_eq!(live(BlockIp, now - micros(1)).await, numbered(&[101, 102, 105]));
    assert_eq!(live(BlockIp, now - Duration::minutes(2)).await, numbered(&[101, 102, 103, 105]));
    assert_eq!(live(LockAccount, now - micros(1)).await, numbered(&[106]), "its expiry is that instant: not live");
    assert_eq!(live(LockAccount, now - micros(2)).await, numbered(&[106, 107]));
    // Later, only the month-long block and the untimed ones.
    let later = now + Duration::days(29);
    assert_eq!(live(BlockIp, later).await, numbered(&[105]));
    assert_eq!(live(LockAccount, later).await, numbered(&[]));
    assert_eq!(live(EndSessions, later).await, numbered(&[108]), "untimed never lapses");

    // Reverting takes one out at once.
    h.store.revert_incident_action(id(105), "bob", now).await.unwrap().unwrap();
    h.store.revert_incident_action(id(108), "bob", now).await.unwrap().unwrap();
    assert_eq!(live(BlockIp, now).await, numbered(&[101]));
    assert_eq!(live(EndSessions, now).await, numbered(&[]));
}

pub async fn lapsed_actions_come_oldest_expiry_first_up_to_the_limit(h: &DurableHarness) {
    use ResponseKind::{BlockIp, EndSessions, LockAccount, RevokeApiKey};
    let incident = open(h, &raise(id(1), "brute_force", "user:alice", Severity::High, &[1], 0)).await;
    let now = T0 + Duration::hours(1);
    let micros = Duration::microseconds;
    // (n, kind, expiry relative to now or untimed, reverted): expiry order is not id order.
    let plan: [(u128, ResponseKind, Option<Duration>, bool); 9] = [
        (101, LockAccount, Some(-Duration::minutes(5)), false),
        (102, BlockIp, Some(Duration::ZERO), false), // lapses at now: lapsed
        (103, LockAccount, Some(-Duration::minutes(30)), false),
        (104, BlockIp, Some(micros(1)), false),              // still live
        (105, LockAccount, Some(-Duration::hours(2)), true), // lapsed but reverted already
        (106, BlockIp, Some(-micros(1)), false),
        (107, EndSessions, None, false), // untimed: never lapses
        (108, RevokeApiKey, None, false),
        (109, LockAccount, Some(Duration::days(1)), false),
    ];
    let mut actions = Vec::new();
    for (n, kind, expiry, reverted) in plan {
        let mut a = action(n, incident.id, kind, &format!("target-{n}"), T0, None);
        a.expires_at = expiry.map(|d| now + d);
        if reverted {
            (a.reverted_at, a.reverted_by) = (Some(T0 + Duration::minutes(1)), Some("alice".into()));
        }
        recorded(h, &a).await;
        actions.push(a);
    }
    let lapsed = |at: OffsetDateTime, limit: u32| async move {
        action_ids(&h.store.lapsed_incident_actions(at, limit).await.unwrap())
    };
    let by_n = |n: u128| actions.iter().find(|a| a.id == id(n)).cloned().unwrap();
    assert_eq!(
        h.store.lapsed_incident_actions(now, 100).await.unwrap(),
        [by_n(103), by_n(101), by_n(106), by_n(102)],
        "every field, oldest expiry first; expiry at now is lapsed"
    );
    assert_eq!(lapsed(now, 2).await, numbered(&[103, 101]), "at most limit, the oldest");
    assert_eq!(lapsed(now, 1).await, numbered(&[103]));
    assert_eq!(lapsed(now, 0).await, numbered(&[]));
    assert_eq!(lapsed(now - micros(1), 100).await, numbered(&[103, 101, 106]));
    assert_eq!(lapsed(now - Duration::minutes(5), 100).await, numbered(&[103, 101]));
    assert_eq!(lapsed(now - Duration::hours(3), 100).await, numbered(&[]), "none before the first expiry");
    assert_eq!(lapsed(now + micros(1), 100).await, numbered(&[103, 101, 106, 102, 104]));
    assert_eq!(
        lapsed(now + Duration::days(400), 100).await,
        numbered(&[103, 101, 106, 102, 104, 109]),
        "untimed never"
    );

    // As the sweep goes: a reverted one leaves the list, the next come up.
    h.store.revert_incident_action(id(103), "expiry", now).await.unwrap().unwrap();
    assert_eq!(lapsed(now, 2).await, numbered(&[101, 106]));
}

pub async fn the_schema_refuses_malformed_incident_actions(h: &DurableHarness) {
    // Each row as the store writes them, but for one column.
    let sqlite = h.database.sqlite_path().is_some();
    let incident = if sqlite {
        "INSERT INTO incidents VALUES ('0190a000-0000-7000-8000-000000000001', 'c', 's', 'LOW', 'open', 't', \
         '{}', '[1]', 1, 0, 0, 0, NULL)"
    } else {
        "INSERT INTO incidents VALUES ('0190a000-0000-7000-8000-000000000001', 'c', 's', 'LOW', 'open', 't', \
         '{}', '[1]', 1, now(), now(), now(), NULL)"
    };
    assert_eq!(h.database.execute(incident).await.unwrap(), 1);
    let well_formed: [(&'static str, &'static str); 3] = [
        (
            "INSERT INTO incident_actions VALUES ('0190a000-0000-7000-8000-000000000101', \
             '0190a000-0000-7000-8000-000000000001', 'block_ip', '203.0.113.9', 0, 60, NULL, NULL)",
            "INSERT INTO incident_actions VALUES ('0190a000-0000-7000-8000-000000000101', \
             '0190a000-0000-7000-8000-000000000001', 'block_ip', '203.0.113.9', now(), now(), NULL, NULL)",
        ),
        (
            "INSERT INTO incident_actions VALUES ('0190a000-0000-7000-8000-000000000102', \
             '0190a000-0000-7000-8000-000000000001', 'lock_account', 'u', 0, 60, 30, 'alice')",
            "INSERT INTO incident_actions VALUES ('0190a000-0000-7000-8000-000000000102', \
             '0190a000-0000-7000-8000-000000000001', 'lock_account', 'u', now(), now(), now(), 'alice')",
        ),
        (
            "INSERT INTO incident_actions VALUES ('0190a000-0000-7000-8000-000000000103', \
             '0190a000-0000-7000-8000-000000000001', 'end_sessions', 'u', 0, NULL, NULL, NULL)",
            "INSERT INTO incident_actions VALUES ('0190a000-0000-7000-8000-000000000103', \
             '0190a000-0000-7000-8000-000000000001', 'end_sessions', 'u', now(), NULL, NULL, NULL)",
        ),
    ];
    let violations: [(&str, &'static str, &'static str); 9] = [
        (
            "an unknown kind",
            "INSERT INTO incident_actions VALUES ('0190a000-0000-7000-8000-000000000104', \
             '0190a000-0000-7000-8000-000000000001', 'ban_ip', '203.0.113.9', 0, 60, NULL, NULL)",
            "INSERT INTO incident_actions VALUES ('0190a000-0000-7000-8000-000000000104', \
             '0190a000-0000-7000-8000-000000000001', 'ban_ip', '203.0.113.9', now(), now(), NULL, NULL)",
        ),
        (
            "reverted_at without reverted_by",
            "INSERT INTO incident_actions VALUES ('0190a000-0000-7000-8000-000000000104', \
             '0190a000-0000-7000-8000-000000000001', 'block_ip', '203.0.113.9', 0, 60, 30, NULL)",
            "INSERT INTO incident_actions VALUES ('0190a000-0000-7000-8000-000000000104', \
             '0190a000-0000-7000-8000-000000000001', 'block_ip', '203.0.113.9', now(), now(), now(), NULL)",
        ),
        (
            "reverted_by without reverted_at",
            "INSERT INTO incident_actions VALUES ('0190a000-0000-7000-8000-000000000104', \
             '0190a000-0000-7000-8000-000000000001', 'end_sessions', 'u', 0, NULL, NULL, 'alice')",
            "INSERT INTO incident_actions VALUES ('0190a000-0000-7000-8000-000000000104', \
             '0190a000-0000-7000-8000-000000000001', 'end_sessions', 'u', now(), NULL, NULL, 'alice')",
        ),
        (
            "a block_ip without expiry",
            "INSERT INTO incident_actions VALUES ('0190a000-0000-7000-8000-000000000104', \
             '0190a000-0000-7000-8000-000000000001', 'block_ip', '203.0.113.9', 0, NULL, NULL, NULL)",
            "INSERT INTO incident_actions VALUES ('0190a000-0000-7000-8000-000000000104', \
             '0190a000-0000-7000-8000-000000000001', 'block_ip', '203.0.113.9', now(), NULL, NULL, NULL)",
        ),
        (
            "a lock_account without expiry",
            "INSERT INTO incident_actions VALUES ('0190a000-0000-7000-8000-000000000104', \
             '0190a000-0000-7000-8000-000000000001', 'lock_account', 'u', 0, NULL, NULL, NULL)",
            "INSERT INTO incident_actions VALUES ('0190a000-0000-7000-8000-000000000104', \
             '0190a000-0000-7000-8000-000000000001', 'lock_account', 'u', now(), NULL, NULL, NULL)",
        ),
        (
            "an end_sessions with an expiry",
            "INSERT INTO incident_actions VALUES ('0190a000-0000-7000-8000-000000000104', \
             '0190a000-0000-7000-8000-000000000001', 'end_sessions', 'u', 0, 60, NULL, NULL)",
            "INSERT INTO incident_actions VALUES ('0190a000-0000-7000-8000-000000000104', \
             '0190a000-0000-7000-8000-000000000001', 'end_sessions', 'u', now(), now(), NULL, NULL)",
        ),
        (
            "a revoke_api_key with an expiry",
            "INSERT INTO incident_actions VALUES ('0190a000-0000-7000-8000-000000000104', \
             '0190a000-0000-7000-8000-000000000001', 'revoke_api_key', 'k', 0, 60, NULL, NULL)",
            "INSERT INTO incident_actions VALUES ('0190a000-0000-7000-8000-000000000104', \
             '0190a000-0000-7000-8000-000000000001', 'revoke_api_key', 'k', now(), now(), NULL, NULL)",
        ),
        (
            "an empty target",
            "INSERT INTO incident_actions VALUES ('0190a000-0000-7000-8000-000000000104', \
             '0190a000-0000-7000-8000-000000000001', 'end_sessions', '', 0, NULL, NULL, NULL)",
            "INSERT INTO incident_actions VALUES ('0190a000-0000-7000-8000-000000000104', \
             '0190a000-0000-7000-8000-000000000001', 'end_sessions', '', now(), NULL, NULL, NULL)",
        ),
        (
            "an action of a missing incident",
            "INSERT INTO incident_actions VALUES ('0190a000-0000-7000-8000-000000000104', \
             '0190a000-0000-7000-8000-000000000002', 'end_sessions', 'u', 0, NULL, NULL, NULL)",
            "INSERT INTO incident_actions VALUES ('0190a000-0000-7000-8000-000000000104', \
             '0190a000-0000-7000-8000-000000000002', 'end_sessions', 'u', now(), NULL, NULL, NULL)",
        ),
    ];
    for (sqlite_sql, postgres_sql) in well_formed {
        let sql = if sqlite { sqlite_sql } else { postgres_sql };
        assert_eq!(h.database.execute(sql).await.unwrap(), 1, "the schema refuses {sql}");
    }
    for (what, sqlite_sql, postgres_sql) in violations {
        let sql = if sqlite { sqlite_sql } else { postgres_sql };
        assert!(h.database.execute(sql).await.is_err(), "the schema accepts {what}");
    }
    assert_eq!(action_rows(h).await, "3");
    // An update cannot half-revert either.
    let half = "UPDATE incident_actions SET reverted_by = 'bob' WHERE kind = 'end_sessions'";
    assert!(h.database.execute(half).await.is_err(), "the schema accepts reverted_by without reverted_at");
    // The actions go with their incident.
    let delete = "DELETE FROM incidents WHERE id = '0190a000-0000-7000-8000-000000000001'";
    assert_eq!(h.database.execute(delete).await.unwrap(), 1);
    assert_eq!(action_rows(h).await, "0");
}

/// Opens incident `n` of `cause` (about `user:n`) at `at`, of `severity`.
async fn open_at(h: &DurableHarness, n: u128, cause: &str, severity: Severity, at: OffsetDateTime) -> Incident {
    let seq = i64::try_from(n).unwrap();
    open(h, &IncidentRaise { at, ..raise(id(n), cause, &format!("user:{n}"), severity, &[seq], 0) }).await
}

/// What `incident_counts` promises, in exact arithmetic, over every incident stored: those opened
/// at or after `since` and before `until`, per slice `floor((opened_at - since) / bucket)` and
/// cause; sorted.
async fn incident_counts_model(
    h: &DurableHarness,
    since: OffsetDateTime,
    until: OffsetDateTime,
    bucket: Duration,
) -> Vec<(u32, String, u64)> {
    let mut counts = std::collections::BTreeMap::<(u32, String), u64>::new();
    for incident in h.store.incidents(&all(1000)).await.unwrap() {
        if incident.opened_at >= since && incident.opened_at < until {
            let slice = (incident.opened_at - since).whole_nanoseconds() / bucket.whole_nanoseconds();
            *counts.entry((u32::try_from(slice).unwrap(), incident.cause)).or_default() += 1;
        }
    }
    counts.into_iter().map(|((slice, cause), n)| (slice, cause, n)).collect()
}

/// The counts, sorted (the port promises no order), checked against the model.
async fn incident_counts(
    h: &DurableHarness,
    since: OffsetDateTime,
    until: OffsetDateTime,
    bucket: Duration,
) -> Vec<(u32, String, u64)> {
    let mut found = h.store.incident_counts(since, until, bucket).await.unwrap();
    found.sort();
    assert_eq!(found, incident_counts_model(h, since, until, bucket).await, "{since} to {until} by {bucket}");
    found
}

fn counted(expected: &[(u32, &str, u64)]) -> Vec<(u32, String, u64)> {
    expected.iter().map(|&(slice, cause, n)| (slice, cause.to_owned(), n)).collect()
}

pub async fn incident_counts_slice_by_opened_at_to_the_microsecond(h: &DurableHarness) {
    use IncidentState::{Acknowledged, Open, Resolved};
    let (since, bucket) = (T0, Duration::minutes(10));
    let until = since + Duration::minutes(25); // two slices and a half: the last is cut short
    let us = Duration::microseconds(1);
    assert_eq!(incident_counts(h, since, until, bucket).await, [], "none yet: nothing, and no error");

    open_at(h, 1, "brute_force", Severity::Low, since - us).await; // before since
    open_at(h, 2, "brute_force", Severity::Low, since).await; // slice 0
    open_at(h, 3, "hijack", Severity::High, since + bucket - us).await; // slice 0, its last microsecond
    open_at(h, 4, "brute_force", Severity::Low, since + bucket - us).await; // slice 0
    let attached = open_at(h, 5, "brute_force", Severity::Low, since + bucket).await; // slice 1
    let resolved = open_at(h, 6, "hijack", Severity::High, since + bucket * 2).await; // slice 2
    open_at(h, 7, "api_key_abuse", Severity::Medium, until - us).await; // slice 2, the one cut short
    open_at(h, 8, "brute_force", Severity::Low, until).await; // at until: left out
    // Counted by when they opened: raising again later (attached, in the last slice) adds nothing,
    // and a resolved incident still counts.
    let later =
        IncidentRaise { at: until - us, ..raise(id(9), "brute_force", &attached.subject, Severity::Critical, &[9], 0) };
    assert!(!h.store.raise_incident(&later).await.unwrap().1, "attached to incident 5");
    let at = T0 + Duration::hours(1);
    h.store.set_incident_state(resolved.id, Open, Acknowledged, "alice", at).await.unwrap().unwrap();
    h.store.set_incident_state(resolved.id, Acknowledged, Resolved, "alice", at).await.unwrap().unwrap();

    let expected = counted(&[
        (0, "brute_force", 2),
        (0, "hijack", 1),
        (1, "brute_force", 1),
        (2, "api_key_abuse", 1),
        (2, "hijack", 1),
    ]);
    assert_eq!(incident_counts(h, since, until, bucket).await, expected);
    assert_eq!(
        incident_counts(h, since.to_offset(time::macros::offset!(+05:30)), until, bucket).await,
        expected,
        "an offset names the same instant"
    );
    // The slices start at `since`: a microsecond later, the incident at `since` is before the range
    // and each slice's first falls in the slice before.
    assert_eq!(
        incident_counts(h, since + us, until, bucket).await,
        counted(&[(0, "brute_force", 2), (0, "hijack", 1), (1, "hijack", 1), (2, "api_key_abuse", 1)])
    );
    // A microsecond earlier, the one before `since` is in slice 0 and each slice's last microsecond
    // moves to the next; the one at `until` is in when the range ends a microsecond later.
    assert_eq!(
        incident_counts(h, since - us, until + us, bucket).await,
        counted(&[
            (0, "brute_force", 2),
            (1, "brute_force", 2),
            (1, "hijack", 1),
            (2, "api_key_abuse", 1),
            (2, "brute_force", 1),
            (2, "hijack", 1),
        ])
    );
    assert_eq!(
        incident_counts(h, since, until, us).await,
        counted(&[
            (0, "brute_force", 1),
            (599_999_999, "brute_force", 1),
            (599_999_999, "hijack", 1),
            (600_000_000, "brute_force", 1),
            (1_200_000_000, "hijack", 1),
            (1_499_999_999, "api_key_abuse", 1),
        ]),
        "slices of a microsecond"
    );
    assert_eq!(
        incident_counts(h, since, until, Duration::days(1)).await,
        counted(&[(0, "api_key_abuse", 1), (0, "brute_force", 3), (0, "hijack", 2)])
    );
    assert_eq!(incident_counts(h, since, since, bucket).await, [], "an empty range");
    assert_eq!(incident_counts(h, until, since, bucket).await, [], "a backward range");
}

pub async fn incident_counts_round_bounds_between_two_microseconds_up(h: &DurableHarness) {
    // Opened instants are whole microseconds: one opened at t is before `since` = t + 1 ns, and one
    // opened a bucket later is a hair short of slice 1. Truncating `since` would count the first and
    // move the second a slice on; truncating `until` would leave out one opened just before it.
    let bucket = Duration::minutes(10);
    let us = Duration::microseconds(1);
    open_at(h, 1, "c0", Severity::Low, T0).await;
    open_at(h, 2, "c1", Severity::Low, T0 + us).await;
    open_at(h, 3, "c2", Severity::Low, T0 + bucket).await;
    open_at(h, 4, "c3", Severity::Low, T0 + bucket + us).await;
    open_at(h, 5, "c4", Severity::Low, T0 + bucket * 2).await;
    open_at(h, 6, "c5", Severity::Low, T0 + bucket * 2 + us).await;

    for ns in [1, 500, 999] {
        let (since, until) = (T0 + Duration::nanoseconds(ns), T0 + bucket * 2 + Duration::nanoseconds(ns));
        assert_eq!(
            incident_counts(h, since, until, bucket).await,
            counted(&[(0, "c1", 1), (0, "c2", 1), (1, "c3", 1), (1, "c4", 1)]),
            "{ns} ns past a microsecond"
        );
    }
    let since = T0 - Duration::nanoseconds(1);
    assert_eq!(
        incident_counts(h, since, since + bucket * 2, bucket).await,
        counted(&[(0, "c0", 1), (0, "c1", 1), (1, "c2", 1), (1, "c3", 1)]),
        "a nanosecond short of a microsecond"
    );
}

pub async fn incident_counts_agree_across_centuries(h: &DurableHarness) {
    // A large quotient whose fraction is a hair under one must not round up to the next slice.
    let since = time::macros::datetime!(1000-01-01 0:00 UTC);
    let (bucket, us) = (Duration::days(30), Duration::microseconds(1));
    let far = bucket * 12_000; // 985 years on
    open_at(h, 1, "brute_force", Severity::Low, since + bucket - us).await;
    open_at(h, 2, "brute_force", Severity::Low, since + far - us).await;
    open_at(h, 3, "hijack", Severity::Low, since + far).await;
    assert_eq!(
        incident_counts(h, since, since + far + bucket, bucket).await,
        counted(&[(0, "brute_force", 1), (11_999, "brute_force", 1), (12_000, "hijack", 1)])
    );
}

pub async fn incident_counts_refuse_a_bucket_shorter_than_a_microsecond_or_not_whole(h: &DurableHarness) {
    let until = T0 + Duration::hours(1);
    let refused = [
        Duration::ZERO,
        Duration::minutes(-10),
        Duration::nanoseconds(-1),
        Duration::nanoseconds(999),
        Duration::nanoseconds(1_500),
        Duration::minutes(10) + Duration::nanoseconds(1),
    ];
    for round in ["none", "one"] {
        for bucket in refused {
            match h.store.incident_counts(T0, until, bucket).await {
                Err(e) => assert!(!e.is_unavailable(), "a bad bucket, not an unreachable store: {e}"),
                Ok(found) => panic!("a bucket of {bucket} must be refused ({round}), not counted: {found:?}"),
            }
        }
        if round == "none" {
            open_at(h, 1, "brute_force", Severity::Low, T0).await;
        }
    }
    assert_eq!(incident_counts(h, T0, until, Duration::microseconds(1)).await, counted(&[(0, "brute_force", 1)]));
}

pub async fn unresolved_incidents_count_open_and_acknowledged_per_severity(h: &DurableHarness) {
    use IncidentState::{Acknowledged, Open, Resolved};
    assert_eq!(h.store.unresolved_incidents().await.unwrap(), [], "none yet: nothing, and no error");
    let at = T0 + Duration::hours(1);
    let unresolved = || async move {
        let mut found = h.store.unresolved_incidents().await.unwrap();
        found.sort();
        found
    };

    open_at(h, 1, "brute_force", Severity::Low, T0).await;
    open_at(h, 2, "brute_force", Severity::Low, T0).await;
    let acknowledged = open_at(h, 3, "hijack", Severity::Medium, T0).await;
    h.store.set_incident_state(acknowledged.id, Open, Acknowledged, "alice", at).await.unwrap().unwrap();
    // Resolved straight from open, and after an acknowledgement: neither counts.
    let resolved = open_at(h, 4, "hijack", Severity::High, T0).await;
    h.store.set_incident_state(resolved.id, Open, Resolved, "alice", at).await.unwrap().unwrap();
    let resolved = open_at(h, 5, "hijack", Severity::High, T0).await;
    h.store.set_incident_state(resolved.id, Open, Acknowledged, "alice", at).await.unwrap().unwrap();
    h.store.set_incident_state(resolved.id, Acknowledged, Resolved, "alice", at).await.unwrap().unwrap();
    assert_eq!(unresolved().await, [(Severity::Low, 2), (Severity::Medium, 1)], "no HIGH: both are resolved");

    // An incident counts once, at its severity now: raised again (attached), incident 2 is CRITICAL.
    let again = raise(id(6), "brute_force", "user:2", Severity::Critical, &[6], 60);
    assert!(!h.store.raise_incident(&again).await.unwrap().1, "attached to incident 2");
    assert_eq!(unresolved().await, [(Severity::Low, 1), (Severity::Medium, 1), (Severity::Critical, 1)]);
    // A raise after resolution opens a new incident, which counts.
    open(h, &raise(id(7), "hijack", "user:4", Severity::High, &[7], 120)).await;
    assert_eq!(
        unresolved().await,
        [(Severity::Low, 1), (Severity::Medium, 1), (Severity::High, 1), (Severity::Critical, 1)]
    );
    h.store.set_incident_state(acknowledged.id, Acknowledged, Resolved, "alice", at).await.unwrap().unwrap();
    assert_eq!(unresolved().await, [(Severity::Low, 1), (Severity::High, 1), (Severity::Critical, 1)]);
}
