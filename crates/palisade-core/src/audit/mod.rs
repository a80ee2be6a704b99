//! The audit chain: every security-relevant action becomes one append-only record, HMAC-chained to
//! the record before it, so that editing, removing or reordering any record is detected by
//! [`AuditLog::verify`].
//!
//! # One chain, serialized by the store
//! Several server instances append to ONE chain. Each record takes the next sequence number; the
//! store's primary key on `seq` lets exactly one writer have it, and a writer that loses the race
//! re-reads the head and seals again ([`AuditStore::try_append_audit_batch`]). Within one instance,
//! appends take turns, reuse the head they just wrote, and those that queue up meanwhile are sealed
//! and stored together in one commit, so under load many records cost one round trip. We chose this over one chain
//! per writer because a single order is what an investigator reads, because verification then needs
//! no knowledge of which instances existed, and because a removed instance cannot leave an orphan
//! chain whose tail could be truncated unnoticed. The cost is a retry under contention, which audit
//! volumes (one record per security event) easily afford.
//!
//! The MAC key is a data key of purpose `audit` from the keyring; each record names the key that
//! sealed it, so the chain survives key rotation.
//!
//! # Personal fields and erasure
//! A record's personal fields — actor, subject, address, user agent and details — are not MACed
//! themselves (records sealed since migration 0015, "v2"): the MAC covers a SHA-256 digest of them
//! and a random 16-byte salt ([`PersonalSeal`]). Verification recomputes the digest from the fields
//! and the salt, so editing a field is detected as before. Erasing a user ([`redact`] through the
//! store) replaces their identifiers by a pseudonym, clears the address and user agent, replaces the
//! details by [`REDACTED_DETAILS`] and deletes the salt: the digest stays, so the MAC and every link
//! still verify, while nothing left can be tied back to the person (without the salt even a guess
//! of the old values cannot be confirmed). Verification reports such records as redacted and checks
//! they hold nothing but the pseudonym form. Records sealed before 0015 ("v1") MAC their fields
//! directly; they cannot be redacted and leave with the retention of the audit trail. Truncation of the newest records cannot be seen
//! from the chain alone: operators should export the head (`seq`, `mac`) elsewhere periodically.

mod event;

pub use event::{AuditEvent, AuditKind, Outcome, RequestMeta};

use std::sync::Arc;

use aws_lc_rs::hmac;

use crate::clock::Clock;
use crate::crypto::{CryptoError, KeyPurpose, Keyring};
use crate::store::{AuditStore, StoreError};

/// The MAC that stands before the first record.
pub const GENESIS_MAC: [u8; 32] = [0; 32];

/// How many times an append retries after losing the race for a sequence number.
const MAX_APPEND_ATTEMPTS: u32 = 64;

/// Most records sealed and stored in one commit.
pub const MAX_BATCH: usize = 256;

/// The details of a redacted record.
pub const REDACTED_DETAILS: &str = r#"{"redacted":true}"#;

/// The prefix of the pseudonyms that replace an erased user's identifiers.
pub const PSEUDONYM_PREFIX: &str = "erased:";

/// How a v2 record's personal fields are bound into its MAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalSeal {
    /// The 16 random bytes mixed into the digest; `None` once the record is redacted.
    pub salt: Option<Vec<u8>>,
    /// SHA-256 over the salt and the personal fields; the MAC covers it in their place.
    pub digest: Vec<u8>,
}

/// Which records [`AuditStore::audit_search`] returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only records of this subject.
    pub subject: Option<String>,
    /// Only records of these kinds (none: any). At most two.
    pub kinds: Vec<String>,
    /// Only records at or after this instant.
    pub since: Option<time::OffsetDateTime>,
    /// Only records before this instant.
    pub until: Option<time::OffsetDateTime>,
    /// Only records with a smaller sequence number (the cursor of the page before).
    pub before: Option<i64>,
    /// At most this many.
    pub limit: u32,
}

/// How many records of one kind and outcome fell in one bucket of [`AuditStore::audit_counts`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCount {
    /// The bucket: 0 for the one starting at `since`, 1 for the next …
    pub bucket: u32,
    /// The records' kind.
    pub kind: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// How many.
    pub count: u64,
}

/// One sealed record of the chain, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// Unique id of the event.
    pub id: uuid::Uuid,
    /// When it happened (microsecond precision, as stored).
    pub at: time::OffsetDateTime,
    /// What happened (`system.started`, `auth.login` …).
    pub kind: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// Who acted, when known.
    pub actor: Option<String>,
    /// What was acted upon, when there is one.
    pub subject: Option<String>,
    /// The client's address.
    pub ip: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// The request id the server answered with.
    pub request_id: Option<String>,
    /// Event-specific facts as a JSON object text (never a secret).
    pub details: String,
    /// The audit key that sealed this record.
    pub key_id: uuid::Uuid,
    /// The MAC of the previous record ([`GENESIS_MAC`] for the first).
    pub prev_mac: Vec<u8>,
    /// HMAC-SHA256 over this record's fields and `prev_mac`.
    pub mac: Vec<u8>,
    /// How the personal fields are sealed (`None`: a v1 record, whose MAC covers them directly).
    pub personal: Option<PersonalSeal>,
    /// When the record's personal fields were redacted (an erasure), if they were.
    pub redacted_at: Option<time::OffsetDateTime>,
}

fn part(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn optional(out: &mut Vec<u8>, value: Option<&str>) {
    match value {
        Some(v) => {
            out.push(1);
            part(out, v.as_bytes());
        }
        None => out.push(0),
    }
}

impl AuditRecord {
    /// The exact bytes the MAC covers: every field length-prefixed, optional ones with a presence byte.
    fn mac_input(&self) -> Vec<u8> {
        if let Some(seal) = &self.personal {
            let mut out = b"palisade audit v2".to_vec();
            out.extend_from_slice(&self.seq.to_be_bytes());
            part(&mut out, self.id.as_bytes());
            out.extend_from_slice(&(self.at.unix_timestamp_nanos() / 1000).to_be_bytes());
            part(&mut out, self.kind.as_bytes());
            part(&mut out, self.outcome.as_bytes());
            optional(&mut out, self.request_id.as_deref());
            part(&mut out, &seal.digest);
            part(&mut out, self.key_id.as_bytes());
            part(&mut out, &self.prev_mac);
            return out;
        }
        let mut out = b"palisade audit v1".to_vec();
        out.extend_from_slice(&self.seq.to_be_bytes());
        part(&mut out, self.id.as_bytes());
        out.extend_from_slice(&(self.at.unix_timestamp_nanos() / 1000).to_be_bytes());
        part(&mut out, self.kind.as_bytes());
        part(&mut out, self.outcome.as_bytes());
        optional(&mut out, self.actor.as_deref());
        optional(&mut out, self.subject.as_deref());
        optional(&mut out, self.ip.as_deref());
        optional(&mut out, self.user_agent.as_deref());
        optional(&mut out, self.request_id.as_deref());
        part(&mut out, self.details.as_bytes());
        part(&mut out, self.key_id.as_bytes());
        part(&mut out, &self.prev_mac);
        out
    }

    /// The digest of this record's personal fields under `salt`.
    fn personal_digest(&self, salt: &[u8]) -> Vec<u8> {
        let mut input = b"palisade audit personal v1".to_vec();
        part(&mut input, salt);
        optional(&mut input, self.actor.as_deref());
        optional(&mut input, self.subject.as_deref());
        optional(&mut input, self.ip.as_deref());
        optional(&mut input, self.user_agent.as_deref());
        part(&mut input, self.details.as_bytes());
        aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &input).as_ref().to_vec()
    }

    /// Why this record's personal fields do not match its seal, if they do not.
    fn personal_mismatch(&self) -> Option<&'static str> {
        let seal = self.personal.as_ref()?;
        match &seal.salt {
            Some(salt) => {
                let digest = self.personal_digest(salt);
                if bool::from(subtle::ConstantTimeEq::ct_eq(digest.as_slice(), seal.digest.as_slice())) {
                    None
                } else {
                    Some("its personal fields were altered (digest mismatch)")
                }
            }
            None => {
                let pseudonymous = |v: &Option<String>| v.as_deref().is_none_or(|v| v.starts_with(PSEUDONYM_PREFIX));
                let clean = self.redacted_at.is_some()
                    && self.ip.is_none()
                    && self.user_agent.is_none()
                    && self.details == REDACTED_DETAILS
                    && (pseudonymous(&self.actor) || pseudonymous(&self.subject));
                if clean { None } else { Some("its salt is gone but its fields are not redacted") }
            }
        }
    }
}

/// Where an archived prefix of the chain ends: the last archived record's `seq` and MAC, sealed
/// with an audit key so that verification can start from it once the records before are gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCheckpoint {
    /// The last archived record.
    pub seq: i64,
    /// Its MAC: the `prev_mac` the next record links to.
    pub mac: Vec<u8>,
    /// How many records were archived by this checkpoint (those after the checkpoint before it).
    pub archived: u64,
    /// When it was made.
    pub at: time::OffsetDateTime,
    /// The audit key that sealed it.
    pub key_id: uuid::Uuid,
    /// HMAC-SHA256 over the fields above.
    pub seal: Vec<u8>,
}

impl AuditCheckpoint {
    fn seal_input(&self) -> Vec<u8> {
        let mut out = b"palisade audit checkpoint v1".to_vec();
        out.extend_from_slice(&self.seq.to_be_bytes());
        part(&mut out, &self.mac);
        out.extend_from_slice(&self.archived.to_be_bytes());
        out.extend_from_slice(&(self.at.unix_timestamp_nanos() / 1000).to_be_bytes());
        part(&mut out, self.key_id.as_bytes());
        out
    }
}

/// What one call of [`AuditStore::redact_audit_records`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RedactionPage {
    /// The last matching record it examined (`None`: there were none after the cursor).
    pub last_seq: Option<i64>,
    /// How many matching records it examined.
    pub examined: u64,
    /// How many it redacted (the others were v1 or already redacted).
    pub redacted: u64,
}

/// Redacts `record` for the erasure of `who`: their identifiers among actor and subject become
/// `pseudonym`, the address and user agent are cleared, the details become [`REDACTED_DETAILS`]
/// and the salt is deleted. Returns `false`, changing nothing, for a v1 or already redacted
/// record. What the SQL adapters do in one UPDATE; the MAC, which covers the digest, still holds.
pub fn redact(record: &mut AuditRecord, who: &[String], pseudonym: &str, at: time::OffsetDateTime) -> bool {
    let Some(seal) = record.personal.as_mut() else { return false };
    if seal.salt.is_none() {
        return false;
    }
    seal.salt = None;
    for field in [&mut record.actor, &mut record.subject] {
        if field.as_ref().is_some_and(|v| who.contains(v)) {
            *field = Some(pseudonym.to_owned());
        }
    }
    record.ip = None;
    record.user_agent = None;
    record.details = REDACTED_DETAILS.to_owned();
    record.redacted_at = Some(at);
    true
}

/// Why an audit operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The store failed or is unreachable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audit key could not be had.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The system's random generator failed.
    #[error("the random generator failed")]
    Random,
    /// Too many writers raced for the head.
    #[error("could not append to the audit chain after {0} attempts")]
    Contended(u32),
    /// The batch this event was written with failed.
    #[error("{0}")]
    Batch(std::sync::Arc<AuditError>),
}

impl AuditError {
    /// Whether this failure is a store being unreachable.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Store(e) => e.is_unavailable(),
            Self::Crypto(e) => e.is_unavailable(),
            Self::Contended(_) | Self::Random => false,
            Self::Batch(e) => e.is_unavailable(),
        }
    }
}

/// The first place where the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    /// The sequence number of the first record that fails.
    pub seq: i64,
    /// What is wrong there.
    pub reason: String,
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    /// Records that verified before the first broken link (all of them when none is broken).
    pub verified: u64,
    /// Of those, the records whose personal fields were redacted by an erasure (their links and
    /// MACs verified; their personal fields are no longer covered).
    pub redacted: u64,
    /// The checkpoint verification started from, when a prefix was archived (its seal verified).
    pub checkpoint: Option<i64>,
    /// The first broken link, if any.
    pub broken: Option<BrokenLink>,
}

/// Appends to and verifies the audit chain.
pub struct AuditLog {
    inner: Arc<Writer>,
}

/// The state behind [`AuditLog`], shared with the tasks that write batches.
struct Writer {
    store: Arc<dyn AuditStore>,
    keyring: Arc<Keyring>,
    clock: Arc<dyn Clock>,
    /// The head as this instance last wrote it. Batches from this process are written in turn under
    /// this lock, so they never race each other for a sequence number; only other instances can, and
    /// then the insert fails, the head is re-read and the batch sealed again. A `tokio` mutex: it is
    /// held across the store round trip.
    head: tokio::sync::Mutex<Option<(i64, Vec<u8>)>>,
    /// Events waiting to be written. `std::sync::Mutex`: never held across an `.await`.
    queue: std::sync::Mutex<Vec<Pending>>,
    /// Whether a task is (or is about to be) writing the queue: one task at a time, not one per event.
    flushing: std::sync::atomic::AtomicBool,
    /// Told of every record once it is stored (the monitoring detectors); set once.
    observer: std::sync::OnceLock<Arc<dyn AuditObserver>>,
}

/// Sees every record once it is stored. Called on the writer's task: it must not block or wait
/// (hand the records to a bounded queue and return).
pub trait AuditObserver: Send + Sync + 'static {
    /// `records` were just stored, in chain order.
    fn observe(&self, records: &[AuditRecord]);
}

/// An event waiting to be sealed, and where to send its record.
struct Pending {
    event: AuditEvent,
    done: tokio::sync::oneshot::Sender<Result<AuditRecord, AuditError>>,
}

impl AuditLog {
    /// An audit log over a store and the keyring that holds its MAC key.
    pub fn new(store: Arc<dyn AuditStore>, keyring: Arc<Keyring>, clock: Arc<dyn Clock>) -> Self {
        let inner = Writer {
            store,
            keyring,
            clock,
            head: tokio::sync::Mutex::new(None),
            queue: std::sync::Mutex::default(),
            flushing: std::sync::atomic::AtomicBool::new(false),
            observer: std::sync::OnceLock::new(),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Seals `event` onto the end of the chain and returns the stored record.
    ///
    /// Events are queued and written by a task of their own, in turn: events that arrive while a batch
    /// is being written are sealed together and stored in one commit (group commit), so under load
    /// many records cost one round trip. A caller that gives up waiting (a timed-out request) never
    /// takes other callers' events down with it: the task finishes the batch.
    pub async fn append(&self, event: AuditEvent) -> Result<AuditRecord, AuditError> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.inner.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(Pending { event, done });
        if !self.inner.flushing.swap(true, std::sync::atomic::Ordering::AcqRel) {
            let writer = self.inner.clone();
            tokio::spawn(async move { writer.flush().await });
        }
        result.await.unwrap_or(Err(AuditError::Contended(0)))
    }

    /// Archives the chain's records up to `through` (never the newest record, whose MAC the next
    /// append links to): seals a checkpoint naming that record and its MAC, and deletes the records
    /// up to it in one transaction, so verification starts from the checkpoint. Returns the
    /// checkpoint, or `None` when there is nothing to archive (nothing after the last checkpoint
    /// up to `through`, or `through` is the head).
    pub async fn archive_through(&self, through: i64) -> Result<Option<AuditCheckpoint>, AuditError> {
        let store = &self.inner.store;
        let previous = store.audit_checkpoint().await?;
        let after = previous.as_ref().map_or(0, |cp| cp.seq);
        let Some(head) = store.audit_head().await? else { return Ok(None) };
        let through = through.min(head.seq - 1);
        if through <= after {
            return Ok(None);
        }
        let Some(last) = store.audit_records(through - 1, 1).await?.into_iter().next().filter(|r| r.seq == through)
        else {
            return Ok(None);
        };
        let key = self.inner.keyring.active(KeyPurpose::Audit).await?;
        let mut checkpoint = AuditCheckpoint {
            seq: through,
            mac: last.mac,
            archived: u64::try_from(through - after).unwrap_or(0),
            at: truncate_to_micros(self.inner.clock.now()),
            key_id: key.id,
            seal: Vec::new(),
        };
        let mac_key = hmac::Key::new(hmac::HMAC_SHA256, key.material.expose());
        checkpoint.seal = hmac::sign(&mac_key, &checkpoint.seal_input()).as_ref().to_vec();
        if store.archive_audit_prefix(&checkpoint).await? { Ok(Some(checkpoint)) } else { Ok(None) }
    }

    /// Tells `observer` of every record stored from now on. Only the first call has an effect.
    pub fn observe_with(&self, observer: Arc<dyn AuditObserver>) {
        let _ = self.inner.observer.set(observer);
    }

    /// Walks the whole chain — from the newest checkpoint when a prefix was archived, after
    /// checking its seal — and reports the first record whose link or MAC does not hold.
    pub async fn verify(&self) -> Result<ChainReport, AuditError> {
        const PAGE: u32 = 1000;
        let mut expected_seq = 1i64;
        let mut prev_mac = GENESIS_MAC.to_vec();
        let mut verified = 0u64;
        let mut redacted = 0u64;
        let checkpoint = self.inner.store.audit_checkpoint().await?;
        if let Some(cp) = &checkpoint {
            let broken = |reason: &str| ChainReport {
                verified: 0,
                redacted: 0,
                checkpoint: Some(cp.seq),
                broken: Some(BrokenLink { seq: cp.seq, reason: reason.to_owned() }),
            };
            let key = match self.inner.keyring.by_id(cp.key_id).await {
                Ok(key) if key.purpose == KeyPurpose::Audit => key,
                Ok(_) | Err(CryptoError::UnknownKey(_)) => {
                    return Ok(broken("the checkpoint is sealed with an unknown key"));
                }
                Err(e) => return Err(e.into()),
            };
            let mac_key = hmac::Key::new(hmac::HMAC_SHA256, key.material.expose());
            if hmac::verify(&mac_key, &cp.seal_input(), &cp.seal).is_err() {
                return Ok(broken("the checkpoint was altered (seal mismatch)"));
            }
            expected_seq = cp.seq + 1;
            prev_mac = cp.mac.clone();
        }
        let checkpoint = checkpoint.map(|cp| cp.seq);
        loop {
            let page = self.inner.store.audit_records(expected_seq - 1, PAGE).await?;
            let full = page.len() == PAGE as usize;
            for record in page {
                let broken = |reason: &str| ChainReport {
                    verified,
                    redacted,
                    checkpoint,
                    broken: Some(BrokenLink { seq: expected_seq, reason: reason.to_owned() }),
                };
                if record.seq != expected_seq {
                    return Ok(broken(&format!("record {expected_seq} is missing (next is {})", record.seq)));
                }
                if !bool::from(subtle::ConstantTimeEq::ct_eq(record.prev_mac.as_slice(), prev_mac.as_slice())) {
                    return Ok(broken("does not link to the record before it"));
                }
                let key = match self.inner.keyring.by_id(record.key_id).await {
                    Ok(key) if key.purpose == KeyPurpose::Audit => key,
                    Ok(_) | Err(CryptoError::UnknownKey(_)) => return Ok(broken("sealed with an unknown key")),
                    Err(e) => return Err(e.into()),
                };
                let mac_key = hmac::Key::new(hmac::HMAC_SHA256, key.material.expose());
                if hmac::verify(&mac_key, &record.mac_input(), &record.mac).is_err() {
                    return Ok(broken("its content was altered (MAC mismatch)"));
                }
                if let Some(reason) = record.personal_mismatch() {
                    return Ok(broken(reason));
                }
                if record.redacted_at.is_some() {
                    redacted += 1;
                }
                prev_mac = record.mac;
                expected_seq += 1;
                verified += 1;
            }
            if !full {
                return Ok(ChainReport { verified, redacted, checkpoint, broken: None });
            }
        }
    }
}

impl Writer {
    /// Writes everything queued, batch after batch, holding the head; then stands down, unless an
    /// event arrived between the last drain and the stand-down (its caller saw `flushing` still set).
    async fn flush(&self) {
        use std::sync::atomic::Ordering;
        let mut head = self.head.lock().await;
        loop {
            let batch: Vec<Pending> = {
                let mut queue = self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                let take = queue.len().min(MAX_BATCH);
                queue.drain(..take).collect()
            };
            if batch.is_empty() {
                self.flushing.store(false, Ordering::Release);
                let pending = !self.queue.lock().unwrap_or_else(std::sync::PoisonError::into_inner).is_empty();
                if pending && !self.flushing.swap(true, Ordering::AcqRel) {
                    continue;
                }
                return;
            }
            match self.write(&mut head, batch.iter().map(|p| &p.event).collect()).await {
                Ok(records) => {
                    if let Some(observer) = self.observer.get() {
                        observer.observe(&records);
                    }
                    for (pending, record) in batch.into_iter().zip(records) {
                        let _ = pending.done.send(Ok(record));
                    }
                }
                Err(e) => {
                    let shared = Arc::new(e);
                    for pending in batch {
                        let _ = pending.done.send(Err(AuditError::Batch(shared.clone())));
                    }
                }
            }
        }
    }

    /// Seals `events` in order after the head and stores them all at once, re-reading the head and
    /// sealing again when another instance took a sequence number first.
    async fn write(
        &self,
        cached: &mut Option<(i64, Vec<u8>)>,
        events: Vec<&AuditEvent>,
    ) -> Result<Vec<AuditRecord>, AuditError> {
        let key = self.keyring.active(KeyPurpose::Audit).await?;
        let mac_key = hmac::Key::new(hmac::HMAC_SHA256, key.material.expose());
        let ids: Vec<uuid::Uuid> = events.iter().map(|_| uuid::Uuid::now_v7()).collect();
        for attempt in 0..MAX_APPEND_ATTEMPTS {
            // Taken on each attempt, so a record never carries an earlier time than the one before it.
            let at = truncate_to_micros(self.clock.now());
            let (mut seq, mut prev_mac) = match cached.take() {
                Some((seq, mac)) => (seq, mac),
                None => match self.store.audit_head().await? {
                    Some(h) => (h.seq, h.mac),
                    None => (0, GENESIS_MAC.to_vec()),
                },
            };
            let mut records = Vec::with_capacity(events.len());
            for (event, id) in events.iter().zip(&ids) {
                seq = seq.saturating_add(1);
                let mut record = AuditRecord {
                    seq,
                    id: *id,
                    at,
                    kind: event.kind.as_str().to_owned(),
                    outcome: event.outcome.as_str().to_owned(),
                    actor: event.actor.clone(),
                    subject: event.subject.clone(),
                    ip: event.request.ip.clone(),
                    user_agent: event.request.user_agent.clone(),
                    request_id: event.request.request_id.clone(),
                    details: event.details.to_string(),
                    key_id: key.id,
                    prev_mac,
                    mac: Vec::new(),
                    personal: None,
                    redacted_at: None,
                };
                let mut salt = vec![0u8; 16];
                aws_lc_rs::rand::fill(&mut salt).map_err(|_| AuditError::Random)?;
                let digest = record.personal_digest(&salt);
                record.personal = Some(PersonalSeal { salt: Some(salt), digest });
                record.mac = hmac::sign(&mac_key, &record.mac_input()).as_ref().to_vec();
                prev_mac = record.mac.clone();
                records.push(record);
            }
            if self.store.try_append_audit_batch(&records).await? {
                *cached = Some((seq, prev_mac));
                return Ok(records);
            }
            // Another instance took a `seq`: forget the head, back off a little (more each time), and
            // seal again on the head as stored.
            let jitter = u64::from(ids.first().and_then(|id| id.as_bytes().last().copied()).unwrap_or(0) % 4);
            tokio::time::sleep(std::time::Duration::from_millis(u64::from(attempt.min(8)) + jitter)).await;
        }
        Err(AuditError::Contended(MAX_APPEND_ATTEMPTS))
    }
}

fn truncate_to_micros(at: time::OffsetDateTime) -> time::OffsetDateTime {
    let micros = at.nanosecond() / 1000 * 1000;
    at.replace_nanosecond(micros).unwrap_or(at)
}

#[cfg(test)]
mod tests;
