//! The durable store: the source of truth — wrapped data keys, the audit chain, users and their
//! password history, refresh-token families and JWT signing keys.

use async_trait::async_trait;

use super::StoreError;
use crate::api_key::ApiKeyRecord;
use crate::audit::AuditRecord;
use crate::compliance::consent::{ConsentText, ConsentTextPut};
use crate::compliance::erasure::ErasureProgress;
use crate::compliance::retention::{RetentionCounts, RetentionCutoffs};
use crate::compliance::{Consent, ErasureRequest, ErasureState};
use crate::crypto::reencrypt::{ReencryptionJob, Reseal};
use crate::crypto::{KeyPurpose, WrappedDataKey};
use crate::device::{DeviceId, DeviceRecord, DeviceSeen, DeviceUpdate};
use crate::mfa::{BackupCodeRecord, FactorKind, FactorRecord, PasskeyRecord};
use crate::monitoring::alert::{AlertPreferences, Delivery, DeliveryOutcome, DeliveryState};
use crate::monitoring::{Incident, IncidentAction, IncidentFilter, IncidentRaise, IncidentState, ResponseKind};
use crate::oauth::OAuthClient;
use crate::risk::{LoginResult, PastLogin, RiskRecord};
use crate::token::{RefreshTokenRecord, RevokeReason, Rotation, SessionId, SigningKeyRecord, TokenHash};
use crate::user::{User, UserId, UserInsert, Username};

/// Wrapped (encrypted) data keys, versioned per purpose.
#[async_trait]
pub trait KeyStore: Send + Sync + 'static {
    /// Inserts a new key version. Returns `false`, storing nothing, when that purpose already has
    /// that version (another instance made it first). A duplicate `id` is an error, not `false`.
    async fn insert_data_key(&self, key: &WrappedDataKey) -> Result<bool, StoreError>;

    /// Every version of the keys for `purpose`, oldest first.
    async fn data_keys(&self, purpose: KeyPurpose) -> Result<Vec<WrappedDataKey>, StoreError>;

    /// One key by its id.
    async fn data_key(&self, id: uuid::Uuid) -> Result<Option<WrappedDataKey>, StoreError>;

    /// Deletes every version of `purpose`'s family and returns how many keys went: crypto-shredding
    /// an owner's family. All or nothing: a key something still refers to (an audit record, an API
    /// key, a backup code) makes it an error and every key stays.
    async fn delete_data_keys(&self, purpose: KeyPurpose) -> Result<u64, StoreError>;

    /// The lowest version of `purpose` that may still decrypt; 1 when none was set.
    async fn min_decryption_version(&self, purpose: KeyPurpose) -> Result<u32, StoreError>;

    /// Sets the lowest version of `purpose` that may decrypt (raising retires older versions;
    /// lowering brings them back). The caller checks it against the family's versions.
    async fn set_min_decryption_version(
        &self,
        purpose: KeyPurpose,
        version: u32,
        at: time::OffsetDateTime,
    ) -> Result<(), StoreError>;
}

/// The append-only audit chain.
#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    /// The last record of the chain, if any.
    async fn audit_head(&self) -> Result<Option<AuditRecord>, StoreError>;

    /// Appends `record` if its `seq` is free. Returns `false`, storing nothing, when another writer
    /// took that sequence number first (the caller re-reads the head and seals again). A duplicate
    /// `id` is an error, not `false`. `at` is stored at microsecond precision (the MAC covers it).
    async fn try_append_audit(&self, record: &AuditRecord) -> Result<bool, StoreError>;

    /// Appends consecutive records (each linking to the one before) all or none: `false`, storing
    /// nothing, when any `seq` is taken. Lets a writer seal many records for the price of one
    /// commit. At most [`crate::audit::MAX_BATCH`] records.
    async fn try_append_audit_batch(&self, records: &[AuditRecord]) -> Result<bool, StoreError>;

    /// Records with `seq > after`, in order, at most `limit`.
    async fn audit_records(&self, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError>;

    /// Records matching `filter`, newest first: those with `seq < filter.before` (all when `None`),
    /// of subject `filter.subject`, of one of `filter.kinds` (any when empty, at most two), at or
    /// after `since` and before `until`, at most `limit`.
    async fn audit_search(&self, filter: &crate::audit::AuditFilter) -> Result<Vec<AuditRecord>, StoreError>;

    /// Records at or after `since` and before `until`, counted per `bucket`-long slice from `since`,
    /// kind and outcome (the dashboard's figures). Slices without records are absent.
    async fn audit_counts(
        &self,
        since: time::OffsetDateTime,
        until: time::OffsetDateTime,
        bucket: time::Duration,
    ) -> Result<Vec<crate::audit::AuditCount>, StoreError>;

    /// The addresses with the most records in the range that failed or are of one of `kinds`, most
    /// first (then by address), at most `limit`, with their counts.
    async fn audit_top_addresses(
        &self,
        since: time::OffsetDateTime,
        until: time::OffsetDateTime,
        kinds: &[&str],
        limit: u32,
    ) -> Result<Vec<(String, u64)>, StoreError>;

    /// Records with `seq > after` whose actor or subject is one of `who`, in order, at most `limit`
    /// (a user's events for an export or an erasure).
    async fn audit_records_about(&self, who: &[String], after: i64, limit: u32)
    -> Result<Vec<AuditRecord>, StoreError>;

    /// Redacts, in one transaction, the next at most `limit` records with `seq > after` whose actor
    /// or subject is one of `who`, as [`crate::audit::redact`] does: those of `who` become
    /// `pseudonym`, the address and user agent are cleared, the details become
    /// [`crate::audit::REDACTED_DETAILS`], the salt is deleted and `redacted_at` set. v1 records
    /// and records already redacted are passed over unchanged. The chain's MACs stay valid.
    async fn redact_audit_records(
        &self,
        who: &[String],
        pseudonym: &str,
        after: i64,
        limit: u32,
        at: time::OffsetDateTime,
    ) -> Result<crate::audit::RedactionPage, StoreError>;

    /// The newest checkpoint of an archived prefix, if a prefix was archived.
    async fn audit_checkpoint(&self) -> Result<Option<crate::audit::AuditCheckpoint>, StoreError>;

    /// Stores `checkpoint` and deletes every record up to its `seq`, in one transaction. `false`,
    /// changing nothing, when a checkpoint at or after that `seq` exists or the record at `seq`
    /// is the head (the newest record is never archived: the next append links to it).
    async fn archive_audit_prefix(&self, checkpoint: &crate::audit::AuditCheckpoint) -> Result<bool, StoreError>;

    /// The last `seq` of the longest prefix of the chain (after the newest checkpoint) whose
    /// records are all older than `before`; `None` when the first record is not.
    async fn audit_prefix_before(&self, before: time::OffsetDateTime) -> Result<Option<i64>, StoreError>;
}

/// Accounts and their password history.
#[async_trait]
pub trait UserStore: Send + Sync + 'static {
    /// Inserts `user`; a taken username or e-mail address stores nothing and says which.
    async fn insert_user(&self, user: &User) -> Result<UserInsert, StoreError>;

    /// One user by id.
    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError>;

    /// One user by canonical username.
    async fn user_by_username(&self, username: &Username) -> Result<Option<User>, StoreError>;

    /// Users ordered by id, those after `after`, at most `limit`.
    async fn list_users(&self, after: Option<UserId>, limit: u32) -> Result<Vec<User>, StoreError>;

    /// Sets the administrative lock; `false` when there is no such user.
    async fn set_user_locked(&self, id: UserId, locked: bool) -> Result<bool, StoreError>;

    /// Grants or withdraws the administrator role; `false` when there is no such user.
    async fn set_user_admin(&self, id: UserId, admin: bool) -> Result<bool, StoreError>;

    /// Replaces the password hash, only if the stored one is still `expected` (so two concurrent
    /// changes cannot both win), sets `password_changed_at`, and — when `keep_history > 0` — pushes
    /// the old hash onto the history and trims it to the newest `keep_history`. One transaction.
    /// `false` when the hash had changed (or the user is gone); nothing is written then.
    async fn change_password(
        &self,
        id: UserId,
        expected: &str,
        new_hash: &str,
        changed_at: time::OffsetDateTime,
        keep_history: u32,
    ) -> Result<bool, StoreError>;

    /// Replaces the hash with a re-hash of the same password (new parameters) if it is still
    /// `expected`; leaves `password_changed_at` and the history alone.
    async fn rehash_password(&self, id: UserId, expected: &str, new_hash: &str) -> Result<bool, StoreError>;

    /// Earlier password hashes, newest first, at most `limit`.
    async fn password_history(&self, id: UserId, limit: u32) -> Result<Vec<String>, StoreError>;
}

/// Refresh-token families: every token rotated from one login, each stored only as its hash.
#[async_trait]
pub trait RefreshTokenStore: Send + Sync + 'static {
    /// Stores the first token of a new family (`record.parent` is `None`; the family is made with it).
    async fn insert_refresh_family(&self, record: &RefreshTokenRecord) -> Result<(), StoreError>;

    /// Presents the token hashed as `presented`, atomically (one transaction or conditional update):
    /// - live (unspent, unexpired, family not revoked) → marks it spent at `now`, stores a child
    ///   `next_hash` (same family, user and session; parent = `presented`; issued `now`, expiring
    ///   `next_expires_at`) and answers [`Rotation::Rotated`];
    /// - spent less than `grace` ago → the same as live (a legitimate concurrent retry), the spend time
    ///   unchanged; with `grace` zero, never;
    /// - spent otherwise → revokes the family (reason `reuse`) and answers [`Rotation::Reused`];
    /// - family revoked → [`Rotation::Revoked`]; expired → [`Rotation::Expired`]; absent → [`Rotation::Unknown`].
    ///
    /// Of concurrent presentations of one live token with `grace` zero, exactly one is `Rotated`.
    async fn rotate_refresh_token(
        &self,
        presented: &TokenHash,
        next_hash: &TokenHash,
        next_expires_at: time::OffsetDateTime,
        now: time::OffsetDateTime,
        grace: time::Duration,
    ) -> Result<Rotation, StoreError>;

    /// Revokes the families of `session`; returns how many were live.
    async fn revoke_session_families(
        &self,
        session: SessionId,
        reason: RevokeReason,
        now: time::OffsetDateTime,
    ) -> Result<u64, StoreError>;

    /// Revokes every live family of `user` except those of `keep` (the caller's own session).
    async fn revoke_user_families(
        &self,
        user: UserId,
        keep: Option<SessionId>,
        reason: RevokeReason,
        now: time::OffsetDateTime,
    ) -> Result<u64, StoreError>;

    /// Deletes tokens that expired before `before` (housekeeping); returns how many.
    async fn purge_refresh_tokens(&self, before: time::OffsetDateTime) -> Result<u64, StoreError>;
}

/// JWT signing keys.
#[async_trait]
pub trait SigningKeyStore: Send + Sync + 'static {
    /// Inserts a key. `false`, storing nothing, when that algorithm already has that version
    /// (another instance made it first). A duplicate `kid` is an error.
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<bool, StoreError>;

    /// Every stored signing key, oldest first.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;

    /// Marks the key `kid` retired at `at` (it stops signing; it keeps verifying until dropped).
    async fn retire_signing_key(&self, kid: &str, at: time::OffsetDateTime) -> Result<bool, StoreError>;
}

/// API keys.
#[async_trait]
pub trait ApiKeyStore: Send + Sync + 'static {
    /// Stores a new key. A duplicate id is an error.
    async fn insert_api_key(&self, key: &ApiKeyRecord) -> Result<(), StoreError>;

    /// One key by id (revoked and expired ones included: the caller decides).
    async fn api_key(&self, id: uuid::Uuid) -> Result<Option<ApiKeyRecord>, StoreError>;

    /// Keys ordered by id, of `owner` (or everyone's when `None`), those after `after`, at most `limit`.
    async fn api_keys(
        &self,
        owner: Option<UserId>,
        after: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Vec<ApiKeyRecord>, StoreError>;

    /// Revokes the key at `at` if it is not revoked yet and — when `owner` is given — belongs to
    /// them. `false` when nothing was revoked (absent, someone else's, or already revoked).
    async fn revoke_api_key(
        &self,
        id: uuid::Uuid,
        owner: Option<UserId>,
        at: time::OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Lifts the revocation made at exactly `revoked_at` (an automatic response being reverted); `false`
    /// when the key is absent, not revoked, or was revoked at another time (by its owner, say).
    async fn restore_api_key(&self, id: uuid::Uuid, revoked_at: time::OffsetDateTime) -> Result<bool, StoreError>;

    /// Records a use at `at` (only moves `last_used_at` forward).
    async fn touch_api_key(&self, id: uuid::Uuid, at: time::OffsetDateTime) -> Result<(), StoreError>;
}

/// Second factors (TOTP secrets, phone numbers, e-mail addresses — all sealed by the keyring) and
/// backup codes (keyed hashes). One factor of each kind per user.
#[async_trait]
pub trait MfaStore: Send + Sync + 'static {
    /// Stores a factor awaiting confirmation, replacing an unconfirmed one of the same kind. Returns
    /// `false`, changing nothing, when the user already has a confirmed factor of that kind.
    async fn put_pending_factor(&self, factor: &FactorRecord) -> Result<bool, StoreError>;

    /// Confirms the factor `id` of `user` if it is still the pending one; `true` when it was.
    async fn confirm_factor(&self, user: UserId, id: uuid::Uuid, at: time::OffsetDateTime) -> Result<bool, StoreError>;

    /// The user's factors, confirmed or pending, at most one per kind.
    async fn factors(&self, user: UserId) -> Result<Vec<FactorRecord>, StoreError>;

    /// Deletes the user's factor of `kind`, confirmed or pending; `true` when there was one. When no
    /// confirmed factor and no passkey is left, the backup codes go too (in the same transaction).
    async fn delete_factor(&self, user: UserId, kind: FactorKind) -> Result<bool, StoreError>;

    /// Deletes every factor, passkey and backup code of the user (an administrator's reset); returns
    /// how many factors and passkeys there were.
    async fn delete_all_factors(&self, user: UserId) -> Result<u64, StoreError>;

    /// Replaces the user's backup codes with `codes` in one transaction: the old ones die.
    async fn replace_backup_codes(&self, user: UserId, codes: &[BackupCodeRecord]) -> Result<(), StoreError>;

    /// The user's unused backup codes.
    async fn unused_backup_codes(&self, user: UserId) -> Result<Vec<BackupCodeRecord>, StoreError>;

    /// Marks backup code `index` used if it is still unused and still has `hash` (it was not
    /// regenerated meanwhile); of concurrent callers exactly one gets `true`.
    async fn use_backup_code(
        &self,
        user: UserId,
        index: u8,
        hash: &[u8],
        at: time::OffsetDateTime,
    ) -> Result<bool, StoreError>;
}

/// Passkeys (WebAuthn credentials): public keys and counters, several per user.
#[async_trait]
pub trait PasskeyStore: Send + Sync + 'static {
    /// Stores a new passkey; `false`, changing nothing, when its credential id is already registered
    /// (to anyone).
    async fn insert_passkey(&self, passkey: &PasskeyRecord) -> Result<bool, StoreError>;

    /// The user's passkeys, oldest first.
    async fn passkeys(&self, user: UserId) -> Result<Vec<PasskeyRecord>, StoreError>;

    /// The passkey with this credential id.
    async fn passkey(&self, credential_id: &[u8]) -> Result<Option<PasskeyRecord>, StoreError>;

    /// Replaces a passkey's stored form after a use (its counter moved on) and records the use, only
    /// if the stored form is still `expected`: of two concurrent uses, one updates. `true` when it
    /// did.
    async fn update_passkey(
        &self,
        credential_id: &[u8],
        expected: &str,
        passkey: &str,
        used_at: time::OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Renames one of the user's passkeys; `true` when it exists.
    async fn rename_passkey(&self, user: UserId, credential_id: &[u8], name: &str) -> Result<bool, StoreError>;

    /// Deletes one of the user's passkeys; `true` when it existed. When the user has no confirmed
    /// factor and no passkey left, the backup codes go too (same transaction).
    async fn delete_passkey(&self, user: UserId, credential_id: &[u8]) -> Result<bool, StoreError>;
}

/// The device registry.
#[async_trait]
pub trait DeviceStore: Send + Sync + 'static {
    /// Records a login from `device` (matched by user and fingerprint): a device not yet known is
    /// inserted as given; a known one keeps its id, name, trust and approval and only takes the new
    /// `last_seen_at`, `last_ip`, `last_country` and `last_city` (and the type, OS and browser
    /// when the stored ones are empty). Atomic: two concurrent first logins from one device make
    /// one record, and exactly one of them reports it new.
    async fn record_device_seen(&self, device: &DeviceRecord) -> Result<DeviceSeen, StoreError>;

    /// The device of `user` with `fingerprint`.
    async fn device_by_fingerprint(
        &self,
        user: UserId,
        fingerprint: &crate::device::DeviceFingerprint,
    ) -> Result<Option<DeviceRecord>, StoreError>;

    /// One device of `user`.
    async fn device(&self, user: UserId, id: DeviceId) -> Result<Option<DeviceRecord>, StoreError>;

    /// The devices of `user`, most recently seen first.
    async fn devices(&self, user: UserId) -> Result<Vec<DeviceRecord>, StoreError>;

    /// Renames and/or re-trusts a device of `user`; the device as stored after, `None` if absent.
    async fn update_device(
        &self,
        user: UserId,
        id: DeviceId,
        update: &DeviceUpdate,
    ) -> Result<Option<DeviceRecord>, StoreError>;

    /// Marks a device of `user` approved (trust raised to at least `medium`); `false` if absent.
    async fn approve_device(&self, user: UserId, id: DeviceId) -> Result<bool, StoreError>;

    /// Forgets a device of `user`; `false` if absent.
    async fn delete_device(&self, user: UserId, id: DeviceId) -> Result<bool, StoreError>;
}

/// Scored login attempts: the admin's view of recent risk and the login history.
#[async_trait]
pub trait RiskStore: Send + Sync + 'static {
    /// Stores a new record.
    async fn insert_risk_record(&self, record: &RiskRecord) -> Result<(), StoreError>;

    /// Sets what became of an attempt, only from `pending`; `false` if absent or already settled.
    async fn settle_risk_record(&self, id: uuid::Uuid, result: LoginResult) -> Result<bool, StoreError>;

    /// The most recent records of `user`, newest first, at most `limit`.
    async fn risk_records(&self, user: UserId, limit: u32) -> Result<Vec<RiskRecord>, StoreError>;

    /// The most recent *succeeded* logins of `user`, newest first, at most `limit`.
    async fn login_history(&self, user: UserId, limit: u32) -> Result<Vec<PastLogin>, StoreError>;

    /// Deletes records older than `before`; returns how many.
    async fn purge_risk_records(&self, before: time::OffsetDateTime) -> Result<u64, StoreError>;
}

/// What the re-encryption job needs: Palisade's own sealed rows in pages, a conditional rewrite of
/// one row, and the job's durable checkpoint.
#[async_trait]
pub trait ReencryptionStore: Send + Sync + 'static {
    /// How many second factors there are (every kind, pending or confirmed).
    async fn count_factors(&self) -> Result<u64, StoreError>;

    /// Factors with an id above `after` (all when `None`), in id order, at most `limit`.
    async fn factor_page(&self, after: Option<uuid::Uuid>, limit: u32) -> Result<Vec<FactorRecord>, StoreError>;

    /// Stores a new job. `false`, storing nothing, while another job is running (one at a time,
    /// whichever instance asks).
    async fn insert_reencryption_job(&self, job: &ReencryptionJob) -> Result<bool, StoreError>;

    /// One batch's work and its checkpoint, in one transaction: each reseal is applied only while
    /// its row still holds `old` (a factor set up again meanwhile keeps its new text), and job
    /// `job.id` is saved with every field but its id and start — its `rewritten` plus the number of
    /// rows rewritten here. Only while the job is running *and* its stored checkpoint is still
    /// `previous`'s (phase, cursor and scanned): a run whose lease lapsed cannot move back the
    /// progress another run made. Otherwise `None`, applying nothing; else the number of rows
    /// rewritten. A crash leaves either all of it or none.
    async fn commit_reencryption_batch(
        &self,
        previous: &ReencryptionJob,
        job: &ReencryptionJob,
        reseals: &[Reseal],
    ) -> Result<Option<u64>, StoreError>;

    /// The most recently started job, running or not.
    async fn latest_reencryption_job(&self) -> Result<Option<ReencryptionJob>, StoreError>;
}

/// Incidents raised by the monitoring detectors.
#[async_trait]
pub trait IncidentStore: Send + Sync + 'static {
    /// Opens an incident for `(raise.cause, raise.subject)`, or — when one is open or acknowledged —
    /// attaches to it: `occurrences` + 1, `last_seen_at` the later of it and `raise.at`, the severity raised to
    /// `raise.severity` if higher, `raise.events` appended (the oldest dropped beyond
    /// [`crate::monitoring::MAX_ATTACHED_EVENTS`]); its id, title, details and state stay. One
    /// statement or transaction: of concurrent raises for one cause and subject, one opens and the
    /// others attach. Returns the incident as stored and whether it was opened now.
    async fn raise_incident(&self, raise: &IncidentRaise) -> Result<(Incident, bool), StoreError>;

    /// One incident by id.
    async fn incident(&self, id: uuid::Uuid) -> Result<Option<Incident>, StoreError>;

    /// Incidents matching `filter`, newest first.
    async fn incidents(&self, filter: &IncidentFilter) -> Result<Vec<Incident>, StoreError>;

    /// Moves incident `id` from `from` to `to` (recording `by` and `at`) only while it is in `from`;
    /// the incident as stored after, or `None` when it is absent or no longer in `from`.
    async fn set_incident_state(
        &self,
        id: uuid::Uuid,
        from: IncidentState,
        to: IncidentState,
        by: &str,
        at: time::OffsetDateTime,
    ) -> Result<Option<Incident>, StoreError>;

    /// Incidents opened at or after `since` and before `until`, counted per `bucket`-long slice from
    /// `since` and cause: `(slice, cause, count)`; slices without incidents are absent.
    async fn incident_counts(
        &self,
        since: time::OffsetDateTime,
        until: time::OffsetDateTime,
        bucket: time::Duration,
    ) -> Result<Vec<(u32, String, u64)>, StoreError>;

    /// Incidents open or acknowledged now, per severity (severities without any are absent).
    async fn unresolved_incidents(&self) -> Result<Vec<(crate::monitoring::Severity, u64)>, StoreError>;

    /// Records an action taken on an incident's behalf.
    async fn record_incident_action(&self, action: &IncidentAction) -> Result<(), StoreError>;

    /// One action by id.
    async fn incident_action(&self, id: uuid::Uuid) -> Result<Option<IncidentAction>, StoreError>;

    /// The actions taken for `incident`, oldest first.
    async fn incident_actions(&self, incident: uuid::Uuid) -> Result<Vec<IncidentAction>, StoreError>;

    /// Marks action `id` reverted by `by` at `at`, only while it is not reverted yet: of concurrent
    /// reverts one gets the action as stored after, the others `None` (also when it is absent).
    async fn revert_incident_action(
        &self,
        id: uuid::Uuid,
        by: &str,
        at: time::OffsetDateTime,
    ) -> Result<Option<IncidentAction>, StoreError>;

    /// The actions of `kind` in force at `now`: not reverted, and without an expiry or expiring after `now`.
    async fn live_incident_actions(
        &self,
        kind: ResponseKind,
        now: time::OffsetDateTime,
    ) -> Result<Vec<IncidentAction>, StoreError>;

    /// Timed actions whose expiry is at or before `now` and that are not reverted, oldest expiry
    /// first, at most `limit`.
    async fn lapsed_incident_actions(
        &self,
        now: time::OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<IncidentAction>, StoreError>;
}

/// Alert preferences and the alert outbox (`crate::monitoring::alert`).
#[async_trait]
pub trait AlertStore: Send + Sync + 'static {
    /// A user's alert preferences, if they set them.
    async fn alert_preferences(&self, user: UserId) -> Result<Option<AlertPreferences>, StoreError>;

    /// Sets (inserts or replaces) a user's alert preferences.
    async fn set_alert_preferences(
        &self,
        user: UserId,
        preferences: &AlertPreferences,
        at: time::OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Writes deliveries, all or none.
    async fn enqueue_deliveries(&self, deliveries: &[Delivery]) -> Result<(), StoreError>;

    /// Pending deliveries due at `now` and not claimed by a live lease, the earliest due first, at
    /// most `limit`.
    async fn due_deliveries(&self, now: time::OffsetDateTime, limit: u32) -> Result<Vec<Delivery>, StoreError>;

    /// Claims delivery `id` for `owner` until `until`, only while it is pending and unclaimed (or
    /// its lease has passed at `now`): of concurrent claims exactly one gets `true`.
    async fn claim_delivery(
        &self,
        id: uuid::Uuid,
        owner: &str,
        until: time::OffsetDateTime,
        now: time::OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Records how a claimed delivery ended (only `owner`'s claim counts): sent, due again with one
    /// more attempt, or dead with one more attempt. Releases the claim. `false` when `owner` no
    /// longer holds it.
    async fn finish_delivery(&self, id: uuid::Uuid, owner: &str, outcome: &DeliveryOutcome)
    -> Result<bool, StoreError>;

    /// Deliveries in `state` (any when `None`), newest first, those before `before`, at most `limit`.
    async fn deliveries(
        &self,
        state: Option<DeliveryState>,
        before: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError>;

    /// Makes a dead delivery pending again, due at `now` with its attempts reset; the delivery as
    /// stored after, or `None` when it is absent or not dead.
    async fn retry_delivery(&self, id: uuid::Uuid, now: time::OffsetDateTime) -> Result<Option<Delivery>, StoreError>;
}

/// The consent ledger: append-only entries and each version's text, kept once.
#[async_trait]
pub trait ConsentStore: Send + Sync + 'static {
    /// Stores a consent version's text under its hash, once. An existing row of the same hash is
    /// left as it is ([`ConsentTextPut::Stored`] either way); a different text already stored for
    /// the same type and version stores nothing and answers [`ConsentTextPut::VersionTaken`].
    async fn put_consent_text(&self, text: &ConsentText) -> Result<ConsentTextPut, StoreError>;

    /// A stored text by its hash.
    async fn consent_text(&self, hash: &[u8]) -> Result<Option<ConsentText>, StoreError>;

    /// Appends `entry` if its `seq` is the next free one of its user and type: `false`, storing
    /// nothing, when another writer took that number first. Its text must be stored.
    async fn try_append_consent(&self, entry: &Consent) -> Result<bool, StoreError>;

    /// Every entry of `user`'s ledger, by type then `seq`.
    async fn consent_ledger(&self, user: UserId) -> Result<Vec<Consent>, StoreError>;

    /// The newest entry of `user` for `consent_type`.
    async fn latest_consent(&self, user: UserId, consent_type: &str) -> Result<Option<Consent>, StoreError>;

    /// How many users' newest entry for `consent_type` is a consent given and valid at `now`.
    async fn count_live_consents(&self, consent_type: &str, now: time::OffsetDateTime) -> Result<u64, StoreError>;
}

/// Erasure requests: the durable schedule the erasure job works through, once across instances.
#[async_trait]
pub trait ErasureStore: Send + Sync + 'static {
    /// Stores a new request; `false`, storing nothing, when the user already has an open one
    /// (scheduled or running).
    async fn insert_erasure_request(&self, request: &ErasureRequest) -> Result<bool, StoreError>;

    /// One request by id.
    async fn erasure_request(&self, id: uuid::Uuid) -> Result<Option<ErasureRequest>, StoreError>;

    /// The open request of `user`, if any.
    async fn open_erasure_request(&self, user: UserId) -> Result<Option<ErasureRequest>, StoreError>;

    /// Requests newest first: `user`'s (all users' when `None`), at most `limit`.
    async fn erasure_requests(&self, user: Option<UserId>, limit: u32) -> Result<Vec<ErasureRequest>, StoreError>;

    /// Cancels a scheduled request (not one running or finished); `false` otherwise.
    async fn cancel_erasure_request(&self, id: uuid::Uuid, at: time::OffsetDateTime) -> Result<bool, StoreError>;

    /// Open requests due at `now` whose lease is absent or lapsed, earliest first, at most `limit`.
    async fn due_erasure_requests(
        &self,
        now: time::OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<ErasureRequest>, StoreError>;

    /// Claims a due open request for `owner` until `until` and marks it running: one conditional
    /// UPDATE, so of concurrent claims one wins. `false` when it is not due, not open or leased.
    async fn claim_erasure_request(
        &self,
        id: uuid::Uuid,
        owner: &str,
        until: time::OffsetDateTime,
        now: time::OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Records progress of a request `owner` holds (and extends its lease to `until`); `false`
    /// when `owner` no longer holds it.
    async fn advance_erasure_request(
        &self,
        id: uuid::Uuid,
        owner: &str,
        progress: &ErasureProgress,
        until: time::OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Deletes the account of a request `owner` holds, in one transaction with its progress: the
    /// user row (with everything that cascades from it: credentials, factors, passkeys, devices,
    /// API keys, consents, login history, alert preferences), the alert deliveries addressed to
    /// them, and their identifiers among incidents' subjects (replaced by the pseudonym). `false`,
    /// changing nothing, when `owner` no longer holds it.
    async fn erase_account(
        &self,
        id: uuid::Uuid,
        owner: &str,
        who: &[String],
        pseudonym: &str,
        progress: &ErasureProgress,
    ) -> Result<bool, StoreError>;

    /// Ends a request `owner` holds: `Completed` forgets its user id; `Refused` keeps it with the
    /// reason. `false` when `owner` no longer holds it.
    async fn finish_erasure_request(
        &self,
        id: uuid::Uuid,
        owner: &str,
        state: ErasureState,
        progress: &ErasureProgress,
        outcome: &str,
        at: time::OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// How many administrators there are.
    async fn count_admins(&self) -> Result<u64, StoreError>;
}

/// Removing what the retention policy no longer keeps (the audit chain has its own archiving).
#[async_trait]
pub trait RetentionStore: Send + Sync + 'static {
    /// How many rows of each kind are older than their cutoff (a dry run): login history (risk
    /// records) before `cutoffs.login_history`, resolved incidents last updated before
    /// `cutoffs.incidents`, finished alert deliveries (sent, suppressed, dead) created before
    /// `cutoffs.alert_deliveries`.
    async fn retention_counts(&self, cutoffs: &RetentionCutoffs) -> Result<RetentionCounts, StoreError>;

    /// Deletes those rows, at most `limit` of each kind per call; returns how many went.
    async fn apply_retention(&self, cutoffs: &RetentionCutoffs, limit: u32) -> Result<RetentionCounts, StoreError>;
}

/// The registry of OAuth clients.
#[async_trait]
pub trait OAuthClientStore: Send + Sync + 'static {
    /// Stores a new client. A taken `client_id` is an error.
    async fn insert_oauth_client(&self, client: &OAuthClient) -> Result<(), StoreError>;

    /// One client by id.
    async fn oauth_client(&self, client_id: &str) -> Result<Option<OAuthClient>, StoreError>;

    /// Clients ordered by id (byte order), those after `after`, at most `limit`.
    async fn oauth_clients(&self, after: Option<&str>, limit: u32) -> Result<Vec<OAuthClient>, StoreError>;

    /// Deletes a client; `false` when there is no such client.
    async fn delete_oauth_client(&self, client_id: &str) -> Result<bool, StoreError>;
}

/// What a user agreed an OAuth client may have (the consent page's memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthConsent {
    /// The client.
    pub client_id: String,
    /// The scopes agreed to.
    pub scopes: Vec<String>,
    /// When they were last agreed to.
    pub granted_at: time::OffsetDateTime,
}

/// Remembered OAuth consents, one per user and client.
#[async_trait]
pub trait OAuthConsentStore: Send + Sync + 'static {
    /// Stores (or replaces) `user`'s consent to `consent.client_id`.
    async fn put_oauth_consent(&self, user: UserId, consent: &OAuthConsent) -> Result<(), StoreError>;

    /// `user`'s consent to `client_id`.
    async fn oauth_consent(&self, user: UserId, client_id: &str) -> Result<Option<OAuthConsent>, StoreError>;

    /// Every consent of `user`, by client id.
    async fn oauth_consents(&self, user: UserId) -> Result<Vec<OAuthConsent>, StoreError>;

    /// Forgets `user`'s consent to `client_id`; `false` when there was none.
    async fn delete_oauth_consent(&self, user: UserId, client_id: &str) -> Result<bool, StoreError>;
}

/// The whole durable store, as the services see it.
#[async_trait]
pub trait DurableStore:
    KeyStore
    + AuditStore
    + UserStore
    + RefreshTokenStore
    + SigningKeyStore
    + ApiKeyStore
    + MfaStore
    + PasskeyStore
    + DeviceStore
    + RiskStore
    + ReencryptionStore
    + IncidentStore
    + AlertStore
    + ConsentStore
    + ErasureStore
    + RetentionStore
    + ComplianceStatsStore
    + OAuthClientStore
    + OAuthConsentStore
{
    /// Which backend this is (`sqlite`, `postgres`), for diagnostics.
    fn backend(&self) -> &'static str;

    /// Answers when the store is reachable.
    async fn ping(&self) -> Result<(), StoreError>;
}

/// Counts for the compliance reports (`crate::compliance::report`), done in the store in one query,
/// so that a report costs the same few queries whatever the number of users (consent coverage is
/// [`ConsentStore::count_live_consents`]).
#[async_trait]
pub trait ComplianceStatsStore: Send + Sync + 'static {
    /// Every account; those holding a confirmed second factor or a passkey; the administrators;
    /// those of them holding one; and the accounts whose password hash is not Argon2id (does not
    /// start with `$argon2id$`).
    async fn account_counts(&self) -> Result<crate::compliance::report::AccountCounts, StoreError>;
}
