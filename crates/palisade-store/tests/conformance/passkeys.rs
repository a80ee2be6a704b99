//! The passkey store port — WebAuthn credentials, and the backup codes that go with the last one —
//! identical on SQLite and PostgreSQL.

use std::sync::Arc;

use palisade_core::mfa::{FactorKind, PasskeyRecord};
use palisade_core::user::UserId;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use tokio::sync::Barrier;

use crate::mfa::{T0, code_hash, code_set, confirmed, factor, hash_key, owner};
use crate::support::{DurableHarness, conformance};

conformance!(
    DurableHarness,
    [sqlite, postgres],
    [
        passkeys_are_stored_and_listed_oldest_first,
        a_credential_id_is_registered_once,
        update_passkey_replaces_only_the_expected_form,
        concurrent_updates_from_one_form_have_one_winner,
        rename_passkey_renames_only_the_owners,
        delete_passkey_deletes_only_the_owners,
        the_codes_go_with_the_last_passkey_only_when_no_confirmed_factor_is_left,
        concurrent_removals_of_the_last_factor_and_the_last_passkey_take_the_codes,
        concurrent_removals_of_the_last_two_passkeys_take_the_codes,
        the_schema_refuses_malformed_passkeys,
        passkeys_go_with_their_user,
    ]
);

/// The stored form of credential `id` at signature counter `counter`. The store treats it as
/// opaque JSON; webauthn-rs's `Passkey` is an object like this one.
pub fn form(id: &[u8], counter: u32) -> String {
    format!(r#"{{"cred":{{"cred_id":{id:?},"counter":{counter}}}}}"#)
}

/// A never-used passkey of `user` with credential id `id`, at counter 0.
pub fn passkey(user: UserId, id: &[u8], name: &str, created_at: OffsetDateTime) -> PasskeyRecord {
    PasskeyRecord {
        credential_id: id.to_vec(),
        user_id: user,
        name: name.to_owned(),
        passkey: form(id, 0),
        created_at,
        last_used_at: None,
    }
}

/// Stores `passkeys`, each of which must be new.
async fn inserted(h: &DurableHarness, passkeys: &[&PasskeyRecord]) {
    for p in passkeys {
        assert!(h.store.insert_passkey(p).await.unwrap(), "{}", p.name);
    }
}

fn names(passkeys: &[PasskeyRecord]) -> Vec<&str> {
    passkeys.iter().map(|p| p.name.as_str()).collect()
}

pub async fn passkeys_are_stored_and_listed_oldest_first(h: &DurableHarness) {
    let (alice, bob) = (owner(h, "alice").await, owner(h, "bob").await);
    assert!(h.store.passkeys(alice.id).await.unwrap().is_empty());
    let laptop = PasskeyRecord {
        // Sub-microsecond instants are stored truncated, like every instant of the durable store.
        created_at: datetime!(2026-05-01 12:00:00.123456789 UTC),
        last_used_at: Some(datetime!(2026-05-02 08:00:00.000001999 UTC)),
        ..passkey(alice.id, &[1; 16], "Laptop", T0)
    };
    let phone = passkey(alice.id, &[2; 16], "Téléphone", T0 + Duration::days(1));
    let key = passkey(alice.id, &[3; 64], "Security key", T0 - Duration::days(1));
    let bobs = passkey(bob.id, &[4; 16], "Bob's", T0);
    // Neither the insertion order nor the ids' order is the creation order.
    inserted(h, &[&phone, &laptop, &bobs, &key]).await;

    let stored_laptop = PasskeyRecord {
        created_at: datetime!(2026-05-01 12:00:00.123456 UTC),
        last_used_at: Some(datetime!(2026-05-02 08:00:00.000001 UTC)),
        ..laptop.clone()
    };
    assert_eq!(
        h.store.passkeys(alice.id).await.unwrap(),
        [key.clone(), stored_laptop.clone(), phone],
        "every field round-trips, oldest first"
    );
    assert_eq!(h.store.passkeys(bob.id).await.unwrap(), std::slice::from_ref(&bobs), "only the user's own");
    assert!(h.store.passkeys(UserId::generate()).await.unwrap().is_empty(), "no such user: none");

    assert_eq!(h.store.passkey(&[1; 16]).await.unwrap(), Some(stored_laptop));
    assert_eq!(h.store.passkey(&[3; 64]).await.unwrap(), Some(key));
    assert_eq!(h.store.passkey(&[4; 16]).await.unwrap(), Some(bobs), "anyone's, by its id alone");
    assert_eq!(h.store.passkey(&[1; 15]).await.unwrap(), None, "a prefix of an id is another id");
    assert_eq!(h.store.passkey(&[9; 16]).await.unwrap(), None, "no such passkey");

    // A caller's mistake is an error, not `false`.
    let nobodys = passkey(UserId::generate(), &[5; 16], "nobody's", T0);
    assert!(h.store.insert_passkey(&nobodys).await.is_err(), "an unknown user");
    assert_eq!(h.store.passkey(&[5; 16]).await.unwrap(), None, "and nothing was stored");
}

pub async fn a_credential_id_is_registered_once(h: &DurableHarness) {
    let (alice, bob) = (owner(h, "alice").await, owner(h, "bob").await);
    let first = passkey(alice.id, &[1; 16], "first", T0);
    inserted(h, &[&first]).await;

    let again = PasskeyRecord {
        name: "again".into(),
        passkey: form(&[1; 16], 7),
        created_at: T0 + Duration::hours(1),
        last_used_at: Some(T0 + Duration::hours(1)),
        ..first.clone()
    };
    assert!(!h.store.insert_passkey(&again).await.unwrap(), "the same credential twice: false");
    let claimed = passkey(bob.id, &[1; 16], "claimed", T0 + Duration::hours(1));
    assert!(!h.store.insert_passkey(&claimed).await.unwrap(), "a credential id registered to another user: false");
    assert_eq!(h.store.passkey(&[1; 16]).await.unwrap().as_ref(), Some(&first), "the first registration stays whole");
    assert_eq!(h.store.passkeys(alice.id).await.unwrap(), [first]);
    assert!(h.store.passkeys(bob.id).await.unwrap().is_empty(), "nothing was stored for bob");

    // Ids that differ in their length or in one byte are other credentials.
    let mut one_byte_off = vec![1; 16];
    if let Some(last) = one_byte_off.last_mut() {
        *last = 2;
    }
    let longer = passkey(bob.id, &[1; 17], "longer", T0);
    let other = passkey(bob.id, &one_byte_off, "other", T0 + Duration::seconds(1));
    inserted(h, &[&longer, &other]).await;
    assert_eq!(h.store.passkeys(bob.id).await.unwrap(), [longer, other]);
}

pub async fn update_passkey_replaces_only_the_expected_form(h: &DurableHarness) {
    let (alice, bob) = (owner(h, "alice").await, owner(h, "bob").await);
    let laptop = passkey(alice.id, &[1; 16], "Laptop", T0);
    let bobs = passkey(bob.id, &[2; 16], "Bob's", T0);
    inserted(h, &[&laptop, &bobs]).await;

    let used = T0 + Duration::hours(1);
    let second = form(&[1; 16], 1);
    assert!(h.store.update_passkey(&[1; 16], &laptop.passkey, &second, used).await.unwrap(), "from the stored form");
    let after = PasskeyRecord { passkey: second.clone(), last_used_at: Some(used), ..laptop.clone() };
    assert_eq!(
        h.store.passkey(&[1; 16]).await.unwrap().as_ref(),
        Some(&after),
        "the new form and the use are recorded, and nothing else changes"
    );

    // A use that started from an older form, or from another passkey's, lost: nothing changes.
    let later = used + Duration::hours(1);
    let third = form(&[1; 16], 2);
    let refused: [(&str, &[u8], &str); 5] = [
        ("a stale form", &[1; 16], laptop.passkey.as_str()),
        ("another passkey's form", &[1; 16], bobs.passkey.as_str()),
        ("the current form of another passkey", &[2; 16], second.as_str()),
        ("an empty form", &[1; 16], ""),
        ("no such passkey", &[9; 16], second.as_str()),
    ];
    for (what, id, expected) in refused {
        assert!(!h.store.update_passkey(id, expected, &third, later).await.unwrap(), "{what}: false");
    }
    assert_eq!(h.store.passkey(&[1; 16]).await.unwrap().as_ref(), Some(&after), "none of those changed it");
    assert_eq!(h.store.passkey(&[2; 16]).await.unwrap().as_ref(), Some(&bobs), "nor bob's");

    // A new form that is not a JSON object is an error, and nothing changes.
    for invalid in ["", "{\"cred\":", "[1, 2]"] {
        assert!(h.store.update_passkey(&[1; 16], &second, invalid, later).await.is_err(), "{invalid:?} is stored");
    }
    assert_eq!(h.store.passkey(&[1; 16]).await.unwrap().as_ref(), Some(&after));

    // From the current form, the next use goes through.
    assert!(h.store.update_passkey(&[1; 16], &second, &third, later).await.unwrap());
    let last = PasskeyRecord { passkey: third, last_used_at: Some(later), ..laptop };
    assert_eq!(h.store.passkeys(alice.id).await.unwrap(), [last]);
    assert_eq!(h.store.passkeys(bob.id).await.unwrap(), [bobs]);
}

pub async fn concurrent_updates_from_one_form_have_one_winner(h: &DurableHarness) {
    let alice = owner(h, "alice").await;
    let laptop = passkey(alice.id, &[1; 16], "Laptop", T0);
    inserted(h, &[&laptop]).await;
    let mut expected = laptop.passkey.clone();
    for round in 1..=3u32 {
        let barrier = Arc::new(Barrier::new(8));
        let tasks: Vec<_> = (0..8u32)
            .map(|i| {
                let (store, barrier, expected) = (h.store.clone(), barrier.clone(), expected.clone());
                let (next, at) = (form(&[1; 16], round * 100 + i), T0 + Duration::seconds(i64::from(round * 100 + i)));
                tokio::spawn(async move {
                    barrier.wait().await;
                    let won = store.update_passkey(&[1; 16], &expected, &next, at).await.unwrap();
                    won.then_some((next, at))
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            winners.extend(task.await.unwrap());
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one of 8 concurrent uses from one form updates");
        let (next, at) = winners.remove(0);
        let stored = h.store.passkey(&[1; 16]).await.unwrap().unwrap();
        assert_eq!(
            (stored.passkey.as_str(), stored.last_used_at),
            (next.as_str(), Some(at)),
            "round {round}: the winner's form and time are stored"
        );
        expected = next;
    }
}

pub async fn rename_passkey_renames_only_the_owners(h: &DurableHarness) {
    let (alice, bob) = (owner(h, "alice").await, owner(h, "bob").await);
    let laptop = passkey(alice.id, &[1; 16], "Laptop", T0);
    let phone = passkey(alice.id, &[2; 16], "Phone", T0 + Duration::seconds(1));
    let bobs = passkey(bob.id, &[3; 16], "Bob's", T0);
    inserted(h, &[&laptop, &phone, &bobs]).await;

    assert!(h.store.rename_passkey(alice.id, &[1; 16], "Work laptop").await.unwrap());
    let renamed = PasskeyRecord { name: "Work laptop".into(), ..laptop };
    assert_eq!(
        h.store.passkeys(alice.id).await.unwrap(),
        [renamed.clone(), phone.clone()],
        "only that passkey, and only its name"
    );
    assert!(h.store.rename_passkey(alice.id, &[1; 16], "Work laptop").await.unwrap(), "the same name: it exists");

    let refused: [(&str, UserId, [u8; 16]); 4] = [
        ("someone else's passkey", bob.id, [1; 16]),
        ("alice renaming bob's", alice.id, [3; 16]),
        ("no such passkey", alice.id, [9; 16]),
        ("no such user", UserId::generate(), [1; 16]),
    ];
    for (what, user, id) in refused {
        assert!(!h.store.rename_passkey(user, &id, "Mine now").await.unwrap(), "{what}: false");
    }
    assert_eq!(h.store.passkeys(alice.id).await.unwrap(), [renamed, phone], "none of those renamed anything");
    assert_eq!(h.store.passkeys(bob.id).await.unwrap(), [bobs]);

    // Names are counted in characters: 100 fit (here 200 bytes), 101 do not, nor does an empty one.
    let longest = "é".repeat(100);
    assert!(h.store.rename_passkey(alice.id, &[1; 16], &longest).await.unwrap());
    assert!(h.store.rename_passkey(alice.id, &[1; 16], &"é".repeat(101)).await.is_err(), "a name of 101 characters");
    assert!(h.store.rename_passkey(alice.id, &[1; 16], "").await.is_err(), "an empty name");
    assert_eq!(names(&h.store.passkeys(alice.id).await.unwrap()), [longest.as_str(), "Phone"]);
}

pub async fn delete_passkey_deletes_only_the_owners(h: &DurableHarness) {
    let (alice, bob) = (owner(h, "alice").await, owner(h, "bob").await);
    let laptop = passkey(alice.id, &[1; 16], "Laptop", T0);
    let phone = passkey(alice.id, &[2; 16], "Phone", T0 + Duration::seconds(1));
    let bobs = passkey(bob.id, &[3; 16], "Bob's", T0);
    inserted(h, &[&laptop, &phone, &bobs]).await;

    let refused: [(&str, UserId, [u8; 16]); 4] = [
        ("someone else's passkey", bob.id, [1; 16]),
        ("alice deleting bob's", alice.id, [3; 16]),
        ("no such passkey", alice.id, [9; 16]),
        ("no such user", UserId::generate(), [1; 16]),
    ];
    for (what, user, id) in refused {
        assert!(!h.store.delete_passkey(user, &id).await.unwrap(), "{what}: false");
    }
    assert_eq!(h.store.passkeys(alice.id).await.unwrap(), [laptop, phone.clone()], "none of those deleted anything");
    assert_eq!(h.store.passkeys(bob.id).await.unwrap(), std::slice::from_ref(&bobs));

    assert!(h.store.delete_passkey(alice.id, &[1; 16]).await.unwrap());
    assert_eq!(h.store.passkeys(alice.id).await.unwrap(), [phone], "only that one");
    assert_eq!(h.store.passkey(&[1; 16]).await.unwrap(), None);
    assert!(!h.store.delete_passkey(alice.id, &[1; 16]).await.unwrap(), "twice: false");

    // Its credential id is free again.
    let again = passkey(bob.id, &[1; 16], "Re-registered", T0 + Duration::seconds(2));
    inserted(h, &[&again]).await;
    assert_eq!(h.store.passkeys(bob.id).await.unwrap(), [bobs, again]);
}

pub async fn the_codes_go_with_the_last_passkey_only_when_no_confirmed_factor_is_left(h: &DurableHarness) {
    let hk = hash_key(h).await;

    // alice has a confirmed factor: her codes outlive every passkey.
    let alice = owner(h, "alice").await;
    confirmed(h, alice.id, FactorKind::Totp).await;
    inserted(h, &[&passkey(alice.id, &[1; 16], "a", T0), &passkey(alice.id, &[2; 16], "b", T0)]).await;
    h.store.replace_backup_codes(alice.id, &code_set(alice.id, hk, 1, 10)).await.unwrap();
    assert!(h.store.delete_passkey(alice.id, &[1; 16]).await.unwrap());
    assert_eq!(h.store.unused_backup_codes(alice.id).await.unwrap().len(), 10, "another passkey is left");
    assert!(h.store.delete_passkey(alice.id, &[2; 16]).await.unwrap());
    assert_eq!(h.store.unused_backup_codes(alice.id).await.unwrap().len(), 10, "a confirmed factor is left");

    // carol's only factor is pending: her codes go with her last passkey, all of them.
    let carol = owner(h, "carol").await;
    let pending = factor(carol.id, FactorKind::Totp, "pending", T0);
    assert!(h.store.put_pending_factor(&pending).await.unwrap());
    inserted(h, &[&passkey(carol.id, &[3; 16], "c", T0), &passkey(carol.id, &[4; 16], "d", T0)]).await;
    h.store.replace_backup_codes(carol.id, &code_set(carol.id, hk, 2, 10)).await.unwrap();
    assert!(h.store.use_backup_code(carol.id, 0, &code_hash(2, 0), T0).await.unwrap());
    assert!(h.store.delete_passkey(carol.id, &[3; 16]).await.unwrap());
    assert_eq!(h.store.unused_backup_codes(carol.id).await.unwrap().len(), 9, "another passkey is left");
    assert!(h.store.delete_passkey(carol.id, &[4; 16]).await.unwrap());
    assert!(
        h.store.unused_backup_codes(carol.id).await.unwrap().is_empty(),
        "no confirmed factor and no passkey left: no codes"
    );
    assert!(!h.store.use_backup_code(carol.id, 1, &code_hash(2, 1), T0).await.unwrap(), "they are gone");
    // The used code went too: a new set may take its index again.
    h.store.replace_backup_codes(carol.id, &code_set(carol.id, hk, 3, 1)).await.unwrap();
    assert_eq!(h.store.factors(carol.id).await.unwrap(), [pending], "the pending factor is not removed");

    // dave has codes but nothing else: a deletion that finds no passkey of his changes nothing.
    let dave = owner(h, "dave").await;
    h.store.replace_backup_codes(dave.id, &code_set(dave.id, hk, 4, 10)).await.unwrap();
    inserted(h, &[&passkey(alice.id, &[5; 16], "alice's", T0)]).await;
    assert!(!h.store.delete_passkey(dave.id, &[5; 16]).await.unwrap(), "alice's passkey");
    assert!(!h.store.delete_passkey(dave.id, &[9; 16]).await.unwrap(), "no such passkey");
    assert_eq!(h.store.unused_backup_codes(dave.id).await.unwrap().len(), 10, "a failed deletion keeps the codes");
    assert_eq!(h.store.unused_backup_codes(alice.id).await.unwrap().len(), 10, "other users' codes untouched");
}

pub async fn concurrent_removals_of_the_last_factor_and_the_last_passkey_take_the_codes(h: &DurableHarness) {
    let hk = hash_key(h).await;
    // Each removal may still see the other's factor or passkey unless the two are serialized: race
    // them a few times.
    for round in 0..10u8 {
        let alice = owner(h, &format!("alice{round}")).await;
        confirmed(h, alice.id, FactorKind::Totp).await;
        inserted(h, &[&passkey(alice.id, &[round; 16], "only", T0)]).await;
        h.store.replace_backup_codes(alice.id, &code_set(alice.id, hk, 1, 10)).await.unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let factor = tokio::spawn({
            let (store, barrier) = (h.store.clone(), barrier.clone());
            async move {
                barrier.wait().await;
                store.delete_factor(alice.id, FactorKind::Totp).await.unwrap()
            }
        });
        let passkey = tokio::spawn({
            let (store, barrier) = (h.store.clone(), barrier.clone());
            async move {
                barrier.wait().await;
                store.delete_passkey(alice.id, &[round; 16]).await.unwrap()
            }
        });
        assert!(factor.await.unwrap(), "round {round}: the factor's removal finds it");
        assert!(passkey.await.unwrap(), "round {round}: the passkey's removal finds it");
        assert!(h.store.factors(alice.id).await.unwrap().is_empty());
        assert!(h.store.passkeys(alice.id).await.unwrap().is_empty());
        assert!(
            h.store.unused_backup_codes(alice.id).await.unwrap().is_empty(),
            "round {round}: no confirmed factor and no passkey is left, so no backup code is"
        );
    }
}

pub async fn concurrent_removals_of_the_last_two_passkeys_take_the_codes(h: &DurableHarness) {
    let hk = hash_key(h).await;
    // The user has no factor at all, so only a lock that does not depend on factors serializes
    // these.
    for round in 0..10u8 {
        let alice = owner(h, &format!("alice{round}")).await;
        let ids = [[2 * round; 16], [2 * round + 1; 16]];
        inserted(h, &[&passkey(alice.id, &ids[0], "first", T0), &passkey(alice.id, &ids[1], "second", T0)]).await;
        h.store.replace_backup_codes(alice.id, &code_set(alice.id, hk, 1, 10)).await.unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = ids
            .into_iter()
            .map(|id| {
                let (store, barrier) = (h.store.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.delete_passkey(alice.id, &id).await.unwrap()
                })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap(), "round {round}: each removal finds its passkey");
        }
        assert!(h.store.passkeys(alice.id).await.unwrap().is_empty());
        assert!(
            h.store.unused_backup_codes(alice.id).await.unwrap().is_empty(),
            "round {round}: no passkey is left, so no backup code is"
        );
    }
}

pub async fn the_schema_refuses_malformed_passkeys(h: &DurableHarness) {
    let alice = owner(h, "alice").await;
    let ok = |id: &[u8]| passkey(alice.id, id, "ok", T0);
    let malformed = [
        ("an empty name", PasskeyRecord { name: String::new(), ..ok(&[1; 16]) }),
        ("a name of 101 characters", PasskeyRecord { name: "x".repeat(101), ..ok(&[1; 16]) }),
        ("an empty credential id", ok(&[])),
        ("a credential id of 1024 bytes", ok(&[1; 1024])),
        ("an empty stored form", PasskeyRecord { passkey: String::new(), ..ok(&[1; 16]) }),
        ("a stored form that is not JSON", PasskeyRecord { passkey: "{\"cred\":".into(), ..ok(&[1; 16]) }),
        ("a stored form that is a JSON array", PasskeyRecord { passkey: "[1, 2]".into(), ..ok(&[1; 16]) }),
        ("a passkey of no user", PasskeyRecord { user_id: UserId::generate(), ..ok(&[1; 16]) }),
    ];
    for (what, p) in &malformed {
        assert!(h.store.insert_passkey(p).await.is_err(), "the schema accepts {what}");
    }
    assert!(h.store.passkeys(alice.id).await.unwrap().is_empty(), "nothing was stored");

    // Well-formed rows at the limits go in, so the refusals above are about the constraints.
    let longest = PasskeyRecord { name: "é".repeat(100), ..ok(&[1; 1023]) };
    let shortest = PasskeyRecord { name: "x".into(), ..ok(&[2]) };
    inserted(h, &[&longest, &shortest]).await;
    // Created at the same instant, so in the order of their ids.
    assert_eq!(h.store.passkeys(alice.id).await.unwrap(), [longest, shortest]);
}

pub async fn passkeys_go_with_their_user(h: &DurableHarness) {
    let (alice, bob) = (owner(h, "alice").await, owner(h, "bob").await);
    let bobs = passkey(bob.id, &[3; 16], "Bob's", T0);
    inserted(h, &[&passkey(alice.id, &[1; 16], "a", T0), &passkey(alice.id, &[2; 16], "b", T0), &bobs]).await;
    assert_eq!(h.database.execute("DELETE FROM users WHERE username = 'alice'").await.unwrap(), 1);
    assert!(h.store.passkeys(alice.id).await.unwrap().is_empty(), "deleting the user deletes their passkeys");
    assert_eq!(h.store.passkey(&[1; 16]).await.unwrap(), None);
    assert_eq!(h.database.fetch_text("SELECT CAST(COUNT(*) AS TEXT) FROM passkeys").await.unwrap(), "1");
    assert_eq!(h.store.passkeys(bob.id).await.unwrap(), [bobs]);
}
