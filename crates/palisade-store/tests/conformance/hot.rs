//! The hot store port's semantics, identical on SQLite, PostgreSQL and Redis.

use std::collections::BTreeSet;
use std::sync::Arc;

use palisade_core::store::{HotKey, RateDecision, RateWindow, StoreError, Tally};
use time::Duration;
use tokio::sync::Barrier;

use crate::support::{HotHarness, conformance};

conformance!(
    HotHarness,
    [sqlite, postgres, redis, redis_cluster],
    [
        put_get_delete,
        values_are_opaque_bytes,
        ttl_expiry,
        ttl_must_be_positive,
        take_is_one_shot,
        concurrent_takes_give_exactly_one,
        compare_and_set_semantics,
        compare_and_set_treats_expired_as_absent,
        concurrent_compare_and_set_has_one_winner,
        concurrent_increments_are_exact,
        increment_window_resets_after_expiry,
        increment_refuses_a_value,
        hit_windows_allows_until_the_tightest_limit,
        refused_hit_consumes_no_window,
        hit_windows_edge_cases,
        hit_windows_reset_after_expiry,
        concurrent_hits_on_one_window_allow_exactly_the_limit,
        concurrent_hits_on_two_windows_allow_exactly_the_limit,
        sets_add_remove_members,
        set_ttl_covers_the_whole_set,
        purge_expired,
        keys_of_different_tags_are_distinct,
        count_reads_a_window_without_counting,
        count_refuses_a_value,
        ranked_add_keeps_the_highest_ranks,
        ranked_members_order_by_rank_then_bytes,
        ranked_add_if_room_admits_up_to_the_cap,
        ranked_remove_removes_one_member,
        ranked_ttl_covers_the_whole_set,
        ranked_arguments_are_checked,
        purge_expired_takes_ranked_sets,
        concurrent_ranked_adds_if_room_admit_exactly_the_cap,
        concurrent_ranked_adds_keep_the_highest_ranks,
        tally_answers_as_the_single_operations_would,
        tally_refuses_a_mix_of_tags_and_touches_nothing,
        tally_windows_and_sets_expire,
        tally_refuses_a_value,
        concurrent_tallies_do_not_interleave,
    ]
);

const LONG: Duration = Duration::minutes(5);

pub async fn put_get_delete(h: &HotHarness) {
    let key = h.key("session");
    assert_eq!(h.store.get(&key).await.unwrap(), None, "a key never written is absent");
    h.store.put(&key, b"first", LONG).await.unwrap();
    assert_eq!(h.store.get(&key).await.unwrap().as_deref(), Some(&b"first"[..]));
    h.store.put(&key, b"second", LONG).await.unwrap();
    assert_eq!(h.store.get(&key).await.unwrap().as_deref(), Some(&b"second"[..]), "put replaces");
    assert!(h.store.delete(&key).await.unwrap(), "delete reports a live value");
    assert_eq!(h.store.get(&key).await.unwrap(), None);
    assert!(!h.store.delete(&key).await.unwrap(), "deleting again finds nothing");
}

pub async fn values_are_opaque_bytes(h: &HotHarness) {
    let binary: Vec<u8> = (0..=255u8).chain([0, 0, 0xff]).collect();
    let key = h.key("binary");
    h.store.put(&key, &binary, LONG).await.unwrap();
    assert_eq!(h.store.get(&key).await.unwrap(), Some(binary), "every byte value round-trips, NULs included");
    let empty = h.key("empty");
    h.store.put(&empty, b"", LONG).await.unwrap();
    assert_eq!(h.store.get(&empty).await.unwrap(), Some(Vec::new()), "an empty value is present, not absent");
    assert_eq!(h.store.take(&empty).await.unwrap(), Some(Vec::new()));
}

pub async fn ttl_expiry(h: &HotHarness) {
    let ttl = h.short_ttl();
    let key = h.key("code");
    h.store.put(&key, b"123456", ttl).await.unwrap();
    assert!(h.store.get(&key).await.unwrap().is_some());
    if h.has_manual_clock() {
        h.pass(ttl - Duration::milliseconds(1)).await;
        assert!(h.store.get(&key).await.unwrap().is_some(), "live until the last millisecond");
        h.pass(Duration::milliseconds(1)).await;
    } else {
        h.pass(ttl).await;
    }
    assert_eq!(h.store.get(&key).await.unwrap(), None, "absent once its time to live has passed");
    assert_eq!(h.store.take(&key).await.unwrap(), None, "an expired value cannot be taken");
    assert!(!h.store.delete(&key).await.unwrap(), "an expired value was not live");
    h.store.put(&key, b"fresh", ttl).await.unwrap();
    assert_eq!(h.store.get(&key).await.unwrap().as_deref(), Some(&b"fresh"[..]), "an expired key can be reused");
}

pub async fn ttl_must_be_positive(h: &HotHarness) {
    let key = h.key("zero");
    for ttl in [Duration::ZERO, Duration::microseconds(500), Duration::seconds(-1)] {
        assert!(h.store.put(&key, b"x", ttl).await.is_err(), "put with ttl {ttl}");
        assert!(h.store.compare_and_set(&key, None, b"x", ttl).await.is_err(), "compare_and_set with ttl {ttl}");
        assert!(h.store.increment(&key, ttl).await.is_err(), "increment with window {ttl}");
        assert!(h.store.set_add(&key, "m", ttl).await.is_err(), "set_add with ttl {ttl}");
    }
    assert_eq!(h.store.get(&key).await.unwrap(), None, "nothing was stored");
    assert!(h.store.set_members(&key).await.unwrap().is_empty());
}

pub async fn take_is_one_shot(h: &HotHarness) {
    let key = h.key("challenge");
    h.store.put(&key, b"nonce", LONG).await.unwrap();
    assert_eq!(h.store.take(&key).await.unwrap().as_deref(), Some(&b"nonce"[..]));
    assert_eq!(h.store.take(&key).await.unwrap(), None, "a taken value is gone");
    assert_eq!(h.store.get(&key).await.unwrap(), None);
    assert_eq!(h.store.take(&h.key("never")).await.unwrap(), None);
}

pub async fn concurrent_takes_give_exactly_one(h: &HotHarness) {
    let key = h.key("one-time-code");
    h.store.put(&key, b"code", LONG).await.unwrap();
    let barrier = Arc::new(Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (store, key, barrier) = (h.store.clone(), key.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.take(&key).await
            })
        })
        .collect();
    let mut got = 0;
    for task in tasks {
        if let Some(value) = task.await.unwrap().unwrap() {
            assert_eq!(value, b"code");
            got += 1;
        }
    }
    assert_eq!(got, 1, "of 50 concurrent takes exactly one gets the value");
}

pub async fn compare_and_set_semantics(h: &HotHarness) {
    let key = h.key("nonce");
    assert!(
        !h.store.compare_and_set(&key, Some(b"v0"), b"v1", LONG).await.unwrap(),
        "expecting a value on an absent key fails"
    );
    assert_eq!(h.store.get(&key).await.unwrap(), None, "and creates nothing");

    assert!(h.store.compare_and_set(&key, None, b"v1", LONG).await.unwrap(), "absent + expected None sets");
    assert_eq!(h.store.get(&key).await.unwrap().as_deref(), Some(&b"v1"[..]));

    assert!(!h.store.compare_and_set(&key, None, b"other", LONG).await.unwrap(), "present + expected None fails");
    assert!(!h.store.compare_and_set(&key, Some(b"v0"), b"other", LONG).await.unwrap(), "a mismatch fails");
    assert!(!h.store.compare_and_set(&key, Some(b"v"), b"other", LONG).await.unwrap(), "a prefix is a mismatch");
    assert_eq!(h.store.get(&key).await.unwrap().as_deref(), Some(&b"v1"[..]), "failed attempts change nothing");

    assert!(h.store.compare_and_set(&key, Some(b"v1"), b"v2", LONG).await.unwrap(), "a match sets");
    assert_eq!(h.store.get(&key).await.unwrap().as_deref(), Some(&b"v2"[..]));
    assert!(!h.store.compare_and_set(&key, Some(b"v1"), b"v3", LONG).await.unwrap(), "the old value no longer matches");

    // The new time to live applies: a short one makes the value expire.
    let ttl = h.short_ttl();
    assert!(h.store.compare_and_set(&key, Some(b"v2"), b"v3", ttl).await.unwrap());
    h.pass(ttl).await;
    assert_eq!(h.store.get(&key).await.unwrap(), None, "compare_and_set sets the new time to live");
}

pub async fn compare_and_set_treats_expired_as_absent(h: &HotHarness) {
    let ttl = h.short_ttl();
    let key = h.key("lock");
    h.store.put(&key, b"old", ttl).await.unwrap();
    h.pass(ttl).await;
    assert!(
        !h.store.compare_and_set(&key, Some(b"old"), b"new", LONG).await.unwrap(),
        "an expired value does not match"
    );
    assert!(h.store.compare_and_set(&key, None, b"new", LONG).await.unwrap(), "an expired value counts as absent");
    assert_eq!(h.store.get(&key).await.unwrap().as_deref(), Some(&b"new"[..]));
}

pub async fn concurrent_compare_and_set_has_one_winner(h: &HotHarness) {
    // From absent.
    let key = h.key("claim");
    let winners = race(h, &key, None, "first").await;
    assert_eq!(winners.len(), 1, "of 50 concurrent set-if-absent exactly one wins: {winners:?}");
    let stored = h.store.get(&key).await.unwrap().unwrap();
    assert_eq!(stored, format!("first-{}", winners[0]).into_bytes(), "the winner's value is the one stored");

    // From a known value (to new values that all differ from it, so no winner re-enables another).
    let winners = race(h, &key, Some(stored), "second").await;
    assert_eq!(winners.len(), 1, "of 50 concurrent swaps of one value exactly one wins: {winners:?}");
    let stored = h.store.get(&key).await.unwrap().unwrap();
    assert_eq!(stored, format!("second-{}", winners[0]).into_bytes());
}

/// 50 tasks released at once, task `i` setting `{prefix}-{i}`; returns the indices that won.
async fn race(
    h: &HotHarness,
    key: &palisade_core::store::HotKey,
    expected: Option<Vec<u8>>,
    prefix: &'static str,
) -> Vec<usize> {
    let barrier = Arc::new(Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (store, key, barrier, expected) = (h.store.clone(), key.clone(), barrier.clone(), expected.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let new = format!("{prefix}-{i}").into_bytes();
                (i, store.compare_and_set(&key, expected.as_deref(), &new, LONG).await)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        let (i, won) = task.await.unwrap();
        if won.unwrap() {
            winners.push(i);
        }
    }
    winners
}

pub async fn concurrent_increments_are_exact(h: &HotHarness) {
    let key = h.key("login-attempts");
    let barrier = Arc::new(Barrier::new(1000));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (store, key, barrier) = (h.store.clone(), key.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.increment(&key, LONG).await
            })
        })
        .collect();
    let mut counts = BTreeSet::new();
    for task in tasks {
        let count = task.await.unwrap().unwrap();
        assert!(count.resets_in > Duration::ZERO && count.resets_in <= LONG, "resets_in {}", count.resets_in);
        counts.insert(count.count);
    }
    assert_eq!(counts, (1..=1000).collect(), "each of 1,000 concurrent hits saw a distinct count, 1 to 1,000");
    assert_eq!(h.store.increment(&key, LONG).await.unwrap().count, 1001);
}

pub async fn increment_window_resets_after_expiry(h: &HotHarness) {
    let window = h.short_ttl();
    let key = h.key("rate");
    let first = h.store.increment(&key, window).await.unwrap();
    assert_eq!(first.count, 1);
    assert!(first.resets_in > Duration::ZERO && first.resets_in <= window, "resets_in {}", first.resets_in);
    if h.has_manual_clock() {
        h.pass(window - Duration::milliseconds(10)).await;
        let second = h.store.increment(&key, window).await.unwrap();
        assert_eq!(second.count, 2);
        assert_eq!(second.resets_in, Duration::milliseconds(10), "the window started at the first hit");
        h.pass(Duration::milliseconds(10)).await;
    } else {
        let second = h.store.increment(&key, window).await.unwrap();
        assert_eq!(second.count, 2);
        assert!(second.resets_in <= first.resets_in, "a later hit does not extend the window");
        h.pass(window).await;
    }
    let reset = h.store.increment(&key, window).await.unwrap();
    assert_eq!(reset.count, 1, "a new window starts after the old one closed");
    assert!(reset.resets_in > window / 2, "the new window lasts a full window: {}", reset.resets_in);
}

pub async fn increment_refuses_a_value(h: &HotHarness) {
    let key = h.key("not-a-counter");
    h.store.put(&key, b"opaque", LONG).await.unwrap();
    assert!(
        matches!(h.store.increment(&key, LONG).await, Err(StoreError::Other(_))),
        "counting on a key that holds a value is an error"
    );
    assert_eq!(h.store.get(&key).await.unwrap().as_deref(), Some(&b"opaque"[..]), "and leaves the value alone");
}

pub async fn sets_add_remove_members(h: &HotHarness) {
    let key = h.key("sessions");
    assert!(h.store.set_members(&key).await.unwrap().is_empty(), "an absent set has no members");
    assert!(!h.store.set_remove(&key, "a").await.unwrap(), "removing from an absent set finds nothing");
    for member in ["a", "b", "c", "a"] {
        h.store.set_add(&key, member, LONG).await.unwrap();
    }
    assert_eq!(members(h, &key).await, ["a", "b", "c"], "a member is there once however often it is added");
    assert!(h.store.set_remove(&key, "b").await.unwrap());
    assert!(!h.store.set_remove(&key, "b").await.unwrap(), "removing twice finds nothing the second time");
    assert!(!h.store.set_remove(&key, "zzz").await.unwrap());
    assert_eq!(members(h, &key).await, ["a", "c"]);
    assert!(members(h, &h.key("other-set")).await.is_empty(), "sets do not leak into each other");
    let unicode = "sess:é✓";
    h.store.set_add(&key, unicode, LONG).await.unwrap();
    assert!(members(h, &key).await.contains(&unicode.to_owned()));
}

pub async fn set_ttl_covers_the_whole_set(h: &HotHarness) {
    let key = h.key("devices");
    if h.has_manual_clock() {
        let ttl = Duration::seconds(60);
        h.store.set_add(&key, "a", ttl).await.unwrap();
        h.pass(Duration::seconds(50)).await;
        h.store.set_add(&key, "b", ttl).await.unwrap();
        h.pass(Duration::seconds(50)).await;
        assert_eq!(members(h, &key).await, ["a", "b"], "adding resets the whole set's time to live");
        h.pass(Duration::seconds(10)).await;
    } else {
        let ttl = Duration::milliseconds(1000);
        h.store.set_add(&key, "a", ttl).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        h.store.set_add(&key, "b", ttl).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        assert_eq!(members(h, &key).await, ["a", "b"], "adding resets the whole set's time to live");
        h.pass(ttl).await;
    }
    assert!(members(h, &key).await.is_empty(), "the whole set expires at once");
    assert!(!h.store.set_remove(&key, "a").await.unwrap(), "an expired member is not there to remove");
    h.store.set_add(&key, "c", LONG).await.unwrap();
    assert_eq!(members(h, &key).await, ["c"], "expired members do not come back with a new one");
}

pub async fn purge_expired(h: &HotHarness) {
    let ttl = h.short_ttl();
    for i in 0..3 {
        h.store.put(&h.key(&format!("short-{i}")), b"x", ttl).await.unwrap();
    }
    h.store.increment(&h.key("short-counter"), ttl).await.unwrap();
    h.store.set_add(&h.key("short-set"), "m", ttl).await.unwrap();
    h.store.put(&h.key("long"), b"keep", LONG).await.unwrap();
    h.store.set_add(&h.key("long-set"), "keep", LONG).await.unwrap();
    h.pass(ttl).await;
    let purged = h.store.purge_expired().await.unwrap();
    if h.has_manual_clock() {
        assert_eq!(purged, 5, "three values, a counter and a set had expired");
        assert_eq!(h.store.purge_expired().await.unwrap(), 0, "nothing left to purge");
    } else {
        assert_eq!(purged, 0, "Redis expires by itself");
    }
    assert_eq!(h.store.get(&h.key("short-0")).await.unwrap(), None);
    assert_eq!(h.store.get(&h.key("long")).await.unwrap().as_deref(), Some(&b"keep"[..]), "live entries stay");
    assert_eq!(members(h, &h.key("long-set")).await, ["keep"]);
    assert_eq!(h.store.increment(&h.key("short-counter"), LONG).await.unwrap().count, 1);
}

pub async fn keys_of_different_tags_are_distinct(h: &HotHarness) {
    let a = h.key("x");
    let b = palisade_core::store::HotKey::new(&format!("{a}-other"), "x");
    h.store.put(&a, b"a", LONG).await.unwrap();
    h.store.put(&b, b"b", LONG).await.unwrap();
    assert_eq!(h.store.get(&a).await.unwrap().as_deref(), Some(&b"a"[..]));
    assert_eq!(h.store.get(&b).await.unwrap().as_deref(), Some(&b"b"[..]));
    h.store.delete(&b).await.unwrap();
    assert!(h.store.get(&a).await.unwrap().is_some());
}

async fn members(h: &HotHarness, key: &palisade_core::store::HotKey) -> Vec<String> {
    let mut members = h.store.set_members(key).await.unwrap();
    members.sort();
    members
}

fn window(key: &HotKey, limit: u64, window: Duration) -> RateWindow {
    RateWindow { key: key.clone(), limit, window }
}

fn counts(decision: &RateDecision) -> Vec<u64> {
    decision.windows.iter().map(|w| w.count).collect()
}

pub async fn hit_windows_allows_until_the_tightest_limit(h: &HotHarness) {
    let (minute, hour) = (h.key("rate:minute"), h.key("rate:hour"));
    let windows = [window(&minute, 5, LONG), window(&hour, 3, LONG * 2)];
    for n in 1..=3 {
        let d = h.store.hit_windows(&windows).await.unwrap();
        assert!(d.allowed, "hit {n} is within both limits");
        assert_eq!(counts(&d), [n, n], "counted in every window, reported in the order given");
        assert!(d.windows[0].resets_in > Duration::ZERO && d.windows[0].resets_in <= LONG, "{d:?}");
        assert!(d.windows[1].resets_in > LONG && d.windows[1].resets_in <= LONG * 2, "{d:?}");
    }
    for _ in 0..3 {
        let d = h.store.hit_windows(&windows).await.unwrap();
        assert!(!d.allowed, "the tighter (second) window is full");
        assert_eq!(counts(&d), [3, 3], "a refusal reports the current counts, unchanged");
        assert!(d.windows.iter().all(|w| w.resets_in > Duration::ZERO), "and when each resets: {d:?}");
    }
    // The first window on its own still has room: the refusals did not count in it.
    let d = h.store.hit_windows(&windows[..1]).await.unwrap();
    assert!(d.allowed);
    assert_eq!(counts(&d), [4]);
}

pub async fn refused_hit_consumes_no_window(h: &HotHarness) {
    let (tight, loose) = (h.key("tight"), h.key("loose"));
    let both = [window(&loose, 100, LONG), window(&tight, 1, LONG)];
    assert_eq!(counts(&h.store.hit_windows(&both).await.unwrap()), [1, 1]);
    for _ in 0..5 {
        let d = h.store.hit_windows(&both).await.unwrap();
        assert!(!d.allowed);
        assert_eq!(counts(&d), [1, 1], "nothing counted in the window with room either");
    }
    assert_eq!(h.store.increment(&loose, LONG).await.unwrap().count, 2, "the loose window saw one hit, not six");

    // A limit of 0 refuses always, and the other windows of the call stay untouched (absent: 0).
    let fresh = h.key("fresh");
    let zero = [window(&fresh, 10, LONG), window(&h.key("zero"), 0, LONG)];
    for _ in 0..3 {
        let d = h.store.hit_windows(&zero).await.unwrap();
        assert!(!d.allowed, "limit 0 refuses");
        assert_eq!(counts(&d), [0, 0]);
        assert_eq!(d.windows[0].resets_in, Duration::ZERO, "an absent window has nothing to reset");
    }
    assert_eq!(h.store.increment(&fresh, LONG).await.unwrap().count, 1, "the refused hits created no count");
}

pub async fn hit_windows_edge_cases(h: &HotHarness) {
    let d = h.store.hit_windows(&[]).await.unwrap();
    assert_eq!(d, RateDecision { allowed: true, windows: Vec::new() }, "no windows: allowed");

    let counter = h.key("counter");
    for bad in [Duration::ZERO, Duration::microseconds(500), Duration::seconds(-1)] {
        assert!(
            h.store.hit_windows(&[window(&counter, 10, LONG), window(&h.key("bad"), 10, bad)]).await.is_err(),
            "window {bad}"
        );
    }
    assert_eq!(h.store.increment(&counter, LONG).await.unwrap().count, 1, "an invalid call counts nothing");

    let value = h.key("value");
    h.store.put(&value, b"opaque", LONG).await.unwrap();
    assert!(
        matches!(
            h.store.hit_windows(&[window(&counter, 10, LONG), window(&value, 10, LONG)]).await,
            Err(StoreError::Other(_))
        ),
        "counting on a key that holds a value is an error"
    );
    assert_eq!(h.store.get(&value).await.unwrap().as_deref(), Some(&b"opaque"[..]), "the value is left alone");
    assert_eq!(h.store.increment(&counter, LONG).await.unwrap().count, 2, "and the other window was not counted");
}

pub async fn hit_windows_reset_after_expiry(h: &HotHarness) {
    let short = h.short_ttl();
    let windows = [window(&h.key("short"), 2, short), window(&h.key("long"), 10, LONG)];
    assert_eq!(counts(&h.store.hit_windows(&windows).await.unwrap()), [1, 1]);
    assert_eq!(counts(&h.store.hit_windows(&windows).await.unwrap()), [2, 2]);
    let refused = h.store.hit_windows(&windows).await.unwrap();
    assert!(!refused.allowed);
    assert_eq!(counts(&refused), [2, 2]);
    if h.has_manual_clock() {
        h.pass(short - Duration::milliseconds(1)).await;
        let d = h.store.hit_windows(&windows).await.unwrap();
        assert!(!d.allowed, "still refused in the window's last millisecond");
        assert_eq!(d.windows[0].resets_in, Duration::milliseconds(1), "the window started at the first hit");
        h.pass(Duration::milliseconds(1)).await;
    } else {
        h.pass(short).await;
    }
    let d = h.store.hit_windows(&windows).await.unwrap();
    assert!(d.allowed, "a new short window opened");
    assert_eq!(counts(&d), [1, 3], "the short window restarts, the long one keeps counting");
    assert!(d.windows[0].resets_in > short / 2, "the new window lasts a full window: {d:?}");
}

/// 1,000 hits released at once against `windows`; returns the decisions.
async fn hit_concurrently(h: &HotHarness, windows: Vec<RateWindow>) -> Vec<RateDecision> {
    let barrier = Arc::new(Barrier::new(1000));
    let windows = Arc::new(windows);
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (store, windows, barrier) = (h.store.clone(), windows.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                store.hit_windows(&windows).await
            })
        })
        .collect();
    let mut decisions = Vec::new();
    for task in tasks {
        decisions.push(task.await.unwrap().unwrap());
    }
    decisions
}

pub async fn concurrent_hits_on_one_window_allow_exactly_the_limit(h: &HotHarness) {
    let windows = vec![window(&h.key("burst"), 100, LONG)];
    let decisions = hit_concurrently(h, windows.clone()).await;
    let allowed: BTreeSet<u64> = decisions.iter().filter(|d| d.allowed).map(|d| d.windows[0].count).collect();
    assert_eq!(decisions.iter().filter(|d| d.allowed).count(), 100, "exactly the limit is allowed");
    assert_eq!(allowed, (1..=100).collect(), "each allowed hit saw a distinct count, 1 to 100");
    assert!(decisions.iter().filter(|d| !d.allowed).all(|d| counts(d) == [100]), "refusals saw the full window");
    assert_eq!(counts(&h.store.hit_windows(&windows).await.unwrap()), [100], "the refusals counted nothing");
}

pub async fn concurrent_hits_on_two_windows_allow_exactly_the_limit(h: &HotHarness) {
    let windows = vec![window(&h.key("minute"), 100, LONG), window(&h.key("hour"), 1000, LONG * 12)];
    let decisions = hit_concurrently(h, windows.clone()).await;
    assert_eq!(decisions.iter().filter(|d| d.allowed).count(), 100, "exactly the tighter limit is allowed");
    for d in decisions.iter().filter(|d| d.allowed) {
        assert_eq!(d.windows[0].count, d.windows[1].count, "both windows counted every allowed hit: {d:?}");
    }
    let after = h.store.hit_windows(&windows).await.unwrap();
    assert!(!after.allowed);
    assert_eq!(counts(&after), [100, 100], "neither window counted a refused hit");
}

pub async fn count_reads_a_window_without_counting(h: &HotHarness) {
    let window = h.short_ttl();
    let key = h.key("failures");
    assert_eq!(h.store.count(&key).await.unwrap(), 0, "no counter: 0");
    for _ in 0..3 {
        h.store.increment(&key, window).await.unwrap();
    }
    assert_eq!(h.store.count(&key).await.unwrap(), 3);
    assert_eq!(h.store.count(&key).await.unwrap(), 3, "reading counts nothing");
    assert_eq!(h.store.increment(&key, window).await.unwrap().count, 4, "and the next hit is the fourth");
    assert_eq!(h.store.count(&key).await.unwrap(), 4);
    assert_eq!(h.store.count(&h.key("other")).await.unwrap(), 0, "counters do not leak into each other");
    if h.has_manual_clock() {
        h.pass(window - Duration::milliseconds(1)).await;
        assert_eq!(h.store.count(&key).await.unwrap(), 4, "live until the window's last millisecond");
        h.pass(Duration::milliseconds(1)).await;
    } else {
        h.pass(window).await;
    }
    assert_eq!(h.store.count(&key).await.unwrap(), 0, "a closed window counts 0");
    assert_eq!(h.store.increment(&key, LONG).await.unwrap().count, 1, "and the next hit opens a new one");
    assert_eq!(h.store.count(&key).await.unwrap(), 1);
}

pub async fn count_refuses_a_value(h: &HotHarness) {
    let key = h.key("not-a-counter");
    h.store.put(&key, b"opaque", LONG).await.unwrap();
    assert!(
        matches!(h.store.count(&key).await, Err(StoreError::Other(_))),
        "reading a value as a counter is an error, not 0"
    );
    assert_eq!(h.store.get(&key).await.unwrap().as_deref(), Some(&b"opaque"[..]), "and leaves the value alone");
}

pub async fn ranked_add_keeps_the_highest_ranks(h: &HotHarness) {
    let key = h.key("sessions-by-age");
    assert!(h.store.ranked_members(&key).await.unwrap().is_empty(), "an absent ranked set has no members");
    for (member, rank) in [("a", 10), ("c", 30), ("b", 20)] {
        assert!(h.store.ranked_add(&key, member, rank, 3, LONG).await.unwrap().is_empty(), "{member}: room for 3");
    }
    assert_eq!(h.store.ranked_members(&key).await.unwrap(), ["a", "b", "c"], "lowest rank first");

    // Past `keep`, the lowest ranks go, the new member included when it is the lowest.
    assert_eq!(h.store.ranked_add(&key, "d", 40, 3, LONG).await.unwrap(), ["a"]);
    assert_eq!(h.store.ranked_add(&key, "old", 5, 3, LONG).await.unwrap(), ["old"], "the new member is the lowest");
    assert_eq!(h.store.ranked_members(&key).await.unwrap(), ["b", "c", "d"]);
    assert_eq!(h.store.ranked_add(&key, "e", 50, 2, LONG).await.unwrap(), ["b", "c"], "lowest rank first");
    assert_eq!(h.store.ranked_members(&key).await.unwrap(), ["d", "e"]);

    // A member added again takes its new rank and is not counted twice.
    assert!(h.store.ranked_add(&key, "d", 60, 2, LONG).await.unwrap().is_empty());
    assert_eq!(h.store.ranked_members(&key).await.unwrap(), ["e", "d"], "d moved past e");
    assert_eq!(h.store.ranked_add(&key, "e", 70, 1, LONG).await.unwrap(), ["d"], "e now outranks d");
    assert_eq!(h.store.ranked_members(&key).await.unwrap(), ["e"]);

    // Negative ranks order below zero, and keep 0 empties the set.
    assert!(h.store.ranked_add(&key, "neg", -5, 5, LONG).await.unwrap().is_empty());
    assert_eq!(h.store.ranked_members(&key).await.unwrap(), ["neg", "e"]);
    assert_eq!(h.store.ranked_add(&key, "z", 0, 0, LONG).await.unwrap(), ["neg", "z", "e"]);
    assert!(h.store.ranked_members(&key).await.unwrap().is_empty());
    assert!(h.store.ranked_members(&h.key("other")).await.unwrap().is_empty(), "sets do not leak into each other");
}

pub async fn ranked_members_order_by_rank_then_bytes(h: &HotHarness) {
    let key = h.key("ties");
    // Equal ranks order bytewise (uppercase before lowercase, ASCII before the rest), whatever the
    // database's collation.
    for member in ["b", "é", "a", "B", "a-1", "A"] {
        h.store.ranked_add(&key, member, 7, 10, LONG).await.unwrap();
    }
    h.store.ranked_add(&key, "z", 6, 10, LONG).await.unwrap();
    let expected = ["z", "A", "B", "a", "a-1", "b", "é"];
    assert_eq!(h.store.ranked_members(&key).await.unwrap(), expected);
    // Trimming takes ties in the same order.
    assert_eq!(h.store.ranked_add(&key, "top", 8, 4, LONG).await.unwrap(), ["z", "A", "B", "a"]);
    assert_eq!(h.store.ranked_members(&key).await.unwrap(), ["a-1", "b", "é", "top"]);
}

pub async fn ranked_add_if_room_admits_up_to_the_cap(h: &HotHarness) {
    let key = h.key("concurrent-sessions");
    assert!(h.store.ranked_add_if_room(&key, "a", 1, 2, LONG).await.unwrap());
    assert!(h.store.ranked_add_if_room(&key, "b", 2, 2, LONG).await.unwrap());
    assert!(!h.store.ranked_add_if_room(&key, "c", 3, 2, LONG).await.unwrap(), "no room for a third");
    assert_eq!(h.store.ranked_members(&key).await.unwrap(), ["a", "b"], "and nothing was added");

    // A member already there is admitted at any count, and takes its new rank.
    assert!(h.store.ranked_add_if_room(&key, "a", 9, 2, LONG).await.unwrap(), "already a member");
    assert_eq!(h.store.ranked_members(&key).await.unwrap(), ["b", "a"], "a took its new rank");
    assert!(h.store.ranked_add_if_room(&key, "b", 0, 1, LONG).await.unwrap(), "a member, even over the cap");

    // Room made by a removal is room again.
    assert!(h.store.ranked_remove(&key, "b").await.unwrap());
    assert!(h.store.ranked_add_if_room(&key, "c", 3, 2, LONG).await.unwrap());
    assert_eq!(h.store.ranked_members(&key).await.unwrap(), ["c", "a"]);
    assert!(!h.store.ranked_add_if_room(&h.key("none"), "x", 1, 0, LONG).await.unwrap(), "cap 0: never room");
    assert!(h.store.ranked_members(&h.key("none")).await.unwrap().is_empty());
}

pub async fn ranked_remove_removes_one_member(h: &HotHarness) {
    let key = h.key("ranked");
    assert!(!h.store.ranked_remove(&key, "a").await.unwrap(), "removing from an absent set finds nothing");
    for (member, rank) in [("a", 1), ("b", 2), ("c", 3)] {
        h.store.ranked_add(&key, member, rank, 10, LONG).await.unwrap();
    }
    assert!(h.store.ranked_remove(&key, "b").await.unwrap());
    assert!(!h.store.ranked_remove(&key, "b").await.unwrap(), "removing twice finds nothing the second time");
    assert!(!h.store.ranked_remove(&key, "zzz").await.unwrap());
    assert_eq!(h.store.ranked_members(&key).await.unwrap(), ["a", "c"]);
    assert!(!h.store.ranked_remove(&h.key("other"), "a").await.unwrap(), "only the set named");
    assert!(h.store.ranked_remove(&key, "a").await.unwrap());
    assert!(h.store.ranked_remove(&key, "c").await.unwrap());
    assert!(h.store.ranked_members(&key).await.unwrap().is_empty(), "the last member can go");
    assert!(h.store.ranked_add_if_room(&key, "d", 4, 1, LONG).await.unwrap(), "and the emptied set has room");
}

pub async fn ranked_ttl_covers_the_whole_set(h: &HotHarness) {
    let key = h.key("ranked-devices");
    let refused = h.key("ranked-full");
    if h.has_manual_clock() {
        let ttl = Duration::seconds(60);
        h.store.ranked_add(&key, "a", 1, 10, ttl).await.unwrap();
        assert!(h.store.ranked_add_if_room(&refused, "a", 1, 1, ttl).await.unwrap());
        h.pass(Duration::seconds(50)).await;
        h.store.ranked_add(&key, "b", 2, 10, ttl).await.unwrap();
        assert!(!h.store.ranked_add_if_room(&refused, "b", 2, 1, ttl).await.unwrap());
        h.pass(Duration::seconds(50)).await;
        assert_eq!(h.store.ranked_members(&key).await.unwrap(), ["a", "b"], "adding resets the whole set's ttl");
        assert!(
            h.store.ranked_members(&refused).await.unwrap().is_empty(),
            "a refused add did not reset the time to live"
        );
        assert!(h.store.ranked_add_if_room(&refused, "b", 2, 1, ttl).await.unwrap(), "an expired set has room");
        h.pass(Duration::seconds(10)).await;
    } else {
        let ttl = Duration::milliseconds(1000);
        h.store.ranked_add(&key, "a", 1, 10, ttl).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        h.store.ranked_add_if_room(&key, "b", 2, 10, ttl).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(600)).await;
        assert_eq!(h.store.ranked_members(&key).await.unwrap(), ["a", "b"], "adding resets the whole set's ttl");
        h.pass(ttl).await;
    }
    assert!(h.store.ranked_members(&key).await.unwrap().is_empty(), "the whole set expires at once");
    assert!(!h.store.ranked_remove(&key, "a").await.unwrap(), "an expired member is not there to remove");
    assert!(h.store.ranked_add(&key, "c", 3, 1, LONG).await.unwrap().is_empty(), "expired members are not evicted");
    assert_eq!(h.store.ranked_members(&key).await.unwrap(), ["c"], "expired members do not come back");
}

pub async fn ranked_arguments_are_checked(h: &HotHarness) {
    let key = h.key("checked");
    for ttl in [Duration::ZERO, Duration::microseconds(500), Duration::seconds(-1)] {
        assert!(h.store.ranked_add(&key, "m", 1, 5, ttl).await.is_err(), "ranked_add with ttl {ttl}");
        assert!(h.store.ranked_add_if_room(&key, "m", 1, 5, ttl).await.is_err(), "ranked_add_if_room with ttl {ttl}");
    }
    // Ranks every backend holds exactly (Redis keeps doubles) are taken, others refused.
    let limit = 1_i64 << 53;
    for rank in [limit + 1, -limit - 1, i64::MAX, i64::MIN] {
        assert!(h.store.ranked_add(&key, "m", rank, 5, LONG).await.is_err(), "ranked_add with rank {rank}");
        assert!(h.store.ranked_add_if_room(&key, "m", rank, 5, LONG).await.is_err(), "if_room with rank {rank}");
    }
    assert!(h.store.ranked_members(&key).await.unwrap().is_empty(), "nothing was stored");
    h.store.ranked_add(&key, "high", limit, 5, LONG).await.unwrap();
    h.store.ranked_add(&key, "just-below", limit - 1, 5, LONG).await.unwrap();
    assert!(h.store.ranked_add_if_room(&key, "low", -limit, 5, LONG).await.unwrap());
    assert_eq!(h.store.ranked_members(&key).await.unwrap(), ["low", "just-below", "high"], "exactly ordered");
}

pub async fn purge_expired_takes_ranked_sets(h: &HotHarness) {
    let ttl = h.short_ttl();
    h.store.ranked_add(&h.key("short-ranked"), "a", 1, 5, ttl).await.unwrap();
    h.store.ranked_add(&h.key("short-ranked"), "b", 2, 5, ttl).await.unwrap();
    assert!(h.store.ranked_add_if_room(&h.key("short-capped"), "a", 1, 5, ttl).await.unwrap());
    h.store.ranked_add(&h.key("long-ranked"), "keep", 1, 5, LONG).await.unwrap();
    h.pass(ttl).await;
    let purged = h.store.purge_expired().await.unwrap();
    if h.has_manual_clock() {
        assert_eq!(purged, 2, "two ranked sets had expired");
        assert_eq!(h.store.purge_expired().await.unwrap(), 0, "nothing left to purge");
    } else {
        assert_eq!(purged, 0, "Redis expires by itself");
    }
    assert!(h.store.ranked_members(&h.key("short-ranked")).await.unwrap().is_empty());
    assert_eq!(h.store.ranked_members(&h.key("long-ranked")).await.unwrap(), ["keep"], "live sets stay");
}

pub async fn concurrent_ranked_adds_if_room_admit_exactly_the_cap(h: &HotHarness) {
    for round in 0..3 {
        let key = h.key(&format!("capped-{round}"));
        let barrier = Arc::new(Barrier::new(20));
        let tasks: Vec<_> = (0..20i64)
            .map(|i| {
                let (store, key, barrier) = (h.store.clone(), key.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    let member = format!("m{i:02}");
                    let admitted = store.ranked_add_if_room(&key, &member, i, 3, LONG).await.unwrap();
                    admitted.then_some(member)
                })
            })
            .collect();
        let mut admitted = Vec::new();
        for task in tasks {
            admitted.extend(task.await.unwrap());
        }
        admitted.sort();
        assert_eq!(admitted.len(), 3, "round {round}: exactly 3 of 20 concurrent adds get in: {admitted:?}");
        assert_eq!(h.store.ranked_members(&key).await.unwrap(), admitted, "round {round}: and only they are members");
    }
}

pub async fn concurrent_ranked_adds_keep_the_highest_ranks(h: &HotHarness) {
    for round in 0..3 {
        let key = h.key(&format!("kept-{round}"));
        let barrier = Arc::new(Barrier::new(20));
        let tasks: Vec<_> = (0..20i64)
            .map(|i| {
                let (store, key, barrier) = (h.store.clone(), key.clone(), barrier.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    store.ranked_add(&key, &format!("m{i:02}"), i, 3, LONG).await.unwrap()
                })
            })
            .collect();
        let mut evicted = Vec::new();
        for task in tasks {
            let removed = task.await.unwrap();
            let mut sorted = removed.clone();
            sorted.sort();
            assert_eq!(removed, sorted, "round {round}: evictions come lowest rank first");
            evicted.extend(removed);
        }
        assert_eq!(
            h.store.ranked_members(&key).await.unwrap(),
            ["m17", "m18", "m19"],
            "round {round}: the 3 highest ranks survive, whatever the order of arrival"
        );
        evicted.sort();
        let expected: Vec<String> = (0..17).map(|i| format!("m{i:02}")).collect();
        assert_eq!(evicted, expected, "round {round}: every other member was evicted exactly once");
    }
}

fn hit(key: &HotKey, window: Duration) -> Tally {
    Tally::Hit { key: key.clone(), window }
}

fn add(key: &HotKey, member: &str, ttl: Duration) -> Tally {
    Tally::Add { key: key.clone(), member: member.into(), ttl }
}

pub async fn tally_answers_as_the_single_operations_would(h: &HotHarness) {
    let (hits, others, set) = (h.key("hits"), h.key("never-hit"), h.key("addresses"));
    assert_eq!(h.store.tally(&[]).await.unwrap(), Vec::<u64>::new(), "no steps, no answers");
    let steps = [
        hit(&hits, LONG),
        hit(&hits, LONG),
        add(&set, "198.51.100.1", LONG),
        add(&set, "198.51.100.2", LONG),
        add(&set, "198.51.100.1", LONG),
        Tally::Peek { key: hits.clone() },
        Tally::Peek { key: others.clone() },
        hit(&hits, LONG),
    ];
    assert_eq!(
        h.store.tally(&steps).await.unwrap(),
        [1, 2, 1, 2, 2, 2, 0, 3],
        "each step answers in order: hits count up, a set counts distinct members, a peek reads without counting"
    );
    assert_eq!(h.store.count(&hits).await.unwrap(), 3, "the hits are stored as increment's are");
    assert_eq!(h.store.increment(&hits, LONG).await.unwrap().count, 4, "and increment goes on from them");
    assert_eq!(members(h, &set).await, ["198.51.100.1", "198.51.100.2"], "the set is set_add's set");
    assert_eq!(h.store.count(&others).await.unwrap(), 0, "a peek creates nothing");
}

pub async fn tally_refuses_a_mix_of_tags_and_touches_nothing(h: &HotHarness) {
    let mine = h.key("hits");
    let elsewhere = HotKey::new(&format!("{}-other", mine.tag()), "hits");
    let refused = h.store.tally(&[hit(&mine, LONG), hit(&elsewhere, LONG)]).await;
    assert!(matches!(&refused, Err(StoreError::Other(m)) if m.contains("one tag")), "{refused:?}");
    assert_eq!(h.store.count(&mine).await.unwrap(), 0, "the first step was not applied");
    assert_eq!(h.store.count(&elsewhere).await.unwrap(), 0);
}

pub async fn tally_windows_and_sets_expire(h: &HotHarness) {
    let ttl = h.short_ttl();
    let (hits, set) = (h.key("hits"), h.key("members"));
    let first = h.store.tally(&[hit(&hits, ttl), add(&set, "a", ttl), hit(&hits, ttl), add(&set, "b", ttl)]).await;
    assert_eq!(first.unwrap(), [1, 1, 2, 2]);
    h.pass(ttl).await;
    let after = h.store.tally(&[hit(&hits, ttl), add(&set, "c", ttl), Tally::Peek { key: hits.clone() }]).await;
    assert_eq!(after.unwrap(), [1, 1, 1], "a closed window and an expired set start again from nothing");
    assert_eq!(members(h, &set).await, ["c"], "expired members do not come back");
}

pub async fn tally_refuses_a_value(h: &HotHarness) {
    let key = h.key("not-a-counter");
    h.store.put(&key, b"opaque", LONG).await.unwrap();
    for step in [hit(&key, LONG), Tally::Peek { key: key.clone() }] {
        assert!(h.store.tally(std::slice::from_ref(&step)).await.is_err(), "{step:?} on a value is an error");
    }
    assert_eq!(h.store.get(&key).await.unwrap().as_deref(), Some(&b"opaque"[..]), "and leaves the value alone");
}

pub async fn concurrent_tallies_do_not_interleave(h: &HotHarness) {
    let (hits, set) = (h.key("hits"), h.key("members"));
    let barrier = Arc::new(Barrier::new(50));
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let (store, barrier) = (h.store.clone(), barrier.clone());
            let steps = vec![hit(&hits, LONG), add(&set, &format!("m{i}"), LONG), Tally::Peek { key: hits.clone() }];
            tokio::spawn(async move {
                barrier.wait().await;
                store.tally(&steps).await
            })
        })
        .collect();
    let mut seen = BTreeSet::new();
    for task in tasks {
        let answer = task.await.unwrap().unwrap();
        assert_eq!(answer[0], answer[1], "no other tally came between this one's hit and its add: {answer:?}");
        assert_eq!(answer[0], answer[2], "nor between its hit and its peek: {answer:?}");
        seen.insert(answer[0]);
    }
    assert_eq!(seen, (1..=50).collect(), "each of 50 concurrent tallies saw a distinct count");
}
