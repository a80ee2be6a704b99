//! Re-encryption of Palisade's own sealed data after its data key rotates: second factors (TOTP
//! secrets, phone numbers, e-mail addresses) and JWT signing keys move from older versions of the
//! `data` family to the active one, in the background.
//!
//! # How it stays correct
//! - **One job at a time, everywhere.** A job is a row in the durable store, and the store refuses
//!   a second running one; the instance that works on it holds a lease in the hot store (renewed at
//!   every batch, [`LEASE_TTL`]), so two instances never scan at once and a dead instance's lease
//!   lapses for another to take over.
//! - **Resumable.** After each batch the job's cursor (the phase and the last row id done) and its
//!   counts are checkpointed in the durable store. A restart resumes from the checkpoint.
//! - **No double work, no loss.** A row is rewritten only when its envelope is not under the active
//!   key, and the rewrite is conditional on the row still holding the text that was read: a row
//!   done just before a crash is seen to be current on resumption and skipped, and a row changed
//!   meanwhile (a factor set up again) keeps its new text.
//! - **Pacing.** `rows_per_second` bounds the job so it does not starve the store of its real
//!   work; batches are `batch_size` rows.
//!
//! Retirement is not automatic: the `data` family's old versions also key the hashes of API-key
//! secrets and backup codes, which cannot be recomputed without the secrets, so they stay.
//! The encryption service's classification families hold no data here (their envelopes live with
//! the applications, which move them with `POST /crypto/rewrap`).

use std::sync::Arc;

use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

use super::keyring::LoadedKey;
use super::{CryptoError, Envelope, KeyPurpose, Keyring};
use crate::clock::Clock;
use crate::store::{HotKey, HotStore, ReencryptionStore, StoreError};

/// The shortest a lease lasts without renewal: a crashed instance's job is taken over after this
/// (or after three paced batches, when they are slower).
pub const LEASE_TTL: Duration = Duration::seconds(15);

/// Where the lease lives in the hot store.
fn lease_key() -> HotKey {
    HotKey::new("reencryption", "lease")
}

/// How the job is paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReencryptionSettings {
    /// Rows read per batch (and per checkpoint), 1 to 10,000.
    pub batch_size: u32,
    /// At most this many rows per second; `None`: as fast as the store allows.
    pub rows_per_second: Option<u32>,
}

impl Default for ReencryptionSettings {
    fn default() -> Self {
        Self { batch_size: 500, rows_per_second: None }
    }
}

impl ReencryptionSettings {
    /// Checks the ranges.
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=10_000).contains(&self.batch_size) {
            return Err(format!("the batch size must be from 1 to 10000 rows, not {}", self.batch_size));
        }
        if self.rows_per_second == Some(0) {
            return Err("the rate must be at least 1 row per second (leave it unset for no limit)".into());
        }
        Ok(())
    }
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Being worked on (or waiting for an instance to resume it).
    Running,
    /// Every row was visited and is under the target key.
    Completed,
    /// Stopped on an error it cannot get past (a row that does not decrypt); see `error`.
    Failed,
}

impl JobState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Running, Self::Completed, Self::Failed].into_iter().find(|state| state.as_str() == s)
    }
}

/// Which table the job is in; they are visited in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Phase {
    /// JWT signing keys' private keys.
    SigningKeys,
    /// Second factors' secrets.
    Factors,
}

impl Phase {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SigningKeys => "signing_keys",
            Self::Factors => "mfa_factors",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::SigningKeys, Self::Factors].into_iter().find(|phase| phase.as_str() == s)
    }
}

/// One re-encryption job and its checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReencryptionJob {
    /// Its id.
    pub id: uuid::Uuid,
    /// The `data` version rows are moved to (the active one; it follows a rotation made mid-job).
    pub target_version: u32,
    /// Where it is.
    pub state: JobState,
    /// The table being visited.
    pub phase: Phase,
    /// The last row id done in `phase` (a factor's uuid, a signing key's kid); `None` at its start.
    pub cursor: Option<String>,
    /// Rows to visit, counted at the start (rows added later are sealed under the active key).
    pub total: u64,
    /// Rows visited so far.
    pub scanned: u64,
    /// Rows found under an older key and rewritten.
    pub rewritten: u64,
    /// When it started.
    pub started_at: OffsetDateTime,
    /// When it last checkpointed.
    pub updated_at: OffsetDateTime,
    /// When it completed or failed.
    pub finished_at: Option<OffsetDateTime>,
    /// Why it failed.
    pub error: Option<String>,
}

impl ReencryptionJob {
    /// The share of rows visited, 0.0 to 1.0 (1.0 once completed).
    pub fn progress(&self) -> f64 {
        match (self.state, self.total) {
            (JobState::Completed, _) | (_, 0) => 1.0,
            #[allow(clippy::cast_precision_loss)] // counts far below 2^52
            _ => (self.scanned as f64 / self.total as f64).min(1.0),
        }
    }

    /// Rows still to visit.
    pub fn pending(&self) -> u64 {
        match self.state {
            JobState::Running => self.total.saturating_sub(self.scanned),
            JobState::Completed | JobState::Failed => 0,
        }
    }

    /// Rows visited per second since the start.
    pub fn rows_per_second(&self) -> Option<f64> {
        let elapsed = (self.finished_at.unwrap_or(self.updated_at) - self.started_at).as_seconds_f64();
        #[allow(clippy::cast_precision_loss)]
        (elapsed > 0.0 && self.scanned > 0).then(|| self.scanned as f64 / elapsed)
    }

    /// When a running job should be done at its pace so far.
    pub fn estimated_completion(&self) -> Option<OffsetDateTime> {
        if self.state != JobState::Running {
            return self.finished_at;
        }
        let rate = self.rows_per_second()?;
        #[allow(clippy::cast_precision_loss)]
        let remaining = self.pending() as f64 / rate;
        Some(self.updated_at + Duration::seconds_f64(remaining))
    }
}

/// The `data` key's rotation facts (the original guide's `get_key_rotation_status`).
#[derive(Debug, Clone, PartialEq)]
pub struct RotationStatus {
    /// The active version.
    pub active_version: u32,
    /// When the active version was made.
    pub last_rotation: Option<OffsetDateTime>,
    /// When the schedule makes the next one.
    pub next_rotation: Option<OffsetDateTime>,
    /// The latest re-encryption job.
    pub job: Option<ReencryptionJob>,
}

/// One row to seal again, as part of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reseal {
    /// Its table.
    pub table: Phase,
    /// Its id (a factor's uuid, a signing key's kid).
    pub id: String,
    /// The text read.
    pub old: String,
    /// The text under the active key.
    pub new: String,
}

/// Why the job could not go on.
#[derive(Debug, thiserror::Error)]
pub enum ReencryptError {
    /// The store is unreachable; the job stays running and resumes later.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The keyring failed (key store unreachable, HSM unavailable).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// What [`Reencryptor::run`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// There was no running job.
    Idle,
    /// Another instance holds the lease.
    Busy,
    /// The job ran to its end (completed or failed).
    Finished(ReencryptionJob),
    /// This run stopped while the job goes on elsewhere: its lease lapsed, or another run moved
    /// the checkpoint or ended the job. The job as this run last saw it.
    Stopped(ReencryptionJob),
}

/// Runs re-encryption jobs. Cheap to clone.
#[derive(Clone)]
pub struct Reencryptor {
    store: Arc<dyn ReencryptionStore>,
    signing_keys: Arc<dyn crate::store::SigningKeyStore>,
    hot: Arc<dyn HotStore>,
    keyring: Arc<Keyring>,
    clock: Arc<dyn Clock>,
    settings: ReencryptionSettings,
}

impl Reencryptor {
    /// A runner over the stores and the keyring.
    pub fn new(
        store: Arc<dyn crate::store::DurableStore>,
        hot: Arc<dyn HotStore>,
        keyring: Arc<Keyring>,
        clock: Arc<dyn Clock>,
        settings: ReencryptionSettings,
    ) -> Self {
        Self { signing_keys: store.clone(), store, hot, keyring, clock, settings }
    }

    /// The pacing in force.
    pub fn settings(&self) -> ReencryptionSettings {
        self.settings
    }

    /// The most recent job, if any.
    pub async fn latest(&self) -> Result<Option<ReencryptionJob>, ReencryptError> {
        Ok(self.store.latest_reencryption_job().await?)
    }

    /// Makes a new `data` key version and starts re-encrypting toward it.
    pub async fn rotate(&self) -> Result<(u32, ReencryptionJob), ReencryptError> {
        let version = self.keyring.rotate(KeyPurpose::Data).await?;
        Ok((version, self.start().await?))
    }

    /// The schedule: rotates the `data` key when its newest version is at least `period` old and
    /// starts re-encrypting; `None` when nothing was due (or another instance just did it).
    pub async fn rotate_if_due(&self, period: Duration) -> Result<Option<(u32, ReencryptionJob)>, ReencryptError> {
        match self.keyring.rotate_if_older_than(KeyPurpose::Data, period).await? {
            Some(version) => Ok(Some((version, self.start().await?))),
            None => Ok(None),
        }
    }

    /// The `data` key's rotation facts and the latest job; `period` is the rotation schedule's.
    pub async fn status(&self, period: Duration) -> Result<RotationStatus, ReencryptError> {
        let active = self.keyring.newest(KeyPurpose::Data).await?;
        let made = self.keyring.status().await?.into_iter().find(|k| k.id == active.id).map(|k| k.created_at);
        Ok(RotationStatus {
            active_version: active.version,
            last_rotation: made,
            next_rotation: made.map(|at| at + period),
            job: self.store.latest_reencryption_job().await?,
        })
    }

    /// Starts a job toward the active `data` version, or returns the one already running (a
    /// second request does not start a second scan).
    pub async fn start(&self) -> Result<ReencryptionJob, ReencryptError> {
        loop {
            if let Some(job) = self.store.latest_reencryption_job().await?
                && job.state == JobState::Running
            {
                return Ok(job);
            }
            let target = self.keyring.newest(KeyPurpose::Data).await?.version;
            let total = self.store.count_factors().await? + count(self.signing_keys.signing_keys().await?.len());
            let now = self.clock.now();
            let job = ReencryptionJob {
                id: uuid::Uuid::now_v7(),
                target_version: target,
                state: JobState::Running,
                phase: Phase::SigningKeys,
                cursor: None,
                total,
                scanned: 0,
                rewritten: 0,
                started_at: now,
                updated_at: now,
                finished_at: None,
                error: None,
            };
            if self.store.insert_reencryption_job(&job).await? {
                tracing::info!(job = %job.id, target, total, "re-encryption started");
                return Ok(job);
            }
        }
    }

    /// Works on the running job, if any, until it ends: takes the lease (or answers
    /// [`RunOutcome::Busy`]), resumes from the checkpoint, and calls `progress` after each batch.
    /// A store or keyring failure leaves the job running, to be resumed by a later call.
    pub async fn run(&self, progress: &(dyn Fn(&ReencryptionJob) + Send + Sync)) -> Result<RunOutcome, ReencryptError> {
        if !self.store.latest_reencryption_job().await?.is_some_and(|job| job.state == JobState::Running) {
            return Ok(RunOutcome::Idle);
        }
        // A token per run: two runs in one process exclude each other as two instances do.
        let lease = Lease { token: uuid::Uuid::new_v4().to_string(), ttl: self.lease_ttl() };
        if !self.hot.compare_and_set(&lease_key(), None, lease.token.as_bytes(), lease.ttl).await? {
            return Ok(RunOutcome::Busy);
        }
        // Read again under the lease: another run may have moved the checkpoint, or ended the job,
        // between the first read and the lease.
        let job = match self.store.latest_reencryption_job().await {
            Ok(Some(job)) if job.state == JobState::Running => job,
            Ok(_) => {
                self.release_lease(&lease).await;
                return Ok(RunOutcome::Idle);
            }
            Err(e) => {
                self.release_lease(&lease).await;
                return Err(e.into());
            }
        };
        let mut job = job;
        let result = self.work(&mut job, &lease, progress).await;
        self.release_lease(&lease).await;
        match result? {
            true => Ok(RunOutcome::Finished(job)),
            false => Ok(RunOutcome::Stopped(job)),
        }
    }

    async fn work(
        &self,
        job: &mut ReencryptionJob,
        lease: &Lease,
        progress: &(dyn Fn(&ReencryptionJob) + Send + Sync),
    ) -> Result<bool, ReencryptError> {
        let started = tokio::time::Instant::now();
        let mut visited_here: u64 = 0;
        loop {
            // The newest version as the store has it, never this instance's cached idea of it
            // (which may be a minute old, from before the rotation).
            let target = self.keyring.newest(KeyPurpose::Data).await?;
            let mut next = job.clone();
            next.target_version = next.target_version.max(target.version);
            let batch = match next.phase {
                Phase::SigningKeys => self.signing_key_batch(&mut next, &target).await,
                Phase::Factors => self.factor_batch(&mut next, &target).await,
            };
            let reseals = match batch {
                Ok(Batch { reseals, phase_done }) => {
                    if phase_done {
                        self.next_phase(&mut next).await?;
                    }
                    reseals
                }
                Err(Failure::Fatal(message)) => {
                    next = job.clone();
                    next.state = JobState::Failed;
                    next.error = Some(message);
                    next.finished_at = Some(self.clock.now());
                    Vec::new()
                }
                Err(Failure::Retry(e)) => return Err(e),
            };
            next.updated_at = self.clock.now();
            let Some(rewritten) = self.store.commit_reencryption_batch(job, &next, &reseals).await? else {
                tracing::info!(job = %job.id, "re-encryption stopped: the job ended or moved on elsewhere");
                return Ok(false);
            };
            next.rewritten += rewritten;
            visited_here += next.scanned - job.scanned;
            *job = next;
            progress(job);
            if job.state != JobState::Running {
                tracing::info!(job = %job.id, state = job.state.as_str(), scanned = job.scanned,
                    rewritten = job.rewritten, error = job.error.as_deref(), "re-encryption ended");
                return Ok(true);
            }
            if !self.renew_lease(lease).await? {
                tracing::warn!(job = %job.id, "re-encryption lease lost; another instance goes on");
                return Ok(false);
            }
            if let Some(rate) = self.settings.rows_per_second {
                #[allow(clippy::cast_precision_loss)] // counts far below 2^52
                let due = std::time::Duration::from_secs_f64(visited_here as f64 / f64::from(rate));
                tokio::time::sleep_until(started + due).await;
            }
        }
    }

    /// After the last page of a phase: the next table, or the end — unless the key rotated during
    /// the scan, and then once round again toward the new version.
    async fn next_phase(&self, job: &mut ReencryptionJob) -> Result<(), ReencryptError> {
        match job.phase {
            Phase::SigningKeys => {
                job.phase = Phase::Factors;
                job.cursor = None;
            }
            Phase::Factors => {
                if self.keyring.newest(KeyPurpose::Data).await?.version == job.target_version {
                    job.state = JobState::Completed;
                    job.finished_at = Some(self.clock.now());
                } else {
                    job.phase = Phase::SigningKeys;
                    job.cursor = None;
                }
            }
        }
        Ok(())
    }

    /// Visits the signing keys after the cursor (a handful: one batch).
    async fn signing_key_batch(&self, job: &mut ReencryptionJob, target: &LoadedKey) -> Result<Batch, Failure> {
        let mut keys = self.signing_keys.signing_keys().await.map_err(Failure::store)?;
        keys.sort_by(|a, b| a.kid.cmp(&b.kid));
        let limit = usize::try_from(self.settings.batch_size).unwrap_or(usize::MAX);
        let after = job.cursor.take();
        let page: Vec<_> = keys
            .into_iter()
            .filter(|k| after.as_deref().is_none_or(|after| k.kid.as_str() > after))
            .take(limit)
            .collect();
        job.cursor = after;
        let phase_done = page.len() < limit;
        let mut reseals = Vec::new();
        for key in page {
            let context = crate::token::keys::sealing_context(&key.kid);
            let what = format!("signing key {}", key.kid);
            if let Some(new) = self.reseal(&key.private_key, &context, target, &what).await? {
                reseals.push(Reseal { table: Phase::SigningKeys, id: key.kid.clone(), old: key.private_key, new });
            }
            job.scanned += 1;
            job.cursor = Some(key.kid);
        }
        Ok(Batch { reseals, phase_done })
    }

    /// Visits one page of factors after the cursor.
    async fn factor_batch(&self, job: &mut ReencryptionJob, target: &LoadedKey) -> Result<Batch, Failure> {
        let after = match job.cursor.as_deref() {
            None => None,
            Some(text) => Some(
                uuid::Uuid::parse_str(text)
                    .map_err(|_| Failure::Fatal(format!("the checkpoint's factor cursor {text:?} is not a uuid")))?,
            ),
        };
        let page = self.store.factor_page(after, self.settings.batch_size).await.map_err(Failure::store)?;
        let phase_done = page.len() < usize::try_from(self.settings.batch_size).unwrap_or(usize::MAX);
        let mut reseals = Vec::new();
        for factor in page {
            let context = crate::mfa::factor_context(factor.user_id, factor.kind, factor.id);
            let what = format!("factor {}", factor.id);
            if let Some(new) = self.reseal(&factor.sealed, &context, target, &what).await? {
                reseals.push(Reseal { table: Phase::Factors, id: factor.id.to_string(), old: factor.sealed, new });
            }
            job.scanned += 1;
            job.cursor = Some(factor.id.to_string());
        }
        Ok(Batch { reseals, phase_done })
    }

    /// The row's text sealed again under `target`, or `None` when it already is.
    async fn reseal(
        &self,
        sealed: &str,
        context: &super::EncryptionContext,
        target: &LoadedKey,
        what: &str,
    ) -> Result<Option<String>, Failure> {
        let envelope =
            Envelope::parse_compact(sealed).map_err(|_| Failure::Fatal(format!("{what} holds no envelope")))?;
        if envelope.key_id == target.id {
            return Ok(None);
        }
        let plain: Zeroizing<Vec<u8>> = self.keyring.decrypt(&envelope, context).await.map_err(|e| match e {
            e if e.is_unavailable() => Failure::Retry(e.into()),
            CryptoError::Aead(_) | CryptoError::Mismatch => Failure::Fatal(format!("{what} does not decrypt")),
            e => Failure::Retry(e.into()),
        })?;
        let fresh =
            Keyring::seal_data(target, &plain, context).map_err(|e| Failure::Retry(CryptoError::from(e).into()))?;
        Ok(Some(fresh.to_compact()))
    }

    /// How long the lease lives between renewals: at least [`LEASE_TTL`], and three paced batches.
    fn lease_ttl(&self) -> Duration {
        match self.settings.rows_per_second {
            Some(rate) => {
                let batch = Duration::seconds_f64(f64::from(self.settings.batch_size) / f64::from(rate));
                LEASE_TTL.max(batch * 3)
            }
            None => LEASE_TTL,
        }
    }

    async fn renew_lease(&self, lease: &Lease) -> Result<bool, StoreError> {
        let mine = lease.token.as_bytes();
        self.hot.compare_and_set(&lease_key(), Some(mine), mine, lease.ttl).await
    }

    /// Lets the lease lapse at once (a 1 ms life) if it is still ours.
    async fn release_lease(&self, lease: &Lease) {
        let mine = lease.token.as_bytes();
        if let Err(e) = self.hot.compare_and_set(&lease_key(), Some(mine), mine, Duration::milliseconds(1)).await {
            tracing::warn!(error = %e, "could not release the re-encryption lease; it lapses on its own");
        }
    }
}

/// A run's hold on the job.
struct Lease {
    token: String,
    ttl: Duration,
}

/// One batch's rows to rewrite, and whether its phase has no more rows.
struct Batch {
    reseals: Vec<Reseal>,
    phase_done: bool,
}

/// How a batch failed.
enum Failure {
    /// Transient: leave the job running.
    Retry(ReencryptError),
    /// A row the job can never move: the job fails, naming it.
    Fatal(String),
}

impl Failure {
    fn store(e: StoreError) -> Self {
        Self::Retry(e.into())
    }
}

fn count(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}
