//! Retention: each kind of data is kept as long as its policy says, then removed by a scheduled
//! job (every instance runs it; every step is idempotent, so two runs at once remove nothing
//! twice). A dry run reports what a run would remove without removing it.
//!
//! | kind | kept | removed |
//! |---|---|---|
//! | audit records | `COMPLIANCE_AUDIT_RETENTION_DAYS` (2555) | the oldest prefix, archived behind a sealed checkpoint ([`crate::audit::AuditLog::archive_through`]) |
//! | login history | 365 days | risk records of logins |
//! | incidents | 730 days after their last change | resolved ones only, with their actions |
//! | alert deliveries | 90 days | finished ones only (sent, suppressed, dead) |

use std::sync::Arc;

use serde_json::json;
use time::OffsetDateTime;

use super::service::ComplianceService;
use super::{ComplianceError, may_act_for_all};
use crate::audit::{AuditEvent, AuditKind, Outcome, RequestMeta};
use crate::auth::{AuthError, Principal};

/// Rows of one kind removed per statement.
const BATCH: u32 = 5000;
/// How often each instance applies the policy.
const EVERY: std::time::Duration = std::time::Duration::from_secs(6 * 3600);
/// How long after start the first run waits (not during a deployment's first minutes).
const FIRST_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

/// The instants before which each kind is removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionCutoffs {
    /// Audit records before this are archived.
    pub audit: OffsetDateTime,
    /// Login history before this goes.
    pub login_history: OffsetDateTime,
    /// Resolved incidents last changed before this go.
    pub incidents: OffsetDateTime,
    /// Finished alert deliveries created before this go.
    pub alert_deliveries: OffsetDateTime,
}

/// How many rows of each kind (to remove, or removed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetentionCounts {
    /// Login history.
    pub login_history: u64,
    /// Resolved incidents.
    pub incidents: u64,
    /// Finished alert deliveries.
    pub alert_deliveries: u64,
}

/// What a run did (or, dry, would do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionReport {
    /// When it ran.
    pub at: OffsetDateTime,
    /// Whether nothing was removed (a preview).
    pub dry_run: bool,
    /// The cutoffs the policy gave.
    pub cutoffs: RetentionCutoffs,
    /// Rows of each kind past their cutoff (dry) or removed.
    pub counts: RetentionCounts,
    /// Audit records past retention (dry) or archived.
    pub audit_records: u64,
    /// The newest checkpoint after the run (its `seq`), if a prefix was ever archived.
    pub audit_checkpoint: Option<i64>,
}

impl ComplianceService {
    /// The cutoffs of the policy at `now`.
    pub fn retention_cutoffs(&self, now: OffsetDateTime) -> RetentionCutoffs {
        let policy = &self.settings.retention;
        RetentionCutoffs {
            audit: now - policy.audit,
            login_history: now - policy.login_history,
            incidents: now - policy.incidents,
            alert_deliveries: now - policy.alert_deliveries,
        }
    }

    /// Previews (`dry_run`) or applies the retention policy now. Previewing needs `admin`,
    /// `compliance:read` or `compliance:admin`; applying `admin` or `compliance:admin`. An applied
    /// run is audited as `compliance.retention`, with what it removed.
    pub async fn retention(
        &self,
        principal: &Principal,
        dry_run: bool,
        meta: &RequestMeta,
    ) -> Result<RetentionReport, ComplianceError> {
        if dry_run {
            super::require_reader(principal)?;
        } else if !may_act_for_all(principal) {
            return Err(AuthError::InsufficientScope(super::SCOPE_ADMIN_COMPLIANCE).into());
        }
        self.apply_retention(&principal.actor(), dry_run, meta).await
    }

    /// Applies (or previews) the policy as `actor`.
    pub async fn apply_retention(
        &self,
        actor: &str,
        dry_run: bool,
        meta: &RequestMeta,
    ) -> Result<RetentionReport, ComplianceError> {
        let now = self.clock.now();
        let cutoffs = self.retention_cutoffs(now);
        let previous = self.store.audit_checkpoint().await?.map(|c| c.seq);
        let archivable = self.store.audit_prefix_before(cutoffs.audit).await?;
        let head = self.store.audit_head().await?.map(|r| r.seq);
        // Never the head: the next append links to it.
        let through = archivable.zip(head).map(|(prefix, head)| prefix.min(head - 1));
        let due_audit =
            |through: Option<i64>| through.map_or(0, |t| u64::try_from(t - previous.unwrap_or(0)).unwrap_or(0));
        if dry_run {
            return Ok(RetentionReport {
                at: now,
                dry_run,
                cutoffs,
                counts: self.store.retention_counts(&cutoffs).await?,
                audit_records: due_audit(through),
                audit_checkpoint: previous,
            });
        }
        let mut removed = RetentionCounts::default();
        loop {
            let batch = self.store.apply_retention(&cutoffs, BATCH).await?;
            removed.login_history += batch.login_history;
            removed.incidents += batch.incidents;
            removed.alert_deliveries += batch.alert_deliveries;
            if batch.login_history < u64::from(BATCH)
                && batch.incidents < u64::from(BATCH)
                && batch.alert_deliveries < u64::from(BATCH)
            {
                break;
            }
        }
        let archived = match through {
            Some(through) => self.audit.archive_through(through).await?,
            None => None,
        };
        let report = RetentionReport {
            at: now,
            dry_run,
            cutoffs,
            counts: removed,
            audit_records: archived.as_ref().map_or(0, |c| c.archived),
            audit_checkpoint: archived.map(|c| c.seq).or(previous),
        };
        self.audit
            .append(
                AuditEvent::new(AuditKind::RetentionApplied, Outcome::Success)
                    .actor(actor)
                    .request(meta.clone())
                    .details(super::facts(json!({
                        "login_history": report.counts.login_history,
                        "incidents": report.counts.incidents,
                        "alert_deliveries": report.counts.alert_deliveries,
                        "audit_records_archived": report.audit_records,
                        "audit_checkpoint": report.audit_checkpoint,
                    }))),
            )
            .await?;
        Ok(report)
    }
}

/// Applies the retention policy every six hours (the first time ten minutes after start), for as
/// long as the service lives.
pub async fn retain_forever(service: Arc<ComplianceService>) {
    tokio::time::sleep(FIRST_AFTER).await;
    loop {
        match service.apply_retention("system:retention", false, &RequestMeta::default()).await {
            Ok(report) => tracing::info!(
                login_history = report.counts.login_history,
                incidents = report.counts.incidents,
                alert_deliveries = report.counts.alert_deliveries,
                audit_records = report.audit_records,
                "retention applied"
            ),
            Err(e) => tracing::warn!(error = %e, "the retention job failed; it runs again later"),
        }
        tokio::time::sleep(EVERY).await;
    }
}
