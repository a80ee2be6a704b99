//! Security monitoring: the event model ([`EventType`]), applications' reports of security events
//! (the original guide's `process_security_event`) and the query over every event.
//!
//! # Layout
//! - `event.rs`: the documented event types and the audit kinds that hold them.
//! - this file: [`Monitoring`], which records reports into the audit chain and searches it.
//!
//! Events are stored once, in the audit chain: Palisade's own as it audits them, reports under
//! `event.<type>` kinds with the reporting key as actor. Nothing here may write outside the chain.

pub mod alert;
pub mod dashboard;
pub mod detect;
mod event;
mod incident;
pub mod respond;
pub mod watch;

pub use event::{EVENT_TYPES, EventType, EventTypeSpec};
pub use incident::{Incident, IncidentFilter, IncidentRaise, IncidentState, MAX_ATTACHED_EVENTS, Severity};
pub use respond::{IncidentAction, ResponseKind, ResponseRule, ResponseRules};

use std::sync::Arc;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::audit::{AuditError, AuditEvent, AuditFilter, AuditKind, AuditLog, AuditRecord, Outcome, RequestMeta};
use crate::auth::{AuthError, Principal, SCOPE_ADMIN};
use crate::store::{AuditStore, IncidentStore, StoreError};

/// The scope that lets a caller report events.
pub const SCOPE_WRITE: &str = "monitoring:write";
/// The scope that lets a caller read every event (as `admin` does).
pub const SCOPE_READ: &str = "monitoring:read";
/// The largest `details` object accepted, serialized, in bytes.
pub const MAX_DETAILS: usize = 16 * 1024;
/// The longest text field (user id, source, user agent), in bytes.
const MAX_TEXT: usize = 512;
/// The most events one page returns.
pub const MAX_PAGE: u32 = 500;

/// How monitoring runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitoringSettings {
    /// Whether the detectors watch the audit chain. Off, nothing is examined and no incident is
    /// raised; reports are still stored and every query still answers.
    pub detectors: bool,
    /// The detectors' thresholds.
    pub thresholds: detect::Thresholds,
    /// What is done automatically when an incident opens ([`ResponseRules::none`]: nothing).
    pub responses: ResponseRules,
    /// Incidents at least this severe are sent to the administrators' channel.
    pub alert_threshold: Severity,
    /// The administrators' e-mail addresses.
    pub alert_emails: Vec<crate::user::Email>,
    /// Alerts per recipient per hour, at most (0: no limit).
    pub alerts_per_hour: u32,
}

impl Default for MonitoringSettings {
    fn default() -> Self {
        Self {
            detectors: true,
            thresholds: detect::Thresholds::default(),
            responses: ResponseRules::defaults(),
            alert_threshold: Severity::Medium,
            alert_emails: Vec::new(),
            alerts_per_hour: 20,
        }
    }
}

/// Why a monitoring call failed.
#[derive(Debug, thiserror::Error)]
pub enum MonitoringError {
    /// The caller may not do this.
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A field is wrong; `message` says how.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// `details` is larger than [`MAX_DETAILS`].
    #[error("details are {size} bytes; at most {max} are accepted")]
    TooLarge {
        /// Its size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The audit chain could not take the event.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// No such incident.
    #[error("no such incident")]
    NotFound,
    /// The incident is not in a state that allows this.
    #[error("{0}")]
    Conflict(String),
    /// The detectors' queue is full: the report was not stored; send it again shortly.
    #[error("the detectors are behind; the event was not recorded, send it again in a second")]
    Overloaded,
}

fn require_reader(principal: &Principal) -> Result<(), MonitoringError> {
    if principal.has_scope(SCOPE_ADMIN) || principal.has_scope(SCOPE_READ) {
        Ok(())
    } else {
        Err(AuthError::InsufficientScope(SCOPE_READ).into())
    }
}

fn invalid(field: &'static str, message: impl Into<String>) -> MonitoringError {
    MonitoringError::Invalid { field, message: message.into() }
}

/// A security event as an application reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportedEvent {
    /// What happened.
    pub event_type: EventType,
    /// The user it concerns, as the application names them.
    pub user_id: Option<String>,
    /// The address of the client it concerns (not the reporter's).
    pub ip_address: Option<std::net::IpAddr>,
    /// The user agent of the client it concerns.
    pub user_agent: Option<String>,
    /// Anything else, as a JSON object of at most [`MAX_DETAILS`] bytes.
    pub details: Map<String, Value>,
    /// Which part of the application saw it (`web_application`).
    pub source: String,
}

/// One security event, read back.
#[derive(Debug, Clone, PartialEq)]
pub struct SecurityEvent {
    /// Its position in the audit chain: the cursor of the next page.
    pub seq: i64,
    /// Its id.
    pub id: uuid::Uuid,
    /// When it was recorded.
    pub at: OffsetDateTime,
    /// Its type, when the record is one of the documented types.
    pub event_type: Option<EventType>,
    /// The audit kind it is stored under.
    pub kind: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// Whether an application reported it (rather than Palisade seeing it).
    pub reported: bool,
    /// Who acted, or reported it.
    pub actor: Option<String>,
    /// Whom it concerns.
    pub user_id: Option<String>,
    /// The client's address.
    pub ip_address: Option<String>,
    /// The client's user agent.
    pub user_agent: Option<String>,
    /// The details (for a report, with its `source`).
    pub details: Value,
}

impl SecurityEvent {
    fn from_record(record: AuditRecord) -> Self {
        let event_type = EventType::of_kind(&record.kind);
        let reported = record.kind.starts_with("event.");
        Self {
            seq: record.seq,
            id: record.id,
            at: record.at,
            event_type,
            reported,
            outcome: record.outcome,
            actor: record.actor,
            user_id: record.subject,
            ip_address: record.ip,
            user_agent: record.user_agent,
            details: serde_json::from_str(&record.details).unwrap_or(Value::Null),
            kind: record.kind,
        }
    }
}

/// Which events to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Only events concerning this user.
    pub user_id: Option<String>,
    /// Only events of this type (Palisade's own and applications' reports).
    pub event_type: Option<EventType>,
    /// Only events at or after this instant.
    pub since: Option<OffsetDateTime>,
    /// Only events before this instant.
    pub until: Option<OffsetDateTime>,
    /// The cursor: only events older than the one with this sequence number.
    pub before: Option<i64>,
    /// At most this many (1 to [`MAX_PAGE`]).
    pub limit: u32,
}

/// One page of events, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    /// The events.
    pub events: Vec<SecurityEvent>,
    /// The cursor of the next (older) page, when there may be one.
    pub next: Option<i64>,
}

/// Records applications' security events, reads every event back, and keeps the incidents.
pub struct Monitoring {
    audit: Arc<AuditLog>,
    store: Arc<dyn AuditStore>,
    incidents: Arc<dyn IncidentStore>,
    clock: Arc<dyn crate::clock::Clock>,
    responder: Arc<respond::Responder>,
    alerter: Arc<alert::Alerter>,
    feed: Option<Arc<watch::Feed>>,
}

impl Monitoring {
    /// The service over the audit chain and the incident store.
    pub fn new(
        audit: Arc<AuditLog>,
        store: Arc<dyn AuditStore>,
        incidents: Arc<dyn IncidentStore>,
        clock: Arc<dyn crate::clock::Clock>,
        responder: Arc<respond::Responder>,
        alerter: Arc<alert::Alerter>,
    ) -> Self {
        Self { audit, store, incidents, clock, responder, alerter, feed: None }
    }

    /// The caller's alert preferences (the defaults until they set theirs).
    ///
    /// **Scope** any signed-in user, for themselves.
    pub async fn alert_preferences(&self, principal: &Principal) -> Result<alert::AlertPreferences, MonitoringError> {
        self.alerter.preferences(principal.user_id).await
    }

    /// Replaces the caller's alert preferences.
    ///
    /// **Scope** any signed-in user, for themselves.
    pub async fn set_alert_preferences(
        &self,
        principal: &Principal,
        preferences: &alert::AlertPreferences,
    ) -> Result<(), MonitoringError> {
        self.alerter.set_preferences(principal.user_id, preferences).await
    }

    /// Sends a test alert (type `test`, LOW) to the caller's chosen channels and, for an
    /// administrator, to the administrators' channel. Returns the deliveries written.
    ///
    /// **Scope** any signed-in user.
    pub async fn test_alert(&self, principal: &Principal) -> Result<Vec<alert::Delivery>, MonitoringError> {
        let alert = alert::Alert {
            alert_type: alert::AlertType::Test,
            severity: Severity::Low,
            title: "Palisade test alert".into(),
            message: "This is a test of your security alerts: nothing happened.".into(),
            user: Some(principal.user_id),
            incident: None,
            to_admins: principal.has_scope(SCOPE_ADMIN),
        };
        self.alerter.raise(&alert).await
    }

    /// Alert deliveries (the dead letters with `state = dead`), newest first.
    ///
    /// **Scope** `admin`.
    pub async fn deliveries(
        &self,
        principal: &Principal,
        state: Option<alert::DeliveryState>,
        before: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Vec<alert::Delivery>, MonitoringError> {
        principal.require_scope(SCOPE_ADMIN)?;
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(invalid("limit", format!("from 1 to {MAX_PAGE}")));
        }
        Ok(self.alerter.deliveries(state, before, limit).await?)
    }

    /// Sends a dead delivery again: pending, due now, its attempts reset.
    ///
    /// **Scope** `admin`.
    pub async fn retry_delivery(
        &self,
        principal: &Principal,
        id: uuid::Uuid,
    ) -> Result<alert::Delivery, MonitoringError> {
        principal.require_scope(SCOPE_ADMIN)?;
        self.alerter.retry(id).await?.ok_or_else(|| {
            MonitoringError::Conflict(format!("delivery {id} is not a dead letter (absent, pending or sent)"))
        })
    }

    /// The addresses blocked by automatic responses, for the check on every request.
    pub fn blocks(&self) -> &Arc<respond::IpBlocks> {
        self.responder.blocks()
    }

    /// One incident and the actions taken for it.
    ///
    /// **Scope** `admin` or `monitoring:read`.
    pub async fn incident(
        &self,
        principal: &Principal,
        id: uuid::Uuid,
    ) -> Result<(Incident, Vec<IncidentAction>), MonitoringError> {
        require_reader(principal)?;
        let incident = self.incidents.incident(id).await?.ok_or(MonitoringError::NotFound)?;
        let actions = self.incidents.incident_actions(id).await?;
        Ok((incident, actions))
    }

    /// The dashboard over the last `range` (5 minutes to 31 days): three grouped queries over the
    /// audit chain and the incidents, plus the unresolved incidents now.
    ///
    /// **Scope** `admin` or `monitoring:read`.
    pub async fn dashboard(
        &self,
        principal: &Principal,
        range: time::Duration,
    ) -> Result<dashboard::DashboardData, MonitoringError> {
        require_reader(principal)?;
        if !(dashboard::MIN_RANGE..=dashboard::MAX_RANGE).contains(&range) {
            return Err(invalid("range", "from 300 to 2678400 seconds (5 minutes to 31 days)"));
        }
        let until = self.clock.now();
        let since = until - range;
        let bucket = dashboard::bucket_for(range);
        let records = self.store.audit_counts(since, until, bucket).await?;
        let suspicious = dashboard::suspicious_kinds();
        let addresses = self.store.audit_top_addresses(since, until, &suspicious, dashboard::TOP_ADDRESSES).await?;
        let incidents = self.incidents.incident_counts(since, until, bucket).await?;
        let unresolved = self.incidents.unresolved_incidents().await?;
        Ok(dashboard::compute(since, until, &records, &incidents, &unresolved, addresses))
    }

    /// Reverts an automatic response: unblocks the address, unlocks the account or restores the API
    /// key (ended sessions cannot be reverted: 409). Audited as `incident.response_reverted`.
    ///
    /// **Scope** `admin`.
    pub async fn revert_action(
        &self,
        principal: &Principal,
        incident: uuid::Uuid,
        action: uuid::Uuid,
        meta: &RequestMeta,
    ) -> Result<IncidentAction, MonitoringError> {
        principal.require_scope(SCOPE_ADMIN)?;
        self.responder.revert(incident, action, &principal.actor(), meta).await
    }

    /// Refuses reports (with [`MonitoringError::Overloaded`]) while `feed`, the detectors' queue, is
    /// full, rather than storing events nobody examines. Palisade's own events are never refused.
    #[must_use]
    pub fn with_backpressure(mut self, feed: Arc<watch::Feed>) -> Self {
        self.feed = Some(feed);
        self
    }

    /// Incidents matching `filter`, newest first.
    ///
    /// **Scope** `admin` or `monitoring:read`.
    pub async fn incidents(
        &self,
        principal: &Principal,
        filter: &IncidentFilter,
    ) -> Result<Vec<Incident>, MonitoringError> {
        require_reader(principal)?;
        if !(1..=MAX_PAGE).contains(&filter.limit) {
            return Err(invalid("limit", format!("from 1 to {MAX_PAGE}")));
        }
        Ok(self.incidents.incidents(filter).await?)
    }

    /// Moves an incident along its lifecycle (open → acknowledged → resolved, or open → resolved).
    /// Audited as `incident.updated`.
    ///
    /// **Scope** `admin`.
    pub async fn set_incident_state(
        &self,
        principal: &Principal,
        id: uuid::Uuid,
        to: IncidentState,
        meta: &RequestMeta,
    ) -> Result<Incident, MonitoringError> {
        principal.require_scope(SCOPE_ADMIN)?;
        let current = self.incidents.incident(id).await?.ok_or(MonitoringError::NotFound)?;
        if !current.state.may_become(to) {
            return Err(MonitoringError::Conflict(format!(
                "incident {id} is {} and cannot become {}",
                current.state.as_str(),
                to.as_str()
            )));
        }
        let by = principal.actor();
        let updated = self
            .incidents
            .set_incident_state(id, current.state, to, &by, self.clock.now())
            .await?
            .ok_or_else(|| MonitoringError::Conflict(format!("incident {id} changed meanwhile; read it again")))?;
        let event = AuditEvent::new(AuditKind::IncidentUpdated, Outcome::Success)
            .actor(by)
            .subject(updated.subject.clone())
            .request(meta.clone())
            .detail("incident", id.to_string())
            .detail("from", current.state.as_str())
            .detail("to", to.as_str());
        self.audit.append(event).await?;
        Ok(updated)
    }

    /// Records a reported event into the audit chain (the original guide's
    /// `process_security_event`) and returns it as stored.
    ///
    /// **Scope** `monitoring:write`. The reporting key is the record's actor; the request's own
    /// address and request id are kept in the details as `reporter_ip` and `request_id`.
    pub async fn report(
        &self,
        principal: &Principal,
        event: ReportedEvent,
        reporter: &RequestMeta,
    ) -> Result<SecurityEvent, MonitoringError> {
        principal.require_scope(SCOPE_WRITE)?;
        check_text("user_id", event.user_id.as_deref())?;
        check_text("user_agent", event.user_agent.as_deref())?;
        let source = event.source.trim();
        if source.is_empty() {
            return Err(invalid("source", "names what saw the event, e.g. `web_application`"));
        }
        check_text("source", Some(source))?;
        let size = serde_json::to_vec(&event.details).map(|bytes| bytes.len()).unwrap_or(usize::MAX);
        if size > MAX_DETAILS {
            return Err(MonitoringError::TooLarge { size, max: MAX_DETAILS });
        }
        if let Some(feed) = &self.feed
            && !feed.has_room()
        {
            feed.refused();
            return Err(MonitoringError::Overloaded);
        }
        let mut details = event.details;
        details.insert("source".into(), source.into());
        if let Some(ip) = &reporter.ip {
            details.insert("reporter_ip".into(), ip.clone().into());
        }
        let client = RequestMeta {
            ip: event.ip_address.map(|ip| ip.to_string()),
            user_agent: event.user_agent,
            request_id: reporter.request_id.clone(),
            accept_language: None,
        };
        let mut audited = AuditEvent::new(AuditKind::Reported(event.event_type), Outcome::Success)
            .actor(principal.actor())
            .request(client)
            .details(details);
        if let Some(user) = event.user_id {
            audited = audited.subject(user);
        }
        let record = self.audit.append(audited).await?;
        Ok(SecurityEvent::from_record(record))
    }

    /// Events matching `query`, newest first.
    ///
    /// **Scope** `admin` or `monitoring:read`.
    pub async fn events(&self, principal: &Principal, query: &EventQuery) -> Result<EventPage, MonitoringError> {
        require_reader(principal)?;
        if !(1..=MAX_PAGE).contains(&query.limit) {
            return Err(invalid("limit", format!("from 1 to {MAX_PAGE}")));
        }
        if let (Some(since), Some(until)) = (query.since, query.until)
            && since >= until
        {
            return Err(invalid("until", "must be after since"));
        }
        check_text("user_id", query.user_id.as_deref())?;
        let kinds = match query.event_type.map(EventType::kinds) {
            None => Vec::new(),
            Some((native, reported)) => native.into_iter().chain([reported]).map(str::to_owned).collect(),
        };
        let filter = AuditFilter {
            subject: query.user_id.clone(),
            kinds,
            since: query.since,
            until: query.until,
            before: query.before,
            limit: query.limit,
        };
        let records = self.store.audit_search(&filter).await?;
        let full = records.len() == query.limit as usize;
        let events: Vec<SecurityEvent> = records.into_iter().map(SecurityEvent::from_record).collect();
        let next = if full { events.last().map(|e| e.seq) } else { None };
        Ok(EventPage { events, next })
    }
}

fn check_text(field: &'static str, text: Option<&str>) -> Result<(), MonitoringError> {
    match text {
        Some(text) if text.is_empty() || text.len() > MAX_TEXT => {
            Err(invalid(field, format!("1 to {MAX_TEXT} bytes when given")))
        }
        Some(text) if text.chars().any(char::is_control) => Err(invalid(field, "control characters are not allowed")),
        _ => Ok(()),
    }
}
