//! The API-key store port, identical on SQLite and PostgreSQL.

use std::sync::Arc;

use palisade_core::api_key::ApiKeyRecord;
use palisade_core::crypto::{KeyPurpose, WrappedDataKey};
use palisade_core::user::{User, UserId};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use tokio::sync::Barrier;

use crate::support::{DurableHarness, conformance};
use crate::users::{inserted, user};

conformance!(
    DurableHarness,
    [sqlite, postgres],
    [
        api_keys_insert_and_get,
        api_keys_list_by_owner_and_all_with_paging,
        revoke_api_key_is_conditional,
        concurrent_revocations_have_one_winner,
        touch_api_key_only_moves_forward,
        the_schema_refuses_malformed_api_keys,
        api_keys_go_with_their_owner,
        restore_api_key_lifts_only_that_revocation,
    ]
);

const T0: OffsetDateTime = datetime!(2026-05-01 12:00:00 UTC);

/// A data key to hash secrets under (the schema requires one).
async fn hash_key(h: &DurableHarness) -> uuid::Uuid {
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

async fn owner(h: &DurableHarness, name: &str) -> User {
    let u = user(name, None);
    inserted(h, &u).await;
    u
}

fn api_key(owner: UserId, hash_key_id: uuid::Uuid, name: &str) -> ApiKeyRecord {
    ApiKeyRecord {
        id: uuid::Uuid::now_v7(),
        owner,
        name: name.into(),
        secret_hash: vec![0xab; 32],
        hash_key_id,
        scopes: vec!["users:read".into(), "audit:read".into()],
        ip_allow: vec!["10.0.0.0/8".into(), "2001:db8::/32".into()],
        per_minute: Some(60),
        per_hour: None,
        per_day: Some(u32::MAX),
        created_at: T0,
        expires_at: Some(T0 + Duration::days(90)),
        last_used_at: None,
        revoked_at: None,
    }
}

pub async fn api_keys_insert_and_get(h: &DurableHarness) {
    let (alice, hk) = (owner(h, "alice").await, hash_key(h).await);
    let full = ApiKeyRecord {
        // Sub-microsecond instants are stored truncated, like every instant of the durable store.
        created_at: datetime!(2026-05-01 12:00:00.123456789 UTC),
        last_used_at: Some(datetime!(2026-05-02 00:00:00 UTC)),
        revoked_at: Some(datetime!(2026-05-03 00:00:00 UTC)),
        name: "CI deploy ✓".into(),
        ..api_key(alice.id, hk, "ci")
    };
    let bare = ApiKeyRecord {
        scopes: Vec::new(),
        ip_allow: Vec::new(),
        per_minute: None,
        per_hour: None,
        per_day: None,
        expires_at: None,
        secret_hash: (0..32).collect(),
        ..api_key(alice.id, hk, "bare")
    };
    h.store.insert_api_key(&full).await.unwrap();
    h.store.insert_api_key(&bare).await.unwrap();
    let stored = ApiKeyRecord { created_at: datetime!(2026-05-01 12:00:00.123456 UTC), ..full.clone() };
    assert_eq!(h.store.api_key(full.id).await.unwrap(), Some(stored), "every field round-trips");
    assert_eq!(h.store.api_key(bare.id).await.unwrap(), Some(bare.clone()), "empty lists and no limits too");
    assert_eq!(h.store.api_key(uuid::Uuid::now_v7()).await.unwrap(), None);
    let again = ApiKeyRecord { name: "other".into(), ..bare.clone() };
    assert!(h.store.insert_api_key(&again).await.is_err(), "a duplicate id is an error");
    assert_eq!(h.store.api_key(bare.id).await.unwrap(), Some(bare), "and changes nothing");
}

pub async fn api_keys_list_by_owner_and_all_with_paging(h: &DurableHarness) {
    let (alice, bob, hk) = (owner(h, "alice").await, owner(h, "bob").await, hash_key(h).await);
    // Made in time order, interleaved between owners, inserted out of order.
    let keys: Vec<ApiKeyRecord> =
        (0..7).map(|i| api_key(if i % 2 == 0 { alice.id } else { bob.id }, hk, &format!("key-{i}"))).collect();
    for k in keys.iter().rev() {
        h.store.insert_api_key(k).await.unwrap();
    }
    let ids = |list: Vec<ApiKeyRecord>| list.into_iter().map(|k| k.id).collect::<Vec<_>>();
    let all: Vec<uuid::Uuid> = keys.iter().map(|k| k.id).collect();
    let alices: Vec<uuid::Uuid> = keys.iter().filter(|k| k.owner == alice.id).map(|k| k.id).collect();
    assert_eq!(alices.len(), 4);

    assert_eq!(ids(h.store.api_keys(None, None, 100).await.unwrap()), all, "everyone's, by id");
    assert_eq!(ids(h.store.api_keys(Some(alice.id), None, 100).await.unwrap()), alices, "one owner's");
    assert_eq!(ids(h.store.api_keys(None, None, 3).await.unwrap()), all[..3], "at most limit");
    assert_eq!(ids(h.store.api_keys(None, Some(all[2]), 3).await.unwrap()), all[3..6], "those after");
    assert_eq!(ids(h.store.api_keys(None, Some(all[6]), 3).await.unwrap()), [] as [uuid::Uuid; 0]);
    assert_eq!(ids(h.store.api_keys(Some(alice.id), None, 2).await.unwrap()), alices[..2]);
    assert_eq!(ids(h.store.api_keys(Some(alice.id), Some(alices[1]), 2).await.unwrap()), alices[2..]);
    // `after` need not be one of the owner's keys: paging goes by id.
    assert_eq!(ids(h.store.api_keys(Some(alice.id), Some(all[1]), 10).await.unwrap()), alices[1..]);
    assert_eq!(ids(h.store.api_keys(Some(bob.id), Some(all[5]), 10).await.unwrap()), [] as [uuid::Uuid; 0]);
    assert!(h.store.api_keys(Some(UserId::generate()), None, 10).await.unwrap().is_empty(), "no such owner");
    assert!(h.store.api_keys(None, None, 0).await.unwrap().is_empty(), "limit 0");

    // Revoked keys are listed too (the caller decides).
    assert!(h.store.revoke_api_key(all[0], None, T0).await.unwrap());
    assert_eq!(ids(h.store.api_keys(None, None, 100).await.unwrap()), all);
}

pub async fn revoke_api_key_is_conditional(h: &DurableHarness) {
    let (alice, bob, hk) = (owner(h, "alice").await, owner(h, "bob").await, hash_key(h).await);
    let key = api_key(alice.id, hk, "ci");
    let other = api_key(alice.id, hk, "other");
    h.store.insert_api_key(&key).await.unwrap();
    h.store.insert_api_key(&other).await.unwrap();
    let at = T0 + Duration::days(1);

    assert!(!h.store.revoke_api_key(key.id, Some(bob.id), at).await.unwrap(), "someone else's key: false");
    assert_eq!(h.store.api_key(key.id).await.unwrap().unwrap().revoked_at, None, "and it stays live");
    assert!(!h.store.revoke_api_key(uuid::Uuid::now_v7(), None, at).await.unwrap(), "no such key: false");

    assert!(h.store.revoke_api_key(key.id, Some(alice.id), at).await.unwrap(), "the owner revokes");
    assert_eq!(h.store.api_key(key.id).await.unwrap().unwrap().revoked_at, Some(at));
    assert!(!h.store.revoke_api_key(key.id, Some(alice.id), at + Duration::hours(1)).await.unwrap(), "twice: false");
    assert!(!h.store.revoke_api_key(key.id, None, at + Duration::hours(1)).await.unwrap(), "twice, by anyone: false");
    assert_eq!(h.store.api_key(key.id).await.unwrap().unwrap().revoked_at, Some(at), "the first revocation stays");
    assert_eq!(h.store.api_key(other.id).await.unwrap().unwrap().revoked_at, None, "only that key");

    assert!(h.store.revoke_api_key(other.id, None, at).await.unwrap(), "no owner given: an administrator revokes");
}

pub async fn concurrent_revocations_have_one_winner(h: &DurableHarness) {
    let (alice, hk) = (owner(h, "alice").await, hash_key(h).await);
    let key = api_key(alice.id, hk, "ci");
    h.store.insert_api_key(&key).await.unwrap();
    let barrier = Arc::new(Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (store, barrier) = (h.store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.revoke_api_key(key.id, Some(alice.id), T0 + Duration::seconds(i)).await.unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap());
    }
    assert_eq!(winners, 1, "exactly one of 20 concurrent revocations revokes");
}

pub async fn touch_api_key_only_moves_forward(h: &DurableHarness) {
    let (alice, hk) = (owner(h, "alice").await, hash_key(h).await);
    let key = api_key(alice.id, hk, "ci");
    let untouched = api_key(alice.id, hk, "untouched");
    h.store.insert_api_key(&key).await.unwrap();
    h.store.insert_api_key(&untouched).await.unwrap();
    let last_used = |id| async move { h.store.api_key(id).await.unwrap().unwrap().last_used_at };

    let t1 = T0 + Duration::minutes(5);
    h.store.touch_api_key(key.id, t1).await.unwrap();
    assert_eq!(last_used(key.id).await, Some(t1), "the first use is recorded");
    h.store.touch_api_key(key.id, t1 - Duration::minutes(1)).await.unwrap();
    assert_eq!(last_used(key.id).await, Some(t1), "an earlier use does not move it back");
    h.store.touch_api_key(key.id, t1).await.unwrap();
    assert_eq!(last_used(key.id).await, Some(t1));
    let t2 = t1 + Duration::microseconds(1);
    h.store.touch_api_key(key.id, t2).await.unwrap();
    assert_eq!(last_used(key.id).await, Some(t2), "a later use moves it forward");
    assert_eq!(last_used(untouched.id).await, None, "only that key");
    h.store.touch_api_key(uuid::Uuid::now_v7(), t2).await.unwrap();

    // Touching a revoked key still records the use; it does not revive it.
    assert!(h.store.revoke_api_key(key.id, None, t2).await.unwrap());
    let t3 = t2 + Duration::minutes(1);
    h.store.touch_api_key(key.id, t3).await.unwrap();
    let stored = h.store.api_key(key.id).await.unwrap().unwrap();
    assert_eq!((stored.last_used_at, stored.revoked_at), (Some(t3), Some(t2)));
}

pub async fn the_schema_refuses_malformed_api_keys(h: &DurableHarness) {
    let (alice, hk) = (owner(h, "alice").await, hash_key(h).await);
    let ok = || api_key(alice.id, hk, "ci");
    let malformed = [
        ("an empty name", ApiKeyRecord { name: String::new(), ..ok() }),
        ("a 31-byte hash", ApiKeyRecord { secret_hash: vec![1; 31], ..ok() }),
        ("a 33-byte hash", ApiKeyRecord { secret_hash: vec![1; 33], ..ok() }),
        ("an unknown owner", ApiKeyRecord { owner: UserId::generate(), ..ok() }),
        ("an unknown hash key", ApiKeyRecord { hash_key_id: uuid::Uuid::now_v7(), ..ok() }),
        ("a per-minute limit of 0", ApiKeyRecord { per_minute: Some(0), ..ok() }),
        ("a per-hour limit of 0", ApiKeyRecord { per_hour: Some(0), ..ok() }),
        ("a per-day limit of 0", ApiKeyRecord { per_day: Some(0), ..ok() }),
    ];
    for (what, k) in malformed {
        assert!(h.store.insert_api_key(&k).await.is_err(), "the schema accepts {what}");
    }
    assert!(h.store.api_keys(None, None, 10).await.unwrap().is_empty(), "nothing was stored");
    for (what, sql) in [
        ("scopes that are not JSON", "UPDATE api_keys SET scopes = 'users:read'"),
        ("scopes that are not an array", "UPDATE api_keys SET scopes = '{\"a\":1}'"),
        ("an allow-list that is not an array", "UPDATE api_keys SET ip_allow = '\"10.0.0.0/8\"'"),
    ] {
        h.store.insert_api_key(&ok()).await.unwrap();
        assert!(h.database.execute(sql).await.is_err(), "the schema accepts {what}");
        h.database.execute("DELETE FROM api_keys").await.unwrap();
    }
}

pub async fn api_keys_go_with_their_owner(h: &DurableHarness) {
    let (alice, bob, hk) = (owner(h, "alice").await, owner(h, "bob").await, hash_key(h).await);
    let (a, b) = (api_key(alice.id, hk, "a"), api_key(bob.id, hk, "b"));
    h.store.insert_api_key(&a).await.unwrap();
    h.store.insert_api_key(&b).await.unwrap();
    assert_eq!(h.database.execute("DELETE FROM users WHERE username = 'alice'").await.unwrap(), 1);
    assert_eq!(h.store.api_key(a.id).await.unwrap(), None, "deleting the user deletes their keys");
    assert_eq!(h.store.api_key(b.id).await.unwrap(), Some(b));
}

pub async fn restore_api_key_lifts_only_that_revocation(h: &DurableHarness) {
    let (alice, hk) = (owner(h, "alice").await, hash_key(h).await);
    let key = api_key(alice.id, hk, "ci");
    let other = api_key(alice.id, hk, "other");
    h.store.insert_api_key(&key).await.unwrap();
    h.store.insert_api_key(&other).await.unwrap();
    let at = T0 + Duration::microseconds(86_400_123_457);
    let revoked_at = |id| async move { h.store.api_key(id).await.unwrap().unwrap().revoked_at };

    assert!(!h.store.restore_api_key(key.id, at).await.unwrap(), "a live key: false");
    assert_eq!(revoked_at(key.id).await, None, "and it stays live");
    assert!(!h.store.restore_api_key(uuid::Uuid::now_v7(), at).await.unwrap(), "no such key: false");

    // Both revoked at the same instant: a restore lifts only the key named.
    assert!(h.store.revoke_api_key(key.id, None, at).await.unwrap());
    assert!(h.store.revoke_api_key(other.id, None, at).await.unwrap());
    for wrong in [at - Duration::microseconds(1), at + Duration::microseconds(1), T0] {
        assert!(!h.store.restore_api_key(key.id, wrong).await.unwrap(), "revoked at another instant: false");
    }
    assert_eq!(revoked_at(key.id).await, Some(at), "and it stays revoked");

    assert!(h.store.restore_api_key(key.id, at).await.unwrap(), "the revocation at that instant is lifted");
    assert_eq!(h.store.api_key(key.id).await.unwrap(), Some(key.clone()), "live again, every other field as it was");
    assert_eq!(revoked_at(other.id).await, Some(at), "only that key");
    assert!(!h.store.restore_api_key(key.id, at).await.unwrap(), "twice: false");

    // Restored, it can be revoked again; the old instant no longer lifts the new revocation.
    let later = at + Duration::hours(1);
    assert!(h.store.revoke_api_key(key.id, Some(alice.id), later).await.unwrap(), "revocable again");
    assert_eq!(revoked_at(key.id).await, Some(later));
    assert!(!h.store.restore_api_key(key.id, at).await.unwrap(), "the old revocation is not the one in place");
    assert_eq!(revoked_at(key.id).await, Some(later));
    assert!(h.store.restore_api_key(key.id, later).await.unwrap());
    assert_eq!(revoked_at(key.id).await, None);
}
