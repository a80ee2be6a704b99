//! The incident store port — raising (open or attach, one open incident per cause and subject),
//! the event cap, concurrent raises, state changes fenced on the expected state, the listing's
//! order, filters and cursor — identical on SQLite and PostgreSQL.

use std::sync::Arc;

use palisade_core::monitoring::{
    Incident, IncidentFilter, IncidentRaise, IncidentState, MAX_ATTACHED_EVENTS, Severity,
};
use serde_json::json;
use time::Duration;
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
