//! The user store port: accounts, the administrative lock, password changes and history, identical
//! on SQLite and PostgreSQL.

use std::sync::Arc;

use palisade_core::user::{Email, User, UserId, UserInsert, Username};
use time::OffsetDateTime;
use time::macros::datetime;
use tokio::sync::Barrier;

use crate::support::{DurableHarness, conformance};

conformance!(
    DurableHarness,
    [sqlite, postgres],
    [
        users_insert_and_get_by_id_and_username,
        a_taken_username_or_email_stores_nothing,
        other_insert_failures_are_errors_not_conflicts,
        list_users_pages_by_id,
        set_user_locked,
        change_password_is_a_compare_and_set,
        password_history_keeps_the_newest_n,
        keep_history_zero_pushes_nothing,
        rehash_leaves_changed_at_and_history_alone,
        concurrent_password_changes_have_one_winner,
    ]
);

pub const T0: OffsetDateTime = datetime!(2026-05-01 12:00:00 UTC);

/// A user named `name` (with `email` when given), made at `T0`.
pub fn user(name: &str, email: Option<&str>) -> User {
    User {
        id: UserId::generate(),
        username: Username::parse(name).unwrap(),
        email: email.map(|e| Email::parse(e).unwrap()),
        password_hash: phc("initial"),
        password_changed_at: T0,
        created_at: T0,
        locked: false,
        admin: false,
    }
}

/// A PHC-shaped hash, distinct per `tag`.
pub fn phc(tag: &str) -> String {
    format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ${tag}")
}

pub async fn inserted(h: &DurableHarness, user: &User) {
    assert_eq!(h.store.insert_user(user).await.unwrap(), UserInsert::Inserted, "{}", user.username);
}

pub async fn users_insert_and_get_by_id_and_username(h: &DurableHarness) {
    let alice = User {
        // Sub-microsecond instants are stored truncated, like every instant of the durable store.
        password_changed_at: datetime!(2026-05-01 12:00:00.123456789 UTC),
        created_at: datetime!(2026-04-30 08:00:00.000001 UTC),
        locked: true,
        ..user("Alice", Some("Alice@Example.com"))
    };
    inserted(h, &alice).await;
    let stored = User { password_changed_at: datetime!(2026-05-01 12:00:00.123456 UTC), ..alice.clone() };
    assert_eq!(h.store.user_by_id(alice.id).await.unwrap(), Some(stored.clone()), "every field round-trips");
    assert_eq!(stored.email.as_ref().unwrap().as_str(), "Alice@example.com");
    assert_eq!(
        h.store.user_by_username(&Username::parse("ALICE").unwrap()).await.unwrap(),
        Some(stored),
        "found by any spelling of the name"
    );
    // Accounts without an e-mail address do not collide with each other.
    let (bob, carol) = (user("bob", None), user("carol", None));
    inserted(h, &bob).await;
    inserted(h, &carol).await;
    assert_eq!(h.store.user_by_id(bob.id).await.unwrap(), Some(bob));
    assert_eq!(h.store.user_by_id(UserId::generate()).await.unwrap(), None, "an unknown id is absent");
    assert_eq!(h.store.user_by_username(&Username::parse("dave").unwrap()).await.unwrap(), None);
}

pub async fn a_taken_username_or_email_stores_nothing(h: &DurableHarness) {
    let alice = user("alice", Some("alice@example.com"));
    inserted(h, &alice).await;
    let rival = user("ALICE", Some("other@example.com"));
    assert_eq!(h.store.insert_user(&rival).await.unwrap(), UserInsert::UsernameTaken);
    assert_eq!(h.store.user_by_id(rival.id).await.unwrap(), None, "nothing stored");
    let rival = user("alice2", Some("alice@EXAMPLE.COM"));
    assert_eq!(h.store.insert_user(&rival).await.unwrap(), UserInsert::EmailTaken);
    assert_eq!(h.store.user_by_id(rival.id).await.unwrap(), None, "nothing stored");
    assert_eq!(h.store.list_users(None, 10).await.unwrap(), [alice], "only the first account exists");
    // Free once more under another name and address.
    inserted(h, &user("alice2", Some("alice2@example.com"))).await;
}

pub async fn other_insert_failures_are_errors_not_conflicts(h: &DurableHarness) {
    let alice = user("alice", Some("alice@example.com"));
    inserted(h, &alice).await;
    // A reused id is a bug, not a taken name: an error, never `UsernameTaken` or `EmailTaken`.
    let same_id = User { id: alice.id, ..user("someone", Some("someone@example.com")) };
    assert!(h.store.insert_user(&same_id).await.is_err(), "a duplicate id is an error");
    // A check constraint is not a conflict either.
    let empty_hash = User { password_hash: String::new(), ..user("erin", None) };
    assert!(h.store.insert_user(&empty_hash).await.is_err(), "an empty hash is refused as an error");
    assert_eq!(h.store.list_users(None, 10).await.unwrap().len(), 1);
}

pub async fn list_users_pages_by_id(h: &DurableHarness) {
    let mut users: Vec<User> = (0..5).map(|i| user(&format!("user{i}"), None)).collect();
    // Ids out of their insertion order: v4 ids, so the listing's order is the ids', not the inserts'.
    for u in &mut users {
        u.id = UserId::from_uuid(uuid::Uuid::new_v4());
        inserted(h, u).await;
    }
    users.sort_by_key(|u| u.id);
    assert_eq!(h.store.list_users(None, 2).await.unwrap(), users[0..2]);
    assert_eq!(h.store.list_users(Some(users[1].id), 2).await.unwrap(), users[2..4]);
    assert_eq!(h.store.list_users(Some(users[3].id), 10).await.unwrap(), users[4..]);
    assert!(h.store.list_users(Some(users[4].id), 10).await.unwrap().is_empty());
    assert_eq!(h.store.list_users(None, 100).await.unwrap(), users);
    assert!(h.store.list_users(None, 0).await.unwrap().is_empty(), "a limit of 0 returns nothing");
}

pub async fn set_user_locked(h: &DurableHarness) {
    let (alice, bob) = (user("alice", None), user("bob", None));
    inserted(h, &alice).await;
    inserted(h, &bob).await;
    assert!(h.store.set_user_locked(alice.id, true).await.unwrap());
    assert!(h.store.user_by_id(alice.id).await.unwrap().unwrap().locked);
    assert!(!h.store.user_by_id(bob.id).await.unwrap().unwrap().locked, "only that user");
    assert!(h.store.set_user_locked(alice.id, true).await.unwrap(), "locking twice still finds the user");
    assert!(h.store.set_user_locked(alice.id, false).await.unwrap());
    assert!(!h.store.user_by_id(alice.id).await.unwrap().unwrap().locked);
    assert!(!h.store.set_user_locked(UserId::generate(), true).await.unwrap(), "no such user: false");
}

pub async fn change_password_is_a_compare_and_set(h: &DurableHarness) {
    let alice = user("alice", None);
    inserted(h, &alice).await;
    let later = T0 + time::Duration::days(1);
    assert!(!h.store.change_password(alice.id, &phc("wrong"), &phc("new"), later, 5).await.unwrap());
    assert_eq!(h.store.user_by_id(alice.id).await.unwrap().unwrap(), alice, "a failed compare writes nothing");
    assert!(h.store.password_history(alice.id, 10).await.unwrap().is_empty(), "not even history");

    assert!(h.store.change_password(alice.id, &phc("initial"), &phc("new"), later, 5).await.unwrap());
    let changed = h.store.user_by_id(alice.id).await.unwrap().unwrap();
    assert_eq!((changed.password_hash.as_str(), changed.password_changed_at), (phc("new").as_str(), later));
    assert_eq!(h.store.password_history(alice.id, 10).await.unwrap(), [phc("initial")], "the old hash is kept");

    // The old hash no longer matches: a second change from it loses.
    let again = later + time::Duration::hours(1);
    assert!(!h.store.change_password(alice.id, &phc("initial"), &phc("other"), again, 5).await.unwrap());
    assert_eq!(h.store.user_by_id(alice.id).await.unwrap().unwrap(), changed);
    assert_eq!(h.store.password_history(alice.id, 10).await.unwrap(), [phc("initial")]);
    assert!(!h.store.change_password(UserId::generate(), &phc("new"), &phc("x"), again, 5).await.unwrap());
}

pub async fn password_history_keeps_the_newest_n(h: &DurableHarness) {
    let (alice, bob) = (user("alice", None), user("bob", None));
    inserted(h, &alice).await;
    inserted(h, &bob).await;
    // Bob's history must survive Alice's trims.
    assert!(h.store.change_password(bob.id, &phc("initial"), &phc("b1"), T0, 3).await.unwrap());

    let hashes = ["initial", "h1", "h2", "h3", "h4"].map(phc);
    for (i, pair) in hashes.windows(2).enumerate() {
        let at = T0 + time::Duration::minutes(i as i64 + 1);
        assert!(h.store.change_password(alice.id, &pair[0], &pair[1], at, 3).await.unwrap());
    }
    let history = h.store.password_history(alice.id, 10).await.unwrap();
    assert_eq!(history, [phc("h3"), phc("h2"), phc("h1")], "the newest 3, newest first");
    assert_eq!(h.store.password_history(alice.id, 2).await.unwrap(), [phc("h3"), phc("h2")], "at most `limit`");
    assert!(h.store.password_history(alice.id, 0).await.unwrap().is_empty());

    // A smaller limit trims further on the next change.
    assert!(h.store.change_password(alice.id, &phc("h4"), &phc("h5"), T0 + time::Duration::hours(1), 1).await.unwrap());
    assert_eq!(h.store.password_history(alice.id, 10).await.unwrap(), [phc("h4")]);
    assert_eq!(h.store.password_history(bob.id, 10).await.unwrap(), [phc("initial")], "other users untouched");
    assert!(h.store.password_history(UserId::generate(), 10).await.unwrap().is_empty());
}

pub async fn keep_history_zero_pushes_nothing(h: &DurableHarness) {
    let alice = user("alice", None);
    inserted(h, &alice).await;
    assert!(h.store.change_password(alice.id, &phc("initial"), &phc("h1"), T0, 0).await.unwrap());
    assert_eq!(h.store.user_by_id(alice.id).await.unwrap().unwrap().password_hash, phc("h1"), "the hash changed");
    assert!(h.store.password_history(alice.id, 10).await.unwrap().is_empty(), "but no history was kept");
    // Nor is history that was kept before touched.
    assert!(h.store.change_password(alice.id, &phc("h1"), &phc("h2"), T0, 3).await.unwrap());
    assert!(h.store.change_password(alice.id, &phc("h2"), &phc("h3"), T0, 0).await.unwrap());
    assert_eq!(h.store.password_history(alice.id, 10).await.unwrap(), [phc("h1")]);
}

pub async fn rehash_leaves_changed_at_and_history_alone(h: &DurableHarness) {
    let alice = user("alice", None);
    inserted(h, &alice).await;
    let changed_at = T0 + time::Duration::days(2);
    assert!(h.store.change_password(alice.id, &phc("initial"), &phc("h1"), changed_at, 5).await.unwrap());
    assert!(!h.store.rehash_password(alice.id, &phc("initial"), &phc("h1-rehashed")).await.unwrap(), "stale hash");
    assert!(h.store.rehash_password(alice.id, &phc("h1"), &phc("h1-rehashed")).await.unwrap());
    let stored = h.store.user_by_id(alice.id).await.unwrap().unwrap();
    assert_eq!(stored.password_hash, phc("h1-rehashed"));
    assert_eq!(stored.password_changed_at, changed_at, "a rehash is not a password change");
    assert_eq!(h.store.password_history(alice.id, 10).await.unwrap(), [phc("initial")], "history untouched");
    assert!(!h.store.rehash_password(UserId::generate(), &phc("h1"), &phc("x")).await.unwrap());
}

pub async fn concurrent_password_changes_have_one_winner(h: &DurableHarness) {
    let alice = user("alice", None);
    inserted(h, &alice).await;
    let barrier = Arc::new(Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (store, barrier) = (h.store.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let new = phc(&format!("new{i}"));
                store.change_password(alice.id, &phc("initial"), &new, T0, 10).await.map(|won| won.then_some(new))
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        winners.extend(task.await.unwrap().unwrap());
    }
    assert_eq!(winners.len(), 1, "exactly one of 20 changes from the same hash wins");
    assert_eq!(h.store.user_by_id(alice.id).await.unwrap().unwrap().password_hash, winners[0]);
    assert_eq!(h.store.password_history(alice.id, 100).await.unwrap(), [phc("initial")], "one history entry");
}
