//! The risk store port — scored login attempts and the login history they make — identical on
//! SQLite and PostgreSQL.

use std::sync::Arc;

use palisade_core::device::DeviceId;
use palisade_core::risk::{
    AbsentFactor, FactorName, LoginResult, PastLogin, RiskAssessment, RiskDecision, RiskFactor, RiskRecord,
};
use palisade_core::store::StoreError;
use palisade_core::user::UserId;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use tokio::sync::Barrier;

use crate::devices::{device, registered};
use crate::mfa::{T0, owner};
use crate::support::{DurableHarness, conformance};

conformance!(
    DurableHarness,
    [sqlite, postgres],
    [
        risk_records_round_trip_every_field,
        risk_records_are_listed_newest_first_up_to_the_limit,
        settle_moves_only_a_pending_attempt,
        concurrent_settlements_have_one_winner,
        login_history_is_the_succeeded_attempts_newest_first,
        purge_deletes_only_records_older_than_the_cutoff,
        forgetting_a_device_keeps_its_attempts,
        the_schema_refuses_malformed_records,
        a_record_that_does_not_decode_is_corrupt,
        risk_records_go_with_their_user,
    ]
);

/// A pending attempt of `user` at `at`, allowed with nothing known about it.
pub fn record(user: UserId, at: OffsetDateTime) -> RiskRecord {
    RiskRecord {
        id: uuid::Uuid::now_v7(),
        user_id: user,
        at,
        ip: None,
        country: None,
        city: None,
        location: None,
        accuracy_km: None,
        asn: None,
        device_id: None,
        assessment: RiskAssessment::none(),
        result: LoginResult::Pending,
    }
}

/// An assessment with factors that fired and factors that could not be evaluated, its weights and
/// score floats that need every bit.
fn detailed_assessment() -> RiskAssessment {
    RiskAssessment {
        score: 0.1 + 0.2 + 0.123_456_789_012_345_67,
        decision: RiskDecision::EnhancedMfa,
        factors: vec![
            RiskFactor {
                name: FactorName::ImpossibleTravel,
                weight: 0.1 + 0.2,
                detail: "Paris → Sydney in 2 h (8,450 km/h) — « impossible »".into(),
            },
            RiskFactor {
                name: FactorName::NewDevice,
                weight: 1.0 / 3.0,
                detail: "first login from this device".into(),
            },
            RiskFactor { name: FactorName::TrustedDevice, weight: 5e-324, detail: String::new() },
        ],
        absent: vec![AbsentFactor { name: FactorName::NewNetwork, reason: "no ASN database".into() }],
    }
}

async fn inserted(h: &DurableHarness, records: &[&RiskRecord]) {
    for r in records {
        h.store.insert_risk_record(r).await.unwrap();
    }
}

fn ids(records: &[RiskRecord]) -> Vec<uuid::Uuid> {
    records.iter().map(|r| r.id).collect()
}

pub async fn risk_records_round_trip_every_field(h: &DurableHarness) {
    let alice = owner(h, "alice").await;
    let laptop = registered(h, &device(alice.id, 1, "laptop", T0)).await;
    let full = RiskRecord {
        // Sub-microsecond instants are stored truncated, like every instant of the durable store.
        at: datetime!(2026-05-01 12:00:00.123456789 UTC),
        ip: Some("2001:db8::42".into()),
        country: Some("AU".into()),
        city: Some("Sydney".into()),
        location: Some((-33.868_820_123_456_78, 151.209_295_987_654_3)),
        accuracy_km: Some(u32::MAX),
        asn: Some(4_200_000_000),
        device_id: Some(laptop.id),
        assessment: detailed_assessment(),
        result: LoginResult::Blocked,
        ..record(alice.id, T0)
    };
    // Nothing known, and the extremes of the score.
    let empty = record(alice.id, T0 - Duration::hours(1));
    let certain = RiskRecord {
        assessment: RiskAssessment { score: 1.0, decision: RiskDecision::Block, ..RiskAssessment::none() },
        location: Some((0.0, -0.5)),
        accuracy_km: Some(0),
        asn: Some(0),
        result: LoginResult::Succeeded,
        ..record(alice.id, T0 - Duration::hours(2))
    };
    inserted(h, &[&empty, &full, &certain]).await;

    let stored_full = RiskRecord { at: datetime!(2026-05-01 12:00:00.123456 UTC), ..full.clone() };
    let stored = h.store.risk_records(alice.id, 10).await.unwrap();
    assert_eq!(stored, [stored_full.clone(), empty, certain], "every field round-trips, None as None");
    // Bit for bit, not merely equal (PartialEq on floats would let -0.0 pass for 0.0).
    let (stored_lat, stored_lon) = stored[0].location.unwrap();
    let (lat, lon) = full.location.unwrap();
    assert_eq!((stored_lat.to_bits(), stored_lon.to_bits()), (lat.to_bits(), lon.to_bits()));
    assert_eq!(stored[0].assessment.score.to_bits(), full.assessment.score.to_bits());
    for (got, want) in stored[0].assessment.factors.iter().zip(&full.assessment.factors) {
        assert_eq!(got.weight.to_bits(), want.weight.to_bits(), "{:?}'s weight", want.name);
    }

    // A reused id is an error, and the first record stays whole.
    let again = RiskRecord { result: LoginResult::Pending, ..record(alice.id, T0) };
    let again = RiskRecord { id: full.id, ..again };
    assert!(h.store.insert_risk_record(&again).await.is_err(), "a duplicate id is an error");
    assert_eq!(h.store.risk_records(alice.id, 1).await.unwrap(), [stored_full]);
}

pub async fn risk_records_are_listed_newest_first_up_to_the_limit(h: &DurableHarness) {
    let (alice, bob) = (owner(h, "alice").await, owner(h, "bob").await);
    let oldest = record(alice.id, T0 - Duration::days(2));
    let newest = record(alice.id, T0 + Duration::days(1));
    // Two at one instant: the later id (ids are time-ordered) is the newer.
    let tie_first = record(alice.id, T0);
    let tie_second = record(alice.id, T0);
    let bobs = record(bob.id, T0 + Duration::days(5));
    inserted(h, &[&tie_second, &oldest, &bobs, &newest, &tie_first]).await;

    let all = h.store.risk_records(alice.id, 100).await.unwrap();
    assert_eq!(ids(&all), [newest.id, tie_second.id, tie_first.id, oldest.id], "newest first, only alice's");
    assert_eq!(ids(&h.store.risk_records(alice.id, 2).await.unwrap()), [newest.id, tie_second.id], "the newest 2");
    assert!(h.store.risk_records(alice.id, 0).await.unwrap().is_empty(), "limit 0: none");
    assert_eq!(ids(&h.store.risk_records(bob.id, 100).await.unwrap()), [bobs.id]);
    assert!(h.store.risk_records(UserId::generate(), 100).await.unwrap().is_empty(), "no such user: none");
}

pub async fn settle_moves_only_a_pending_attempt(h: &DurableHarness) {
    let alice = owner(h, "alice").await;
    let pending = record(alice.id, T0);
    let other = record(alice.id, T0 - Duration::minutes(1));
    inserted(h, &[&pending, &other]).await;

    assert!(h.store.settle_risk_record(pending.id, LoginResult::Succeeded).await.unwrap());
    assert!(!h.store.settle_risk_record(pending.id, LoginResult::Succeeded).await.unwrap(), "settled already");
    assert!(!h.store.settle_risk_record(pending.id, LoginResult::Blocked).await.unwrap(), "no second outcome");
    assert!(!h.store.settle_risk_record(uuid::Uuid::now_v7(), LoginResult::Blocked).await.unwrap(), "no such record");
    assert!(
        h.store.settle_risk_record(other.id, LoginResult::Pending).await.is_err(),
        "settling as pending is a caller's mistake"
    );
    assert!(h.store.settle_risk_record(other.id, LoginResult::Blocked).await.unwrap(), "other stayed pending");

    let results: Vec<LoginResult> =
        h.store.risk_records(alice.id, 10).await.unwrap().iter().map(|r| r.result).collect();
    assert_eq!(results, [LoginResult::Succeeded, LoginResult::Blocked], "each kept its first outcome");
    // A record stored settled already (a blocked attempt) cannot be settled again.
    let blocked = RiskRecord { result: LoginResult::Blocked, ..record(alice.id, T0 + Duration::minutes(1)) };
    inserted(h, &[&blocked]).await;
    assert!(!h.store.settle_risk_record(blocked.id, LoginResult::Succeeded).await.unwrap());
    assert_eq!(h.store.login_history(alice.id, 10).await.unwrap().len(), 1, "only the one success is history");
}

pub async fn concurrent_settlements_have_one_winner(h: &DurableHarness) {
    let alice = owner(h, "alice").await;
    for round in 0..3i64 {
        let attempt = record(alice.id, T0 + Duration::minutes(round));
        inserted(h, &[&attempt]).await;
        let id = attempt.id;
        let barrier = Arc::new(Barrier::new(8));
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let (store, barrier) = (h.store.clone(), barrier.clone());
                let result = if i % 2 == 0 { LoginResult::Succeeded } else { LoginResult::Blocked };
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.settle_risk_record(id, result).await.unwrap().then_some(result)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            winners.extend(task.await.unwrap());
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one of 8 concurrent settlements wins");
        let stored = h.store.risk_records(alice.id, 1).await.unwrap();
        assert_eq!(stored[0].id, attempt.id);
        assert_eq!(stored[0].result, winners[0], "round {round}: the winner's outcome is stored");
    }
}

pub async fn login_history_is_the_succeeded_attempts_newest_first(h: &DurableHarness) {
    let (alice, bob) = (owner(h, "alice").await, owner(h, "bob").await);
    let succeeded = |at: OffsetDateTime| RiskRecord { result: LoginResult::Succeeded, ..record(alice.id, at) };
    let paris = RiskRecord {
        at: datetime!(2026-04-30 09:15:00.000000999 UTC),
        ip: Some("192.0.2.10".into()),
        country: Some("FR".into()),
        city: Some("Paris".into()),
        location: Some((48.856_613, 2.352_222)),
        accuracy_km: Some(20),
        asn: Some(3215),
        ..succeeded(T0)
    };
    let bare = succeeded(T0 - Duration::days(3));
    let recent = succeeded(T0 + Duration::days(1));
    let pending = record(alice.id, T0 + Duration::days(2));
    let blocked = RiskRecord { result: LoginResult::Blocked, ..record(alice.id, T0 + Duration::days(3)) };
    let bobs = RiskRecord { result: LoginResult::Succeeded, ..record(bob.id, T0 + Duration::days(4)) };
    inserted(h, &[&paris, &pending, &bare, &blocked, &recent, &bobs]).await;

    let history = h.store.login_history(alice.id, 10).await.unwrap();
    let paris_login = PastLogin {
        at: datetime!(2026-04-30 09:15:00 UTC),
        country: Some("FR".into()),
        asn: Some(3215),
        location: Some((48.856_613, 2.352_222)),
        accuracy_km: Some(20),
    };
    assert_eq!(
        history,
        [recent.as_past_login(), paris_login, bare.as_past_login()],
        "only succeeded attempts, newest first, every field"
    );
    assert_eq!(h.store.login_history(alice.id, 1).await.unwrap(), [recent.as_past_login()], "the newest 1");
    assert!(h.store.login_history(alice.id, 0).await.unwrap().is_empty(), "limit 0: none");

    // Settling the pending attempt as succeeded makes it history; the newest now.
    assert!(h.store.settle_risk_record(pending.id, LoginResult::Succeeded).await.unwrap());
    let history = h.store.login_history(alice.id, 10).await.unwrap();
    assert_eq!(history.len(), 4);
    assert_eq!(history[0], pending.as_past_login());
    assert_eq!(h.store.login_history(bob.id, 10).await.unwrap(), [bobs.as_past_login()]);
    assert!(h.store.login_history(UserId::generate(), 10).await.unwrap().is_empty());
}

pub async fn purge_deletes_only_records_older_than_the_cutoff(h: &DurableHarness) {
    let (alice, bob) = (owner(h, "alice").await, owner(h, "bob").await);
    let old = record(alice.id, T0 - Duration::days(100));
    let just_before = RiskRecord { result: LoginResult::Succeeded, ..record(bob.id, T0 - Duration::microseconds(1)) };
    let at_cutoff = record(alice.id, T0);
    let recent = RiskRecord { result: LoginResult::Succeeded, ..record(alice.id, T0 + Duration::days(1)) };
    inserted(h, &[&old, &just_before, &at_cutoff, &recent]).await;

    assert_eq!(h.store.purge_risk_records(T0).await.unwrap(), 2, "every user's records older than the cutoff");
    assert_eq!(ids(&h.store.risk_records(alice.id, 10).await.unwrap()), [recent.id, at_cutoff.id], "the rest stay");
    assert!(h.store.risk_records(bob.id, 10).await.unwrap().is_empty());
    assert!(h.store.login_history(bob.id, 10).await.unwrap().is_empty(), "purged history is gone");
    assert_eq!(h.store.purge_risk_records(T0).await.unwrap(), 0, "nothing left to purge");
}

pub async fn forgetting_a_device_keeps_its_attempts(h: &DurableHarness) {
    let alice = owner(h, "alice").await;
    let laptop = registered(h, &device(alice.id, 1, "laptop", T0)).await;
    let phone = registered(h, &device(alice.id, 2, "phone", T0)).await;
    let on_laptop = RiskRecord { device_id: Some(laptop.id), ..record(alice.id, T0) };
    let on_phone = RiskRecord { device_id: Some(phone.id), ..record(alice.id, T0 - Duration::minutes(1)) };
    inserted(h, &[&on_laptop, &on_phone]).await;

    assert!(h.store.delete_device(alice.id, laptop.id).await.unwrap());
    let forgotten = RiskRecord { device_id: None, ..on_laptop };
    assert_eq!(h.store.risk_records(alice.id, 10).await.unwrap(), [forgotten, on_phone], "only the link goes");

    // A device the registry does not know is a caller's mistake.
    let unknown = RiskRecord { device_id: Some(DeviceId::generate()), ..record(alice.id, T0) };
    assert!(h.store.insert_risk_record(&unknown).await.is_err(), "an unregistered device");
    assert_eq!(h.store.risk_records(alice.id, 10).await.unwrap().len(), 2, "and nothing was stored");
}

pub async fn the_schema_refuses_malformed_records(h: &DurableHarness) {
    let alice = owner(h, "alice").await;
    let scored = |score: f64| RiskRecord {
        assessment: RiskAssessment { score, ..RiskAssessment::none() },
        ..record(alice.id, T0)
    };
    let malformed = [
        ("a score above 1", scored(1.000_000_000_000_000_2)),
        ("a score below 0", scored(-0.1)),
        ("a score that is not a number", scored(f64::NAN)),
        ("a record of no user", RiskRecord { user_id: UserId::generate(), ..record(alice.id, T0) }),
    ];
    for (what, r) in &malformed {
        assert!(h.store.insert_risk_record(r).await.is_err(), "the schema accepts {what}");
    }
    assert!(h.store.risk_records(alice.id, 10).await.unwrap().is_empty(), "nothing was stored");

    // Raw rows the store would never write are refused too: one coordinate, an unknown decision or
    // result, an assessment that is not a JSON object.
    let sqlite = h.database.sqlite_path().is_some();
    let raw = [
        (
            "a latitude without a longitude",
            "INSERT INTO risk_records (id, user_id, at, latitude, score, decision, assessment, result) \
             SELECT '0190a000-0000-7000-8000-000000000001', id, 0, 1.5, 0.5, 'allow', '{}', 'pending' FROM users",
            "INSERT INTO risk_records (id, user_id, at, latitude, score, decision, assessment, result) \
             SELECT '0190a000-0000-7000-8000-000000000001'::uuid, id, now(), 1.5, 0.5, 'allow', '{}', 'pending' \
             FROM users",
        ),
        (
            "an unknown decision",
            "INSERT INTO risk_records (id, user_id, at, score, decision, assessment, result) \
             SELECT '0190a000-0000-7000-8000-000000000001', id, 0, 0.5, 'maybe', '{}', 'pending' FROM users",
            "INSERT INTO risk_records (id, user_id, at, score, decision, assessment, result) \
             SELECT '0190a000-0000-7000-8000-000000000001'::uuid, id, now(), 0.5, 'maybe', '{}', 'pending' FROM users",
        ),
        (
            "an unknown result",
            "INSERT INTO risk_records (id, user_id, at, score, decision, assessment, result) \
             SELECT '0190a000-0000-7000-8000-000000000001', id, 0, 0.5, 'allow', '{}', 'abandoned' FROM users",
            "INSERT INTO risk_records (id, user_id, at, score, decision, assessment, result) \
             SELECT '0190a000-0000-7000-8000-000000000001'::uuid, id, now(), 0.5, 'allow', '{}', 'abandoned' \
             FROM users",
        ),
        (
            "an assessment that is a JSON array",
            "INSERT INTO risk_records (id, user_id, at, score, decision, assessment, result) \
             SELECT '0190a000-0000-7000-8000-000000000001', id, 0, 0.5, 'allow', '[]', 'pending' FROM users",
            "INSERT INTO risk_records (id, user_id, at, score, decision, assessment, result) \
             SELECT '0190a000-0000-7000-8000-000000000001'::uuid, id, now(), 0.5, 'allow', '[]', 'pending' FROM users",
        ),
    ];
    for (what, on_sqlite, on_postgres) in raw {
        assert!(h.database.execute(if sqlite { on_sqlite } else { on_postgres }).await.is_err(), "{what}");
    }

    // Well-formed rows at the limits go in, so the refusals above are about the constraints.
    let well_formed = if sqlite {
        "INSERT INTO risk_records (id, user_id, at, latitude, longitude, score, decision, assessment, result) \
         SELECT '0190a000-0000-7000-8000-000000000001', id, 0, 1.5, 2.5, 0.5, 'allow', '{}', 'pending' FROM users"
    } else {
        "INSERT INTO risk_records (id, user_id, at, latitude, longitude, score, decision, assessment, result) \
         SELECT '0190a000-0000-7000-8000-000000000001'::uuid, id, now(), 1.5, 2.5, 0.5, 'allow', '{}', 'pending' \
         FROM users"
    };
    assert_eq!(h.database.execute(well_formed).await.unwrap(), 1);
    h.database.execute("DELETE FROM risk_records").await.unwrap();
    inserted(h, &[&scored(0.0), &scored(1.0)]).await;
    assert_eq!(h.store.risk_records(alice.id, 10).await.unwrap().len(), 2);
}

pub async fn a_record_that_does_not_decode_is_corrupt(h: &DurableHarness) {
    let alice = owner(h, "alice").await;
    let attempt = RiskRecord { result: LoginResult::Succeeded, ..record(alice.id, T0) };
    inserted(h, &[&attempt]).await;
    assert_eq!(h.store.risk_records(alice.id, 10).await.unwrap(), std::slice::from_ref(&attempt));

    // A JSON object, so the schema lets it in, that is no assessment.
    h.database.execute("UPDATE risk_records SET assessment = '{\"score\": \"high\"}'").await.unwrap();
    let e = h.store.risk_records(alice.id, 10).await.unwrap_err();
    assert!(matches!(e, StoreError::Corrupt(_)), "{e:?}");
    assert_eq!(
        h.store.login_history(alice.id, 10).await.unwrap(),
        [attempt.as_past_login()],
        "the history does not read the assessment"
    );

    // An assessment whose decision is not the row's.
    let json = serde_json::to_string(&attempt.assessment).unwrap();
    assert!(json.contains("\"allow\""), "{json}");
    h.database
        .execute(
            "UPDATE risk_records SET assessment = \
             '{\"score\":0.0,\"decision\":\"allow\",\"factors\":[],\"absent\":[]}', decision = 'block'",
        )
        .await
        .unwrap();
    let e = h.store.risk_records(alice.id, 10).await.unwrap_err();
    assert!(matches!(e, StoreError::Corrupt(_)), "a decision that disagrees with its assessment: {e:?}");
    h.database.execute("UPDATE risk_records SET decision = 'allow'").await.unwrap();
    assert_eq!(h.store.risk_records(alice.id, 10).await.unwrap(), [attempt], "and that was the only fault");
}

pub async fn risk_records_go_with_their_user(h: &DurableHarness) {
    let (alice, bob) = (owner(h, "alice").await, owner(h, "bob").await);
    let bobs = RiskRecord { result: LoginResult::Succeeded, ..record(bob.id, T0) };
    inserted(h, &[&record(alice.id, T0), &record(alice.id, T0), &bobs]).await;
    assert_eq!(h.database.execute("DELETE FROM users WHERE username = 'alice'").await.unwrap(), 1);
    assert!(h.store.risk_records(alice.id, 10).await.unwrap().is_empty(), "deleting the user deletes their records");
    assert_eq!(h.database.fetch_text("SELECT CAST(COUNT(*) AS TEXT) FROM risk_records").await.unwrap(), "1");
    assert_eq!(h.store.risk_records(bob.id, 10).await.unwrap(), [bobs]);
}
