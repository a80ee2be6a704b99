//! The device store port — the registry of the devices each user logs in from — identical on SQLite
//! and PostgreSQL.

use std::collections::BTreeSet;
use std::sync::Arc;

use palisade_core::device::{DeviceFingerprint, DeviceId, DeviceRecord, DeviceSeen, DeviceUpdate, TrustLevel};
use palisade_core::user::UserId;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use tokio::sync::Barrier;

use crate::mfa::{T0, owner};
use crate::support::{DurableHarness, conformance};

conformance!(
    DurableHarness,
    [sqlite, postgres],
    [
        a_first_login_registers_the_device_with_every_field,
        a_known_device_takes_only_the_new_sighting,
        concurrent_first_logins_from_one_device_make_one_device,
        devices_are_found_only_by_their_owner,
        devices_are_listed_most_recently_seen_first,
        update_device_renames_and_retrusts_only_the_owners,
        approve_device_raises_trust_to_at_least_medium,
        delete_device_forgets_only_the_owners,
        the_schema_refuses_malformed_devices,
        devices_go_with_their_user,
    ]
);

/// The fingerprint numbered `n`.
pub fn fingerprint(n: u8) -> DeviceFingerprint {
    let mut bytes = [0xa5; 32];
    bytes[0] = n;
    bytes[31] = n;
    DeviceFingerprint(bytes)
}

/// A new, approved, low-trust device of `user` with fingerprint `n`, first seen at `at`, with every
/// optional field empty.
pub fn device(user: UserId, n: u8, name: &str, at: OffsetDateTime) -> DeviceRecord {
    DeviceRecord {
        id: DeviceId::generate(),
        user_id: user,
        fingerprint: fingerprint(n),
        name: name.to_owned(),
        device_type: None,
        os: None,
        browser: None,
        first_seen_at: at,
        last_seen_at: at,
        last_ip: None,
        last_country: None,
        last_city: None,
        trust_level: TrustLevel::Low,
        approved: true,
    }
}

/// Records a first login from `device`, which must be new; returns the device as stored.
pub async fn registered(h: &DurableHarness, device: &DeviceRecord) -> DeviceRecord {
    let seen = h.store.record_device_seen(device).await.unwrap();
    assert!(seen.new, "{} is new", device.name);
    assert_eq!(&seen.device, device, "a new device is stored as given");
    seen.device
}

fn names(devices: &[DeviceRecord]) -> Vec<&str> {
    devices.iter().map(|d| d.name.as_str()).collect()
}

pub async fn a_first_login_registers_the_device_with_every_field(h: &DurableHarness) {
    let alice = owner(h, "alice").await;
    let laptop = DeviceRecord {
        name: "Ordinateur portable — Élodie".into(),
        device_type: Some("desktop".into()),
        os: Some("macOS 15".into()),
        browser: Some("Firefox 140".into()),
        // Sub-microsecond instants are stored truncated, like every instant of the durable store.
        first_seen_at: datetime!(2026-05-01 12:00:00.123456789 UTC),
        last_seen_at: datetime!(2026-05-01 12:00:00.123456999 UTC),
        last_ip: Some("2001:db8::1".into()),
        last_country: Some("FR".into()),
        last_city: Some("Saint-Étienne".into()),
        trust_level: TrustLevel::High,
        approved: false,
        ..device(alice.id, 1, "laptop", T0)
    };
    let seen = h.store.record_device_seen(&laptop).await.unwrap();
    let stored = DeviceRecord {
        first_seen_at: datetime!(2026-05-01 12:00:00.123456 UTC),
        last_seen_at: datetime!(2026-05-01 12:00:00.123456 UTC),
        ..laptop.clone()
    };
    assert_eq!(seen, DeviceSeen { device: stored.clone(), new: true }, "every field round-trips");
    assert_eq!(h.store.device(alice.id, laptop.id).await.unwrap().as_ref(), Some(&stored));
    assert_eq!(h.store.device_by_fingerprint(alice.id, &fingerprint(1)).await.unwrap().as_ref(), Some(&stored));

    // Absent optional fields stay absent (not empty texts), and a medium, approved device too.
    let phone = DeviceRecord { trust_level: TrustLevel::Medium, ..device(alice.id, 2, "phone", T0) };
    assert_eq!(registered(h, &phone).await, phone);
    assert_eq!(h.store.device(alice.id, phone.id).await.unwrap(), Some(phone.clone()));
    assert_eq!(h.store.devices(alice.id).await.unwrap(), [stored, phone], "most recently seen first");
}

pub async fn a_known_device_takes_only_the_new_sighting(h: &DurableHarness) {
    let alice = owner(h, "alice").await;
    let first = DeviceRecord {
        device_type: Some("mobile".into()),
        os: None,
        browser: Some("Safari".into()),
        last_ip: Some("192.0.2.1".into()),
        last_country: Some("FR".into()),
        last_city: Some("Lyon".into()),
        ..device(alice.id, 1, "phone", T0)
    };
    let first = registered(h, &first).await;
    assert!(h.store.update_device(alice.id, first.id, &trust(TrustLevel::High)).await.unwrap().is_some());
    let first = DeviceRecord { trust_level: TrustLevel::High, ..first };

    // A later login builds a whole new record (new id, name, trust, approval, first sighting); only
    // the sighting and the empty descriptions are taken.
    let later = T0 + Duration::days(3);
    let again = DeviceRecord {
        name: "iPhone".into(),
        device_type: Some("tablet".into()),
        os: Some("iOS 19".into()),
        browser: Some("Chrome".into()),
        first_seen_at: later,
        last_seen_at: later,
        last_ip: Some("198.51.100.7".into()),
        last_country: Some("DE".into()),
        last_city: Some("Berlin".into()),
        trust_level: TrustLevel::Low,
        approved: false,
        ..device(alice.id, 1, "ignored", later)
    };
    let seen = h.store.record_device_seen(&again).await.unwrap();
    let expected = DeviceRecord {
        last_seen_at: later,
        last_ip: Some("198.51.100.7".into()),
        last_country: Some("DE".into()),
        last_city: Some("Berlin".into()),
        os: Some("iOS 19".into()),
        ..first.clone()
    };
    assert_eq!(seen, DeviceSeen { device: expected.clone(), new: false }, "known: only the sighting moves");
    assert_eq!(h.store.devices(alice.id).await.unwrap(), std::slice::from_ref(&expected), "still one device");
    assert_eq!(h.store.device(alice.id, again.id).await.unwrap(), None, "the new id was not stored");

    // A login GeoIP knows nothing about replaces the last place with nothing: it is the last login's.
    let blind = DeviceRecord { last_ip: None, last_country: None, last_city: None, ..again.clone() };
    let latest = later + Duration::hours(1);
    let blind = DeviceRecord { last_seen_at: latest, device_type: None, os: None, browser: None, ..blind };
    let seen = h.store.record_device_seen(&blind).await.unwrap();
    let expected =
        DeviceRecord { last_seen_at: latest, last_ip: None, last_country: None, last_city: None, ..expected };
    assert_eq!(seen, DeviceSeen { device: expected.clone(), new: false }, "descriptions stay when none are given");
    assert_eq!(h.store.device_by_fingerprint(alice.id, &fingerprint(1)).await.unwrap(), Some(expected));
}

pub async fn concurrent_first_logins_from_one_device_make_one_device(h: &DurableHarness) {
    let alice = owner(h, "alice").await;
    for round in 1..=3u8 {
        let barrier = Arc::new(Barrier::new(10));
        let tasks: Vec<_> = (0..10i64)
            .map(|i| {
                let (store, barrier) = (h.store.clone(), barrier.clone());
                let at = T0 + Duration::seconds(i);
                let attempt = DeviceRecord {
                    last_ip: Some(format!("192.0.2.{i}")),
                    ..device(alice.id, round, &format!("attempt {i}"), at)
                };
                tokio::spawn(async move {
                    barrier.wait().await;
                    (attempt.clone(), store.record_device_seen(&attempt).await.unwrap())
                })
            })
            .collect();
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        let winners: Vec<&DeviceRecord> = outcomes.iter().filter(|(_, seen)| seen.new).map(|(a, _)| a).collect();
        assert_eq!(winners.len(), 1, "round {round}: exactly one of 10 concurrent first logins registers it");
        let winner = winners[0];
        let ids: BTreeSet<DeviceId> = outcomes.iter().map(|(_, seen)| seen.device.id).collect();
        assert_eq!(ids, BTreeSet::from([winner.id]), "round {round}: every login sees the winner's device");
        for (attempt, seen) in &outcomes {
            assert_eq!(seen.device.name, winner.name, "the winner's name stays");
            assert_eq!(seen.device.last_ip, attempt.last_ip, "each login recorded its own sighting");
        }
        let stored = h.store.device_by_fingerprint(alice.id, &fingerprint(round)).await.unwrap().unwrap();
        assert_eq!(stored.id, winner.id);
        assert_eq!(stored.first_seen_at, winner.first_seen_at);
        assert_eq!(h.store.devices(alice.id).await.unwrap().len(), usize::from(round), "one device per round");
    }
}

pub async fn devices_are_found_only_by_their_owner(h: &DurableHarness) {
    let (alice, bob) = (owner(h, "alice").await, owner(h, "bob").await);
    let alices = registered(h, &device(alice.id, 1, "alice's", T0)).await;
    // The same fingerprint is another device for another user.
    let bobs = registered(h, &device(bob.id, 1, "bob's", T0)).await;
    assert_ne!(alices.id, bobs.id);

    assert_eq!(h.store.device(alice.id, alices.id).await.unwrap().as_ref(), Some(&alices));
    assert_eq!(h.store.device(bob.id, alices.id).await.unwrap(), None, "someone else's device: none");
    assert_eq!(h.store.device(alice.id, DeviceId::generate()).await.unwrap(), None, "no such device");
    assert_eq!(h.store.device_by_fingerprint(bob.id, &fingerprint(1)).await.unwrap(), Some(bobs.clone()));
    assert_eq!(h.store.device_by_fingerprint(alice.id, &fingerprint(2)).await.unwrap(), None, "another fingerprint");
    assert_eq!(h.store.device_by_fingerprint(UserId::generate(), &fingerprint(1)).await.unwrap(), None);
    assert_eq!(h.store.devices(bob.id).await.unwrap(), [bobs]);
    assert!(h.store.devices(UserId::generate()).await.unwrap().is_empty(), "no such user: none");
}

pub async fn devices_are_listed_most_recently_seen_first(h: &DurableHarness) {
    let alice = owner(h, "alice").await;
    // Registered in an order that is neither the sightings' nor the ids'.
    registered(h, &device(alice.id, 2, "b", T0 + Duration::hours(2))).await;
    registered(h, &device(alice.id, 1, "a", T0 + Duration::hours(1))).await;
    registered(h, &device(alice.id, 3, "c", T0 + Duration::hours(3))).await;
    assert_eq!(names(&h.store.devices(alice.id).await.unwrap()), ["c", "b", "a"]);

    // A new login from the oldest moves it to the front.
    let seen = h.store.record_device_seen(&device(alice.id, 1, "a again", T0 + Duration::hours(4))).await.unwrap();
    assert!(!seen.new);
    assert_eq!(names(&h.store.devices(alice.id).await.unwrap()), ["a", "c", "b"]);
}

fn trust(level: TrustLevel) -> DeviceUpdate {
    DeviceUpdate { name: None, trust_level: Some(level) }
}

fn rename(name: &str) -> DeviceUpdate {
    DeviceUpdate { name: Some(name.to_owned()), trust_level: None }
}

pub async fn update_device_renames_and_retrusts_only_the_owners(h: &DurableHarness) {
    let (alice, bob) = (owner(h, "alice").await, owner(h, "bob").await);
    let laptop = registered(h, &device(alice.id, 1, "laptop", T0)).await;
    let phone = registered(h, &device(alice.id, 2, "phone", T0)).await;
    let bobs = registered(h, &device(bob.id, 1, "bob's", T0)).await;

    let renamed = DeviceRecord { name: "Work laptop".into(), ..laptop.clone() };
    assert_eq!(h.store.update_device(alice.id, laptop.id, &rename("Work laptop")).await.unwrap(), Some(renamed));
    let trusted = DeviceRecord { name: "Work laptop".into(), trust_level: TrustLevel::High, ..laptop.clone() };
    assert_eq!(
        h.store.update_device(alice.id, laptop.id, &trust(TrustLevel::High)).await.unwrap(),
        Some(trusted.clone()),
        "a trust change keeps the new name"
    );
    let both = DeviceUpdate { name: Some("Laptop".into()), trust_level: Some(TrustLevel::Low) };
    let after = DeviceRecord { name: "Laptop".into(), trust_level: TrustLevel::Low, ..laptop.clone() };
    assert_eq!(h.store.update_device(alice.id, laptop.id, &both).await.unwrap(), Some(after.clone()));
    assert_eq!(
        h.store.update_device(alice.id, laptop.id, &DeviceUpdate::default()).await.unwrap(),
        Some(after.clone()),
        "an empty update changes nothing and answers the device"
    );

    let refused: [(&str, UserId, DeviceId); 3] = [
        ("someone else's device", bob.id, laptop.id),
        ("alice updating bob's", alice.id, bobs.id),
        ("no such device", alice.id, DeviceId::generate()),
    ];
    for (what, user, id) in refused {
        assert_eq!(h.store.update_device(user, id, &rename("Mine now")).await.unwrap(), None, "{what}: none");
    }

    // Names are counted in characters: 100 fit (here 200 bytes), 101 do not, nor does an empty one.
    let longest = "é".repeat(100);
    let stored = h.store.update_device(alice.id, phone.id, &rename(&longest)).await.unwrap().unwrap();
    assert_eq!(stored.name, longest);
    assert!(h.store.update_device(alice.id, phone.id, &rename(&"é".repeat(101))).await.is_err(), "101 characters");
    assert!(h.store.update_device(alice.id, phone.id, &rename("")).await.is_err(), "an empty name");

    assert_eq!(h.store.devices(bob.id).await.unwrap(), [bobs], "bob's device is untouched");
    assert_eq!(h.store.device(alice.id, laptop.id).await.unwrap(), Some(after));
    assert_eq!(h.store.device(alice.id, phone.id).await.unwrap().unwrap().name, longest);
}

pub async fn approve_device_raises_trust_to_at_least_medium(h: &DurableHarness) {
    let (alice, bob) = (owner(h, "alice").await, owner(h, "bob").await);
    let waiting = |n: u8, level: TrustLevel| DeviceRecord {
        approved: false,
        trust_level: level,
        ..device(alice.id, n, &format!("device {n}"), T0)
    };
    let low = registered(h, &waiting(1, TrustLevel::Low)).await;
    let medium = registered(h, &waiting(2, TrustLevel::Medium)).await;
    let high = registered(h, &waiting(3, TrustLevel::High)).await;
    let bobs = registered(h, &DeviceRecord { approved: false, ..device(bob.id, 1, "bob's", T0) }).await;

    for (d, after) in [(&low, TrustLevel::Medium), (&medium, TrustLevel::Medium), (&high, TrustLevel::High)] {
        assert!(h.store.approve_device(alice.id, d.id).await.unwrap(), "{}", d.name);
        let expected = DeviceRecord { approved: true, trust_level: after, ..d.clone() };
        assert_eq!(h.store.device(alice.id, d.id).await.unwrap(), Some(expected), "{}", d.name);
    }
    assert!(h.store.approve_device(alice.id, low.id).await.unwrap(), "approving again: it exists");
    assert_eq!(h.store.device(alice.id, low.id).await.unwrap().unwrap().trust_level, TrustLevel::Medium);

    assert!(!h.store.approve_device(alice.id, bobs.id).await.unwrap(), "someone else's device: false");
    assert!(!h.store.approve_device(bob.id, low.id).await.unwrap(), "bob approving alice's: false");
    assert!(!h.store.approve_device(alice.id, DeviceId::generate()).await.unwrap(), "no such device: false");
    assert_eq!(h.store.devices(bob.id).await.unwrap(), [bobs], "bob's device is still waiting, and low");
}

pub async fn delete_device_forgets_only_the_owners(h: &DurableHarness) {
    let (alice, bob) = (owner(h, "alice").await, owner(h, "bob").await);
    let laptop = registered(h, &device(alice.id, 1, "laptop", T0)).await;
    let phone = registered(h, &device(alice.id, 2, "phone", T0)).await;
    let bobs = registered(h, &device(bob.id, 1, "bob's", T0)).await;

    assert!(!h.store.delete_device(bob.id, laptop.id).await.unwrap(), "someone else's device: false");
    assert!(!h.store.delete_device(alice.id, bobs.id).await.unwrap(), "alice deleting bob's: false");
    assert!(!h.store.delete_device(alice.id, DeviceId::generate()).await.unwrap(), "no such device: false");
    assert!(h.store.delete_device(alice.id, laptop.id).await.unwrap());
    assert!(!h.store.delete_device(alice.id, laptop.id).await.unwrap(), "deleting twice: false");
    assert_eq!(h.store.devices(alice.id).await.unwrap(), [phone]);
    assert_eq!(h.store.devices(bob.id).await.unwrap(), [bobs]);

    // A forgotten device logging in again is a new device.
    let back = device(alice.id, 1, "back", T0 + Duration::days(1));
    assert_eq!(registered(h, &back).await.id, back.id);
}

pub async fn the_schema_refuses_malformed_devices(h: &DurableHarness) {
    let alice = owner(h, "alice").await;
    let ok = |n: u8| device(alice.id, n, "ok", T0);
    let taken = registered(h, &ok(9)).await;
    let malformed = [
        ("an empty name", DeviceRecord { name: String::new(), ..ok(1) }),
        ("a name of 101 characters", DeviceRecord { name: "x".repeat(101), ..ok(1) }),
        ("a device of no user", DeviceRecord { user_id: UserId::generate(), ..ok(1) }),
        ("a taken id with another fingerprint", DeviceRecord { id: taken.id, ..ok(1) }),
    ];
    for (what, d) in &malformed {
        assert!(h.store.record_device_seen(d).await.is_err(), "the schema accepts {what}");
    }
    assert_eq!(h.store.devices(alice.id).await.unwrap(), [taken], "nothing was stored");

    // Raw rows the store would never write are refused too.
    let sqlite = h.database.sqlite_path().is_some();
    let raw = [
        (
            "a fingerprint of 31 bytes",
            "INSERT INTO devices (id, user_id, fingerprint, name, first_seen_at, last_seen_at, trust_level, approved) \
             SELECT '0190a000-0000-7000-8000-000000000001', id, zeroblob(31), 'x', 0, 0, 'low', 1 FROM users",
            "INSERT INTO devices (id, user_id, fingerprint, name, first_seen_at, last_seen_at, trust_level, approved) \
             SELECT '0190a000-0000-7000-8000-000000000001'::uuid, id, decode(repeat('00', 31), 'hex'), 'x', now(), \
             now(), 'low', true FROM users",
        ),
        (
            "an unknown trust level",
            "INSERT INTO devices (id, user_id, fingerprint, name, first_seen_at, last_seen_at, trust_level, approved) \
             SELECT '0190a000-0000-7000-8000-000000000001', id, zeroblob(32), 'x', 0, 0, 'total', 1 FROM users",
            "INSERT INTO devices (id, user_id, fingerprint, name, first_seen_at, last_seen_at, trust_level, approved) \
             SELECT '0190a000-0000-7000-8000-000000000001'::uuid, id, decode(repeat('00', 32), 'hex'), 'x', now(), \
             now(), 'total', true FROM users",
        ),
    ];
    for (what, on_sqlite, on_postgres) in raw {
        assert!(h.database.execute(if sqlite { on_sqlite } else { on_postgres }).await.is_err(), "{what}");
    }
    let well_formed = if sqlite {
        "INSERT INTO devices (id, user_id, fingerprint, name, first_seen_at, last_seen_at, trust_level, approved) \
         SELECT '0190a000-0000-7000-8000-000000000001', id, zeroblob(32), 'x', 0, 0, 'low', 1 FROM users"
    } else {
        "INSERT INTO devices (id, user_id, fingerprint, name, first_seen_at, last_seen_at, trust_level, approved) \
         SELECT '0190a000-0000-7000-8000-000000000001'::uuid, id, decode(repeat('00', 32), 'hex'), 'x', now(), \
         now(), 'low', true FROM users"
    };
    assert_eq!(h.database.execute(well_formed).await.unwrap(), 1);

    // Well-formed rows at the limits go in, so the refusals above are about the constraints.
    registered(h, &DeviceRecord { name: "é".repeat(100), ..ok(1) }).await;
    registered(h, &DeviceRecord { name: "x".into(), ..ok(2) }).await;
    assert_eq!(h.store.devices(alice.id).await.unwrap().len(), 4);
}

pub async fn devices_go_with_their_user(h: &DurableHarness) {
    let (alice, bob) = (owner(h, "alice").await, owner(h, "bob").await);
    let alices = registered(h, &device(alice.id, 1, "a", T0)).await;
    registered(h, &device(alice.id, 2, "b", T0)).await;
    let bobs = registered(h, &device(bob.id, 1, "bob's", T0)).await;
    assert_eq!(h.database.execute("DELETE FROM users WHERE username = 'alice'").await.unwrap(), 1);
    assert!(h.store.devices(alice.id).await.unwrap().is_empty(), "deleting the user deletes their devices");
    assert_eq!(h.store.device(alice.id, alices.id).await.unwrap(), None);
    assert_eq!(h.database.fetch_text("SELECT CAST(COUNT(*) AS TEXT) FROM devices").await.unwrap(), "1");
    assert_eq!(h.store.devices(bob.id).await.unwrap(), [bobs]);
}
