//! The MFA store port — second factors and backup codes — identical on SQLite and PostgreSQL (passkeys,
//! which keep the codes alive too, are in `passkeys`).

use std::sync::Arc;

use palisade_core::crypto::{KeyPurpose, WrappedDataKey};
use palisade_core::mfa::{BackupCodeRecord, FactorKind, FactorRecord};
use palisade_core::user::{User, UserId};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use tokio::sync::Barrier;

use crate::passkeys::passkey;
use crate::support::{DurableHarness, conformance};
use crate::users::{inserted, user};

conformance!(
    DurableHarness,
    [sqlite, postgres],
    [
        pending_factors_are_stored_and_listed,
        a_new_setup_replaces_a_pending_factor_but_not_a_confirmed_one,
        confirm_matches_only_the_pending_id,
        delete_factor_takes_the_codes_only_with_the_last_confirmed_factor,
        delete_factor_keeps_the_codes_while_a_passkey_is_left,
        delete_all_factors_removes_every_factor_passkey_and_code,
        replace_backup_codes_kills_the_old_set,
        a_failed_replacement_keeps_the_old_set,
        use_backup_code_succeeds_once_and_only_with_the_current_hash,
        concurrent_uses_of_a_backup_code_have_one_winner,
        concurrent_removals_of_the_last_factors_take_the_codes,
        concurrent_regenerations_leave_one_whole_set,
        the_schema_refuses_malformed_mfa_rows,
        factors_and_codes_go_with_their_user,
    ]
);

pub const T0: OffsetDateTime = datetime!(2026-05-01 12:00:00 UTC);

/// A data key to hash backup codes under (the schema requires one).
pub async fn hash_key(h: &DurableHarness) -> uuid::Uuid {
    let key = WrappedDataKey {
        id: uuid::Uuid::now_v7(),
        purpose: KeyPurpose::Data,
        version: 1,
        provider: "local:00000000".into(),
        wrapped: vec![7; 60],
        created_at: T0,
    };
    assert!(h.store.insert_data_key(&key).await.unwrap());
    key.id
}

pub async fn owner(h: &DurableHarness, name: &str) -> User {
    let u = user(name, None);
    inserted(h, &u).await;
    u
}

/// A pending factor of `kind` with a fresh id, its sealed text tagged `tag`.
pub fn factor(user: UserId, kind: FactorKind, tag: &str, created_at: OffsetDateTime) -> FactorRecord {
    FactorRecord {
        id: uuid::Uuid::now_v7(),
        user_id: user,
        kind,
        sealed: format!("v1.{}.{tag}", kind.as_str()),
        created_at,
        confirmed_at: None,
    }
}

/// Sets up and confirms a factor of `kind`; returns it as stored.
pub async fn confirmed(h: &DurableHarness, user: UserId, kind: FactorKind) -> FactorRecord {
    let pending = factor(user, kind, "confirmed", T0);
    assert!(h.store.put_pending_factor(&pending).await.unwrap());
    let at = T0 + Duration::minutes(1);
    assert!(h.store.confirm_factor(user, pending.id, at).await.unwrap());
    FactorRecord { confirmed_at: Some(at), ..pending }
}

/// The hash of code `index` of set `set`: distinct per set and index.
pub fn code_hash(set: u8, index: u8) -> Vec<u8> {
    let mut hash = vec![0x5a; 32];
    hash[0] = set;
    hash[1] = index;
    hash
}

/// A set of `n` unused backup codes for `user`.
pub fn code_set(user: UserId, hash_key_id: uuid::Uuid, set: u8, n: u8) -> Vec<BackupCodeRecord> {
    (0..n)
        .map(|index| BackupCodeRecord {
            user_id: user,
            index,
            hash: code_hash(set, index),
            hash_key_id,
            created_at: T0 + Duration::seconds(i64::from(set)),
            used_at: None,
        })
        .collect()
}

fn kinds(factors: &[FactorRecord]) -> Vec<FactorKind> {
    factors.iter().map(|f| f.kind).collect()
}

fn indices(codes: &[BackupCodeRecord]) -> Vec<u8> {
    codes.iter().map(|c| c.index).collect()
}

pub async fn pending_factors_are_stored_and_listed(h: &DurableHarness) {
    let (alice, bob) = (owner(h, "alice").await, owner(h, "bob").await);
    assert!(h.store.factors(alice.id).await.unwrap().is_empty());
    let totp = FactorRecord {
        // Sub-microsecond instants are stored truncated, like every instant of the durable store.
        created_at: datetime!(2026-05-01 12:00:00.123456789 UTC),
        ..factor(alice.id, FactorKind::Totp, "secret", T0)
    };
    let email = factor(alice.id, FactorKind::Email, "address", T0 + Duration::seconds(1));
    let sms = factor(alice.id, FactorKind::Sms, "phone", T0 + Duration::seconds(2));
    let bobs = factor(bob.id, FactorKind::Totp, "bob", T0);
    for f in [&email, &sms, &totp, &bobs] {
        assert!(h.store.put_pending_factor(f).await.unwrap(), "{:?}", f.kind);
    }
    let stored_totp = FactorRecord { created_at: datetime!(2026-05-01 12:00:00.123456 UTC), ..totp.clone() };
    assert_eq!(
        h.store.factors(alice.id).await.unwrap(),
        [stored_totp, sms, email],
        "every field round-trips, one per kind, in the kinds' order"
    );
    assert_eq!(h.store.factors(bob.id).await.unwrap(), [bobs], "only the user's own");
    assert!(h.store.factors(UserId::generate()).await.unwrap().is_empty(), "no such user: none");

    // A caller's mistakes are errors, not `false`.
    let carol = UserId::generate();
    assert!(h.store.put_pending_factor(&factor(carol, FactorKind::Totp, "x", T0)).await.is_err(), "an unknown user");
    let already = FactorRecord { confirmed_at: Some(T0), ..factor(bob.id, FactorKind::Sms, "x", T0) };
    assert!(h.store.put_pending_factor(&already).await.is_err(), "a factor confirmed already is not pending");
    assert_eq!(kinds(&h.store.factors(bob.id).await.unwrap()), [FactorKind::Totp], "and nothing was stored");
}

pub async fn a_new_setup_replaces_a_pending_factor_but_not_a_confirmed_one(h: &DurableHarness) {
    let (alice, bob) = (owner(h, "alice").await, owner(h, "bob").await);
    let first = factor(alice.id, FactorKind::Totp, "first", T0);
    let bobs = factor(bob.id, FactorKind::Totp, "bob", T0);
    let alices_sms = factor(alice.id, FactorKind::Sms, "sms", T0);
    for f in [&first, &bobs, &alices_sms] {
        assert!(h.store.put_pending_factor(f).await.unwrap());
    }

    // A second setup of a pending factor replaces it whole: id, secret and time.
    let second = factor(alice.id, FactorKind::Totp, "second", T0 + Duration::minutes(5));
    assert!(h.store.put_pending_factor(&second).await.unwrap(), "a pending factor is replaced");
    assert_eq!(h.store.factors(alice.id).await.unwrap(), [second.clone(), alices_sms.clone()]);
    assert_eq!(h.store.factors(bob.id).await.unwrap(), std::slice::from_ref(&bobs), "other users' factors untouched");

    // Once confirmed, a new setup changes nothing.
    let at = T0 + Duration::minutes(6);
    assert!(h.store.confirm_factor(alice.id, second.id, at).await.unwrap());
    let kept = FactorRecord { confirmed_at: Some(at), ..second.clone() };
    let third = factor(alice.id, FactorKind::Totp, "third", T0 + Duration::minutes(7));
    assert!(!h.store.put_pending_factor(&third).await.unwrap(), "a confirmed factor is not replaced");
    assert_eq!(h.store.factors(alice.id).await.unwrap(), [kept.clone(), alices_sms.clone()], "nor changed");
    assert!(!h.store.confirm_factor(alice.id, third.id, at).await.unwrap(), "the refused setup was not stored");

    // Another kind is still free, and a reused id is an error, not a replacement.
    let email = factor(alice.id, FactorKind::Email, "email", T0);
    assert!(h.store.put_pending_factor(&email).await.unwrap());
    let reused = FactorRecord { id: bobs.id, ..factor(alice.id, FactorKind::Sms, "reused", T0) };
    assert!(h.store.put_pending_factor(&reused).await.is_err(), "a duplicate id is an error");
    assert_eq!(h.store.factors(alice.id).await.unwrap(), [kept, alices_sms, email]);
    assert_eq!(h.store.factors(bob.id).await.unwrap(), [bobs]);
}

pub async fn confirm_matches_only_the_pending_id(h: &DurableHarness) {
    let (alice, bob) = (owner(h, "alice").await, owner(h, "bob").await);
    let stale = factor(alice.id, FactorKind::Totp, "stale", T0);
    let current = factor(alice.id, FactorKind::Totp, "current", T0 + Duration::minutes(1));
    assert!(h.store.put_pending_factor(&stale).await.unwrap());
    assert!(h.store.put_pending_factor(&current).await.unwrap());
    let at = T0 + Duration::minutes(2);

    assert!(!h.store.confirm_factor(alice.id, stale.id, at).await.unwrap(), "a replaced setup: false");
    assert!(!h.store.confirm_factor(bob.id, current.id, at).await.unwrap(), "someone else's factor: false");
    assert!(!h.store.confirm_factor(alice.id, uuid::Uuid::now_v7(), at).await.unwrap(), "no such factor: false");
    assert_eq!(h.store.factors(alice.id).await.unwrap(), std::slice::from_ref(&current), "still pending");

    assert!(h.store.confirm_factor(alice.id, current.id, at).await.unwrap(), "the pending one is confirmed");
    let done = FactorRecord { confirmed_at: Some(at), ..current.clone() };
    assert_eq!(h.store.factors(alice.id).await.unwrap(), std::slice::from_ref(&done));
    assert!(
        !h.store.confirm_factor(alice.id, current.id, at + Duration::minutes(1)).await.unwrap(),
        "confirmed already: false"
    );
    assert_eq!(h.store.factors(alice.id).await.unwrap(), [done], "the first confirmation's time stays");
}

pub async fn delete_factor_takes_the_codes_only_with_the_last_confirmed_factor(h: &DurableHarness) {
    let (alice, bob, hk) = (owner(h, "alice").await, owner(h, "bob").await, hash_key(h).await);
    let totp = confirmed(h, alice.id, FactorKind::Totp).await;
    confirmed(h, alice.id, FactorKind::Sms).await;
    let email = factor(alice.id, FactorKind::Email, "pending", T0);
    assert!(h.store.put_pending_factor(&email).await.unwrap());
    h.store.replace_backup_codes(alice.id, &code_set(alice.id, hk, 1, 10)).await.unwrap();
    confirmed(h, bob.id, FactorKind::Totp).await;
    h.store.replace_backup_codes(bob.id, &code_set(bob.id, hk, 2, 10)).await.unwrap();

    assert!(h.store.delete_factor(alice.id, FactorKind::Sms).await.unwrap(), "a confirmed factor");
    assert_eq!(kinds(&h.store.factors(alice.id).await.unwrap()), [FactorKind::Totp, FactorKind::Email]);
    assert_eq!(h.store.unused_backup_codes(alice.id).await.unwrap().len(), 10, "another confirmed one is left");
    assert!(!h.store.delete_factor(alice.id, FactorKind::Sms).await.unwrap(), "twice: false");
    assert!(!h.store.delete_factor(UserId::generate(), FactorKind::Totp).await.unwrap(), "no such user: false");

    assert!(h.store.delete_factor(alice.id, FactorKind::Email).await.unwrap(), "a pending factor");
    assert_eq!(h.store.factors(alice.id).await.unwrap(), [totp]);
    assert_eq!(h.store.unused_backup_codes(alice.id).await.unwrap().len(), 10, "the confirmed one is left");

    // The last confirmed factor goes, a pending one stays: so do the codes, all of them.
    let email = factor(alice.id, FactorKind::Email, "pending again", T0);
    assert!(h.store.put_pending_factor(&email).await.unwrap());
    assert!(h.store.use_backup_code(alice.id, 0, &code_hash(1, 0), T0).await.unwrap());
    assert!(h.store.delete_factor(alice.id, FactorKind::Totp).await.unwrap());
    assert_eq!(h.store.factors(alice.id).await.unwrap(), [email], "the pending factor is not removed");
    assert!(h.store.unused_backup_codes(alice.id).await.unwrap().is_empty(), "no confirmed factor left: no codes");
    assert!(!h.store.use_backup_code(alice.id, 1, &code_hash(1, 1), T0).await.unwrap(), "they are gone");
    assert_eq!(h.store.unused_backup_codes(bob.id).await.unwrap().len(), 10, "other users' codes untouched");
    assert_eq!(kinds(&h.store.factors(bob.id).await.unwrap()), [FactorKind::Totp]);

    // Codes made at a setup that was never confirmed go with the pending factor.
    h.store.replace_backup_codes(alice.id, &code_set(alice.id, hk, 3, 10)).await.unwrap();
    assert!(h.store.delete_factor(alice.id, FactorKind::Email).await.unwrap());
    assert!(h.store.unused_backup_codes(alice.id).await.unwrap().is_empty());

    // Deleting a kind the user does not have changes nothing.
    assert!(!h.store.delete_factor(bob.id, FactorKind::Sms).await.unwrap());
    assert_eq!(h.store.unused_backup_codes(bob.id).await.unwrap().len(), 10);
}

pub async fn delete_factor_keeps_the_codes_while_a_passkey_is_left(h: &DurableHarness) {
    let (alice, bob, hk) = (owner(h, "alice").await, owner(h, "bob").await, hash_key(h).await);
    confirmed(h, alice.id, FactorKind::Totp).await;
    let laptop = passkey(alice.id, &[1; 16], "Laptop", T0);
    assert!(h.store.insert_passkey(&laptop).await.unwrap());
    h.store.replace_backup_codes(alice.id, &code_set(alice.id, hk, 1, 10)).await.unwrap();

    assert!(h.store.delete_factor(alice.id, FactorKind::Totp).await.unwrap(), "the last confirmed factor");
    assert!(h.store.factors(alice.id).await.unwrap().is_empty());
    assert_eq!(h.store.unused_backup_codes(alice.id).await.unwrap().len(), 10, "a passkey is left: the codes stay");
    assert_eq!(h.store.passkeys(alice.id).await.unwrap(), [laptop], "and so does the passkey");
    assert!(h.store.use_backup_code(alice.id, 0, &code_hash(1, 0), T0).await.unwrap(), "usable still");

    // Likewise with a pending factor and a passkey; a deletion that finds nothing keeps them too.
    let sms = factor(bob.id, FactorKind::Sms, "pending", T0);
    assert!(h.store.put_pending_factor(&sms).await.unwrap());
    assert!(h.store.insert_passkey(&passkey(bob.id, &[2; 16], "Phone", T0)).await.unwrap());
    h.store.replace_backup_codes(bob.id, &code_set(bob.id, hk, 2, 10)).await.unwrap();
    assert!(h.store.delete_factor(bob.id, FactorKind::Sms).await.unwrap());
    assert_eq!(h.store.unused_backup_codes(bob.id).await.unwrap().len(), 10, "a passkey is left");
    assert!(h.store.delete_passkey(bob.id, &[2; 16]).await.unwrap());
    h.store.replace_backup_codes(bob.id, &code_set(bob.id, hk, 3, 10)).await.unwrap();
    assert!(!h.store.delete_factor(bob.id, FactorKind::Totp).await.unwrap(), "bob has no TOTP");
    assert_eq!(
        h.store.unused_backup_codes(bob.id).await.unwrap().len(),
        10,
        "a deletion that found nothing changes nothing, not even codes no factor vouches for"
    );
}

pub async fn delete_all_factors_removes_every_factor_passkey_and_code(h: &DurableHarness) {
    let (alice, bob, hk) = (owner(h, "alice").await, owner(h, "bob").await, hash_key(h).await);
    confirmed(h, alice.id, FactorKind::Totp).await;
    confirmed(h, alice.id, FactorKind::Email).await;
    assert!(h.store.put_pending_factor(&factor(alice.id, FactorKind::Sms, "pending", T0)).await.unwrap());
    for id in [[1; 16], [2; 16]] {
        assert!(h.store.insert_passkey(&passkey(alice.id, &id, "alice's", T0)).await.unwrap());
    }
    h.store.replace_backup_codes(alice.id, &code_set(alice.id, hk, 1, 10)).await.unwrap();
    assert!(h.store.use_backup_code(alice.id, 4, &code_hash(1, 4), T0).await.unwrap());
    let bobs = confirmed(h, bob.id, FactorKind::Totp).await;
    let bobs_passkey = passkey(bob.id, &[3; 16], "bob's", T0);
    assert!(h.store.insert_passkey(&bobs_passkey).await.unwrap());
    h.store.replace_backup_codes(bob.id, &code_set(bob.id, hk, 2, 3)).await.unwrap();

    assert_eq!(
        h.store.delete_all_factors(alice.id).await.unwrap(),
        5,
        "confirmed and pending factors and passkeys count"
    );
    assert!(h.store.factors(alice.id).await.unwrap().is_empty());
    assert!(h.store.passkeys(alice.id).await.unwrap().is_empty());
    assert!(h.store.unused_backup_codes(alice.id).await.unwrap().is_empty());
    // The used code went too: a new set may take its index again.
    h.store.replace_backup_codes(alice.id, &code_set(alice.id, hk, 3, 10)).await.unwrap();
    assert!(h.store.insert_passkey(&passkey(alice.id, &[4; 16], "alice's", T0)).await.unwrap());
    assert_eq!(h.store.delete_all_factors(alice.id).await.unwrap(), 1, "a passkey alone counts");
    assert!(h.store.passkeys(alice.id).await.unwrap().is_empty());
    assert!(h.store.unused_backup_codes(alice.id).await.unwrap().is_empty());
    h.store.replace_backup_codes(alice.id, &code_set(alice.id, hk, 4, 10)).await.unwrap();
    assert_eq!(h.store.delete_all_factors(alice.id).await.unwrap(), 0, "no factors or passkeys left, but codes");
    assert!(h.store.unused_backup_codes(alice.id).await.unwrap().is_empty(), "and the codes went anyway");

    assert_eq!(h.store.factors(bob.id).await.unwrap(), [bobs], "other users untouched");
    assert_eq!(h.store.passkeys(bob.id).await.unwrap(), [bobs_passkey]);
    assert_eq!(indices(&h.store.unused_backup_codes(bob.id).await.unwrap()), [0, 1, 2]);
    assert_eq!(h.store.delete_all_factors(UserId::generate()).await.unwrap(), 0, "no such user");
}

pub async fn replace_backup_codes_kills_the_old_set(h: &DurableHarness) {
    let (alice, bob, hk) = (owner(h, "alice").await, owner(h, "bob").await, hash_key(h).await);
    let other_key = hash_key_v2(h).await;
    confirmed(h, alice.id, FactorKind::Totp).await;
    let first = code_set(alice.id, hk, 1, 10);
    h.store.replace_backup_codes(alice.id, &first).await.unwrap();
    let bobs = code_set(bob.id, hk, 9, 2);
    h.store.replace_backup_codes(bob.id, &bobs).await.unwrap();
    assert_eq!(h.store.unused_backup_codes(alice.id).await.unwrap(), first, "every field round-trips, by index");
    assert!(h.store.use_backup_code(alice.id, 9, &code_hash(1, 9), T0).await.unwrap());

    // A smaller set under another key, made at a sub-microsecond instant (stored truncated).
    let second: Vec<BackupCodeRecord> = code_set(alice.id, other_key, 2, 4)
        .into_iter()
        .map(|c| BackupCodeRecord { created_at: datetime!(2026-05-02 00:00:00.000001999 UTC), ..c })
        .collect();
    h.store.replace_backup_codes(alice.id, &second).await.unwrap();
    let stored: Vec<BackupCodeRecord> = second
        .iter()
        .map(|c| BackupCodeRecord { created_at: datetime!(2026-05-02 00:00:00.000001 UTC), ..c.clone() })
        .collect();
    assert_eq!(h.store.unused_backup_codes(alice.id).await.unwrap(), stored, "only the new set");
    for index in 0..10 {
        assert!(
            !h.store.use_backup_code(alice.id, index, &code_hash(1, index), T0).await.unwrap(),
            "old code {index} is dead"
        );
    }

    // A code stored as used is not usable.
    let mut third = code_set(alice.id, hk, 3, 3);
    if let Some(code) = third.get_mut(1) {
        code.used_at = Some(T0);
    }
    h.store.replace_backup_codes(alice.id, &third).await.unwrap();
    assert_eq!(indices(&h.store.unused_backup_codes(alice.id).await.unwrap()), [0, 2]);
    assert!(!h.store.use_backup_code(alice.id, 1, &code_hash(3, 1), T0).await.unwrap());

    // An empty set kills every code.
    h.store.replace_backup_codes(alice.id, &[]).await.unwrap();
    assert!(h.store.unused_backup_codes(alice.id).await.unwrap().is_empty());
    assert_eq!(h.store.unused_backup_codes(bob.id).await.unwrap(), bobs, "other users' codes untouched");
    assert!(h.store.unused_backup_codes(UserId::generate()).await.unwrap().is_empty());
}

/// A second version of the data key, for codes hashed after a rotation.
async fn hash_key_v2(h: &DurableHarness) -> uuid::Uuid {
    let key = WrappedDataKey {
        id: uuid::Uuid::now_v7(),
        purpose: KeyPurpose::Data,
        version: 2,
        provider: "local:00000000".into(),
        wrapped: vec![8; 60],
        created_at: T0,
    };
    assert!(h.store.insert_data_key(&key).await.unwrap());
    key.id
}

pub async fn a_failed_replacement_keeps_the_old_set(h: &DurableHarness) {
    let (alice, bob, hk) = (owner(h, "alice").await, owner(h, "bob").await, hash_key(h).await);
    let old = code_set(alice.id, hk, 1, 5);
    h.store.replace_backup_codes(alice.id, &old).await.unwrap();

    let mut duplicate = code_set(alice.id, hk, 2, 5);
    if let Some(code) = duplicate.get_mut(4) {
        code.index = 0;
    }
    assert!(h.store.replace_backup_codes(alice.id, &duplicate).await.is_err(), "a duplicate index");
    let mut bad_hash = code_set(alice.id, hk, 2, 5);
    if let Some(code) = bad_hash.get_mut(4) {
        code.hash = vec![1; 31];
    }
    assert!(h.store.replace_backup_codes(alice.id, &bad_hash).await.is_err(), "a 31-byte hash");
    let mut someone_elses = code_set(alice.id, hk, 2, 5);
    if let Some(code) = someone_elses.get_mut(2) {
        code.user_id = bob.id;
    }
    assert!(h.store.replace_backup_codes(alice.id, &someone_elses).await.is_err(), "a code of another user");
    assert_eq!(h.store.unused_backup_codes(alice.id).await.unwrap(), old, "each failure left the old set whole");
    assert!(h.store.unused_backup_codes(bob.id).await.unwrap().is_empty(), "and stored nothing for bob");
}

pub async fn use_backup_code_succeeds_once_and_only_with_the_current_hash(h: &DurableHarness) {
    let (alice, bob, hk) = (owner(h, "alice").await, owner(h, "bob").await, hash_key(h).await);
    h.store.replace_backup_codes(alice.id, &code_set(alice.id, hk, 1, 10)).await.unwrap();
    h.store.replace_backup_codes(bob.id, &code_set(bob.id, hk, 1, 10)).await.unwrap();
    let at = T0 + Duration::hours(1);

    assert!(h.store.use_backup_code(alice.id, 3, &code_hash(1, 3), at).await.unwrap(), "an unused code");
    assert_eq!(indices(&h.store.unused_backup_codes(alice.id).await.unwrap()), [0, 1, 2, 4, 5, 6, 7, 8, 9]);
    assert!(!h.store.use_backup_code(alice.id, 3, &code_hash(1, 3), at).await.unwrap(), "used once already");

    assert!(!h.store.use_backup_code(alice.id, 4, &code_hash(1, 5), at).await.unwrap(), "another code's hash");
    assert!(!h.store.use_backup_code(alice.id, 4, &code_hash(2, 4), at).await.unwrap(), "a wrong hash");
    assert!(!h.store.use_backup_code(alice.id, 4, &[], at).await.unwrap(), "an empty hash");
    assert!(!h.store.use_backup_code(alice.id, 10, &code_hash(1, 10), at).await.unwrap(), "no such index");
    assert!(!h.store.use_backup_code(UserId::generate(), 4, &code_hash(1, 4), at).await.unwrap(), "no such user");
    assert_eq!(h.store.unused_backup_codes(alice.id).await.unwrap().len(), 9, "none of those used a code");
    assert_eq!(h.store.unused_backup_codes(bob.id).await.unwrap().len(), 10, "nor did alice's use bob's");

    // Regenerated meanwhile: the old hash no longer matches, the new one does.
    h.store.replace_backup_codes(alice.id, &code_set(alice.id, hk, 2, 10)).await.unwrap();
    assert!(!h.store.use_backup_code(alice.id, 4, &code_hash(1, 4), at).await.unwrap(), "a regenerated code");
    assert!(h.store.use_backup_code(alice.id, 4, &code_hash(2, 4), at).await.unwrap());
    assert!(h.store.use_backup_code(alice.id, 3, &code_hash(2, 3), at).await.unwrap(), "a new set is all unused");
    assert_eq!(h.store.unused_backup_codes(alice.id).await.unwrap().len(), 8);
}

pub async fn concurrent_uses_of_a_backup_code_have_one_winner(h: &DurableHarness) {
    let (alice, hk) = (owner(h, "alice").await, hash_key(h).await);
    h.store.replace_backup_codes(alice.id, &code_set(alice.id, hk, 1, 10)).await.unwrap();
    let race = |index: u8, same_code: bool| {
        let barrier = Arc::new(Barrier::new(8));
        (0..8u8)
            .map(|i| {
                let (store, barrier) = (h.store.clone(), barrier.clone());
                let index = if same_code { index } else { index + i };
                tokio::spawn(async move {
                    barrier.wait().await;
                    let at = T0 + Duration::seconds(i64::from(i));
                    store.use_backup_code(alice.id, index, &code_hash(1, index), at).await.unwrap()
                })
            })
            .collect::<Vec<_>>()
    };
    let mut winners = 0;
    for task in race(0, true) {
        winners += usize::from(task.await.unwrap());
    }
    assert_eq!(winners, 1, "exactly one of 8 concurrent uses of one code succeeds");
    // Different codes do not get in each other's way.
    let mut winners = 0;
    for task in race(1, false) {
        winners += usize::from(task.await.unwrap());
    }
    assert_eq!(winners, 8, "8 concurrent uses of 8 codes all succeed");
    assert_eq!(indices(&h.store.unused_backup_codes(alice.id).await.unwrap()), [9]);
}

pub async fn concurrent_removals_of_the_last_factors_take_the_codes(h: &DurableHarness) {
    let hk = hash_key(h).await;
    // Each removal may still see the other's factor unless the two are serialized: race them a few
    // times.
    for round in 0..10 {
        let alice = owner(h, &format!("alice{round}")).await;
        confirmed(h, alice.id, FactorKind::Totp).await;
        confirmed(h, alice.id, FactorKind::Sms).await;
        h.store.replace_backup_codes(alice.id, &code_set(alice.id, hk, 1, 10)).await.unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let tasks: Vec<_> = [FactorKind::Totp, FactorKind::Sms]
            .into_iter()
            .map(|kind| {
                let (store, barrier) = (h.store.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.delete_factor(alice.id, kind).await.unwrap()
                })
            })
            .collect();
        for task in tasks {
            assert!(task.await.unwrap(), "round {round}: each removal finds its factor");
        }
        assert!(h.store.factors(alice.id).await.unwrap().is_empty());
        assert!(
            h.store.unused_backup_codes(alice.id).await.unwrap().is_empty(),
            "round {round}: no confirmed factor is left, so no backup code is"
        );
    }
}

pub async fn concurrent_regenerations_leave_one_whole_set(h: &DurableHarness) {
    let hk = hash_key(h).await;
    // Every other round the user has a passkey and no factor: the regenerations must be serialized
    // whatever vouches for the codes.
    for round in 0..10u8 {
        let alice = owner(h, &format!("alice{round}")).await;
        if round % 2 == 0 {
            confirmed(h, alice.id, FactorKind::Totp).await;
        } else {
            assert!(h.store.insert_passkey(&passkey(alice.id, &[round; 16], "only", T0)).await.unwrap());
        }
        h.store.replace_backup_codes(alice.id, &code_set(alice.id, hk, 1, 10)).await.unwrap();
        let sets: Vec<Vec<BackupCodeRecord>> = (2..6).map(|set| code_set(alice.id, hk, set, 10)).collect();
        let barrier = Arc::new(Barrier::new(sets.len()));
        let tasks: Vec<_> = sets
            .iter()
            .cloned()
            .map(|set| {
                let (store, barrier) = (h.store.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.replace_backup_codes(alice.id, &set).await
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap_or_else(|e| panic!("round {round}: a regeneration failed: {e}"));
        }
        let left = h.store.unused_backup_codes(alice.id).await.unwrap();
        assert!(sets.contains(&left), "round {round}: the codes left are one whole set: {left:?}");
    }
}

pub async fn the_schema_refuses_malformed_mfa_rows(h: &DurableHarness) {
    let (alice, hk) = (owner(h, "alice").await, hash_key(h).await);
    let empty = FactorRecord { sealed: String::new(), ..factor(alice.id, FactorKind::Totp, "x", T0) };
    assert!(h.store.put_pending_factor(&empty).await.is_err(), "the schema accepts an empty sealed value");
    assert!(h.store.factors(alice.id).await.unwrap().is_empty(), "nothing was stored");

    let ok = || code_set(alice.id, hk, 1, 1);
    let with = |change: fn(&mut BackupCodeRecord)| {
        let mut set = ok();
        set.iter_mut().for_each(change);
        set
    };
    let malformed = [
        ("a 31-byte hash", with(|c| c.hash = vec![1; 31])),
        ("a 33-byte hash", with(|c| c.hash = vec![1; 33])),
        ("an index above 99", with(|c| c.index = 100)),
        ("an unknown hash key", with(|c| c.hash_key_id = uuid::Uuid::now_v7())),
    ];
    for (what, set) in malformed {
        assert!(h.store.replace_backup_codes(alice.id, &set).await.is_err(), "the schema accepts {what}");
    }
    let nobody = UserId::generate();
    let orphan = code_set(nobody, hk, 1, 1);
    assert!(h.store.replace_backup_codes(nobody, &orphan).await.is_err(), "the schema accepts codes of no user");
    assert!(h.store.unused_backup_codes(alice.id).await.unwrap().is_empty(), "nothing was stored");

    // Well-formed rows go in, so the refusals above are about the constraints.
    let edge = with(|c| c.index = 99);
    h.store.replace_backup_codes(alice.id, &edge).await.unwrap();
    assert_eq!(h.store.unused_backup_codes(alice.id).await.unwrap(), edge);
    assert!(h.store.put_pending_factor(&factor(alice.id, FactorKind::Totp, "x", T0)).await.unwrap());
    assert!(h.database.execute("UPDATE mfa_factors SET kind = 'push'").await.is_err(), "an unknown kind");
    assert_eq!(kinds(&h.store.factors(alice.id).await.unwrap()), [FactorKind::Totp]);
}

pub async fn factors_and_codes_go_with_their_user(h: &DurableHarness) {
    let (alice, bob, hk) = (owner(h, "alice").await, owner(h, "bob").await, hash_key(h).await);
    for u in [&alice, &bob] {
        confirmed(h, u.id, FactorKind::Totp).await;
        assert!(h.store.put_pending_factor(&factor(u.id, FactorKind::Sms, "pending", T0)).await.unwrap());
        h.store.replace_backup_codes(u.id, &code_set(u.id, hk, 1, 10)).await.unwrap();
    }
    assert_eq!(h.database.execute("DELETE FROM users WHERE username = 'alice'").await.unwrap(), 1);
    assert!(h.store.factors(alice.id).await.unwrap().is_empty(), "deleting the user deletes their factors");
    assert!(h.store.unused_backup_codes(alice.id).await.unwrap().is_empty(), "and their backup codes");
    assert_eq!(h.database.fetch_text("SELECT CAST(COUNT(*) AS TEXT) FROM mfa_backup_codes").await.unwrap(), "10");
    assert_eq!(kinds(&h.store.factors(bob.id).await.unwrap()), [FactorKind::Totp, FactorKind::Sms]);
    assert_eq!(h.store.unused_backup_codes(bob.id).await.unwrap().len(), 10);
}
