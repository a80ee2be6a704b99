//! `AuditStore::audit_search`, what `GET /monitoring/events` reads, identical on SQLite and
//! PostgreSQL: newest first, `limit`, the `before` cursor, each filter alone and all of them
//! together, records that come back whole; and the indexes of migration 0011 that serve it. Then
//! the dashboard's grouped queries: `audit_counts` (slices from `since` to the microsecond, bounds
//! between two microseconds, far apart, refused buckets) and `audit_top_addresses` (failed or of a
//! kind given, most first, ties by address byte for byte, `limit`, the range).
//!
//! The records are written by real `AuditLog`s, so they chain (the chain is verified once written).
//! Two instances append to the one chain and one's clock runs ten minutes slow, as a skewed server's
//! would: `at` is then not in `seq` order, and a search that ordered or paged by time fails here.
//! Every search is compared field for field with `model` (the port's contract written as a filter
//! over the appended records), and the tests spell out the seqs they expect besides, so a wrong
//! model cannot hide a wrong store.

use std::sync::Arc;

use palisade_core::audit::{
    AuditCount, AuditEvent, AuditFilter, AuditKind, AuditLog, AuditRecord, Outcome, RequestMeta,
};
use palisade_core::clock::{Clock, ManualClock};
use palisade_core::store::{AuditStore, StoreError};
use time::macros::offset;
use time::{Duration, OffsetDateTime};

use crate::durable::{audit_log, keyring};
use crate::support::{DurableHarness, conformance};

conformance!(
    DurableHarness,
    [sqlite, postgres],
    [
        an_empty_result_is_empty_not_an_error,
        newest_first_by_seq_and_at_most_limit,
        before_pages_through_everything_without_gaps_or_repeats,
        subject_matches_exactly,
        one_kind_matches_exactly,
        two_kinds_match_either_and_never_a_third,
        more_than_two_kinds_is_an_error,
        since_is_inclusive_and_until_exclusive_to_the_microsecond,
        bounds_between_two_microseconds_are_not_truncated,
        all_filters_combine_and_each_one_counts,
        records_come_back_whole,
        the_search_indexes_exist_on_every_backend,
        counts_are_per_slice_kind_and_outcome_from_since_to_the_microsecond,
        counts_round_bounds_between_two_microseconds_up,
        counts_agree_across_centuries,
        counts_refuse_a_bucket_shorter_than_a_microsecond_or_not_whole,
        top_addresses_count_failures_and_the_kinds_given_most_first,
        top_addresses_keep_to_the_range_to_the_microsecond,
        top_addresses_rank_by_count_then_address_byte_for_byte,
    ]
);

/// Which server instance appends.
#[derive(Clone, Copy)]
enum Instance {
    /// Keeps the harness's time (`t0` is its start).
    OnTime,
    /// Starts at `t0 - 10 min`.
    Slow,
}

use Instance::{OnTime, Slow};

/// The chain the search tests read, by seq: who appends, how far that instance's clock moves first
/// (µs), what happened and to whom. Kinds: `auth.login`, `auth.login_failed`, `auth.logout`,
/// `token.refresh_reuse`, `user.locked`.
const SCRIPT: [(i64, Instance, i64, AuditKind, Option<&str>); 16] = [
    (1, OnTime, 0, AuditKind::LoginSucceeded, Some("alice")), // t0
    (2, OnTime, 1_000_000, AuditKind::LoginFailed, Some("bob")), // t0 + 1 s
    (3, OnTime, 1, AuditKind::LoginFailed, Some("alice")),    // t0 + 1.000001 s
    (4, OnTime, 1, AuditKind::LoginSucceeded, Some("alice-2")), // t0 + 1.000002 s
    (5, OnTime, 0, AuditKind::Logout, Some("alice")),         // the same instant as 4
    (6, Slow, 0, AuditKind::LoginFailed, Some("alice")),      // t0 - 600 s
    (7, OnTime, 250_000, AuditKind::RefreshTokenReused, Some("Alice")), // t0 + 1.250002 s
    (8, OnTime, 1, AuditKind::LoginSucceeded, None),          // t0 + 1.250003 s
    (9, Slow, 3_000_000, AuditKind::LoginSucceeded, Some("bob")), // t0 - 597 s
    (10, OnTime, 2_000_000, AuditKind::LoginFailed, Some("alice")), // t0 + 3.250003 s
    (11, OnTime, 999_999, AuditKind::Logout, Some("bob")),    // t0 + 4.250002 s
    (12, OnTime, 1, AuditKind::LoginFailed, Some("alice")),   // t0 + 4.250003 s
    (13, OnTime, 0, AuditKind::UserLocked, Some("alice")),    // the same instant as 12
    (14, Slow, 1, AuditKind::Logout, Some("alice")),          // t0 - 596.999999 s
    (15, OnTime, 60_000_000, AuditKind::LoginSucceeded, Some("alice")), // t0 + 64.250003 s
    (16, OnTime, 1, AuditKind::LoginFailed, Some("zoë ✓")),   // t0 + 64.250004 s
];

/// No records (a typed empty list to compare with).
const NONE: [i64; 0] = [];

const LOGIN: &str = "auth.login";
const LOGIN_FAILED: &str = "auth.login_failed";
const LOGOUT: &str = "auth.logout";

/// The records of `SCRIPT`, as `AuditLog::append` returned them.
struct Chain {
    /// In seq order: `records[0]` is seq 1.
    records: Vec<AuditRecord>,
}

impl Chain {
    fn at(&self, seq: i64) -> OffsetDateTime {
        self.records[usize::try_from(seq - 1).unwrap()].at
    }
}

/// An event of `SCRIPT`; its optional fields are set on some records and not on others, and its
/// details are text that must come back byte for byte.
fn event(seq: i64, kind: AuditKind, subject: Option<&str>) -> AuditEvent {
    let outcome = match kind {
        AuditKind::LoginFailed | AuditKind::RefreshTokenReused => Outcome::Failure,
        _ => Outcome::Success,
    };
    let request = RequestMeta {
        ip: match seq % 3 {
            0 => None,
            1 => Some("203.0.113.7".into()),
            _ => Some("2001:db8::17".into()),
        },
        user_agent: (seq % 2 == 0).then(|| format!("agent/{seq} (ünïcode; \"quoted\")")),
        request_id: (seq % 4 != 3).then(|| format!("req-{seq}")),
        accept_language: None,
    };
    let mut event =
        AuditEvent::new(kind, outcome).request(request).detail("n", seq).detail("note", "línea\n\"two\"\t✓");
    if seq % 5 != 0 {
        event = event.actor(format!("actor-{seq}"));
    }
    if let Some(subject) = subject {
        event = event.subject(subject);
    }
    event
}

/// Appends `SCRIPT` through two audit logs over the harness's store, one of them slow.
async fn chain(h: &DurableHarness) -> Chain {
    let keyring = keyring(h);
    let on_time = audit_log(h, keyring.clone());
    let slow_clock = Arc::new(ManualClock::new(h.clock.now() - Duration::minutes(10)));
    let store: Arc<dyn AuditStore> = h.store.clone();
    let slow = AuditLog::new(store, keyring, slow_clock.clone());
    let mut records = Vec::new();
    for (seq, instance, advance, kind, subject) in SCRIPT {
        let (log, clock) = match instance {
            OnTime => (&on_time, &h.clock),
            Slow => (&slow, &slow_clock),
        };
        clock.advance(Duration::microseconds(advance));
        let record = log.append(event(seq, kind, subject)).await.unwrap();
        assert_eq!(record.seq, seq, "the script numbers the chain");
        records.push(record);
    }
    let report = on_time.verify().await.unwrap();
    assert_eq!((report.verified, report.broken), (16, None), "the records chain");
    Chain { records }
}

/// What the port promises for `filter` over `records` (in seq order).
fn model(records: &[AuditRecord], filter: &AuditFilter) -> Vec<AuditRecord> {
    records
        .iter()
        .rev()
        .filter(|r| filter.before.is_none_or(|before| r.seq < before))
        .filter(|r| filter.subject.is_none() || r.subject == filter.subject)
        .filter(|r| filter.kinds.is_empty() || filter.kinds.contains(&r.kind))
        .filter(|r| filter.since.is_none_or(|since| r.at >= since))
        .filter(|r| filter.until.is_none_or(|until| r.at < until))
        .take(usize::try_from(filter.limit).unwrap())
        .cloned()
        .collect()
}

fn seqs(records: &[AuditRecord]) -> Vec<i64> {
    records.iter().map(|r| r.seq).collect()
}

/// Searches, checks the answer against the model field for field, and returns its seqs.
async fn search(h: &DurableHarness, chain: &Chain, filter: &AuditFilter) -> Vec<i64> {
    let found = h.store.audit_search(filter).await.unwrap();
    let expected = model(&chain.records, filter);
    assert_eq!(seqs(&found), seqs(&expected), "{filter:?}");
    assert_eq!(found, expected, "every field as appended: {filter:?}");
    seqs(&found)
}

fn all(limit: u32) -> AuditFilter {
    AuditFilter { limit, ..AuditFilter::default() }
}

fn of_subject(subject: &str) -> AuditFilter {
    AuditFilter { subject: Some(subject.into()), ..all(100) }
}

fn of_kinds(kinds: &[&str]) -> AuditFilter {
    AuditFilter { kinds: kinds.iter().map(|&kind| kind.to_owned()).collect(), ..all(100) }
}

fn between(since: Option<OffsetDateTime>, until: Option<OffsetDateTime>) -> AuditFilter {
    AuditFilter { since, until, ..all(100) }
}

/// Follows the cursor as `GET /monitoring/events` does (after a full page, the next is `before`
/// its last seq) and returns every record seen.
async fn page_through(h: &DurableHarness, filter: &AuditFilter) -> Vec<AuditRecord> {
    assert!(filter.limit > 0, "a page of 0 never moves the cursor");
    let mut seen = Vec::new();
    let mut before = filter.before;
    loop {
        let page = h.store.audit_search(&AuditFilter { before, ..filter.clone() }).await.unwrap();
        assert!(page.len() <= filter.limit as usize, "a page holds at most `limit`: {filter:?}");
        let full = page.len() == filter.limit as usize;
        before = page.last().map(|r| r.seq);
        seen.extend(page);
        assert!(seen.len() <= SCRIPT.len(), "the cursor does not move: {filter:?}");
        if !full {
            return seen;
        }
    }
}

pub async fn an_empty_result_is_empty_not_an_error(h: &DurableHarness) {
    let now = h.clock.now();
    let everything = AuditFilter {
        subject: Some("alice".into()),
        kinds: vec![LOGIN.into(), LOGOUT.into()],
        since: Some(now - Duration::days(1)),
        until: Some(now + Duration::days(1)),
        before: Some(100),
        limit: 100,
    };
    assert!(h.store.audit_search(&all(100)).await.unwrap().is_empty(), "an empty chain: nothing, and no error");
    assert!(h.store.audit_search(&everything).await.unwrap().is_empty());

    let chain = chain(h).await;
    let nothing = [
        of_subject("nobody"),
        of_kinds(&["auth.lockout"]),
        between(Some(chain.at(16) + Duration::microseconds(1)), None),
        between(None, Some(chain.at(6))),
        AuditFilter { before: Some(1), ..all(100) },
        AuditFilter { before: Some(0), ..all(100) },
        AuditFilter { before: Some(-5), ..all(100) },
        AuditFilter { subject: Some("bob".into()), kinds: vec![LOGIN_FAILED.into()], before: Some(2), ..all(100) },
    ];
    for filter in &nothing {
        assert_eq!(search(h, &chain, filter).await, NONE, "{filter:?}");
    }
}

pub async fn newest_first_by_seq_and_at_most_limit(h: &DurableHarness) {
    let chain = chain(h).await;
    assert_eq!(
        search(h, &chain, &all(100)).await,
        (1..=16).rev().collect::<Vec<i64>>(),
        "newest first by seq, though the slow instance's records are older by `at`"
    );
    assert_eq!(search(h, &chain, &all(16)).await.len(), 16);
    assert_eq!(search(h, &chain, &all(5)).await, [16, 15, 14, 13, 12]);
    assert_eq!(search(h, &chain, &all(1)).await, [16]);
    assert_eq!(search(h, &chain, &all(0)).await, NONE, "a limit of 0 returns nothing");
    assert_eq!(search(h, &chain, &all(u32::MAX)).await.len(), 16, "the largest limit is not an error");
    // The limit counts matches, not records read: bob's two newest lie beyond the chain's newest five.
    assert_eq!(search(h, &chain, &AuditFilter { limit: 2, ..of_subject("bob") }).await, [11, 9]);
    assert_eq!(search(h, &chain, &AuditFilter { limit: 3, ..of_kinds(&[LOGIN]) }).await, [15, 9, 8]);
}

pub async fn before_pages_through_everything_without_gaps_or_repeats(h: &DurableHarness) {
    let chain = chain(h).await;
    assert_eq!(search(h, &chain, &AuditFilter { before: Some(9), ..all(3) }).await, [8, 7, 6], "only seqs below");
    assert_eq!(search(h, &chain, &AuditFilter { before: Some(2), ..all(3) }).await, [1]);
    assert_eq!(search(h, &chain, &AuditFilter { before: Some(17), ..all(100) }).await.len(), 16);
    assert_eq!(search(h, &chain, &AuditFilter { before: Some(i64::MAX), ..all(100) }).await.len(), 16);

    let newest_first: Vec<AuditRecord> = chain.records.iter().rev().cloned().collect();
    for limit in 1..=17 {
        let seen = page_through(h, &all(limit)).await;
        assert_eq!(seqs(&seen), seqs(&newest_first), "pages of {limit}: every record once, newest first");
        assert_eq!(seen, newest_first, "pages of {limit}: every field as appended");
    }
    // A filtered view pages the same way; the window below takes in records of both instances, whose
    // instants interleave out of seq order.
    let views = [
        (AuditFilter { limit: 2, ..of_subject("alice") }, vec![15, 14, 13, 12, 10, 6, 5, 3, 1]),
        (AuditFilter { limit: 4, ..of_kinds(&[LOGIN_FAILED, LOGOUT]) }, vec![16, 14, 12, 11, 10, 6, 5, 3, 2]),
        (AuditFilter { limit: 2, ..between(Some(chain.at(9)), Some(chain.at(4))) }, vec![14, 9, 3, 2, 1]),
        (AuditFilter { before: Some(13), limit: 3, ..of_subject("alice") }, vec![12, 10, 6, 5, 3, 1]),
    ];
    for (view, expected) in &views {
        let seen = page_through(h, view).await;
        assert_eq!(seqs(&seen), *expected, "{view:?}");
        assert_eq!(seen, model(&chain.records, &AuditFilter { limit: 100, ..view.clone() }), "{view:?}");
    }
}

pub async fn subject_matches_exactly(h: &DurableHarness) {
    let chain = chain(h).await;
    assert_eq!(
        search(h, &chain, &of_subject("alice")).await,
        [15, 14, 13, 12, 10, 6, 5, 3, 1],
        "alice's, of both instances; not alice-2's nor Alice's"
    );
    assert_eq!(search(h, &chain, &of_subject("bob")).await, [11, 9, 2]);
    assert_eq!(search(h, &chain, &of_subject("Alice")).await, [7]);
    assert_eq!(search(h, &chain, &of_subject("alice-2")).await, [4]);
    assert_eq!(search(h, &chain, &of_subject("zoë ✓")).await, [16]);
    // Equality, never a pattern, a prefix or a case-folded match; a record without a subject is
    // nobody's.
    for nobody in ["alic", "alice ", "ALICE", "%", "alice%", "_lice", "zoe ✓", ""] {
        assert_eq!(search(h, &chain, &of_subject(nobody)).await, NONE, "{nobody:?}");
    }
}

pub async fn one_kind_matches_exactly(h: &DurableHarness) {
    let chain = chain(h).await;
    assert_eq!(
        search(h, &chain, &of_kinds(&[LOGIN])).await,
        [15, 9, 8, 4, 1],
        "not auth.login_failed, which it prefixes"
    );
    assert_eq!(search(h, &chain, &of_kinds(&[LOGIN_FAILED])).await, [16, 12, 10, 6, 3, 2]);
    assert_eq!(search(h, &chain, &of_kinds(&[LOGOUT])).await, [14, 11, 5]);
    assert_eq!(search(h, &chain, &of_kinds(&["user.locked"])).await, [13]);
    for none in ["auth.lockout", "auth.%", "auth.login%", "auth.login_", "AUTH.LOGIN", "auth"] {
        assert_eq!(search(h, &chain, &of_kinds(&[none])).await, NONE, "{none:?}");
    }
}

pub async fn two_kinds_match_either_and_never_a_third(h: &DurableHarness) {
    let chain = chain(h).await;
    let either = [16, 14, 12, 11, 10, 6, 5, 3, 2];
    assert_eq!(search(h, &chain, &of_kinds(&[LOGIN_FAILED, LOGOUT])).await, either, "neither auth.login nor the rest");
    assert_eq!(search(h, &chain, &of_kinds(&[LOGOUT, LOGIN_FAILED])).await, either, "in either order");
    assert_eq!(search(h, &chain, &of_kinds(&["user.locked", "token.refresh_reuse"])).await, [13, 7]);
    assert_eq!(search(h, &chain, &of_kinds(&[LOGOUT, "auth.lockout"])).await, [14, 11, 5], "a kind without records");
    assert_eq!(search(h, &chain, &of_kinds(&["auth.lockout", LOGOUT])).await, [14, 11, 5], "second or first");
    assert_eq!(search(h, &chain, &of_kinds(&[LOGIN, LOGIN])).await, [15, 9, 8, 4, 1], "a kind given twice");
    let with_subject = AuditFilter { subject: Some("bob".into()), ..of_kinds(&[LOGIN, LOGOUT]) };
    assert_eq!(search(h, &chain, &with_subject).await, [11, 9], "both kinds, still only bob's");
}

pub async fn more_than_two_kinds_is_an_error(h: &DurableHarness) {
    let refused = [
        of_kinds(&[LOGIN_FAILED, LOGOUT, LOGIN]),
        of_kinds(&[LOGIN_FAILED, LOGOUT, "user.locked", "token.refresh_reuse", LOGIN]),
        AuditFilter { before: Some(1), ..of_kinds(&[LOGIN_FAILED, LOGOUT, LOGIN]) },
    ];
    // Refused whether or not anything would match: on an empty chain too.
    assert!(matches!(h.store.audit_search(&refused[0]).await, Err(StoreError::Other(_))), "on an empty chain");
    let chain = chain(h).await;
    for filter in &refused {
        match h.store.audit_search(filter).await {
            Err(e) => assert!(!e.is_unavailable(), "a bad search, not an unreachable store: {e}"),
            Ok(found) => panic!("{} kinds must be refused, not searched: {:?}", filter.kinds.len(), seqs(&found)),
        }
    }
    // And the store answers the next search as before.
    assert_eq!(search(h, &chain, &of_kinds(&[LOGIN_FAILED, LOGOUT])).await.len(), 9);
}

pub async fn since_is_inclusive_and_until_exclusive_to_the_microsecond(h: &DurableHarness) {
    let chain = chain(h).await;
    let (t3, t4) = (chain.at(3), chain.at(4));
    assert_eq!((t4 - t3, chain.at(5)), (Duration::microseconds(1), t4), "the script's instants");
    let us = Duration::microseconds(1);

    assert_eq!(
        search(h, &chain, &between(Some(t4), None)).await,
        [16, 15, 13, 12, 11, 10, 8, 7, 5, 4],
        "at or after: 4 and 5, not 3 one microsecond before, nor the slow instance's"
    );
    assert_eq!(search(h, &chain, &between(None, Some(t4))).await, [14, 9, 6, 3, 2, 1], "before: 3, not 4 and 5");
    assert_eq!(search(h, &chain, &between(Some(t3), Some(t4))).await, [3]);
    assert_eq!(search(h, &chain, &between(Some(t4), Some(t4 + us))).await, [5, 4], "both records of one instant");
    assert_eq!(search(h, &chain, &between(Some(t3), Some(t3 + us))).await, [3]);
    assert_eq!(search(h, &chain, &between(Some(t4), Some(t4))).await, NONE, "an empty window");
    // An offset names the same instant.
    let (east, west) = (t3.to_offset(offset!(+05:30)), t4.to_offset(offset!(-08:00)));
    assert_eq!(search(h, &chain, &between(Some(east), Some(west))).await, [3]);
    // The slow instance's records are found by their own instants, wherever they sit in the chain.
    assert_eq!(search(h, &chain, &between(Some(chain.at(6)), Some(chain.at(1)))).await, [14, 9, 6]);
    assert_eq!(search(h, &chain, &between(Some(chain.at(6) + us), Some(chain.at(14)))).await, [9]);
    assert_eq!(search(h, &chain, &between(None, Some(chain.at(14)))).await, [9, 6]);
    assert_eq!(search(h, &chain, &between(Some(chain.at(14)), None)).await.len(), 14, "all but 6 and 9");
}

pub async fn bounds_between_two_microseconds_are_not_truncated(h: &DurableHarness) {
    // Stored instants are whole microseconds, but a bound may be finer (the API parses RFC 3339 to the
    // nanosecond). A record at t is before t + 1 ns and not at or after it: truncating the bound to t
    // would both take in a record before `since` and leave out one before `until`.
    let chain = chain(h).await;
    let (t3, t4) = (chain.at(3), chain.at(4));
    let ns = Duration::nanoseconds;
    assert_eq!(search(h, &chain, &between(Some(t3 + ns(1)), Some(t4 + ns(1)))).await, [5, 4]);
    assert_eq!(search(h, &chain, &between(Some(t3 - ns(999)), Some(t3 + ns(1)))).await, [3]);
    assert_eq!(search(h, &chain, &between(Some(t3), Some(t4 - ns(1)))).await, [3]);
    assert_eq!(search(h, &chain, &between(Some(t4 - ns(1)), Some(t4 + ns(999)))).await, [5, 4]);
    assert_eq!(search(h, &chain, &between(Some(t3 + ns(1)), Some(t4 - ns(1)))).await, NONE, "between 3 and 4: nothing");
    assert_eq!(search(h, &chain, &between(Some(t3 + ns(500)), None)).await.len(), 10, "from 4 on");
    assert_eq!(search(h, &chain, &between(None, Some(t3 + ns(500)))).await, [14, 9, 6, 3, 2, 1], "up to 3");
}

pub async fn all_filters_combine_and_each_one_counts(h: &DurableHarness) {
    let chain = chain(h).await;
    // alice's failed logins and logouts from the slow instance's second record up to seq 10's instant,
    // below seq 14: each condition alone leaves out a record the others let through.
    let combined = AuditFilter {
        subject: Some("alice".into()),
        kinds: vec![LOGIN_FAILED.into(), LOGOUT.into()],
        since: Some(chain.at(9)),
        until: Some(chain.at(10)),
        before: Some(14),
        limit: 100,
    };
    assert_eq!(search(h, &chain, &combined).await, [5, 3]);
    assert_eq!(search(h, &chain, &AuditFilter { limit: 1, ..combined.clone() }).await, [5], "limit");
    assert_eq!(search(h, &chain, &AuditFilter { before: Some(5), ..combined.clone() }).await, [3], "the next page");
    let without = [
        ("subject", AuditFilter { subject: None, ..combined.clone() }, vec![5, 3, 2]),
        ("kinds", AuditFilter { kinds: Vec::new(), ..combined.clone() }, vec![5, 3, 1]),
        ("since", AuditFilter { since: None, ..combined.clone() }, vec![6, 5, 3]),
        ("until", AuditFilter { until: None, ..combined.clone() }, vec![12, 10, 5, 3]),
        ("before", AuditFilter { before: None, ..combined.clone() }, vec![14, 5, 3]),
    ];
    for (dropped, filter, expected) in &without {
        assert_eq!(search(h, &chain, filter).await, *expected, "without {dropped}");
    }
    // Every combination of the six, each checked against the model.
    for mask in 0_u8..64 {
        let on = |bit: u8| mask & (1 << bit) != 0;
        let filter = AuditFilter {
            subject: combined.subject.clone().filter(|_| on(0)),
            kinds: if on(1) { combined.kinds.clone() } else { Vec::new() },
            since: combined.since.filter(|_| on(2)),
            until: combined.until.filter(|_| on(3)),
            before: combined.before.filter(|_| on(4)),
            limit: if on(5) { 2 } else { 100 },
        };
        search(h, &chain, &filter).await;
    }
}

pub async fn records_come_back_whole(h: &DurableHarness) {
    let chain = chain(h).await;
    let newest_first: Vec<AuditRecord> = chain.records.iter().rev().cloned().collect();
    assert_eq!(h.store.audit_search(&all(100)).await.unwrap(), newest_first, "every field as appended");
    assert_eq!(h.store.audit_records(0, 100).await.unwrap(), chain.records, "as the chain reads them");

    // One record field by field, with every optional field set, and one with none.
    let found = h.store.audit_search(&of_subject("zoë ✓")).await.unwrap();
    let [full] = found.as_slice() else { panic!("one record of zoë ✓: {:?}", seqs(&found)) };
    let appended = &chain.records[15];
    assert_eq!(full.seq, 16);
    assert_eq!(full.id, appended.id);
    assert_eq!(full.at, h.clock.now(), "the on-time clock's last reading, to the microsecond");
    assert_eq!((full.kind.as_str(), full.outcome.as_str()), (LOGIN_FAILED, "failure"));
    assert_eq!(full.actor.as_deref(), Some("actor-16"));
    assert_eq!(full.subject.as_deref(), Some("zoë ✓"));
    assert_eq!(full.ip.as_deref(), Some("203.0.113.7"));
    assert_eq!(full.user_agent.as_deref(), Some("agent/16 (ünïcode; \"quoted\")"));
    assert_eq!(full.request_id.as_deref(), Some("req-16"));
    assert_eq!(full.details, appended.details);
    assert!(full.details.contains("línea") && full.details.contains("✓"), "{}", full.details);
    assert_eq!(full.key_id, appended.key_id);
    assert_eq!(full.prev_mac, chain.records[14].mac, "linked to seq 15");
    assert_eq!(full.mac, appended.mac);
    assert_eq!(full.mac.len(), 32);

    let found = h.store.audit_search(&AuditFilter { before: Some(16), ..all(1) }).await.unwrap();
    let [bare] = found.as_slice() else { panic!("seq 15: {:?}", seqs(&found)) };
    assert_eq!(bare.seq, 15);
    assert_eq!((&bare.actor, &bare.ip, &bare.user_agent, &bare.request_id), (&None, &None, &None, &None));
    assert_eq!(bare, &chain.records[14]);
}

pub async fn the_search_indexes_exist_on_every_backend(h: &DurableHarness) {
    // Migration 0011's indexes, by name and columns, the same in both dialects: subject and kind
    // lead to the newest records by seq, `at` serves the time window.
    const SQLITE: &str = "SELECT name || ':' || group_concat(col, ',') FROM ( \
         SELECT il.name AS name, ii.name AS col FROM pragma_index_list('audit_log') AS il, \
         pragma_index_info(il.name) AS ii WHERE il.origin = 'c' ORDER BY il.name, ii.seqno) \
         GROUP BY name ORDER BY name";
    const POSTGRES: &str = "SELECT i.relname::text || ':' || string_agg(a.attname::text, ',' ORDER BY k.n) \
         FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid \
         CROSS JOIN LATERAL unnest(x.indkey::int2[]) WITH ORDINALITY AS k(attnum, n) \
         JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
         WHERE t.relname = 'audit_log' AND NOT x.indisunique GROUP BY i.relname ORDER BY i.relname";
    let sql = if h.database.sqlite_path().is_some() { SQLITE } else { POSTGRES };
    assert_eq!(
        h.database.fetch_texts(sql).await.unwrap(),
        ["audit_log_actor:actor,seq", "audit_log_at:at", "audit_log_kind:kind,seq", "audit_log_subject:subject,seq"]
    );
}

// The dashboard's grouped queries: `audit_counts` and `audit_top_addresses`.

/// Records appended at instants a test chooses, through a real `AuditLog` (so they chain), in the
/// order given: the log's own manual clock moves forward to each instant.
struct Timeline {
    log: AuditLog,
    clock: Arc<ManualClock>,
    records: Vec<AuditRecord>,
}

impl Timeline {
    fn starting(h: &DurableHarness, start: OffsetDateTime) -> Self {
        let clock = Arc::new(ManualClock::new(start));
        let store: Arc<dyn AuditStore> = h.store.clone();
        Self { log: AuditLog::new(store, keyring(h), clock.clone()), clock, records: Vec::new() }
    }

    /// Appends a record of `kind` and `outcome` from `ip` at `at`, a whole microsecond not before
    /// the last record's.
    async fn append(&mut self, at: OffsetDateTime, kind: AuditKind, outcome: Outcome, ip: Option<&str>) {
        let now = self.clock.now();
        assert!(at >= now, "a timeline moves forward: {at} is before {now}");
        self.clock.advance(at - now);
        let request = RequestMeta { ip: ip.map(str::to_owned), ..RequestMeta::default() };
        let record = self.log.append(AuditEvent::new(kind, outcome).request(request)).await.unwrap();
        assert_eq!(record.at, at, "a whole microsecond, stored as given");
        self.records.push(record);
    }

    /// Appends `n` records alike.
    async fn append_n(&mut self, n: usize, at: OffsetDateTime, kind: AuditKind, outcome: Outcome, ip: Option<&str>) {
        for _ in 0..n {
            self.append(at, kind, outcome, ip).await;
        }
    }

    async fn verify(&self) {
        let report = self.log.verify().await.unwrap();
        assert_eq!((report.verified, report.broken), (self.records.len() as u64, None), "the records chain");
    }
}

fn count(bucket: u32, kind: &str, outcome: &str, count: u64) -> AuditCount {
    AuditCount { bucket, kind: kind.into(), outcome: outcome.into(), count }
}

/// What `audit_counts` promises, in exact arithmetic: the records with `since <= at < until`, per
/// slice `floor((at - since) / bucket)`, kind and outcome; sorted by those three.
fn counts_model(
    records: &[AuditRecord],
    since: OffsetDateTime,
    until: OffsetDateTime,
    bucket: Duration,
) -> Vec<AuditCount> {
    let mut counts = std::collections::BTreeMap::<(u32, String, String), u64>::new();
    for record in records.iter().filter(|r| r.at >= since && r.at < until) {
        let slice = u32::try_from((record.at - since).whole_nanoseconds() / bucket.whole_nanoseconds()).unwrap();
        *counts.entry((slice, record.kind.clone(), record.outcome.clone())).or_default() += 1;
    }
    counts.into_iter().map(|((bucket, kind, outcome), n)| count(bucket, &kind, &outcome, n)).collect()
}

/// Counts, checks the answer against the model, and returns it sorted (the port promises no order).
async fn counts(
    h: &DurableHarness,
    timeline: &Timeline,
    since: OffsetDateTime,
    until: OffsetDateTime,
    bucket: Duration,
) -> Vec<AuditCount> {
    let mut found = h.store.audit_counts(since, until, bucket).await.unwrap();
    found.sort_by(|a, b| (a.bucket, &a.kind, &a.outcome).cmp(&(b.bucket, &b.kind, &b.outcome)));
    assert_eq!(found, counts_model(&timeline.records, since, until, bucket), "{since} to {until} by {bucket}");
    found
}

pub async fn counts_are_per_slice_kind_and_outcome_from_since_to_the_microsecond(h: &DurableHarness) {
    use AuditKind::{LoginFailed, LoginSucceeded, Logout};
    use Outcome::{Failure, Success};
    let since = h.clock.now() + Duration::hours(1);
    let bucket = Duration::minutes(1);
    let until = since + Duration::seconds(210); // three slices and a half: the last is cut short
    let us = Duration::microseconds(1);
    let ip = Some("203.0.113.7");

    let mut t = Timeline::starting(h, h.clock.now());
    assert_eq!(counts(h, &t, since, until, bucket).await, [], "an empty chain: nothing, and no error");
    t.append(since - us, LoginFailed, Failure, ip).await; // before since
    t.append(since, LoginSucceeded, Success, ip).await; // slice 0
    t.append(since + bucket - us, LoginFailed, Failure, None).await; // slice 0, its last microsecond
    t.append(since + bucket - us, LoginSucceeded, Failure, ip).await; // slice 0, the same kind failed
    t.append(since + bucket, LoginSucceeded, Success, ip).await; // slice 1, its first microsecond
    t.append(since + bucket, LoginSucceeded, Success, None).await; // slice 1
    t.append(since + bucket * 2, Logout, Success, ip).await; // slice 2
    t.append(until - us, LoginFailed, Failure, ip).await; // slice 3, the one cut short
    t.append(until, LoginFailed, Failure, ip).await; // at until: left out
    t.append(until + Duration::hours(1), LoginSucceeded, Success, ip).await; // after
    t.verify().await;

    let expected = [
        count(0, LOGIN, "failure", 1),
        count(0, LOGIN, "success", 1),
        count(0, LOGIN_FAILED, "failure", 1),
        count(1, LOGIN, "success", 2),
        count(2, LOGOUT, "success", 1),
        count(3, LOGIN_FAILED, "failure", 1),
    ];
    assert_eq!(counts(h, &t, since, until, bucket).await, expected);
    // An offset names the same instants.
    let (east, west) = (since.to_offset(offset!(+05:30)), until.to_offset(offset!(-08:00)));
    assert_eq!(counts(h, &t, east, west, bucket).await, expected);

    // The slices start at `since`, whatever it is: a microsecond later, the record at `since` is
    // before the range and each slice's first record falls in the slice before.
    assert_eq!(
        counts(h, &t, since + us, until, bucket).await,
        [
            count(0, LOGIN, "failure", 1),
            count(0, LOGIN, "success", 2),
            count(0, LOGIN_FAILED, "failure", 1),
            count(1, LOGOUT, "success", 1),
            count(3, LOGIN_FAILED, "failure", 1),
        ]
    );
    // A microsecond earlier, the record before `since` is in slice 0 and the last microsecond of each
    // slice moves to the next; the record at `until` is in when the range ends a microsecond later.
    assert_eq!(
        counts(h, &t, since - us, until + us, bucket).await,
        [
            count(0, LOGIN, "success", 1),
            count(0, LOGIN_FAILED, "failure", 1),
            count(1, LOGIN, "failure", 1),
            count(1, LOGIN, "success", 2),
            count(1, LOGIN_FAILED, "failure", 1),
            count(2, LOGOUT, "success", 1),
            count(3, LOGIN_FAILED, "failure", 2),
        ]
    );
    // One slice for the whole range, or longer than it.
    for whole in [Duration::seconds(210), Duration::days(400), Duration::seconds(i64::MAX)] {
        assert_eq!(
            counts(h, &t, since, until, whole).await,
            [
                count(0, LOGIN, "failure", 1),
                count(0, LOGIN, "success", 3),
                count(0, LOGIN_FAILED, "failure", 2),
                count(0, LOGOUT, "success", 1),
            ],
            "{whole}"
        );
    }
    // Slices of a microsecond: the slice is the offset from `since` in microseconds.
    assert_eq!(
        counts(h, &t, since, until, us).await,
        [
            count(0, LOGIN, "success", 1),
            count(59_999_999, LOGIN, "failure", 1),
            count(59_999_999, LOGIN_FAILED, "failure", 1),
            count(60_000_000, LOGIN, "success", 2),
            count(120_000_000, LOGOUT, "success", 1),
            count(209_999_999, LOGIN_FAILED, "failure", 1),
        ]
    );
    // Slices that do not divide a minute (7.000003 s): the model's exact arithmetic decides.
    let odd = Duration::microseconds(7_000_003);
    assert_eq!(counts(h, &t, since, until, odd).await.iter().map(|c| c.bucket).max(), Some(29));
    // Empty and backward ranges count nothing.
    assert_eq!(counts(h, &t, since, since, bucket).await, []);
    assert_eq!(counts(h, &t, until, since, bucket).await, []);
}

pub async fn counts_round_bounds_between_two_microseconds_up(h: &DurableHarness) {
    // A stored instant is a whole microsecond, so a record at t is before `since` = t + 1 ns, and
    // `(at - since) / bucket` is a hair under a whole slice for a record at `since - 1 ns + bucket`:
    // truncating `since` to t would take in the record at t and move that one a slice on.
    use AuditKind::{LoginFailed, LoginSucceeded, Logout, MfaVerified, TokenRejected, UserLocked};
    use Outcome::Success;
    let start = h.clock.now();
    let bucket = Duration::minutes(1);
    let us = Duration::microseconds(1);
    let mut t = Timeline::starting(h, start);
    t.append(start, LoginSucceeded, Success, None).await;
    t.append(start + us, Logout, Success, None).await;
    t.append(start + bucket, UserLocked, Success, None).await;
    t.append(start + bucket + us, TokenRejected, Success, None).await;
    t.append(start + bucket * 2, MfaVerified, Success, None).await;
    t.append(start + bucket * 2 + us, LoginFailed, Success, None).await;
    t.verify().await;

    for ns in [1, 500, 999] {
        let (since, until) = (start + Duration::nanoseconds(ns), start + bucket * 2 + Duration::nanoseconds(ns));
        assert_eq!(
            counts(h, &t, since, until, bucket).await,
            [
                count(0, LOGOUT, "success", 1),
                count(0, "user.locked", "success", 1),
                count(1, "mfa.verified", "success", 1),
                count(1, "token.rejected", "success", 1),
            ],
            "{ns} ns past a microsecond"
        );
    }
    // A nanosecond short of a microsecond: the record at `start` is in, and the one a bucket later
    // is just past slice 0.
    let since = start - Duration::nanoseconds(1);
    assert_eq!(
        counts(h, &t, since, since + bucket * 2, bucket).await,
        [
            count(0, LOGIN, "success", 1),
            count(0, LOGOUT, "success", 1),
            count(1, "token.rejected", "success", 1),
            count(1, "user.locked", "success", 1),
        ]
    );
}

pub async fn counts_agree_across_centuries(h: &DurableHarness) {
    // Far from `since`, a slice is a large quotient whose fraction is a hair under one: arithmetic
    // that rounds it (rather than dividing whole microseconds) puts the record a slice on.
    use AuditKind::{LoginFailed, LoginSucceeded};
    use Outcome::{Failure, Success};
    let since = time::macros::datetime!(1000-01-01 0:00 UTC);
    let bucket = Duration::days(30);
    let us = Duration::microseconds(1);
    let far = bucket * 12_000; // 985 years on
    let mut t = Timeline::starting(h, since);
    t.append(since + Duration::days(1) - us, LoginSucceeded, Success, None).await;
    t.append(since + bucket, LoginSucceeded, Success, None).await;
    t.append(since + far - us, LoginFailed, Failure, None).await;
    t.append(since + far, LoginSucceeded, Success, None).await;
    t.append(since + far + bucket - us, LoginFailed, Failure, None).await;
    t.verify().await;

    let until = since + far + bucket;
    assert_eq!(
        counts(h, &t, since, until, bucket).await,
        [
            count(0, LOGIN, "success", 1),
            count(1, LOGIN, "success", 1),
            count(11_999, LOGIN_FAILED, "failure", 1),
            count(12_000, LOGIN, "success", 1),
            count(12_000, LOGIN_FAILED, "failure", 1),
        ]
    );
    assert_eq!(
        counts(h, &t, since, until, Duration::days(1)).await,
        [
            count(0, LOGIN, "success", 1),
            count(30, LOGIN, "success", 1),
            count(359_999, LOGIN_FAILED, "failure", 1),
            count(360_000, LOGIN, "success", 1),
            count(360_029, LOGIN_FAILED, "failure", 1),
        ]
    );
}

pub async fn counts_refuse_a_bucket_shorter_than_a_microsecond_or_not_whole(h: &DurableHarness) {
    let since = h.clock.now();
    let until = since + Duration::hours(1);
    let refused = [
        Duration::ZERO,
        Duration::minutes(-1),
        Duration::nanoseconds(-1),
        Duration::nanoseconds(999),
        Duration::nanoseconds(1_500),
        Duration::minutes(1) + Duration::nanoseconds(1),
    ];
    let mut t = Timeline::starting(h, since);
    for round in ["empty", "with records"] {
        for bucket in refused {
            match h.store.audit_counts(since, until, bucket).await {
                Err(e) => assert!(!e.is_unavailable(), "a bad bucket, not an unreachable store: {e}"),
                Ok(found) => panic!("a bucket of {bucket} must be refused ({round}), not counted: {found:?}"),
            }
        }
        t.append(since, AuditKind::LoginFailed, Outcome::Failure, Some("203.0.113.7")).await;
    }
    // And the store answers the next count as before.
    assert_eq!(counts(h, &t, since, until, Duration::microseconds(1)).await, [count(0, LOGIN_FAILED, "failure", 2)]);
}

/// What `audit_top_addresses` promises: the addresses of the records in range that failed or are
/// of one of `kinds`, with their counts, most first and then by address, at most `limit`.
fn top_model(
    records: &[AuditRecord],
    since: OffsetDateTime,
    until: OffsetDateTime,
    kinds: &[&str],
    limit: u32,
) -> Vec<(String, u64)> {
    let mut counts = std::collections::BTreeMap::<String, u64>::new();
    for record in records.iter().filter(|r| r.at >= since && r.at < until) {
        if let Some(ip) = &record.ip
            && (record.outcome == "failure" || kinds.contains(&record.kind.as_str()))
        {
            *counts.entry(ip.clone()).or_default() += 1;
        }
    }
    let mut top: Vec<(String, u64)> = counts.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.as_bytes().cmp(b.0.as_bytes())));
    top.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    top
}

/// The top addresses, checked against the model.
async fn top(
    h: &DurableHarness,
    timeline: &Timeline,
    since: OffsetDateTime,
    until: OffsetDateTime,
    kinds: &[&str],
    limit: u32,
) -> Vec<(String, u64)> {
    let found = h.store.audit_top_addresses(since, until, kinds, limit).await.unwrap();
    assert_eq!(found, top_model(&timeline.records, since, until, kinds, limit), "{kinds:?}, {limit}");
    found
}

fn ranked(expected: &[(&str, u64)]) -> Vec<(String, u64)> {
    expected.iter().map(|&(ip, n)| (ip.to_owned(), n)).collect()
}

const A: &str = "198.51.100.1";
const B: &str = "198.51.100.2";
const C: &str = "198.51.100.3";
const D: &str = "10.0.0.1";
const E: &str = "9.0.0.1";
const REUSE: &str = "token.refresh_reuse";

pub async fn top_addresses_count_failures_and_the_kinds_given_most_first(h: &DurableHarness) {
    use AuditKind::{LoginFailed, LoginSucceeded, RefreshTokenReused, TokenRejected, UserLocked};
    use Outcome::{Failure, Success};
    let since = h.clock.now() + Duration::hours(1);
    let until = since + Duration::hours(1);
    let us = Duration::microseconds(1);
    let mut t = Timeline::starting(h, h.clock.now());
    assert_eq!(top(h, &t, since, until, &[REUSE], 10).await, [], "an empty chain: nothing, and no error");

    // E's records outside the range would put it first.
    t.append_n(3, since - us, LoginFailed, Failure, Some(E)).await;
    t.append_n(4, since, LoginFailed, Failure, Some(A)).await;
    t.append(since + us, LoginFailed, Failure, Some(B)).await;
    t.append_n(2, since + us, RefreshTokenReused, Success, Some(B)).await; // of a kind given, not failed
    t.append_n(5, since + us, LoginSucceeded, Success, Some(C)).await; // neither, unless `auth.login` is given
    t.append(since + us, TokenRejected, Failure, Some(D)).await;
    t.append(since + us, UserLocked, Failure, Some(D)).await;
    t.append_n(2, until - us, LoginFailed, Failure, Some(E)).await;
    t.append_n(6, until - us, LoginFailed, Failure, None).await; // no address: never listed
    t.append_n(2, until - us, RefreshTokenReused, Success, None).await;
    t.append_n(3, until, LoginFailed, Failure, Some(E)).await;
    t.verify().await;

    let failed_only = ranked(&[(A, 4), (D, 2), (E, 2), (B, 1)]);
    assert_eq!(top(h, &t, since, until, &[], 10).await, failed_only, "ties by address, as text: 10.… before 9.…");
    assert_eq!(top(h, &t, since, until, &[REUSE], 10).await, ranked(&[(A, 4), (B, 3), (D, 2), (E, 2)]));
    assert_eq!(
        top(h, &t, since, until, &[LOGIN, REUSE], 10).await,
        ranked(&[(C, 5), (A, 4), (B, 3), (D, 2), (E, 2)]),
        "either kind"
    );
    assert_eq!(top(h, &t, since, until, &[LOGIN], 10).await, ranked(&[(C, 5), (A, 4), (D, 2), (E, 2), (B, 1)]));
    // A failed record of a kind given counts once.
    assert_eq!(top(h, &t, since, until, &[LOGIN_FAILED], 10).await, failed_only);
    assert_eq!(top(h, &t, since, until, &[LOGIN_FAILED, "token.rejected"], 10).await, failed_only);
    // Kinds match exactly.
    for none in ["token.refresh", "token.%", "TOKEN.REFRESH_REUSE", "auth", ""] {
        assert_eq!(top(h, &t, since, until, &[none], 10).await, failed_only, "{none:?}");
    }

    // At most `limit`, cutting through a tie by address.
    assert_eq!(top(h, &t, since, until, &[REUSE], 3).await, ranked(&[(A, 4), (B, 3), (D, 2)]));
    assert_eq!(top(h, &t, since, until, &[REUSE], 1).await, ranked(&[(A, 4)]));
    assert_eq!(top(h, &t, since, until, &[REUSE], 0).await, [], "a limit of 0 returns nothing");
    assert_eq!(top(h, &t, since, until, &[REUSE], u32::MAX).await.len(), 4, "the largest limit is not an error");
}

pub async fn top_addresses_keep_to_the_range_to_the_microsecond(h: &DurableHarness) {
    use AuditKind::{LoginFailed, LoginSucceeded};
    use Outcome::{Failure, Success};
    let since = h.clock.now() + Duration::hours(1);
    let until = since + Duration::minutes(5);
    let (us, ns) = (Duration::microseconds(1), Duration::nanoseconds(1));
    let mut t = Timeline::starting(h, h.clock.now());
    t.append(since - us, LoginFailed, Failure, Some(A)).await;
    t.append(since, LoginFailed, Failure, Some(A)).await;
    t.append(since + us, LoginSucceeded, Success, Some(B)).await;
    t.append(until - us, LoginFailed, Failure, Some(A)).await;
    t.append(until - us, LoginSucceeded, Failure, Some(B)).await;
    t.append(until, LoginFailed, Failure, Some(A)).await;
    t.verify().await;

    assert_eq!(top(h, &t, since, until, &[LOGIN], 10).await, ranked(&[(A, 2), (B, 2)]));
    assert_eq!(top(h, &t, since, until, &[], 10).await, ranked(&[(A, 2), (B, 1)]));
    assert_eq!(top(h, &t, since - us, until + us, &[], 10).await, ranked(&[(A, 4), (B, 1)]));
    // Bounds between two microseconds round up, as `audit_search`'s do.
    assert_eq!(top(h, &t, since + ns, until, &[LOGIN], 10).await, ranked(&[(B, 2), (A, 1)]));
    assert_eq!(top(h, &t, since - ns, until + ns, &[], 10).await, ranked(&[(A, 3), (B, 1)]));
    assert_eq!(top(h, &t, since - us, until - ns, &[], 10).await, ranked(&[(A, 3), (B, 1)]));
    assert_eq!(top(h, &t, since + ns, until - us, &[LOGIN], 10).await, ranked(&[(B, 1)]));
    assert_eq!(top(h, &t, since, since, &[LOGIN], 10).await, [], "an empty range");
    assert_eq!(top(h, &t, until, since, &[LOGIN], 10).await, [], "a backward range");
}

pub async fn top_addresses_rank_by_count_then_address_byte_for_byte(h: &DurableHarness) {
    // Byte order, as SQLite compares text, whatever collation PostgreSQL's database was created
    // with. Under a linguistic collation (an ICU one here; glibc's en_US ignores the punctuation)
    // `::1` and `2001:db8::1` move ahead.
    if h.database.sqlite_path().is_none() {
        let icu = h.database.fetch_text("SELECT CAST(COUNT(*) AS TEXT) FROM pg_collation WHERE collname = 'und-x-icu'");
        if icu.await.unwrap() == "1" {
            h.database.execute(r#"ALTER TABLE audit_log ALTER COLUMN ip TYPE text COLLATE "und-x-icu""#).await.unwrap();
        } else {
            eprintln!("no ICU collation: checking byte order under the database's own collation only");
        }
    }
    let since = h.clock.now();
    let mut t = Timeline::starting(h, since);
    let tied = ["::1", "2001:db8::1", "9.0.0.1", "2001:db80::1", "10.0.0.2"];
    for ip in tied {
        t.append_n(2, since, AuditKind::LoginFailed, Outcome::Failure, Some(ip)).await;
    }
    // Counts compare as numbers: 10 before 9.
    t.append_n(9, since, AuditKind::LoginFailed, Outcome::Failure, Some(A)).await;
    t.append_n(10, since, AuditKind::LoginFailed, Outcome::Failure, Some(B)).await;
    t.verify().await;

    let until = since + Duration::seconds(1);
    assert_eq!(
        top(h, &t, since, until, &[], 10).await,
        ranked(&[
            (B, 10),
            (A, 9),
            ("10.0.0.2", 2),
            ("2001:db80::1", 2),
            ("2001:db8::1", 2),
            ("9.0.0.1", 2),
            ("::1", 2)
        ])
    );
    assert_eq!(
        top(h, &t, since, until, &[], 4).await,
        ranked(&[(B, 10), (A, 9), ("10.0.0.2", 2), ("2001:db80::1", 2)])
    );
}
