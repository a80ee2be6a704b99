//! The signing-key store port, identical on SQLite and PostgreSQL.

use std::sync::Arc;

use palisade_core::token::SigningKeyRecord;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use tokio::sync::Barrier;

use crate::support::{DurableHarness, conformance};

conformance!(
    DurableHarness,
    [sqlite, postgres],
    [
        signing_keys_insert_list_retire,
        duplicate_signing_key_version_is_refused,
        the_schema_refuses_malformed_keys,
        concurrent_signing_key_creation_has_one_winner,
    ]
);

const T0: OffsetDateTime = datetime!(2026-05-01 12:00:00 UTC);

/// A well-formed key of `algorithm` and `version` with a fresh kid; its sealed text names the version.
pub fn key(algorithm: &str, version: u32, created_at: OffsetDateTime) -> SigningKeyRecord {
    let kid = format!("{algorithm}-{version}-{}", uuid::Uuid::new_v4().simple());
    SigningKeyRecord {
        public_jwk: (algorithm != "HS256")
            .then(|| format!(r#"{{"kty":"OKP","crv":"Ed25519","x":"{kid}","kid":"{kid}"}}"#)),
        kid,
        algorithm: algorithm.into(),
        version,
        private_key: format!("v1.local.sealed-{version}"),
        created_at,
        retired_at: None,
    }
}

pub async fn signing_keys_insert_list_retire(h: &DurableHarness) {
    assert!(h.store.signing_keys().await.unwrap().is_empty());
    let ed1 = key("EdDSA", 1, T0);
    let hs1 = key("HS256", 1, T0 + Duration::hours(1));
    let ed2 = SigningKeyRecord {
        created_at: datetime!(2026-05-03 00:00:00.123456789 UTC),
        retired_at: Some(datetime!(2026-06-01 00:00:00.5 UTC)),
        ..key("EdDSA", 2, T0)
    };
    // Inserted out of order: listing is oldest first.
    for k in [&ed2, &hs1, &ed1] {
        assert!(h.store.insert_signing_key(k).await.unwrap(), "{}", k.kid);
    }
    let ed2_stored = SigningKeyRecord { created_at: datetime!(2026-05-03 00:00:00.123456 UTC), ..ed2.clone() };
    assert_eq!(h.store.signing_keys().await.unwrap(), [ed1.clone(), hs1.clone(), ed2_stored.clone()]);

    let at = T0 + Duration::days(7);
    assert!(h.store.retire_signing_key(&ed1.kid, at).await.unwrap());
    assert!(h.store.retire_signing_key(&ed1.kid, at + Duration::days(1)).await.unwrap(), "the key exists");
    let retired = |keys: Vec<SigningKeyRecord>, kid: &str| keys.into_iter().find(|k| k.kid == kid).unwrap().retired_at;
    assert_eq!(
        retired(h.store.signing_keys().await.unwrap(), &ed1.kid),
        Some(at),
        "a later retirement changes nothing"
    );
    assert!(h.store.retire_signing_key(&ed1.kid, at - Duration::days(1)).await.unwrap());
    assert_eq!(retired(h.store.signing_keys().await.unwrap(), &ed1.kid), Some(at - Duration::days(1)), "earlier wins");
    assert_eq!(retired(h.store.signing_keys().await.unwrap(), &hs1.kid), None, "only that key");
    assert!(!h.store.retire_signing_key("no-such-kid", at).await.unwrap(), "no such key: false");
    assert_eq!(h.store.signing_keys().await.unwrap().len(), 3);
}

pub async fn duplicate_signing_key_version_is_refused(h: &DurableHarness) {
    let first = key("ES256", 1, T0);
    assert!(h.store.insert_signing_key(&first).await.unwrap());
    let rival = key("ES256", 1, T0 + Duration::seconds(1));
    assert!(!h.store.insert_signing_key(&rival).await.unwrap(), "that version exists: false");
    assert_eq!(h.store.signing_keys().await.unwrap(), std::slice::from_ref(&first), "and nothing was stored");
    assert!(h.store.insert_signing_key(&key("RS256", 1, T0)).await.unwrap(), "another algorithm's version 1");
    // A reused kid is a bug, not a lost race: an error, never `false`.
    let same_kid = SigningKeyRecord { version: 2, ..first.clone() };
    assert!(h.store.insert_signing_key(&same_kid).await.is_err(), "a duplicate kid is an error");
}

pub async fn the_schema_refuses_malformed_keys(h: &DurableHarness) {
    let malformed = [
        ("an unknown algorithm", SigningKeyRecord { algorithm: "none".into(), ..key("EdDSA", 1, T0) }),
        ("HS256 with a public key", SigningKeyRecord { public_jwk: Some("{}".into()), ..key("HS256", 1, T0) }),
        ("EdDSA without a public key", SigningKeyRecord { public_jwk: None, ..key("EdDSA", 1, T0) }),
        (
            "a public key that is not a JSON object",
            SigningKeyRecord { public_jwk: Some("[1]".into()), ..key("EdDSA", 1, T0) },
        ),
        ("a public key that is not JSON", SigningKeyRecord { public_jwk: Some("{kty".into()), ..key("EdDSA", 1, T0) }),
        ("version 0", key("EdDSA", 0, T0)),
        ("an empty private key", SigningKeyRecord { private_key: String::new(), ..key("EdDSA", 1, T0) }),
    ];
    for (what, k) in malformed {
        assert!(h.store.insert_signing_key(&k).await.is_err(), "the schema accepts {what}");
    }
    assert!(h.store.insert_signing_key(&SigningKeyRecord { version: u32::MAX, ..key("EdDSA", 1, T0) }).await.is_err());
    assert!(h.store.signing_keys().await.unwrap().is_empty());
    assert!(h.store.insert_signing_key(&key("EdDSA", 1, T0)).await.unwrap(), "a well-formed key goes in");
}

pub async fn concurrent_signing_key_creation_has_one_winner(h: &DurableHarness) {
    let barrier = Arc::new(Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, barrier) = (h.store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.insert_signing_key(&key("EdDSA", 3, T0)).await.unwrap()
            })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        winners += usize::from(task.await.unwrap());
    }
    assert_eq!(winners, 1, "exactly one of 20 instances creates version 3");
    assert_eq!(h.store.signing_keys().await.unwrap().len(), 1);
}
