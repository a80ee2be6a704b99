//! The right to erasure (GDPR Art. 17): requests scheduled after the deletion delay, cancellable
//! until then, and the job that carries them out — once across instances, resumable after a crash.
//!
//! # What an erasure does, step by step
//! Each step is recorded on the request before the next starts, so a run that dies resumes where it
//! stopped, and every step is safe to repeat.
//! 1. `sessions`: the account is locked (no new login) and every session and refresh family ends.
//! 2. `audit`: the user's audit records (actor or subject: their id or username) are redacted page
//!    by page ([`crate::audit::redact`]): their identifiers become the request's pseudonym
//!    (`erased:<random>`), the address, user agent and details go. The chain still verifies: the
//!    MAC covers a salted digest of those fields, and the salt goes with them.
//! 3. `account`: one transaction deletes the user row and everything that cascades from it
//!    (credentials and password history, factors and backup codes, passkeys, devices, API keys,
//!    consents, login history, alert preferences), the alert deliveries addressed to them, and puts
//!    the pseudonym in place of their identifiers on incidents.
//! 4. `keys`: a last redaction pass (records written meanwhile), then the user's per-owner data keys
//!    are destroyed: whatever the application encrypted for them, backups included, is unreadable.
//!
//! What stays: the redacted audit records (the security log the law lets a controller keep) and
//! the request itself, which forgets the user id once completed and keeps only the pseudonym.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

use super::service::ComplianceService;
use super::{ComplianceError, may_act_for_all};
use crate::audit::{AuditEvent, AuditKind, Outcome, PSEUDONYM_PREFIX, RequestMeta};
use crate::auth::{AuthError, Principal, SCOPE_USER};
use crate::user::UserId;

/// Who erases: the actor of the job's audit records.
pub const ERASURE_ACTOR: &str = "system:erasure";
/// How long a claim on a request lasts without progress.
const LEASE: time::Duration = time::Duration::seconds(60);
/// Audit records redacted per transaction.
const REDACTION_PAGE: u32 = 500;
/// How often each instance looks for due requests.
const POLL: std::time::Duration = std::time::Duration::from_secs(5);

/// Why an erasure was requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErasureReason {
    /// The user asked.
    UserRequest,
    /// The user withdrew a consent whose withdrawal requires it.
    ConsentWithdrawn,
    /// An administrator asked.
    Administrator,
}

impl ErasureReason {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UserRequest => "user_request",
            Self::ConsentWithdrawn => "consent_withdrawn",
            Self::Administrator => "administrator",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::UserRequest, Self::ConsentWithdrawn, Self::Administrator].into_iter().find(|r| r.as_str() == name)
    }
}

/// Where a request is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErasureState {
    /// Waiting for its due date; cancellable.
    Scheduled,
    /// Being carried out.
    Running,
    /// Done.
    Completed,
    /// Cancelled before it ran.
    Cancelled,
    /// Refused when it came to run (the reason is its outcome).
    Refused,
}

impl ErasureState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Refused => "refused",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Scheduled, Self::Running, Self::Completed, Self::Cancelled, Self::Refused]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// The step a request is at (see the module's documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErasureStep {
    /// Lock the account, end its sessions.
    Sessions,
    /// Redact the audit records.
    Audit,
    /// Delete the account's rows.
    Account,
    /// Last redaction pass and destroy the keys.
    Keys,
    /// Finished.
    Done,
}

impl ErasureStep {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sessions => "sessions",
            Self::Audit => "audit",
            Self::Account => "account",
            Self::Keys => "keys",
            Self::Done => "done",
        }
    }

    /// Parses a stored name.
    pub fn parse(name: &str) -> Option<Self> {
        [Self::Sessions, Self::Audit, Self::Account, Self::Keys, Self::Done].into_iter().find(|s| s.as_str() == name)
    }
}

/// What an erasure has done so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ErasureCounts {
    /// Audit records about the user that were examined.
    pub audit_records: u64,
    /// Of those, how many were redacted (the rest were sealed before redaction was possible).
    pub audit_redacted: u64,
    /// Whether the account's rows were deleted (`false` when it was already gone).
    pub account_deleted: bool,
    /// How many data keys of the user were destroyed.
    pub keys_destroyed: u64,
}

/// A request's progress, recorded after each step and each page of redaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErasureProgress {
    /// The step to do next.
    pub step: ErasureStep,
    /// The last audit record examined.
    pub audit_cursor: i64,
    /// What was done.
    pub counts: ErasureCounts,
}

impl ErasureProgress {
    /// Nothing done yet.
    pub const START: Self = Self {
        step: ErasureStep::Sessions,
        audit_cursor: 0,
        counts: ErasureCounts { audit_records: 0, audit_redacted: 0, account_deleted: false, keys_destroyed: 0 },
    };
}

/// One erasure request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErasureRequest {
    /// Its id.
    pub id: uuid::Uuid,
    /// Whose data (`None` once completed: the request forgets them).
    pub user_id: Option<UserId>,
    /// What replaces the user's identifiers in the audit chain (`erased:<random>`).
    pub pseudonym: String,
    /// Who asked (`None` once forgotten: the user themselves after their erasure, or a requester
    /// who was erased since).
    pub requested_by: Option<UserId>,
    /// Why.
    pub reason: ErasureReason,
    /// Where it is.
    pub state: ErasureState,
    /// What was done.
    pub progress: ErasureProgress,
    /// When it was asked for.
    pub requested_at: OffsetDateTime,
    /// When it is carried out.
    pub due_at: OffsetDateTime,
    /// When it ended (completed, cancelled or refused).
    pub finished_at: Option<OffsetDateTime>,
    /// How it ended, in words.
    pub outcome: Option<String>,
}

impl ErasureRequest {
    /// The request as the API and exports show it.
    pub fn to_json(&self) -> serde_json::Value {
        let at = |v: Option<OffsetDateTime>| v.map(super::rfc3339);
        json!({
            "request_id": self.id.to_string(),
            "user_id": self.user_id.map(|u| u.to_string()),
            "requested_by": self.requested_by.map(|u| u.to_string()),
            "reason": self.reason.as_str(),
            "state": self.state.as_str(),
            "step": self.progress.step.as_str(),
            "counts": self.progress.counts,
            "requested_at": super::rfc3339(self.requested_at),
            "deletion_date": super::rfc3339(self.due_at),
            "finished_at": at(self.finished_at),
            "outcome": self.outcome,
        })
    }
}

/// A fresh pseudonym: `erased:` and 128 random bits (a v4 UUID's), tied to nothing.
fn pseudonym() -> String {
    format!("{PSEUDONYM_PREFIX}{}", uuid::Uuid::new_v4().simple())
}

impl ComplianceService {
    /// Schedules the erasure of `user` (the caller when `None`) after the deletion delay. The
    /// caller's own with the `user` scope, anyone's with `admin` or `compliance:admin`. An open
    /// request of that user is returned as it is. Refused (`Conflict`) for the last administrator.
    pub async fn request_erasure(
        &self,
        principal: &Principal,
        user: Option<UserId>,
        meta: &RequestMeta,
    ) -> Result<ErasureRequest, ComplianceError> {
        let (user, reason) = match user {
            Some(user) if user != principal.user_id => {
                if !may_act_for_all(principal) {
                    return Err(AuthError::InsufficientScope(super::SCOPE_ADMIN_COMPLIANCE).into());
                }
                (user, ErasureReason::Administrator)
            }
            _ => {
                principal.require_scope(SCOPE_USER)?;
                (principal.user_id, ErasureReason::UserRequest)
            }
        };
        if self.store.user_by_id(user).await?.is_none() {
            return Err(ComplianceError::NotFound("no such user"));
        }
        if self.is_last_admin(user).await? {
            return Err(last_administrator());
        }
        self.schedule_erasure_for(user, principal, reason, meta).await
    }

    /// Whether `user` is an administrator and the only one.
    pub(super) async fn is_last_admin(&self, user: UserId) -> Result<bool, ComplianceError> {
        let admin = self.store.user_by_id(user).await?.is_some_and(|u| u.admin);
        Ok(admin && self.store.count_admins().await? <= 1)
    }

    /// Schedules the erasure of `user` for `reason`, or returns the open request they have.
    pub(super) async fn schedule_erasure_for(
        &self,
        user: UserId,
        principal: &Principal,
        reason: ErasureReason,
        meta: &RequestMeta,
    ) -> Result<ErasureRequest, ComplianceError> {
        if let Some(open) = self.store.open_erasure_request(user).await? {
            return Ok(open);
        }
        let now = self.clock.now();
        let request = ErasureRequest {
            id: uuid::Uuid::now_v7(),
            user_id: Some(user),
            pseudonym: pseudonym(),
            requested_by: Some(principal.user_id),
            reason,
            state: ErasureState::Scheduled,
            progress: ErasureProgress::START,
            requested_at: now,
            due_at: now + self.settings.deletion_delay,
            finished_at: None,
            outcome: None,
        };
        if !self.store.insert_erasure_request(&request).await? {
            // Another request was scheduled meanwhile: that one stands.
            return self.store.open_erasure_request(user).await?.ok_or_else(|| {
                ComplianceError::Conflict("the erasure request changed concurrently; try again".into())
            });
        }
        self.audit
            .append(
                AuditEvent::new(AuditKind::ErasureRequested, Outcome::Success)
                    .actor(principal.actor())
                    .subject(user.to_string())
                    .request(meta.clone())
                    .detail("request_id", request.id.to_string())
                    .detail("reason", reason.as_str())
                    .detail("due_at", super::rfc3339(request.due_at)),
            )
            .await?;
        Ok(request)
    }

    /// Cancels a scheduled erasure: the caller's own, or anyone's with `admin` or
    /// `compliance:admin`. `Conflict` once it runs or has ended.
    pub async fn cancel_erasure(
        &self,
        principal: &Principal,
        id: uuid::Uuid,
        meta: &RequestMeta,
    ) -> Result<ErasureRequest, ComplianceError> {
        let request = self.readable_request(principal, id).await?;
        if request.user_id != Some(principal.user_id) && !may_act_for_all(principal) {
            return Err(AuthError::InsufficientScope(super::SCOPE_ADMIN_COMPLIANCE).into());
        }
        let now = self.clock.now();
        if !self.store.cancel_erasure_request(id, now).await? {
            return Err(ComplianceError::Conflict(format!(
                "this erasure is {} and can no longer be cancelled",
                self.store.erasure_request(id).await?.map_or("gone", |r| r.state.as_str())
            )));
        }
        self.audit
            .append(
                AuditEvent::new(AuditKind::ErasureCancelled, Outcome::Success)
                    .actor(principal.actor())
                    .subject(request.user_id.map(|u| u.to_string()).unwrap_or_default())
                    .request(meta.clone())
                    .detail("request_id", id.to_string()),
            )
            .await?;
        self.store.erasure_request(id).await?.ok_or(ComplianceError::NotFound("no such erasure request"))
    }

    /// One request: the caller's own, or any with `admin`, `compliance:read` or `compliance:admin`.
    pub async fn erasure_request(
        &self,
        principal: &Principal,
        id: uuid::Uuid,
    ) -> Result<ErasureRequest, ComplianceError> {
        self.readable_request(principal, id).await
    }

    /// Requests newest first: the caller's own, or `user`'s (everyone's with `all`) for a caller
    /// who may read everyone's.
    pub async fn erasure_requests(
        &self,
        principal: &Principal,
        user: Option<UserId>,
        all: bool,
    ) -> Result<Vec<ErasureRequest>, ComplianceError> {
        if all {
            super::require_reader(principal)?;
            return Ok(self.store.erasure_requests(None, 200).await?);
        }
        let user = self.subject_for_reading(principal, user)?;
        Ok(self.store.erasure_requests(Some(user), 200).await?)
    }

    async fn readable_request(&self, principal: &Principal, id: uuid::Uuid) -> Result<ErasureRequest, ComplianceError> {
        let request =
            self.store.erasure_request(id).await?.ok_or(ComplianceError::NotFound("no such erasure request"))?;
        if request.user_id == Some(principal.user_id) && principal.has_scope(SCOPE_USER) {
            return Ok(request);
        }
        if super::may_read_all(principal) {
            return Ok(request);
        }
        // Someone else's request is as absent as a missing one.
        Err(ComplianceError::NotFound("no such erasure request"))
    }

    /// Carries out every due request this instance can claim, as `owner`; returns how many it
    /// finished (completed or refused).
    pub async fn run_due_erasures(&self, owner: &str) -> Result<u32, ComplianceError> {
        let now = self.clock.now();
        let mut finished = 0;
        for request in self.store.due_erasure_requests(now, 16).await? {
            if !self.store.claim_erasure_request(request.id, owner, now + LEASE, now).await? {
                continue;
            }
            if self.carry_out(request, owner).await? {
                finished += 1;
            }
        }
        Ok(finished)
    }

    /// Works a claimed request through its remaining steps. `false` when the lease was lost on the
    /// way (another instance goes on from the recorded progress).
    async fn carry_out(&self, request: ErasureRequest, owner: &str) -> Result<bool, ComplianceError> {
        let Some(user) = request.user_id else { return Ok(false) };
        tracing::info!(request = %request.id, step = request.progress.step.as_str(), "erasure started");
        let meta = RequestMeta::default();
        let mut progress = request.progress;
        let account = self.store.user_by_id(user).await?;
        let mut who = vec![user.to_string()];
        if let Some(account) = &account {
            who.push(account.username.to_string());
        }
        if progress.step == ErasureStep::Sessions {
            if let Some(account) = &account
                && account.admin
                && self.store.count_admins().await? <= 1
            {
                let reason = last_administrator().to_string();
                let done = self
                    .store
                    .finish_erasure_request(
                        request.id,
                        owner,
                        ErasureState::Refused,
                        &progress,
                        &reason,
                        self.clock.now(),
                    )
                    .await?;
                self.audit
                    .append(
                        AuditEvent::new(AuditKind::ErasureRefused, Outcome::Failure)
                            .actor(ERASURE_ACTOR)
                            .subject(user.to_string())
                            .detail("request_id", request.id.to_string())
                            .detail("reason", reason),
                    )
                    .await?;
                return Ok(done);
            }
            if account.is_some() {
                match self.auth.set_locked(user, true, ERASURE_ACTOR, &meta).await {
                    Ok(()) | Err(AuthError::NotFound) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            progress.step = ErasureStep::Audit;
            if !self.advance(request.id, owner, &progress).await? {
                return Ok(false);
            }
        }
        if progress.step == ErasureStep::Audit {
            if !self.redact_all(request.id, owner, &who, &request.pseudonym, &mut progress).await? {
                return Ok(false);
            }
            progress.step = ErasureStep::Account;
            if !self.advance(request.id, owner, &progress).await? {
                return Ok(false);
            }
        }
        if progress.step == ErasureStep::Account {
            let mut next = progress;
            next.step = ErasureStep::Keys;
            next.counts.account_deleted = account.is_some();
            if !self.store.erase_account(request.id, owner, &who, &request.pseudonym, &next).await? {
                return Ok(false);
            }
            progress = next;
        }
        if progress.step == ErasureStep::Keys {
            if !self.redact_all(request.id, owner, &who, &request.pseudonym, &mut progress).await? {
                return Ok(false);
            }
            progress.counts.keys_destroyed += self.crypto.shred_owner(&user.to_string()).await?;
            progress.step = ErasureStep::Done;
        }
        let now = self.clock.now();
        if !self
            .store
            .finish_erasure_request(request.id, owner, ErasureState::Completed, &progress, "erased", now)
            .await?
        {
            return Ok(false);
        }
        self.audit
            .append(
                AuditEvent::new(AuditKind::ErasureCompleted, Outcome::Success)
                    .actor(ERASURE_ACTOR)
                    .subject(request.pseudonym.clone())
                    .details(super::facts(json!({
                        "request_id": request.id.to_string(),
                        "audit_records": progress.counts.audit_records,
                        "audit_redacted": progress.counts.audit_redacted,
                        "account_deleted": progress.counts.account_deleted,
                        "keys_destroyed": progress.counts.keys_destroyed,
                    }))),
            )
            .await?;
        tracing::info!(request = %request.id, redacted = progress.counts.audit_redacted, "erasure completed");
        Ok(true)
    }

    /// Redacts the records about `who` after the cursor, page by page, recording the cursor after
    /// each page. `false` when the lease was lost.
    async fn redact_all(
        &self,
        id: uuid::Uuid,
        owner: &str,
        who: &[String],
        pseudonym: &str,
        progress: &mut ErasureProgress,
    ) -> Result<bool, ComplianceError> {
        loop {
            let page = self
                .store
                .redact_audit_records(who, pseudonym, progress.audit_cursor, REDACTION_PAGE, self.clock.now())
                .await?;
            let Some(last) = page.last_seq else { return Ok(true) };
            progress.audit_cursor = last;
            progress.counts.audit_records += page.examined;
            progress.counts.audit_redacted += page.redacted;
            if !self.advance(id, owner, progress).await? {
                return Ok(false);
            }
        }
    }

    async fn advance(&self, id: uuid::Uuid, owner: &str, progress: &ErasureProgress) -> Result<bool, ComplianceError> {
        let until = self.clock.now() + LEASE;
        Ok(self.store.advance_erasure_request(id, owner, progress, until).await?)
    }
}

fn last_administrator() -> ComplianceError {
    ComplianceError::Conflict(
        "this user is the last administrator: erasing them would leave no one to administer Palisade; \
         grant another user the administrator role first"
            .into(),
    )
}

/// Carries out due erasures every few seconds, for as long as the service lives. Every instance
/// runs one; the claim on each request lets one of them carry it out.
pub async fn erase_forever(service: Arc<ComplianceService>) {
    let owner = format!("erasure-{}", uuid::Uuid::new_v4().simple());
    loop {
        match service.run_due_erasures(&owner).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(finished = n, "erasure requests carried out"),
            Err(e) => tracing::warn!(error = %e, "the erasure job failed; it retries"),
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in [ErasureReason::UserRequest, ErasureReason::ConsentWithdrawn, ErasureReason::Administrator] {
            assert_eq!(ErasureReason::parse(r.as_str()), Some(r));
        }
        for s in [
            ErasureState::Scheduled,
            ErasureState::Running,
            ErasureState::Completed,
            ErasureState::Cancelled,
            ErasureState::Refused,
        ] {
            assert_eq!(ErasureState::parse(s.as_str()), Some(s));
        }
        for s in [ErasureStep::Sessions, ErasureStep::Audit, ErasureStep::Account, ErasureStep::Keys, ErasureStep::Done]
        {
            assert_eq!(ErasureStep::parse(s.as_str()), Some(s));
        }
        assert_eq!(ErasureStep::parse("nope"), None);
    }

    #[test]
    fn pseudonyms_are_random_and_prefixed() {
        let (a, b) = (pseudonym(), pseudonym());
        assert!(a.starts_with(PSEUDONYM_PREFIX) && a.len() == PSEUDONYM_PREFIX.len() + 32, "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn counts_are_strict_json() {
        let counts = ErasureCounts { audit_records: 3, audit_redacted: 2, account_deleted: true, keys_destroyed: 1 };
        let text = serde_json::to_string(&counts).unwrap();
        assert_eq!(serde_json::from_str::<ErasureCounts>(&text).unwrap(), counts);
        assert!(serde_json::from_str::<ErasureCounts>(r#"{"surprise":1}"#).is_err());
    }
}
