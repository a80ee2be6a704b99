//! The compliance report counts (`ComplianceStatsStore`), identical on SQLite and PostgreSQL: what
//! counts as an administrator covered by a second factor, and what as a hash of another kind.

use palisade_core::compliance::report::AccountCounts;
use palisade_core::mfa::FactorKind;
use palisade_core::user::User;

use crate::mfa::{T0, confirmed, factor, owner};
use crate::passkeys::passkey;
use crate::support::{DurableHarness, conformance};
use crate::users::{inserted, user};

conformance!(
    DurableHarness,
    [sqlite, postgres],
    [
        an_empty_store_counts_nothing,
        administrators_count_as_covered_with_a_confirmed_factor_or_a_passkey,
        hashes_other_than_argon2id_are_counted,
        counts_follow_deleted_factors_and_withdrawn_roles,
    ]
);

async fn admin(h: &DurableHarness, name: &str) -> User {
    let u = owner(h, name).await;
    assert!(h.store.set_user_admin(u.id, true).await.unwrap());
    u
}

pub async fn an_empty_store_counts_nothing(h: &DurableHarness) {
    assert_eq!(h.store.account_counts().await.unwrap(), AccountCounts::default());
}

pub async fn administrators_count_as_covered_with_a_confirmed_factor_or_a_passkey(h: &DurableHarness) {
    let with_totp = admin(h, "root").await;
    confirmed(h, with_totp.id, FactorKind::Totp).await;
    let with_passkey = admin(h, "ops").await;
    assert!(h.store.insert_passkey(&passkey(with_passkey.id, b"cred-ops", "laptop", T0)).await.unwrap());
    // A factor set up but never confirmed covers no one.
    let pending = admin(h, "pending").await;
    assert!(h.store.put_pending_factor(&factor(pending.id, FactorKind::Sms, "phone", T0)).await.unwrap());
    admin(h, "bare").await;
    // Users who are not administrators count in the overall share only.
    let alice = owner(h, "alice").await;
    confirmed(h, alice.id, FactorKind::Email).await;
    confirmed(h, alice.id, FactorKind::Totp).await;
    owner(h, "bob").await;

    let counts = h.store.account_counts().await.unwrap();
    assert_eq!(
        counts,
        AccountCounts { users: 6, users_with_mfa: 3, admins: 4, admins_with_mfa: 2, other_hashes: 0 },
        "two factors of one user count once"
    );
}

pub async fn hashes_other_than_argon2id_are_counted(h: &DurableHarness) {
    owner(h, "modern").await;
    for (name, hash) in [
        ("legacy", "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW"),
        ("older", "$argon2i$v=19$m=4096,t=3,p=1$c2FsdHNhbHQ$aGFzaA"),
        // `_` and `%` must not act as wildcards in the prefix.
        ("lookalike", "$argon2idX$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA"),
    ] {
        inserted(h, &User { password_hash: hash.to_owned(), ..user(name, None) }).await;
    }
    let counts = h.store.account_counts().await.unwrap();
    assert_eq!((counts.users, counts.other_hashes), (4, 3));
}

pub async fn counts_follow_deleted_factors_and_withdrawn_roles(h: &DurableHarness) {
    let root = admin(h, "root").await;
    confirmed(h, root.id, FactorKind::Totp).await;
    let ops = admin(h, "ops").await;
    confirmed(h, ops.id, FactorKind::Totp).await;
    assert_eq!(h.store.account_counts().await.unwrap().admins_with_mfa, 2);

    assert!(h.store.delete_factor(root.id, FactorKind::Totp).await.unwrap());
    let counts = h.store.account_counts().await.unwrap();
    assert_eq!((counts.admins, counts.admins_with_mfa, counts.users_with_mfa), (2, 1, 1));

    assert!(h.store.set_user_admin(ops.id, false).await.unwrap());
    let counts = h.store.account_counts().await.unwrap();
    assert_eq!((counts.admins, counts.admins_with_mfa, counts.users_with_mfa), (1, 0, 1));
}
