//! The re-encryption store port — the job row and its checkpoint, each batch's conditional
//! rewrites of factors and signing keys, pages of factors — identical on SQLite and PostgreSQL.

use std::collections::BTreeMap;
use std::sync::Arc;

use palisade_core::crypto::reencrypt::{JobState, Phase, ReencryptionJob, Reseal};
use palisade_core::mfa::{FactorKind, FactorRecord};
use palisade_core::token::SigningKeyRecord;
use palisade_core::user::UserId;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use tokio::sync::Barrier;

use crate::mfa::{T0, factor, owner};
use crate::signing_keys::key;
use crate::support::{DurableHarness, conformance};

conformance!(
    DurableHarness,
    [sqlite, postgres],
    [
        a_second_running_job_is_refused_until_the_first_finishes,
        a_reused_job_id_is_an_error_not_a_refusal,
        the_latest_job_is_the_last_started_with_every_field,
        concurrent_job_starts_have_one_winner,
        a_batch_rewrites_only_rows_that_still_hold_the_text_read,
        a_batch_saves_the_whole_checkpoint_but_the_start,
        a_job_that_is_not_running_takes_no_batch,
        a_batch_from_a_stale_checkpoint_takes_nothing,
        a_batch_that_fails_midway_changes_nothing,
        factor_pages_follow_the_id_order,
        count_factors_counts_every_factor,
        the_schema_refuses_malformed_jobs,
    ]
);

/// A job started at `at` toward data version 2, at its very beginning.
fn job(at: OffsetDateTime) -> ReencryptionJob {
    ReencryptionJob {
        id: uuid::Uuid::now_v7(),
        target_version: 2,
        state: JobState::Running,
        phase: Phase::SigningKeys,
        cursor: None,
        total: 10,
        scanned: 0,
        rewritten: 0,
        started_at: at,
        updated_at: at,
        finished_at: None,
        error: None,
    }
}

/// `job` ended in `state` at `at`.
fn ended(job: &ReencryptionJob, state: JobState, at: OffsetDateTime) -> ReencryptionJob {
    ReencryptionJob { state, updated_at: at, finished_at: Some(at), ..job.clone() }
}

/// The reseal of a factor as read: `old` is its text now.
fn reseal_factor(factor: &FactorRecord, new: &str) -> Reseal {
    Reseal { table: Phase::Factors, id: factor.id.to_string(), old: factor.sealed.clone(), new: new.into() }
}

/// The reseal of a signing key as read: `old` is its text now.
fn reseal_key(key: &SigningKeyRecord, new: &str) -> Reseal {
    Reseal { table: Phase::SigningKeys, id: key.kid.clone(), old: key.private_key.clone(), new: new.into() }
}

/// A signing key whose sealed text is `sealed` (unique, so raw SQL can find it by its text).
fn key_sealed(version: u32, sealed: &str) -> SigningKeyRecord {
    SigningKeyRecord { private_key: sealed.into(), ..key("EdDSA", version, T0) }
}

async fn inserted_factor(h: &DurableHarness, user: UserId, kind: FactorKind, tag: &str) -> FactorRecord {
    let f = factor(user, kind, tag, T0);
    assert!(h.store.put_pending_factor(&f).await.unwrap(), "{tag}");
    f
}

async fn inserted_key(h: &DurableHarness, version: u32, sealed: &str) -> SigningKeyRecord {
    let k = key_sealed(version, sealed);
    assert!(h.store.insert_signing_key(&k).await.unwrap(), "{sealed}");
    k
}

/// Every sealed text of the users' factors (by factor id) and of every signing key (by kid),
/// read through the stores' own listings.
async fn sealed_texts(h: &DurableHarness, users: &[UserId]) -> BTreeMap<String, String> {
    let mut texts = BTreeMap::new();
    for user in users {
        for f in h.store.factors(*user).await.unwrap() {
            texts.insert(f.id.to_string(), f.sealed);
        }
    }
    for k in h.store.signing_keys().await.unwrap() {
        texts.insert(k.kid, k.private_key);
    }
    texts
}

async fn job_rows(h: &DurableHarness) -> String {
    h.database.fetch_text("SELECT CAST(COUNT(*) AS TEXT) FROM reencryption_jobs").await.unwrap()
}

pub async fn a_second_running_job_is_refused_until_the_first_finishes(h: &DurableHarness) {
    assert_eq!(h.store.latest_reencryption_job().await.unwrap(), None, "no job yet");
    let first = job(T0);
    assert!(h.store.insert_reencryption_job(&first).await.unwrap());
    assert_eq!(h.store.latest_reencryption_job().await.unwrap().as_ref(), Some(&first));

    // Started later: had it been stored, it would be the latest.
    let second = job(T0 + Duration::hours(1));
    assert!(!h.store.insert_reencryption_job(&second).await.unwrap(), "a job is running: false");
    assert_eq!(h.store.latest_reencryption_job().await.unwrap().as_ref(), Some(&first), "and nothing was stored");
    assert_eq!(job_rows(h).await, "1");
    assert_eq!(
        h.store.commit_reencryption_batch(&second, &second, &[]).await.unwrap(),
        None,
        "the refused job does not exist"
    );

    let done = ReencryptionJob {
        phase: Phase::Factors,
        scanned: 10,
        ..ended(&first, JobState::Completed, T0 + Duration::minutes(30))
    };
    assert_eq!(h.store.commit_reencryption_batch(&first, &done, &[]).await.unwrap(), Some(0));
    assert_eq!(h.store.latest_reencryption_job().await.unwrap().as_ref(), Some(&done));
    assert!(h.store.insert_reencryption_job(&second).await.unwrap(), "none is running: a new one starts");
    assert_eq!(h.store.latest_reencryption_job().await.unwrap().as_ref(), Some(&second));

    // A failed job does not block the next one either.
    let failed = ReencryptionJob {
        error: Some("factor does not decrypt".into()),
        ..ended(&second, JobState::Failed, T0 + Duration::hours(2))
    };
    assert_eq!(h.store.commit_reencryption_batch(&second, &failed, &[]).await.unwrap(), Some(0));
    let third = job(T0 + Duration::hours(3));
    assert!(h.store.insert_reencryption_job(&third).await.unwrap(), "the last one failed: a new one starts");
    assert!(!h.store.insert_reencryption_job(&job(T0 + Duration::hours(4))).await.unwrap(), "and it blocks");
    assert_eq!(job_rows(h).await, "3");
}

pub async fn a_reused_job_id_is_an_error_not_a_refusal(h: &DurableHarness) {
    let first = job(T0);
    assert!(h.store.insert_reencryption_job(&first).await.unwrap());
    let done = ended(&first, JobState::Completed, T0 + Duration::minutes(1));
    assert_eq!(h.store.commit_reencryption_batch(&first, &done, &[]).await.unwrap(), Some(0));

    // No job is running, so only the id collides: a bug, not a lost race.
    let reused = ReencryptionJob { id: first.id, ..job(T0 + Duration::hours(1)) };
    assert!(h.store.insert_reencryption_job(&reused).await.is_err(), "a duplicate id is an error");
    assert_eq!(h.store.latest_reencryption_job().await.unwrap(), Some(done), "the first job is unchanged");
    assert_eq!(job_rows(h).await, "1");
    assert!(h.store.insert_reencryption_job(&job(T0 + Duration::hours(1))).await.unwrap(), "a fresh id goes in");
}

pub async fn the_latest_job_is_the_last_started_with_every_field(h: &DurableHarness) {
    // Every field away from its default; instants to the microsecond; counts beyond 32 bits.
    let started_at = datetime!(2026-05-02 03:04:05.123456 UTC);
    let full = ReencryptionJob {
        id: uuid::Uuid::now_v7(),
        target_version: 2_147_483_647,
        state: JobState::Running,
        phase: Phase::Factors,
        cursor: Some("0190a000-0000-7000-8000-00000000002a".into()),
        total: 5_000_000_000,
        scanned: 4_000_000_001,
        rewritten: 3_000_000_002,
        started_at,
        updated_at: datetime!(2026-05-02 04:05:06.000001 UTC),
        finished_at: None,
        error: None,
    };
    assert!(h.store.insert_reencryption_job(&full).await.unwrap());
    assert_eq!(h.store.latest_reencryption_job().await.unwrap().as_ref(), Some(&full), "every field round-trips");

    let failed = ReencryptionJob {
        cursor: Some("EdDSA-3-kid «ünïcode» 'quoted'".into()),
        phase: Phase::SigningKeys,
        scanned: 4_000_000_002,
        updated_at: datetime!(2026-05-02 05:06:07.999999 UTC),
        finished_at: Some(datetime!(2026-05-02 05:06:07.999999 UTC)),
        error: Some("signing key EdDSA-3 does not decrypt: «ünïcode», 'quoted', \"double\"\nsecond line".into()),
        ..ended(&full, JobState::Failed, T0)
    };
    assert_eq!(h.store.commit_reencryption_batch(&full, &failed, &[]).await.unwrap(), Some(0));
    assert_eq!(h.store.latest_reencryption_job().await.unwrap().as_ref(), Some(&failed), "the ending round-trips");

    // Started earlier but stored later: the latest is the last started, not the last stored.
    let earlier = job(started_at - Duration::microseconds(1));
    assert!(h.store.insert_reencryption_job(&earlier).await.unwrap());
    assert_eq!(h.store.latest_reencryption_job().await.unwrap().as_ref(), Some(&failed));
    let done = ended(&earlier, JobState::Completed, started_at + Duration::days(1));
    assert_eq!(h.store.commit_reencryption_batch(&earlier, &done, &[]).await.unwrap(), Some(0));
    assert_eq!(h.store.latest_reencryption_job().await.unwrap().as_ref(), Some(&failed), "whatever it updated");

    let later = job(started_at + Duration::microseconds(1));
    assert!(h.store.insert_reencryption_job(&later).await.unwrap());
    assert_eq!(h.store.latest_reencryption_job().await.unwrap(), Some(later), "a microsecond later is later");
}

pub async fn concurrent_job_starts_have_one_winner(h: &DurableHarness) {
    let barrier = Arc::new(Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (store, barrier) = (h.store.clone(), barrier.clone());
            tokio::spawn(async move {
                let started = job(T0);
                barrier.wait().await;
                store.insert_reencryption_job(&started).await.unwrap().then_some(started)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        winners.extend(task.await.unwrap());
    }
    assert_eq!(winners.len(), 1, "exactly one of 20 instances starts a job");
    assert_eq!(job_rows(h).await, "1");
    assert_eq!(h.store.latest_reencryption_job().await.unwrap().as_ref(), winners.first());
}

pub async fn a_batch_rewrites_only_rows_that_still_hold_the_text_read(h: &DurableHarness) {
    let (alice, bob) = (owner(h, "alice").await, owner(h, "bob").await);
    let users = [alice.id, bob.id];
    let f_moved = inserted_factor(h, alice.id, FactorKind::Totp, "moved").await;
    let f_set_up_again = inserted_factor(h, alice.id, FactorKind::Sms, "set-up-again").await;
    let f_untouched = inserted_factor(h, bob.id, FactorKind::Email, "untouched").await;
    let k_moved = inserted_key(h, 1, "v1.local.key-moved").await;
    let k_changed = inserted_key(h, 2, "v1.local.key-changed").await;
    let running = ReencryptionJob { scanned: 4, rewritten: 3, ..job(T0) };
    assert!(h.store.insert_reencryption_job(&running).await.unwrap());
    let before = sealed_texts(h, &users).await;
    assert_eq!(before.len(), 5);

    // Read, then changed by someone else before the batch commits.
    let reseals = [
        reseal_key(&k_moved, "v2.local.key-moved"),
        reseal_key(&k_changed, "v2.local.key-changed"),
        reseal_factor(&f_moved, "v2.totp.moved"),
        reseal_factor(&f_set_up_again, "v2.sms.set-up-again"),
        // A factor gone meanwhile.
        Reseal { id: uuid::Uuid::now_v7().to_string(), ..reseal_factor(&f_untouched, "v2.gone") },
        // A signing-key reseal names the signing_keys table only, even with a factor's id and text.
        Reseal { table: Phase::SigningKeys, ..reseal_factor(&f_untouched, "v2.wrong-table") },
    ];
    h.database
        .execute("UPDATE mfa_factors SET sealed = 'v1.sms.newer' WHERE sealed = 'v1.sms.set-up-again'")
        .await
        .unwrap();
    h.database
        .execute("UPDATE signing_keys SET private_key = 'v1.local.newer' WHERE private_key = 'v1.local.key-changed'")
        .await
        .unwrap();
    let next = ReencryptionJob {
        phase: Phase::Factors,
        cursor: Some(f_set_up_again.id.to_string()),
        scanned: 9,
        updated_at: T0 + Duration::minutes(1),
        ..running.clone()
    };
    assert_eq!(
        h.store.commit_reencryption_batch(&running, &next, &reseals).await.unwrap(),
        Some(2),
        "the rows rewritten in this batch: one key, one factor"
    );
    let mut expected = before.clone();
    expected.insert(k_moved.kid.clone(), "v2.local.key-moved".into());
    expected.insert(k_changed.kid.clone(), "v1.local.newer".into());
    expected.insert(f_moved.id.to_string(), "v2.totp.moved".into());
    expected.insert(f_set_up_again.id.to_string(), "v1.sms.newer".into());
    assert_eq!(sealed_texts(h, &users).await, expected, "a row changed meanwhile keeps its new text");
    let stored = ReencryptionJob { rewritten: 5, ..next.clone() };
    assert_eq!(
        h.store.latest_reencryption_job().await.unwrap().as_ref(),
        Some(&stored),
        "rewritten: the previous 3 and the 2 of this batch"
    );

    // The rows changed meanwhile, read again in a later batch; the moved ones are current now.
    let again = [
        Reseal { old: "v1.sms.newer".into(), ..reseal_factor(&f_set_up_again, "v2.sms.newer") },
        Reseal { old: "v1.local.newer".into(), ..reseal_key(&k_changed, "v2.local.newer") },
        reseal_factor(&f_moved, "v3.totp.moved"),
    ];
    let last = ReencryptionJob { scanned: 10, rewritten: 5, updated_at: T0 + Duration::minutes(2), ..next.clone() };
    assert_eq!(h.store.commit_reencryption_batch(&stored, &last, &again).await.unwrap(), Some(2));
    expected.insert(f_set_up_again.id.to_string(), "v2.sms.newer".into());
    expected.insert(k_changed.kid.clone(), "v2.local.newer".into());
    assert_eq!(sealed_texts(h, &users).await, expected, "a reseal of text already rewritten changes nothing");
    assert_eq!(
        h.store.latest_reencryption_job().await.unwrap(),
        Some(ReencryptionJob { rewritten: 7, ..last }),
        "rewritten: the previous 5 and the 2 of this batch"
    );
}

pub async fn a_batch_saves_the_whole_checkpoint_but_the_start(h: &DurableHarness) {
    let alice = owner(h, "alice").await;
    let f = inserted_factor(h, alice.id, FactorKind::Totp, "secret").await;
    let started = job(T0);
    assert!(h.store.insert_reencryption_job(&started).await.unwrap());

    // Every field moves but the id; the start given here is not the stored one and is ignored.
    let next = ReencryptionJob {
        target_version: 3,
        phase: Phase::Factors,
        cursor: Some(f.id.to_string()),
        total: 12,
        scanned: 7,
        rewritten: 0,
        started_at: T0 + Duration::days(9),
        updated_at: datetime!(2026-05-01 12:01:02.345678 UTC),
        ..started.clone()
    };
    assert_eq!(h.store.commit_reencryption_batch(&started, &next, &[]).await.unwrap(), Some(0));
    let saved = ReencryptionJob { started_at: T0, ..next.clone() };
    assert_eq!(h.store.latest_reencryption_job().await.unwrap().as_ref(), Some(&saved));

    // The last batch ends the job: its rewrites, state, end and error are saved together.
    let done = ReencryptionJob {
        state: JobState::Completed,
        cursor: None,
        scanned: 12,
        rewritten: 0,
        updated_at: datetime!(2026-05-01 12:05:00.000001 UTC),
        finished_at: Some(datetime!(2026-05-01 12:05:00.000002 UTC)),
        error: Some("kept as given".into()),
        ..saved.clone()
    };
    assert_eq!(
        h.store.commit_reencryption_batch(&saved, &done, &[reseal_factor(&f, "v3.totp.secret")]).await.unwrap(),
        Some(1)
    );
    assert_eq!(h.store.latest_reencryption_job().await.unwrap(), Some(ReencryptionJob { rewritten: 1, ..done }));
    assert_eq!(h.store.factors(alice.id).await.unwrap()[0].sealed, "v3.totp.secret");
}

pub async fn a_job_that_is_not_running_takes_no_batch(h: &DurableHarness) {
    let alice = owner(h, "alice").await;
    let f = inserted_factor(h, alice.id, FactorKind::Totp, "secret").await;
    let k = inserted_key(h, 1, "v1.local.key").await;
    let reseals = [reseal_factor(&f, "v2.totp.secret"), reseal_key(&k, "v2.local.key")];
    let before = sealed_texts(h, &[alice.id]).await;

    // No such job: nothing applies.
    let ghost_before = job(T0);
    let ghost = ReencryptionJob { scanned: 2, ..ghost_before.clone() };
    assert_eq!(h.store.commit_reencryption_batch(&ghost_before, &ghost, &reseals).await.unwrap(), None, "no such job");
    assert_eq!(sealed_texts(h, &[alice.id]).await, before, "and no row was rewritten");
    assert_eq!(h.store.latest_reencryption_job().await.unwrap(), None, "nor a job stored");

    let running = job(T0);
    assert!(h.store.insert_reencryption_job(&running).await.unwrap());
    // It fails where it stands: phase, cursor and scanned are still those of `running`, so only
    // the state refuses the late batches below.
    let failed = ReencryptionJob {
        error: Some("factor does not decrypt".into()),
        ..ended(&running, JobState::Failed, T0 + Duration::minutes(1))
    };
    assert_eq!(h.store.commit_reencryption_batch(&running, &failed, &[]).await.unwrap(), Some(0));

    // A late batch of an instance that has not noticed the end: neither its rows nor its checkpoint.
    let late = ReencryptionJob {
        phase: Phase::Factors,
        cursor: Some(f.id.to_string()),
        scanned: 2,
        updated_at: T0 + Duration::minutes(2),
        ..running.clone()
    };
    assert_eq!(h.store.commit_reencryption_batch(&running, &late, &reseals).await.unwrap(), None, "the job failed");
    let finishing = ended(&late, JobState::Completed, T0 + Duration::minutes(2));
    assert_eq!(
        h.store.commit_reencryption_batch(&running, &finishing, &reseals).await.unwrap(),
        None,
        "not even to end it"
    );
    assert_eq!(sealed_texts(h, &[alice.id]).await, before, "no row was rewritten");
    assert_eq!(h.store.latest_reencryption_job().await.unwrap().as_ref(), Some(&failed), "the job is as it ended");

    // A completed job is not running either.
    let next = job(T0 + Duration::hours(1));
    assert!(h.store.insert_reencryption_job(&next).await.unwrap());
    let done = ended(&next, JobState::Completed, T0 + Duration::hours(2));
    assert_eq!(h.store.commit_reencryption_batch(&next, &done, &[]).await.unwrap(), Some(0));
    let after_end = ReencryptionJob { scanned: 2, updated_at: T0 + Duration::hours(3), ..next.clone() };
    assert_eq!(
        h.store.commit_reencryption_batch(&next, &after_end, &reseals).await.unwrap(),
        None,
        "the job completed"
    );
    assert_eq!(sealed_texts(h, &[alice.id]).await, before, "no row was rewritten");
    assert_eq!(h.store.latest_reencryption_job().await.unwrap(), Some(done));
}

pub async fn a_batch_from_a_stale_checkpoint_takes_nothing(h: &DurableHarness) {
    let alice = owner(h, "alice").await;
    let f_totp = inserted_factor(h, alice.id, FactorKind::Totp, "secret").await;
    let f_sms = inserted_factor(h, alice.id, FactorKind::Sms, "phone").await;
    let k = inserted_key(h, 1, "v1.local.key").await;
    let running = job(T0);
    assert!(h.store.insert_reencryption_job(&running).await.unwrap());

    // The stored job has no cursor yet; an empty one is another checkpoint.
    let empty_cursor = ReencryptionJob { cursor: Some(String::new()), ..running.clone() };
    let from_empty = ReencryptionJob { scanned: 1, ..running.clone() };
    let reseal = [reseal_key(&k, "v2.local.key-from-empty")];
    assert_eq!(h.store.commit_reencryption_batch(&empty_cursor, &from_empty, &reseal).await.unwrap(), None);
    assert_eq!(h.store.latest_reencryption_job().await.unwrap().as_ref(), Some(&running));

    // Instance A, whose lease is current, checkpoints past the signing keys.
    let a = ReencryptionJob {
        phase: Phase::Factors,
        cursor: Some(f_totp.id.to_string()),
        scanned: 2,
        updated_at: T0 + Duration::minutes(1),
        ..running.clone()
    };
    assert_eq!(
        h.store.commit_reencryption_batch(&running, &a, &[reseal_key(&k, "v2.local.key")]).await.unwrap(),
        Some(1)
    );
    let stored = ReencryptionJob { rewritten: 1, ..a.clone() };
    let before = sealed_texts(h, &[alice.id]).await;

    // Instance B, whose lease lapsed, still works from the start: its batch would move the job back.
    let b = ReencryptionJob {
        scanned: 1,
        cursor: Some(k.kid.clone()),
        updated_at: T0 + Duration::minutes(2),
        ..running.clone()
    };
    let b_reseals = [reseal_factor(&f_sms, "v2.sms.phone-by-b"), reseal_factor(&f_totp, "v2.totp.secret-by-b")];
    assert_eq!(h.store.commit_reencryption_batch(&running, &b, &b_reseals).await.unwrap(), None, "a stale checkpoint");
    // Each part of the checkpoint counts on its own, and no cursor is not an empty one.
    let stale = [
        ("another phase", ReencryptionJob { phase: Phase::SigningKeys, ..stored.clone() }),
        ("another cursor", ReencryptionJob { cursor: Some(f_sms.id.to_string()), ..stored.clone() }),
        ("no cursor", ReencryptionJob { cursor: None, ..stored.clone() }),
        ("another count", ReencryptionJob { scanned: 3, ..stored.clone() }),
        ("the count as rewritten", ReencryptionJob { scanned: 1, ..stored.clone() }),
    ];
    for (what, previous) in &stale {
        let next = ReencryptionJob { scanned: 4, updated_at: T0 + Duration::minutes(3), ..previous.clone() };
        assert_eq!(
            h.store.commit_reencryption_batch(previous, &next, &b_reseals).await.unwrap(),
            None,
            "a checkpoint with {what}"
        );
    }
    assert_eq!(sealed_texts(h, &[alice.id]).await, before, "no stale batch rewrote a row");
    assert_eq!(h.store.latest_reencryption_job().await.unwrap().as_ref(), Some(&stored), "nor moved the job");

    // A checkpoint of another job is never applied to this one.
    let other = job(T0);
    let into_other = ReencryptionJob { id: running.id, scanned: 4, ..stored.clone() };
    let mixed = h.store.commit_reencryption_batch(&other, &into_other, &b_reseals).await;
    assert!(!matches!(mixed, Ok(Some(_))), "{mixed:?}");
    assert_eq!(sealed_texts(h, &[alice.id]).await, before);
    assert_eq!(h.store.latest_reencryption_job().await.unwrap().as_ref(), Some(&stored));

    // From the stored checkpoint, the next batch goes through.
    let next = ReencryptionJob { cursor: Some(f_sms.id.to_string()), scanned: 3, ..stored.clone() };
    assert_eq!(
        h.store.commit_reencryption_batch(&stored, &next, &[reseal_factor(&f_sms, "v2.sms.phone")]).await.unwrap(),
        Some(1)
    );
    assert_eq!(h.store.latest_reencryption_job().await.unwrap(), Some(ReencryptionJob { rewritten: 2, ..next }));
}

pub async fn a_batch_that_fails_midway_changes_nothing(h: &DurableHarness) {
    let alice = owner(h, "alice").await;
    let f_totp = inserted_factor(h, alice.id, FactorKind::Totp, "secret").await;
    let f_sms = inserted_factor(h, alice.id, FactorKind::Sms, "phone").await;
    let k = inserted_key(h, 1, "v1.local.key").await;
    let running = ReencryptionJob { phase: Phase::Factors, scanned: 4, rewritten: 1, ..job(T0) };
    assert!(h.store.insert_reencryption_job(&running).await.unwrap());
    let before = sealed_texts(h, &[alice.id]).await;
    let next = ReencryptionJob {
        cursor: Some(f_sms.id.to_string()),
        scanned: 7,
        updated_at: T0 + Duration::minutes(1),
        ..running.clone()
    };
    let good = [reseal_key(&k, "v2.local.key"), reseal_factor(&f_totp, "v2.totp.secret")];

    // The store's own refusal after two rows were rewritten: a factor id that is not a uuid.
    let not_a_uuid = Reseal { id: "not-a-uuid".into(), ..reseal_factor(&f_sms, "v2.sms.phone") };
    let batch = [good[0].clone(), good[1].clone(), not_a_uuid];
    assert!(
        h.store.commit_reencryption_batch(&running, &next, &batch).await.is_err(),
        "a factor id that is not a uuid"
    );
    assert_eq!(sealed_texts(h, &[alice.id]).await, before, "the rows before it were not rewritten");
    assert_eq!(h.store.latest_reencryption_job().await.unwrap().as_ref(), Some(&running), "nor the job checkpointed");

    // The database's refusal midway: a reseal to an empty text.
    let empty = reseal_factor(&f_sms, "");
    let batch = [good[0].clone(), good[1].clone(), empty];
    assert!(h.store.commit_reencryption_batch(&running, &next, &batch).await.is_err(), "an empty sealed text");
    assert_eq!(sealed_texts(h, &[alice.id]).await, before);
    assert_eq!(h.store.latest_reencryption_job().await.unwrap().as_ref(), Some(&running));

    // The database's refusal at the very end, once every row is rewritten: more rows rewritten
    // (1 + 2) than scanned (2).
    let too_few = ReencryptionJob { scanned: 2, ..next.clone() };
    assert!(h.store.commit_reencryption_batch(&running, &too_few, &good).await.is_err(), "rewritten above scanned");
    assert_eq!(sealed_texts(h, &[alice.id]).await, before);
    assert_eq!(h.store.latest_reencryption_job().await.unwrap().as_ref(), Some(&running));

    // Nothing is left half-done in the way of the next batch.
    assert_eq!(h.store.commit_reencryption_batch(&running, &next, &good).await.unwrap(), Some(2));
    let mut expected = before;
    expected.insert(k.kid.clone(), "v2.local.key".into());
    expected.insert(f_totp.id.to_string(), "v2.totp.secret".into());
    assert_eq!(sealed_texts(h, &[alice.id]).await, expected);
    assert_eq!(h.store.latest_reencryption_job().await.unwrap(), Some(ReencryptionJob { rewritten: 3, ..next }));
}

pub async fn factor_pages_follow_the_id_order(h: &DurableHarness) {
    assert!(h.store.factor_page(None, 10).await.unwrap().is_empty(), "no factors: an empty page");
    let (alice, bob) = (owner(h, "alice").await, owner(h, "bob").await);
    let mut all = Vec::new();
    for user in [alice.id, bob.id] {
        for kind in [FactorKind::Totp, FactorKind::Sms, FactorKind::Email] {
            // v4 ids: the pages' order is the ids', not the inserts'.
            let f = FactorRecord { id: uuid::Uuid::new_v4(), ..factor(user, kind, "page", T0) };
            assert!(h.store.put_pending_factor(&f).await.unwrap());
            all.push(f);
        }
    }
    // Confirmed factors are paged too, with every field.
    let at = datetime!(2026-05-01 12:30:00.654321 UTC);
    for f in all.iter_mut().step_by(2) {
        assert!(h.store.confirm_factor(f.user_id, f.id, at).await.unwrap());
        f.confirmed_at = Some(at);
    }
    all.sort_by_key(|f| f.id);

    assert_eq!(h.store.factor_page(None, 2).await.unwrap(), all[0..2]);
    assert_eq!(h.store.factor_page(Some(all[1].id), 2).await.unwrap(), all[2..4]);
    assert_eq!(h.store.factor_page(Some(all[3].id), 2).await.unwrap(), all[4..6]);
    assert!(h.store.factor_page(Some(all[5].id), 2).await.unwrap().is_empty(), "past the last: an empty page");
    assert_eq!(h.store.factor_page(Some(all[3].id), 10).await.unwrap(), all[4..], "a short last page");
    assert_eq!(h.store.factor_page(None, 100).await.unwrap(), all);
    assert!(h.store.factor_page(None, 0).await.unwrap().is_empty(), "a limit of 0 returns nothing");
    assert_eq!(h.store.factor_page(Some(uuid::Uuid::nil()), 100).await.unwrap(), all);
    assert!(h.store.factor_page(Some(uuid::Uuid::max()), 100).await.unwrap().is_empty());

    // The cursor need not be a factor's id (one deleted since): the page starts above it.
    let between = uuid::Uuid::from_u128(all[2].id.as_u128() + 1);
    assert!(between < all[3].id);
    assert_eq!(h.store.factor_page(Some(between), 2).await.unwrap(), all[3..5]);
    assert!(h.store.delete_factor(all[3].user_id, all[3].kind).await.unwrap());
    let without: Vec<FactorRecord> = all.iter().filter(|f| f.id != all[3].id).cloned().collect();
    assert_eq!(h.store.factor_page(Some(all[2].id), 2).await.unwrap(), without[3..5]);
    assert_eq!(h.store.factor_page(Some(all[3].id), 2).await.unwrap(), all[4..6]);
}

pub async fn count_factors_counts_every_factor(h: &DurableHarness) {
    assert_eq!(h.store.count_factors().await.unwrap(), 0);
    let (alice, bob) = (owner(h, "alice").await, owner(h, "bob").await);
    for kind in [FactorKind::Totp, FactorKind::Sms, FactorKind::Email] {
        inserted_factor(h, alice.id, kind, "a").await;
    }
    let bobs = inserted_factor(h, bob.id, FactorKind::Totp, "b").await;
    assert!(h.store.confirm_factor(bob.id, bobs.id, T0).await.unwrap());
    assert_eq!(h.store.count_factors().await.unwrap(), 4, "every kind, pending or confirmed, of every user");
    // Signing keys are not factors.
    inserted_key(h, 1, "v1.local.key").await;
    assert_eq!(h.store.count_factors().await.unwrap(), 4);
    assert_eq!(h.store.delete_all_factors(alice.id).await.unwrap(), 3);
    assert_eq!(h.store.count_factors().await.unwrap(), 1);
}

pub async fn the_schema_refuses_malformed_jobs(h: &DurableHarness) {
    let base = job(T0);
    let malformed = [
        ("a running job with an end", ReencryptionJob { finished_at: Some(T0), ..base.clone() }),
        ("a completed job without an end", ReencryptionJob { state: JobState::Completed, ..base.clone() }),
        ("a failed job without an end", ReencryptionJob { state: JobState::Failed, ..base.clone() }),
        ("version 0", ReencryptionJob { target_version: 0, ..base.clone() }),
        ("a version above 2^31 - 1", ReencryptionJob { target_version: 2_147_483_648, ..base.clone() }),
        ("more rows rewritten than scanned", ReencryptionJob { scanned: 1, rewritten: 2, ..base.clone() }),
        ("a count above 2^63 - 1", ReencryptionJob { total: u64::MAX, ..base.clone() }),
    ];
    for (what, malformed) in malformed {
        let job = ReencryptionJob { id: uuid::Uuid::now_v7(), ..malformed };
        assert!(h.store.insert_reencryption_job(&job).await.is_err(), "the schema accepts {what}");
    }
    assert_eq!(job_rows(h).await, "0", "nothing was stored");

    // Around the store: names outside the known ones, negative counts, and a second running job
    // that does not go through ON CONFLICT.
    assert!(h.store.insert_reencryption_job(&base).await.unwrap(), "a well-formed job goes in");
    let (sqlite, postgres) = (
        "INSERT INTO reencryption_jobs VALUES ('0190a000-0000-7000-8000-000000000001', 1, 'completed', \
         'mfa_factors', NULL, 0, 0, 0, 0, 0, 0, NULL)",
        "INSERT INTO reencryption_jobs VALUES ('0190a000-0000-7000-8000-000000000001', 1, 'completed', \
         'mfa_factors', NULL, 0, 0, 0, to_timestamp(0), to_timestamp(0), to_timestamp(0), NULL)",
    );
    let is_sqlite = h.database.sqlite_path().is_some();
    let violations: [(&str, &'static str, &'static str); 5] = [
        (
            "an unknown state",
            "UPDATE reencryption_jobs SET state = 'paused', finished_at = 1",
            "UPDATE reencryption_jobs SET state = 'paused', finished_at = now()",
        ),
        (
            "an unknown phase",
            "UPDATE reencryption_jobs SET phase = 'users'",
            "UPDATE reencryption_jobs SET phase = 'users'",
        ),
        ("a negative total", "UPDATE reencryption_jobs SET total = -1", "UPDATE reencryption_jobs SET total = -1"),
        (
            "a negative rewritten count",
            "UPDATE reencryption_jobs SET rewritten = -1",
            "UPDATE reencryption_jobs SET rewritten = -1",
        ),
        (
            "a second running job",
            "INSERT INTO reencryption_jobs VALUES ('0190a000-0000-7000-8000-000000000002', 1, 'running', \
             'mfa_factors', NULL, 0, 0, 0, 0, 0, NULL, NULL)",
            "INSERT INTO reencryption_jobs VALUES ('0190a000-0000-7000-8000-000000000002', 1, 'running', \
             'mfa_factors', NULL, 0, 0, 0, to_timestamp(0), to_timestamp(0), NULL, NULL)",
        ),
    ];
    for (what, on_sqlite, on_postgres) in violations {
        assert!(
            h.database.execute(if is_sqlite { on_sqlite } else { on_postgres }).await.is_err(),
            "the schema accepts {what}"
        );
    }
    assert_eq!(h.store.latest_reencryption_job().await.unwrap().as_ref(), Some(&base), "the job is unchanged");
    // A well-formed row goes in around the store, so the refusals above are about the constraints.
    assert_eq!(h.database.execute(if is_sqlite { sqlite } else { postgres }).await.unwrap(), 1);
    assert_eq!(job_rows(h).await, "2");
}
