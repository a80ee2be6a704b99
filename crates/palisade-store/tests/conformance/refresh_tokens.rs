//! The refresh-token store port: families, rotation (with reuse detection and the grace window),
//! revocation and purging, identical on SQLite and PostgreSQL. Time is explicit: every call takes
//! its `now`.

use std::sync::Arc;

use palisade_core::token::{RefreshTokenRecord, RevokeReason, Rotation, SessionId, TokenHash};
use palisade_core::user::{User, UserId};
use time::{Duration, OffsetDateTime};
use tokio::sync::Barrier;

use crate::support::{DurableHarness, conformance};
use crate::users::{T0, inserted, user};

conformance!(
    DurableHarness,
    [sqlite, postgres],
    [
        rotation_spends_the_token_and_issues_a_live_child,
        replaying_a_spent_token_revokes_its_family,
        expired_and_unknown_tokens,
        grace_window_lets_a_retry_rotate_again,
        revoke_session_and_user_families,
        purge_deletes_tokens_expired_before,
        concurrent_rotations_of_one_token_have_one_winner,
        concurrent_retries_within_the_grace_window_all_rotate,
        a_family_starts_without_a_parent_and_with_a_known_user,
    ]
);

const NO_GRACE: Duration = Duration::ZERO;
const TTL: Duration = Duration::days(30);

fn token_hash() -> TokenHash {
    let mut bytes = [0u8; 32];
    bytes[..16].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes[16..].copy_from_slice(uuid::Uuid::new_v4().as_bytes());
    TokenHash(bytes)
}

/// Stores the first token of a new family of `user`'s `session`, issued at `at`, live for `ttl`.
async fn family(
    h: &DurableHarness,
    user: &User,
    session: SessionId,
    at: OffsetDateTime,
    ttl: Duration,
) -> RefreshTokenRecord {
    let record = RefreshTokenRecord {
        hash: token_hash(),
        family_id: uuid::Uuid::now_v7(),
        parent: None,
        user_id: user.id,
        session_id: session,
        issued_at: at,
        expires_at: at + ttl,
    };
    h.store.insert_refresh_family(&record).await.unwrap();
    record
}

/// Presents `presented` at `now`; the child it would get expires `TTL` later. Returns the answer and
/// the child's hash.
async fn rotate(
    h: &DurableHarness,
    presented: &TokenHash,
    now: OffsetDateTime,
    grace: Duration,
) -> (Rotation, TokenHash) {
    let next = token_hash();
    (h.store.rotate_refresh_token(presented, &next, now + TTL, now, grace).await.unwrap(), next)
}

fn rotated(r: &RefreshTokenRecord) -> Rotation {
    Rotation::Rotated { family_id: r.family_id, user_id: r.user_id, session_id: r.session_id }
}

fn reused(r: &RefreshTokenRecord) -> Rotation {
    Rotation::Reused { family_id: r.family_id, user_id: r.user_id, session_id: r.session_id }
}

/// Each family's revocation reason (`live` when not revoked), in the order the families were made.
async fn reasons(h: &DurableHarness) -> Vec<String> {
    h.database
        .fetch_texts("SELECT COALESCE(revoked_reason, 'live') FROM refresh_families ORDER BY created_at")
        .await
        .unwrap()
}

async fn alice(h: &DurableHarness) -> User {
    let alice = user("alice", None);
    inserted(h, &alice).await;
    alice
}

pub async fn rotation_spends_the_token_and_issues_a_live_child(h: &DurableHarness) {
    let alice = alice(h).await;
    let first = family(h, &alice, SessionId::generate(), T0, Duration::hours(1)).await;
    let (answer, second) = rotate(h, &first.hash, T0 + Duration::minutes(1), NO_GRACE).await;
    assert_eq!(answer, rotated(&first), "a live token rotates, keeping family, user and session");
    let (answer, third) = rotate(h, &second, T0 + Duration::minutes(2), NO_GRACE).await;
    assert_eq!(answer, rotated(&first), "the child is live and inherits the lineage");
    assert_eq!(
        h.database
            .fetch_text("SELECT CAST(COUNT(*) AS TEXT) FROM refresh_tokens WHERE spent_at IS NULL")
            .await
            .unwrap(),
        "1",
        "only the newest token is unspent"
    );
    // The child expires when the caller said, not when its parent does (T0 + 1 h).
    let now = T0 + Duration::minutes(3);
    let fourth = token_hash();
    let answer = h.store.rotate_refresh_token(&third, &fourth, now + Duration::minutes(10), now, NO_GRACE).await;
    assert_eq!(answer.unwrap(), rotated(&first));
    let (answer, _) = rotate(h, &fourth, now + Duration::minutes(10), NO_GRACE).await;
    assert_eq!(answer, Rotation::Expired, "the child's own expiry applies");
    let (answer, _) = rotate(h, &fourth, now + Duration::minutes(10) - Duration::microseconds(1), NO_GRACE).await;
    assert_eq!(answer, rotated(&first), "and it was live until then");
}

pub async fn replaying_a_spent_token_revokes_its_family(h: &DurableHarness) {
    let alice = alice(h).await;
    let stolen = family(h, &alice, SessionId::generate(), T0, TTL).await;
    let other = family(h, &alice, SessionId::generate(), T0 + Duration::microseconds(1), TTL).await;
    let (answer, child) = rotate(h, &stolen.hash, T0 + Duration::minutes(1), NO_GRACE).await;
    assert_eq!(answer, rotated(&stolen));

    let (answer, not_issued) = rotate(h, &stolen.hash, T0 + Duration::minutes(2), NO_GRACE).await;
    assert_eq!(answer, reused(&stolen), "a spent token presented again is reuse");
    assert_eq!(reasons(h).await, ["reuse", "live"], "its family is revoked for reuse, and only it");
    let (answer, _) = rotate(h, &not_issued, T0 + Duration::minutes(3), NO_GRACE).await;
    assert_eq!(answer, Rotation::Unknown, "a reuse issues nothing");
    let (answer, _) = rotate(h, &child, T0 + Duration::minutes(3), NO_GRACE).await;
    assert_eq!(answer, Rotation::Revoked, "the live child dies with its family");
    let (answer, _) = rotate(h, &stolen.hash, T0 + Duration::minutes(4), NO_GRACE).await;
    assert_eq!(answer, Rotation::Revoked, "a family is revoked once; later replays see it revoked");
    let (answer, _) = rotate(h, &other.hash, T0 + Duration::minutes(5), NO_GRACE).await;
    assert_eq!(answer, rotated(&other), "the user's other sessions are untouched");
    assert_eq!(reasons(h).await, ["reuse", "live"]);
}

pub async fn expired_and_unknown_tokens(h: &DurableHarness) {
    let alice = alice(h).await;
    let (answer, next) = rotate(h, &token_hash(), T0, NO_GRACE).await;
    assert_eq!(answer, Rotation::Unknown);
    assert_eq!(rotate(h, &next, T0, NO_GRACE).await.0, Rotation::Unknown, "an unknown token issues nothing");

    let hour = Duration::hours(1);
    let at = |n: i64| T0 + Duration::microseconds(n);
    let lapsed = family(h, &alice, SessionId::generate(), at(0), hour).await;
    assert_eq!(rotate(h, &lapsed.hash, lapsed.expires_at, NO_GRACE).await.0, Rotation::Expired, "expiry is exclusive");
    let live = family(h, &alice, SessionId::generate(), at(1), hour).await;
    let just_before = live.expires_at - Duration::microseconds(1);
    assert_eq!(rotate(h, &live.hash, just_before, NO_GRACE).await.0, rotated(&live));

    // A spent token that has also expired is expired, not reused: its family lives on.
    let spent = family(h, &alice, SessionId::generate(), at(2), hour).await;
    let now = T0 + Duration::minutes(10);
    let child = token_hash();
    let answer = h.store.rotate_refresh_token(&spent.hash, &child, now + Duration::hours(2), now, NO_GRACE).await;
    assert_eq!(answer.unwrap(), rotated(&spent));
    assert_eq!(rotate(h, &spent.hash, T0 + Duration::minutes(90), NO_GRACE).await.0, Rotation::Expired);
    assert_eq!(rotate(h, &child, T0 + Duration::minutes(90), NO_GRACE).await.0, rotated(&spent));

    // Revoked comes before expired.
    let ended = family(h, &alice, SessionId::generate(), at(3), hour).await;
    h.store.revoke_session_families(ended.session_id, RevokeReason::Logout, T0).await.unwrap();
    assert_eq!(rotate(h, &ended.hash, T0 + Duration::hours(2), NO_GRACE).await.0, Rotation::Revoked);
    assert_eq!(reasons(h).await, ["live", "live", "live", "logout"], "expiry revokes nothing");
}

pub async fn grace_window_lets_a_retry_rotate_again(h: &DurableHarness) {
    let alice = alice(h).await;
    let grace = Duration::seconds(5);
    let spent_at = T0 + Duration::minutes(1);

    let retried = family(h, &alice, SessionId::generate(), T0, TTL).await;
    let (answer, first_child) = rotate(h, &retried.hash, spent_at, grace).await;
    assert_eq!(answer, rotated(&retried));
    let (answer, second_child) = rotate(h, &retried.hash, spent_at + Duration::seconds(1), grace).await;
    assert_eq!(answer, rotated(&retried), "spent 1 s ago, within a 5 s grace: rotated again");
    // The retry kept the first spend time: 5 s after it, the window has closed (it would still be
    // open had the retry moved the spend time to +1 s).
    let (answer, _) = rotate(h, &retried.hash, spent_at + Duration::seconds(5), grace).await;
    assert_eq!(answer, reused(&retried), "grace counts from the first spend, and is exclusive");
    assert_eq!(rotate(h, &first_child, spent_at + Duration::seconds(6), grace).await.0, Rotation::Revoked);
    assert_eq!(rotate(h, &second_child, spent_at + Duration::seconds(6), grace).await.0, Rotation::Revoked);

    // Both children of a retry are live until then.
    let twice = family(h, &alice, SessionId::generate(), T0 + Duration::microseconds(1), TTL).await;
    let (_, a) = rotate(h, &twice.hash, spent_at, grace).await;
    let (_, b) = rotate(h, &twice.hash, spent_at + Duration::seconds(4), grace).await;
    assert_eq!(rotate(h, &a, spent_at + Duration::seconds(10), NO_GRACE).await.0, rotated(&twice));
    assert_eq!(rotate(h, &b, spent_at + Duration::seconds(10), NO_GRACE).await.0, rotated(&twice));

    // With no grace, a retry even in the same microsecond is reuse.
    let strict = family(h, &alice, SessionId::generate(), T0 + Duration::microseconds(2), TTL).await;
    assert_eq!(rotate(h, &strict.hash, spent_at, NO_GRACE).await.0, rotated(&strict));
    assert_eq!(rotate(h, &strict.hash, spent_at, NO_GRACE).await.0, reused(&strict));
    let late = family(h, &alice, SessionId::generate(), T0 + Duration::microseconds(3), TTL).await;
    assert_eq!(rotate(h, &late.hash, spent_at, NO_GRACE).await.0, rotated(&late));
    assert_eq!(rotate(h, &late.hash, spent_at + Duration::seconds(1), NO_GRACE).await.0, reused(&late));

    // Grace never revives a revoked family.
    let ended = family(h, &alice, SessionId::generate(), T0 + Duration::microseconds(4), TTL).await;
    assert_eq!(rotate(h, &ended.hash, spent_at, grace).await.0, rotated(&ended));
    h.store.revoke_session_families(ended.session_id, RevokeReason::Logout, spent_at).await.unwrap();
    assert_eq!(rotate(h, &ended.hash, spent_at + Duration::seconds(1), grace).await.0, Rotation::Revoked);
    assert_eq!(reasons(h).await, ["reuse", "live", "reuse", "reuse", "logout"]);
}

pub async fn revoke_session_and_user_families(h: &DurableHarness) {
    let alice = alice(h).await;
    let bob = user("bob", None);
    inserted(h, &bob).await;
    let (s1, s2, s3, s4) = (SessionId::generate(), SessionId::generate(), SessionId::generate(), SessionId::generate());
    let at = |n: i64| T0 + Duration::microseconds(n);
    let s1a = family(h, &alice, s1, at(0), TTL).await;
    let s1b = family(h, &alice, s1, at(1), TTL).await;
    let kept = family(h, &alice, s2, at(2), TTL).await;
    let other = family(h, &alice, s3, at(3), TTL).await;
    let bobs = family(h, &bob, s4, at(4), TTL).await;
    let now = T0 + Duration::hours(1);

    assert_eq!(h.store.revoke_session_families(s1, RevokeReason::Logout, now).await.unwrap(), 2);
    assert_eq!(h.store.revoke_session_families(s1, RevokeReason::SessionEnded, now).await.unwrap(), 0, "once");
    assert_eq!(rotate(h, &s1a.hash, now, NO_GRACE).await.0, Rotation::Revoked);
    assert_eq!(rotate(h, &s1b.hash, now, NO_GRACE).await.0, Rotation::Revoked);
    assert_eq!(reasons(h).await, ["logout", "logout", "live", "live", "live"]);

    let revoked = h.store.revoke_user_families(alice.id, Some(s2), RevokeReason::PasswordChange, now).await;
    assert_eq!(revoked.unwrap(), 1, "every live family of the user but the kept session's");
    assert_eq!(rotate(h, &other.hash, now, NO_GRACE).await.0, Rotation::Revoked);
    let (answer, kept_child) = rotate(h, &kept.hash, now, NO_GRACE).await;
    assert_eq!(answer, rotated(&kept), "the caller's own session lives on");
    assert_eq!(reasons(h).await, ["logout", "logout", "live", "password_change", "live"]);

    let revoked = h.store.revoke_user_families(alice.id, None, RevokeReason::SessionEnded, now).await;
    assert_eq!(revoked.unwrap(), 1, "without `keep`, the last live one too");
    assert_eq!(rotate(h, &kept_child, now, NO_GRACE).await.0, Rotation::Revoked);
    assert_eq!(h.store.revoke_user_families(alice.id, None, RevokeReason::Logout, now).await.unwrap(), 0);
    assert_eq!(h.store.revoke_user_families(UserId::generate(), None, RevokeReason::Logout, now).await.unwrap(), 0);
    assert_eq!(h.store.revoke_session_families(SessionId::generate(), RevokeReason::Logout, now).await.unwrap(), 0);

    assert_eq!(rotate(h, &bobs.hash, now, NO_GRACE).await.0, rotated(&bobs), "other users are untouched");
    assert_eq!(reasons(h).await, ["logout", "logout", "session_ended", "password_change", "live"]);
}

pub async fn purge_deletes_tokens_expired_before(h: &DurableHarness) {
    let alice = alice(h).await;
    let hour = Duration::hours(1);
    let short = family(h, &alice, SessionId::generate(), T0, hour).await;
    let long = family(h, &alice, SessionId::generate(), T0 + Duration::microseconds(1), hour * 2).await;
    // A spent parent expiring at T0 + 1 h with a child expiring at T0 + 1 h + 30 days.
    let rotating = family(h, &alice, SessionId::generate(), T0, hour).await;
    let (answer, child) = rotate(h, &rotating.hash, T0 + Duration::minutes(1), NO_GRACE).await;
    assert_eq!(answer, rotated(&rotating));

    assert_eq!(h.store.purge_refresh_tokens(T0 + hour).await.unwrap(), 0, "expiring at `before` is not before it");
    let count = "SELECT CAST(COUNT(*) AS TEXT) FROM refresh_families";
    assert_eq!(h.database.fetch_text(count).await.unwrap(), "3");
    assert_eq!(h.store.purge_refresh_tokens(T0 + hour + Duration::microseconds(1)).await.unwrap(), 2);
    assert_eq!(rotate(h, &short.hash, T0, NO_GRACE).await.0, Rotation::Unknown, "purged");
    assert_eq!(rotate(h, &rotating.hash, T0, NO_GRACE).await.0, Rotation::Unknown, "the spent parent too");
    assert_eq!(h.database.fetch_text(count).await.unwrap(), "2", "a family left without tokens goes too");
    assert_eq!(rotate(h, &long.hash, T0 + hour, NO_GRACE).await.0, rotated(&long), "unexpired tokens stay");
    assert_eq!(rotate(h, &child, T0 + hour, NO_GRACE).await.0, rotated(&rotating), "a child outlives its parent");
    assert_eq!(h.store.purge_refresh_tokens(T0).await.unwrap(), 0);
}

pub async fn concurrent_rotations_of_one_token_have_one_winner(h: &DurableHarness) {
    let alice = alice(h).await;
    let record = family(h, &alice, SessionId::generate(), T0, TTL).await;
    let now = T0 + Duration::minutes(1);
    let barrier = Arc::new(Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, barrier, presented) = (h.store.clone(), barrier.clone(), record.hash);
            tokio::spawn(async move {
                let next = token_hash();
                barrier.wait().await;
                (store.rotate_refresh_token(&presented, &next, now + TTL, now, NO_GRACE).await.unwrap(), next)
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let winners: Vec<&TokenHash> =
        answers.iter().filter(|(answer, _)| *answer == rotated(&record)).map(|(_, next)| next).collect();
    assert_eq!(winners.len(), 1, "exactly one of 20 concurrent presentations rotates: {answers:?}");
    let reuses = answers.iter().filter(|(answer, _)| *answer == reused(&record)).count();
    assert!(reuses >= 1, "the others are reuse, which revokes the family: {answers:?}");
    assert!(
        answers.iter().all(|(answer, _)| [rotated(&record), reused(&record), Rotation::Revoked].contains(answer)),
        "every other answer is Reused or Revoked: {answers:?}"
    );
    assert_eq!(reasons(h).await, ["reuse"]);
    assert_eq!(rotate(h, winners[0], now, NO_GRACE).await.0, Rotation::Revoked, "the winner's child is revoked too");
    assert_eq!(
        h.database.fetch_text("SELECT CAST(COUNT(*) AS TEXT) FROM refresh_tokens").await.unwrap(),
        "2",
        "one child was stored, no more"
    );
}

pub async fn concurrent_retries_within_the_grace_window_all_rotate(h: &DurableHarness) {
    let alice = alice(h).await;
    let record = family(h, &alice, SessionId::generate(), T0, TTL).await;
    let now = T0 + Duration::minutes(1);
    let barrier = Arc::new(Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, barrier, presented) = (h.store.clone(), barrier.clone(), record.hash);
            tokio::spawn(async move {
                let next = token_hash();
                barrier.wait().await;
                store.rotate_refresh_token(&presented, &next, now + TTL, now, Duration::seconds(5)).await.unwrap()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), rotated(&record), "a retry within the grace window rotates");
    }
    assert_eq!(reasons(h).await, ["live"]);
    assert_eq!(h.database.fetch_text("SELECT CAST(COUNT(*) AS TEXT) FROM refresh_tokens").await.unwrap(), "21");
}

pub async fn a_family_starts_without_a_parent_and_with_a_known_user(h: &DurableHarness) {
    let alice = alice(h).await;
    let first = family(h, &alice, SessionId::generate(), T0, TTL).await;
    let with_parent = RefreshTokenRecord {
        hash: token_hash(),
        family_id: uuid::Uuid::now_v7(),
        parent: Some(first.hash),
        ..first.clone()
    };
    assert!(h.store.insert_refresh_family(&with_parent).await.is_err(), "a first token has no parent");
    let stranger = RefreshTokenRecord {
        hash: token_hash(),
        family_id: uuid::Uuid::now_v7(),
        user_id: UserId::generate(),
        ..first.clone()
    };
    assert!(h.store.insert_refresh_family(&stranger).await.is_err(), "the user must exist");
    let same_hash = RefreshTokenRecord { family_id: uuid::Uuid::now_v7(), ..first.clone() };
    assert!(h.store.insert_refresh_family(&same_hash).await.is_err(), "a token hash is stored once");
    assert_eq!(h.database.fetch_text("SELECT CAST(COUNT(*) AS TEXT) FROM refresh_families").await.unwrap(), "1");
    assert!(h.store.user_by_id(alice.id).await.unwrap().is_some());
}
