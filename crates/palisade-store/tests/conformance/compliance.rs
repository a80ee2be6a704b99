//! The compliance ports — the consent ledger (texts kept once, a version's text fixed, appends
//! numbered with one winner, append-only in the schema, the newest entry, live consents counted
//! by their newest entry), erasure requests (one open per user, the due ones, one claim winner,
//! progress only by the owner, the account's deletion with its cascade, completion forgetting the
//! user, cancel only while scheduled, the administrators counted), the audit chain's redaction
//! (only records about the user, only v2 records, once; a real chain still verifies), archiving a
//! prefix behind a checkpoint (never the head, never twice; the chain verifies from it), and
//! retention (counted, then removed in bounded batches, only what is past its cutoff) — identical
//! on SQLite and PostgreSQL.

use std::sync::Arc;

use palisade_core::audit::{AuditEvent, AuditKind, Outcome, REDACTED_DETAILS, RequestMeta};
use palisade_core::compliance::consent::{ConsentAction, ConsentText, ConsentTextPut, text_hash};
use palisade_core::compliance::erasure::{ErasureCounts, ErasureProgress, ErasureReason, ErasureStep};
use palisade_core::compliance::{Consent, ErasureRequest, ErasureState};
use palisade_core::monitoring::{IncidentRaise, Severity};
use palisade_core::user::{User, UserId};
use time::{Duration, OffsetDateTime};
use tokio::sync::Barrier;

use crate::durable::{audit_log, keyring};
use crate::mfa::T0;
use crate::support::{DurableHarness, conformance};
use crate::users::{inserted, user};

conformance!(
    DurableHarness,
    [sqlite, postgres],
    [
        a_text_is_kept_once_and_a_version_keeps_its_text,
        consent_entries_read_back_exactly_newest_last,
        concurrent_appends_of_one_number_have_one_winner,
        the_ledger_is_append_only,
        live_consents_are_counted_by_their_newest_entry,
        consents_go_with_their_user,
        one_open_erasure_request_per_user,
        due_requests_are_open_due_and_unleased,
        concurrent_claims_of_a_request_have_one_winner,
        only_the_owner_records_progress_or_finishes,
        erasing_the_account_deletes_its_rows_and_pseudonymises_incidents,
        completing_forgets_the_user_and_cancel_only_while_scheduled,
        administrators_are_counted,
        redaction_touches_only_the_users_v2_records_and_the_chain_verifies,
        an_archived_prefix_leaves_a_checkpoint_the_chain_verifies_from,
        the_archivable_prefix_ends_at_the_first_recent_record,
        retention_counts_then_removes_only_what_is_past_its_cutoff,
    ]
);

fn text(consent_type: &str, version: &str, body: &str) -> ConsentText {
    ConsentText {
        hash: text_hash(consent_type, version, body),
        consent_type: consent_type.into(),
        version: version.into(),
        text: body.into(),
        recorded_at: T0,
    }
}

fn given(user: UserId, consent_type: &str, seq: i64, at: OffsetDateTime, days: i64) -> Consent {
    Consent {
        id: uuid::Uuid::now_v7(),
        user_id: user,
        consent_type: consent_type.into(),
        seq,
        action: ConsentAction::Given,
        version: "1".into(),
        text_hash: text_hash(consent_type, "1", "I agree"),
        method: "web_form".into(),
        ip: Some("203.0.113.4".into()),
        user_agent: Some("Mozilla/5.0 ✓".into()),
        reason: None,
        at,
        valid_until: Some(at + Duration::days(days)),
    }
}

fn withdrawn(of: &Consent, at: OffsetDateTime) -> Consent {
    Consent {
        id: uuid::Uuid::now_v7(),
        seq: of.seq + 1,
        action: ConsentAction::Withdrawn,
        reason: Some("user_request".into()),
        at,
        valid_until: None,
        ip: None,
        user_agent: None,
        ..of.clone()
    }
}

async fn stored_text(h: &DurableHarness, consent_type: &str) {
    assert_eq!(h.store.put_consent_text(&text(consent_type, "1", "I agree")).await.unwrap(), ConsentTextPut::Stored);
}

async fn account(h: &DurableHarness, name: &str) -> User {
    let u = user(name, None);
    inserted(h, &u).await;
    u
}

pub async fn a_text_is_kept_once_and_a_version_keeps_its_text(h: &DurableHarness) {
    let first = text("marketing", "1", "We may e-mail you offers.");
    assert_eq!(h.store.put_consent_text(&first).await.unwrap(), ConsentTextPut::Stored);
    assert_eq!(h.store.put_consent_text(&first).await.unwrap(), ConsentTextPut::Stored, "again: already there");
    let changed = text("marketing", "1", "We may e-mail and call you.");
    assert_eq!(h.store.put_consent_text(&changed).await.unwrap(), ConsentTextPut::VersionTaken);
    assert_eq!(h.store.consent_text(&changed.hash).await.unwrap(), None, "nothing stored");
    assert_eq!(h.store.consent_text(&first.hash).await.unwrap(), Some(first.clone()));
    let next = text("marketing", "2", "We may e-mail and call you.");
    assert_eq!(h.store.put_consent_text(&next).await.unwrap(), ConsentTextPut::Stored);
    assert_eq!(h.store.consent_text(&next.hash).await.unwrap().unwrap().version, "2");
}

pub async fn consent_entries_read_back_exactly_newest_last(h: &DurableHarness) {
    let ada = account(h, "ada").await;
    stored_text(h, "marketing").await;
    stored_text(h, "analytics").await;
    assert_eq!(h.store.latest_consent(ada.id, "marketing").await.unwrap(), None);
    let a1 = given(ada.id, "marketing", 1, T0, 365);
    let b1 = given(ada.id, "analytics", 1, T0, 30);
    let a2 = withdrawn(&a1, T0 + Duration::seconds(5));
    for entry in [&a1, &b1, &a2] {
        assert!(h.store.try_append_consent(entry).await.unwrap());
    }
    assert_eq!(h.store.latest_consent(ada.id, "marketing").await.unwrap(), Some(a2.clone()));
    assert_eq!(h.store.latest_consent(ada.id, "analytics").await.unwrap(), Some(b1.clone()));
    assert_eq!(h.store.consent_ledger(ada.id).await.unwrap(), vec![b1, a1, a2], "by type, then number");
    let other = account(h, "bob").await;
    assert!(h.store.consent_ledger(other.id).await.unwrap().is_empty());
}

pub async fn concurrent_appends_of_one_number_have_one_winner(h: &DurableHarness) {
    let ada = account(h, "ada").await;
    stored_text(h, "marketing").await;
    let barrier = Arc::new(Barrier::new(10));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let store = h.store.clone();
        let barrier = barrier.clone();
        let entry = given(ada.id, "marketing", 1, T0, 365);
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.try_append_consent(&entry).await.unwrap()
        }));
    }
    let mut won = 0;
    for task in tasks {
        won += u32::from(task.await.unwrap());
    }
    assert_eq!(won, 1);
    assert_eq!(h.store.consent_ledger(ada.id).await.unwrap().len(), 1);
}

pub async fn the_ledger_is_append_only(h: &DurableHarness) {
    let ada = account(h, "ada").await;
    stored_text(h, "marketing").await;
    assert!(h.store.try_append_consent(&given(ada.id, "marketing", 1, T0, 365)).await.unwrap());
    let refused = h.database.execute("UPDATE consents SET version = '2'").await;
    assert!(refused.is_err(), "an UPDATE of the ledger is refused by the schema");
    assert_eq!(h.store.latest_consent(ada.id, "marketing").await.unwrap().unwrap().version, "1");
    // An entry whose text was never stored is refused too.
    let mut orphan = given(ada.id, "marketing", 2, T0, 365);
    orphan.text_hash = vec![9; 32];
    assert!(h.store.try_append_consent(&orphan).await.is_err());
}

pub async fn live_consents_are_counted_by_their_newest_entry(h: &DurableHarness) {
    stored_text(h, "marketing").await;
    stored_text(h, "analytics").await;
    let (a, b, c, d) = (account(h, "a").await, account(h, "b").await, account(h, "c").await, account(h, "d").await);
    // a: given and valid. b: given then withdrawn. c: given, expired at T0 + 10 d. d: withdrawn,
    // then given again. An analytics consent never counts for marketing.
    let a1 = given(a.id, "marketing", 1, T0, 365);
    let b1 = given(b.id, "marketing", 1, T0, 365);
    let c1 = given(c.id, "marketing", 1, T0, 10);
    let d1 = given(d.id, "marketing", 1, T0, 365);
    let d2 = withdrawn(&d1, T0);
    let d3 = given(d.id, "marketing", 3, T0, 365);
    for entry in [&a1, &b1, &withdrawn(&b1, T0), &c1, &d1, &d2, &d3, &given(b.id, "analytics", 1, T0, 365)] {
        assert!(h.store.try_append_consent(entry).await.unwrap());
    }
    assert_eq!(h.store.count_live_consents("marketing", T0 + Duration::days(1)).await.unwrap(), 3);
    assert_eq!(h.store.count_live_consents("marketing", T0 + Duration::days(10)).await.unwrap(), 2, "c expired");
    assert_eq!(h.store.count_live_consents("analytics", T0).await.unwrap(), 1);
    assert_eq!(h.store.count_live_consents("nothing", T0).await.unwrap(), 0);
}

pub async fn consents_go_with_their_user(h: &DurableHarness) {
    let ada = account(h, "ada").await;
    stored_text(h, "marketing").await;
    assert!(h.store.try_append_consent(&given(ada.id, "marketing", 1, T0, 365)).await.unwrap());
    assert_eq!(h.database.execute("DELETE FROM users WHERE username = 'ada'").await.unwrap(), 1);
    assert!(h.store.consent_ledger(ada.id).await.unwrap().is_empty());
}

fn request(user: UserId, due_at: OffsetDateTime) -> ErasureRequest {
    ErasureRequest {
        id: uuid::Uuid::now_v7(),
        user_id: Some(user),
        pseudonym: format!("erased:{}", uuid::Uuid::new_v4().simple()),
        requested_by: Some(user),
        reason: ErasureReason::UserRequest,
        state: ErasureState::Scheduled,
        progress: ErasureProgress::START,
        requested_at: T0,
        due_at,
        finished_at: None,
        outcome: None,
    }
}

pub async fn one_open_erasure_request_per_user(h: &DurableHarness) {
    let ada = account(h, "ada").await;
    let first = request(ada.id, T0 + Duration::days(30));
    assert!(h.store.insert_erasure_request(&first).await.unwrap());
    assert!(!h.store.insert_erasure_request(&request(ada.id, T0)).await.unwrap(), "one open per user");
    assert_eq!(h.store.open_erasure_request(ada.id).await.unwrap(), Some(first.clone()));
    assert_eq!(h.store.erasure_request(first.id).await.unwrap(), Some(first.clone()));
    assert!(h.store.cancel_erasure_request(first.id, T0).await.unwrap());
    assert_eq!(h.store.open_erasure_request(ada.id).await.unwrap(), None);
    let second = request(ada.id, T0 + Duration::days(30));
    assert!(h.store.insert_erasure_request(&second).await.unwrap(), "a cancelled one is not open");
    let listed = h.store.erasure_requests(Some(ada.id), 10).await.unwrap();
    assert_eq!(listed.iter().map(|r| r.id).collect::<Vec<_>>(), vec![second.id, first.id], "newest first");
    assert_eq!(listed[1].state, ErasureState::Cancelled);
    assert_eq!(h.store.erasure_requests(None, 1).await.unwrap().len(), 1, "limit");
}

pub async fn due_requests_are_open_due_and_unleased(h: &DurableHarness) {
    let (a, b, c) = (account(h, "a").await, account(h, "b").await, account(h, "c").await);
    let due = request(a.id, T0);
    let later = request(b.id, T0 + Duration::days(1));
    let cancelled = request(c.id, T0);
    for r in [&due, &later, &cancelled] {
        assert!(h.store.insert_erasure_request(r).await.unwrap());
    }
    assert!(h.store.cancel_erasure_request(cancelled.id, T0).await.unwrap());
    let ids = |rs: Vec<ErasureRequest>| rs.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(ids(h.store.due_erasure_requests(T0, 10).await.unwrap()), vec![due.id]);
    assert!(h.store.claim_erasure_request(due.id, "one", T0 + Duration::minutes(1), T0).await.unwrap());
    assert!(h.store.due_erasure_requests(T0, 10).await.unwrap().is_empty(), "leased");
    let after = T0 + Duration::days(2);
    assert_eq!(ids(h.store.due_erasure_requests(after, 10).await.unwrap()), vec![due.id, later.id], "lapsed lease");
    assert!(!h.store.claim_erasure_request(later.id, "x", after, T0).await.unwrap(), "not due yet at T0");
}

pub async fn concurrent_claims_of_a_request_have_one_winner(h: &DurableHarness) {
    let ada = account(h, "ada").await;
    let r = request(ada.id, T0);
    assert!(h.store.insert_erasure_request(&r).await.unwrap());
    let barrier = Arc::new(Barrier::new(10));
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = h.store.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            store.claim_erasure_request(r.id, &format!("instance-{i}"), T0 + Duration::minutes(1), T0).await.unwrap()
        }));
    }
    let mut won = 0;
    for task in tasks {
        won += u32::from(task.await.unwrap());
    }
    assert_eq!(won, 1);
    assert_eq!(h.store.erasure_request(r.id).await.unwrap().unwrap().state, ErasureState::Running);
}

fn progress(step: ErasureStep, cursor: i64) -> ErasureProgress {
    ErasureProgress {
        step,
        audit_cursor: cursor,
        counts: ErasureCounts { audit_records: 7, audit_redacted: 5, account_deleted: false, keys_destroyed: 0 },
    }
}

pub async fn only_the_owner_records_progress_or_finishes(h: &DurableHarness) {
    let ada = account(h, "ada").await;
    let r = request(ada.id, T0);
    assert!(h.store.insert_erasure_request(&r).await.unwrap());
    let until = T0 + Duration::minutes(1);
    assert!(
        !h.store.advance_erasure_request(r.id, "me", &progress(ErasureStep::Audit, 3), until).await.unwrap(),
        "unclaimed"
    );
    assert!(h.store.claim_erasure_request(r.id, "me", until, T0).await.unwrap());
    assert!(!h.store.advance_erasure_request(r.id, "other", &progress(ErasureStep::Audit, 3), until).await.unwrap());
    assert!(h.store.advance_erasure_request(r.id, "me", &progress(ErasureStep::Audit, 42), until).await.unwrap());
    let stored = h.store.erasure_request(r.id).await.unwrap().unwrap();
    assert_eq!(stored.progress, progress(ErasureStep::Audit, 42));
    let done = progress(ErasureStep::Done, 42);
    assert!(
        !h.store.finish_erasure_request(r.id, "other", ErasureState::Completed, &done, "erased", T0).await.unwrap()
    );
    assert!(
        h.store.finish_erasure_request(r.id, "me", ErasureState::Scheduled, &done, "x", T0).await.is_err(),
        "a request cannot be finished as scheduled"
    );
    assert!(
        h.store.finish_erasure_request(r.id, "me", ErasureState::Refused, &done, "the last admin", T0).await.unwrap()
    );
    let refused = h.store.erasure_request(r.id).await.unwrap().unwrap();
    assert_eq!(
        (refused.state, refused.user_id, refused.outcome.as_deref()),
        (ErasureState::Refused, Some(ada.id), Some("the last admin"))
    );
    assert!(h.store.open_erasure_request(ada.id).await.unwrap().is_none(), "a refused request is not open");
}

pub async fn erasing_the_account_deletes_its_rows_and_pseudonymises_incidents(h: &DurableHarness) {
    let ada = account(h, "ada").await;
    let bob = account(h, "bob").await;
    stored_text(h, "marketing").await;
    assert!(h.store.try_append_consent(&given(ada.id, "marketing", 1, T0, 365)).await.unwrap());
    let incident = |subject: &str| IncidentRaise {
        id: uuid::Uuid::now_v7(),
        cause: "brute_force".into(),
        subject: subject.into(),
        severity: Severity::High,
        title: "10 failed logins on account ada".into(),
        details: serde_json::json!({}),
        events: vec![1],
        at: T0,
    };
    let on_ada = h.store.raise_incident(&incident("user:ada")).await.unwrap().0;
    let on_bob = h.store.raise_incident(&incident("user:bob")).await.unwrap().0;
    // Ada's earlier, cancelled request, and one she made (as an administrator) for Bob.
    let cancelled = request(ada.id, T0);
    assert!(h.store.insert_erasure_request(&cancelled).await.unwrap());
    assert!(h.store.cancel_erasure_request(cancelled.id, T0).await.unwrap());
    let for_bob =
        ErasureRequest { requested_by: Some(ada.id), reason: ErasureReason::Administrator, ..request(bob.id, T0) };
    assert!(h.store.insert_erasure_request(&for_bob).await.unwrap());
    let r = request(ada.id, T0);
    assert!(h.store.insert_erasure_request(&r).await.unwrap());
    assert!(h.store.claim_erasure_request(r.id, "me", T0 + Duration::minutes(1), T0).await.unwrap());
    let who = vec![ada.id.to_string(), "ada".to_owned()];
    let next = progress(ErasureStep::Keys, 9);
    assert!(!h.store.erase_account(r.id, "other", &who, &r.pseudonym, &next).await.unwrap(), "not the owner");
    assert!(h.store.user_by_id(ada.id).await.unwrap().is_some(), "nothing happened");
    assert!(h.store.erase_account(r.id, "me", &who, &r.pseudonym, &next).await.unwrap());
    assert!(h.store.user_by_id(ada.id).await.unwrap().is_none());
    assert!(h.store.user_by_id(bob.id).await.unwrap().is_some());
    assert!(h.store.consent_ledger(ada.id).await.unwrap().is_empty(), "cascaded");
    assert_eq!(h.store.erasure_request(r.id).await.unwrap().unwrap().progress, next);
    assert_eq!(h.store.erasure_request(cancelled.id).await.unwrap(), None, "her other requests went with her");
    let for_bob = h.store.erasure_request(for_bob.id).await.unwrap().unwrap();
    assert_eq!(
        (for_bob.user_id, for_bob.requested_by),
        (Some(bob.id), None),
        "Bob's stays; its requester is forgotten"
    );
    let on_ada = h.store.incident(on_ada.id).await.unwrap().unwrap();
    assert_eq!(on_ada.subject, format!("user:{}", r.pseudonym));
    assert_eq!(on_ada.title, "Incident about an erased account (brute_force)");
    let on_bob = h.store.incident(on_bob.id).await.unwrap().unwrap();
    assert_eq!((on_bob.subject.as_str(), on_bob.title.as_str()), ("user:bob", "10 failed logins on account ada"));
}

pub async fn completing_forgets_the_user_and_cancel_only_while_scheduled(h: &DurableHarness) {
    let ada = account(h, "ada").await;
    let r = request(ada.id, T0);
    assert!(h.store.insert_erasure_request(&r).await.unwrap());
    assert!(h.store.claim_erasure_request(r.id, "me", T0 + Duration::minutes(1), T0).await.unwrap());
    assert!(!h.store.cancel_erasure_request(r.id, T0).await.unwrap(), "running: not cancellable");
    let done = progress(ErasureStep::Done, 9);
    assert!(h.store.finish_erasure_request(r.id, "me", ErasureState::Completed, &done, "erased", T0).await.unwrap());
    let completed = h.store.erasure_request(r.id).await.unwrap().unwrap();
    assert_eq!(completed.state, ErasureState::Completed);
    assert_eq!(completed.user_id, None, "the request forgets whom it erased");
    assert_eq!(completed.requested_by, None, "and that they asked themselves");
    assert_eq!(completed.pseudonym, r.pseudonym);
    assert_eq!(completed.finished_at, Some(T0));
    assert!(!h.store.cancel_erasure_request(r.id, T0).await.unwrap());
    assert!(h.store.erasure_requests(Some(ada.id), 10).await.unwrap().is_empty());
}

pub async fn administrators_are_counted(h: &DurableHarness) {
    assert_eq!(h.store.count_admins().await.unwrap(), 0);
    let ada = account(h, "ada").await;
    let _bob = account(h, "bob").await;
    assert!(h.store.set_user_admin(ada.id, true).await.unwrap());
    assert_eq!(h.store.count_admins().await.unwrap(), 1);
}

pub async fn redaction_touches_only_the_users_v2_records_and_the_chain_verifies(h: &DurableHarness) {
    let keyring = keyring(h);
    let log = audit_log(h, keyring);
    let meta =
        RequestMeta { ip: Some("198.51.100.7".into()), user_agent: Some("curl/8".into()), ..RequestMeta::default() };
    // seq 1..=6: ada as subject (id), bob, ada as actor, ada by username, nobody, ada again.
    for (actor, subject) in [
        (None, Some("ada-id")),
        (None, Some("bob-id")),
        (Some("ada-id"), Some("session-1")),
        (None, Some("ada")),
        (None, None),
        (Some("admin-id"), Some("ada-id")),
    ] {
        let mut event =
            AuditEvent::new(AuditKind::LoginFailed, Outcome::Failure).request(meta.clone()).detail("k", "v");
        if let Some(actor) = actor {
            event = event.actor(actor);
        }
        if let Some(subject) = subject {
            event = event.subject(subject);
        }
        log.append(event).await.unwrap();
    }
    let who = vec!["ada-id".to_owned(), "ada".to_owned()];
    let about: Vec<i64> = h.store.audit_records_about(&who, 0, 10).await.unwrap().iter().map(|r| r.seq).collect();
    assert_eq!(about, vec![1, 3, 4, 6]);
    assert_eq!(h.store.audit_records_about(&who, 3, 1).await.unwrap()[0].seq, 4, "after and limit");

    let at = T0 + Duration::days(40);
    let page = h.store.redact_audit_records(&who, "erased:p", 0, 3, at).await.unwrap();
    assert_eq!((page.last_seq, page.examined, page.redacted), (Some(4), 3, 3));
    let page = h.store.redact_audit_records(&who, "erased:p", 4, 3, at).await.unwrap();
    assert_eq!((page.last_seq, page.examined, page.redacted), (Some(6), 1, 1));
    let page = h.store.redact_audit_records(&who, "erased:p", 6, 3, at).await.unwrap();
    assert_eq!(page.last_seq, None);
    let again = h.store.redact_audit_records(&who, "erased:p", 0, 10, at).await.unwrap();
    assert_eq!(again.redacted, 0, "already redacted");
    assert_eq!(again.examined, 0, "no longer about them: they are the pseudonym now");

    let records = h.store.audit_records(0, 10).await.unwrap();
    let shape = |seq: usize| {
        let r = &records[seq - 1];
        (r.actor.clone(), r.subject.clone(), r.ip.clone(), r.details.clone(), r.redacted_at.is_some())
    };
    let redacted = |actor: Option<&str>, subject: Option<&str>| {
        (actor.map(String::from), subject.map(String::from), None, REDACTED_DETAILS.to_owned(), true)
    };
    assert_eq!(shape(1), redacted(None, Some("erased:p")));
    assert_eq!(shape(3), redacted(Some("erased:p"), Some("session-1")));
    assert_eq!(shape(4), redacted(None, Some("erased:p")));
    assert_eq!(shape(6), redacted(Some("admin-id"), Some("erased:p")), "another actor stays");
    assert_eq!(shape(2), (None, Some("bob-id".into()), Some("198.51.100.7".into()), r#"{"k":"v"}"#.into(), false));
    assert!(records[0].personal.as_ref().unwrap().salt.is_none());
    assert!(records[1].personal.as_ref().unwrap().salt.is_some());
    assert_eq!(records[0].redacted_at, Some(at));

    let report = log.verify().await.unwrap();
    assert_eq!((report.verified, report.redacted, report.broken), (6, 4, None));
}

async fn chain(h: &DurableHarness, n: usize, step: Duration) -> palisade_core::audit::AuditLog {
    let log = audit_log(h, keyring(h));
    for i in 0..n {
        log.append(AuditEvent::new(AuditKind::SystemStarted, Outcome::Success).detail("i", i)).await.unwrap();
        h.clock.advance(step);
    }
    log
}

pub async fn an_archived_prefix_leaves_a_checkpoint_the_chain_verifies_from(h: &DurableHarness) {
    let log = chain(h, 10, Duration::seconds(1)).await;
    assert_eq!(h.store.audit_checkpoint().await.unwrap(), None);
    let checkpoint = log.archive_through(6).await.unwrap().unwrap();
    assert_eq!(h.store.audit_checkpoint().await.unwrap(), Some(checkpoint.clone()), "read back exactly");
    assert_eq!(
        h.store.audit_records(0, 100).await.unwrap().iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![7, 8, 9, 10]
    );
    let report = log.verify().await.unwrap();
    assert_eq!((report.verified, report.checkpoint, report.broken), (4, Some(6), None));
    // Not twice, never an earlier one, never the head.
    assert!(!h.store.archive_audit_prefix(&checkpoint).await.unwrap());
    let earlier = palisade_core::audit::AuditCheckpoint { seq: 5, ..checkpoint.clone() };
    assert!(!h.store.archive_audit_prefix(&earlier).await.unwrap());
    let head = palisade_core::audit::AuditCheckpoint { seq: 10, ..checkpoint.clone() };
    assert!(!h.store.archive_audit_prefix(&head).await.unwrap());
    assert_eq!(h.store.audit_records(0, 100).await.unwrap().len(), 4, "nothing more went");
    let next = log.archive_through(1000).await.unwrap().unwrap();
    assert_eq!((next.seq, next.archived), (9, 3));
    // Appending goes on after the head, and the whole still verifies.
    log.append(AuditEvent::new(AuditKind::SystemStarted, Outcome::Success)).await.unwrap();
    let report = log.verify().await.unwrap();
    assert_eq!((report.verified, report.checkpoint, report.broken), (2, Some(9), None));
}

pub async fn the_archivable_prefix_ends_at_the_first_recent_record(h: &DurableHarness) {
    assert_eq!(h.store.audit_prefix_before(T0).await.unwrap(), None, "an empty chain");
    let start = palisade_core::clock::Clock::now(&*h.clock);
    let _log = chain(h, 5, Duration::hours(1)).await;
    // Records at start, +1 h, +2 h, +3 h, +4 h.
    assert_eq!(h.store.audit_prefix_before(start).await.unwrap(), None);
    assert_eq!(h.store.audit_prefix_before(start + Duration::microseconds(1)).await.unwrap(), Some(1));
    assert_eq!(h.store.audit_prefix_before(start + Duration::minutes(150)).await.unwrap(), Some(3));
    assert_eq!(h.store.audit_prefix_before(start + Duration::days(1)).await.unwrap(), Some(5));
}

pub async fn retention_counts_then_removes_only_what_is_past_its_cutoff(h: &DurableHarness) {
    use palisade_core::compliance::retention::{RetentionCounts, RetentionCutoffs};
    use palisade_core::monitoring::IncidentState;
    use palisade_core::monitoring::alert::DeliveryState;
    let ada = account(h, "ada").await;
    let old = T0 - Duration::days(400);
    for at in [old, old + Duration::days(1), T0] {
        h.store.insert_risk_record(&crate::risk::record(ada.id, at)).await.unwrap();
    }
    let incident = |subject: &str, at: OffsetDateTime| IncidentRaise {
        id: uuid::Uuid::now_v7(),
        cause: "brute_force".into(),
        subject: subject.into(),
        severity: Severity::High,
        title: "t".into(),
        details: serde_json::json!({}),
        events: vec![1],
        at,
    };
    let resolved_old = h.store.raise_incident(&incident("user:a", old)).await.unwrap().0;
    let open_old = h.store.raise_incident(&incident("user:b", old)).await.unwrap().0;
    let resolved_new = h.store.raise_incident(&incident("user:c", T0)).await.unwrap().0;
    for (id, at) in [(resolved_old.id, old), (resolved_new.id, T0)] {
        h.store
            .set_incident_state(id, IncidentState::Open, IncidentState::Resolved, "admin", at)
            .await
            .unwrap()
            .unwrap();
    }
    let mut deliveries = Vec::new();
    for (n, state, at) in [
        (1, DeliveryState::Sent, old),
        (2, DeliveryState::Pending, old),
        (3, DeliveryState::Dead, old),
        (4, DeliveryState::Sent, T0),
    ] {
        let mut d = crate::alerts::delivery(n, at);
        d.state = state;
        d.created_at = at;
        deliveries.push(d);
    }
    h.store.enqueue_deliveries(&deliveries).await.unwrap();

    let cutoff = T0 - Duration::days(30);
    let cutoffs =
        RetentionCutoffs { audit: cutoff, login_history: cutoff, incidents: cutoff, alert_deliveries: cutoff };
    let due = RetentionCounts { login_history: 2, incidents: 1, alert_deliveries: 2 };
    assert_eq!(h.store.retention_counts(&cutoffs).await.unwrap(), due);
    assert_eq!(h.store.retention_counts(&cutoffs).await.unwrap(), due, "counting removes nothing");
    let first = h.store.apply_retention(&cutoffs, 1).await.unwrap();
    assert_eq!(first, RetentionCounts { login_history: 1, incidents: 1, alert_deliveries: 1 }, "at most the limit");
    let rest = h.store.apply_retention(&cutoffs, 100).await.unwrap();
    assert_eq!(rest, RetentionCounts { login_history: 1, incidents: 0, alert_deliveries: 1 });
    assert_eq!(h.store.retention_counts(&cutoffs).await.unwrap(), RetentionCounts::default());
    assert_eq!(h.store.risk_records(ada.id, 10).await.unwrap().len(), 1, "the recent login stays");
    assert!(h.store.incident(resolved_old.id).await.unwrap().is_none());
    assert!(h.store.incident(open_old.id).await.unwrap().is_some(), "an open incident stays, however old");
    assert!(h.store.incident(resolved_new.id).await.unwrap().is_some());
    let left = h.store.deliveries(None, None, 10).await.unwrap();
    let mut ids: Vec<u128> = left.iter().map(|d| d.id.as_u128() & 0xff).collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![2, 4], "the pending one and the recent one stay");
}
