//! Alerts: telling people what the monitoring saw (the original guide's `configure_user_alerts`,
//! `send_security_alert` and the admin channel).
//!
//! An alert is raised for an incident (to the administrators' channel at or above
//! `admin_threshold`, and to the user it is about) and for a user's own security events (a new
//! device, a login refused for its risk, a stolen refresh token, a hijacked session). Each user's
//! [`AlertPreferences`] say which types, from which severity, and on which channels (e-mail, SMS,
//! push). Raising an alert only writes its deliveries to a durable outbox — one row per channel —
//! so a channel that is down never blocks a login or an event's ingestion. Every instance runs a
//! worker ([`deliver_forever`]) that claims due rows (a conditional update: one instance sends
//! each), sends them, and on failure retries with exponential backoff (2 s, 4 s … capped at an
//! hour) up to [`MAX_ATTEMPTS`]; then the row is dead, listed for administrators, who may retry it.
//! Each recipient gets at most `per_recipient_per_hour` alerts; the rest are recorded as
//! suppressed and never sent.
//!
//! Addresses are never written to the outbox: a row names `user:<id>` or `admins`, resolved when
//! it is sent (the user's e-mail address, the phone number of their confirmed SMS factor).
//!
//! Webhook and push bodies are JSON: `{alert_id, alert_type, severity, title, message, user_id,
//! incident_id, created_at}`; the HTTP sender signs each with HMAC-SHA256 (see the server's webhook
//! sender and docs/security.md).

use std::sync::Arc;

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::{Incident, MonitoringError, Severity};
use crate::clock::Clock;
use crate::notify::{EmailSender, SmsSender, WebhookSender};
use crate::store::{DurableStore, HotKey, HotStore, StoreError};
use crate::user::Email;
use crate::user::UserId;

/// Sends of one delivery before it is dead.
pub const MAX_ATTEMPTS: u32 = 6;
/// Deliveries one worker round claims, at most.
const CLAIM: u32 = 20;
/// How long a claim holds a row against other instances.
const LEASE: Duration = Duration::seconds(60);

/// What an alert is about (the guide's `alert_types`, plus the test alert).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AlertType {
    /// A login refused for its risk.
    LoginAnomaly,
    /// A device seen for the first time.
    NewDevice,
    /// A stolen refresh token, a hijacked session.
    SuspiciousActivity,
    /// An incident a detector opened.
    SecurityIncident,
    /// `POST /monitoring/alerts/test`.
    Test,
}

impl AlertType {
    /// The types a user may choose.
    pub const CHOOSABLE: [Self; 4] =
        [Self::LoginAnomaly, Self::NewDevice, Self::SuspiciousActivity, Self::SecurityIncident];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginAnomaly => "login_anomaly",
            Self::NewDevice => "new_device",
            Self::SuspiciousActivity => "suspicious_activity",
            Self::SecurityIncident => "security_incident",
            Self::Test => "test",
        }
    }

    /// Parses a choosable wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::CHOOSABLE.into_iter().find(|t| t.as_str() == s.trim())
    }
}

/// A delivery channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The user's e-mail address, or the administrators' addresses.
    Email,
    /// The phone number of the user's confirmed SMS factor.
    Sms,
    /// The push gateway (a webhook of the documented shape).
    Push,
    /// The administrators' webhook.
    Webhook,
}

impl Channel {
    /// Every channel.
    pub const ALL: [Self; 4] = [Self::Email, Self::Sms, Self::Push, Self::Webhook];

    /// The wire and stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Push => "push",
            Self::Webhook => "webhook",
        }
    }

    /// Parses a name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// What a user wants to be told of, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertPreferences {
    /// By e-mail.
    pub email: bool,
    /// By SMS (to the phone of a confirmed SMS factor).
    pub sms: bool,
    /// By push (through the configured push gateway).
    pub push: bool,
    /// Nothing less severe.
    pub severity_threshold: Severity,
    /// Only these types.
    pub alert_types: Vec<AlertType>,
}

impl Default for AlertPreferences {
    /// The guide's defaults: e-mail and push, not SMS; MEDIUM and above; every type.
    fn default() -> Self {
        Self {
            email: true,
            sms: false,
            push: true,
            severity_threshold: Severity::Medium,
            alert_types: AlertType::CHOOSABLE.to_vec(),
        }
    }
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Waiting to be sent (again).
    Pending,
    /// Accepted by the channel.
    Sent,
    /// Failed [`MAX_ATTEMPTS`] times: a dead letter.
    Dead,
    /// Over its recipient's hourly limit: never sent.
    Suppressed,
}

impl DeliveryState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Dead => "dead",
            Self::Suppressed => "suppressed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Sent, Self::Dead, Self::Suppressed].into_iter().find(|v| v.as_str() == s.trim())
    }
}

/// One alert on one channel, as stored in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Its id.
    pub id: uuid::Uuid,
    /// The alert's id (shared by its channels).
    pub alert_id: uuid::Uuid,
    /// The channel.
    pub channel: Channel,
    /// `user:<id>` or `admins`.
    pub recipient: String,
    /// The alert, as sent (the JSON body of webhooks and pushes).
    pub alert: Value,
    /// Where it is.
    pub state: DeliveryState,
    /// Sends tried.
    pub attempts: u32,
    /// When it is due.
    pub next_attempt_at: OffsetDateTime,
    /// Why the last send failed.
    pub last_error: Option<String>,
    /// When it was written.
    pub created_at: OffsetDateTime,
    /// When the channel accepted it.
    pub sent_at: Option<OffsetDateTime>,
}

/// How a claimed delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Sent at this instant.
    Sent(OffsetDateTime),
    /// Failed; due again at `at`.
    Retry {
        /// When to try again.
        at: OffsetDateTime,
        /// Why it failed.
        error: String,
    },
    /// Failed for the last time.
    Dead(String),
}

/// An alert to raise.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// What it is about.
    pub alert_type: AlertType,
    /// How bad.
    pub severity: Severity,
    /// One line.
    pub title: String,
    /// What happened and what to do.
    pub message: String,
    /// The user it is about (their own channels, when their preferences allow).
    pub user: Option<UserId>,
    /// The incident it is about.
    pub incident: Option<uuid::Uuid>,
    /// Whether the administrators' channel gets it too.
    pub to_admins: bool,
}

/// Where alerts go, besides the users' own addresses.
#[derive(Clone, Default)]
pub struct AlertSettings {
    /// The administrators' webhook (signed), if any.
    pub admin_webhook: Option<Arc<dyn WebhookSender>>,
    /// The administrators' e-mail addresses.
    pub admin_emails: Vec<Email>,
    /// The push gateway (signed), if any.
    pub push: Option<Arc<dyn WebhookSender>>,
    /// Incidents at least this severe go to the administrators.
    pub admin_threshold: Severity,
    /// Alerts per recipient per hour, at most (0: no limit).
    pub per_recipient_per_hour: u32,
}

impl std::fmt::Debug for AlertSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertSettings")
            .field("admin_webhook", &self.admin_webhook.is_some())
            .field("admin_emails", &self.admin_emails.len())
            .field("push", &self.push.is_some())
            .field("admin_threshold", &self.admin_threshold)
            .field("per_recipient_per_hour", &self.per_recipient_per_hour)
            .finish()
    }
}

/// Raises alerts into the outbox and delivers them.
pub struct Alerter {
    store: Arc<dyn DurableStore>,
    hot: Arc<dyn HotStore>,
    mfa: Arc<crate::mfa::MfaService>,
    email: Option<Arc<dyn EmailSender>>,
    sms: Option<Arc<dyn SmsSender>>,
    settings: AlertSettings,
    clock: Arc<dyn Clock>,
    /// This instance, as the owner of its claims.
    instance: String,
}

/// The parts an [`Alerter`] works with.
pub struct AlerterParts {
    /// Preferences, the outbox, users.
    pub store: Arc<dyn DurableStore>,
    /// The per-recipient limit's windows.
    pub hot: Arc<dyn HotStore>,
    /// The phone numbers of confirmed SMS factors.
    pub mfa: Arc<crate::mfa::MfaService>,
    /// E-mail, if configured.
    pub email: Option<Arc<dyn EmailSender>>,
    /// SMS, if configured.
    pub sms: Option<Arc<dyn SmsSender>>,
    /// The admin channel and limits.
    pub settings: AlertSettings,
    /// The time.
    pub clock: Arc<dyn Clock>,
}

impl Alerter {
    /// The alerter over its parts.
    pub fn new(parts: AlerterParts) -> Self {
        let AlerterParts { store, hot, mfa, email, sms, settings, clock } = parts;
        Self { store, hot, mfa, email, sms, settings, clock, instance: uuid::Uuid::new_v4().to_string() }
    }

    /// The channels an alert may use now: those configured.
    fn available(&self, channel: Channel) -> bool {
        match channel {
            Channel::Email => self.email.is_some(),
            Channel::Sms => self.sms.is_some(),
            Channel::Push => self.settings.push.is_some(),
            Channel::Webhook => self.settings.admin_webhook.is_some(),
        }
    }

    /// Whether `user` can receive on `channel` at all: an e-mail address, a confirmed SMS factor
    /// (push needs nothing of theirs). Without, no delivery is written: it could only fail.
    async fn reachable(&self, user: UserId, channel: Channel) -> Result<bool, MonitoringError> {
        Ok(match channel {
            Channel::Email => self.store.user_by_id(user).await?.is_some_and(|u| u.email.is_some()),
            Channel::Sms => self.mfa.sms_number(user).await?.is_some(),
            Channel::Push | Channel::Webhook => true,
        })
    }

    /// A user's preferences (the defaults until they set theirs).
    pub async fn preferences(&self, user: UserId) -> Result<AlertPreferences, MonitoringError> {
        Ok(self.store.alert_preferences(user).await?.unwrap_or_default())
    }

    /// Replaces a user's preferences.
    pub async fn set_preferences(&self, user: UserId, preferences: &AlertPreferences) -> Result<(), MonitoringError> {
        self.store.set_alert_preferences(user, preferences, self.clock.now()).await?;
        Ok(())
    }

    /// Deliveries in `state`, newest first.
    pub async fn deliveries(
        &self,
        state: Option<DeliveryState>,
        before: Option<uuid::Uuid>,
        limit: u32,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.store.deliveries(state, before, limit).await
    }

    /// A dead delivery made pending again, due now.
    pub async fn retry(&self, id: uuid::Uuid) -> Result<Option<Delivery>, StoreError> {
        self.store.retry_delivery(id, self.clock.now()).await
    }

    /// Writes `alert`'s deliveries: the user's chosen channels (when the type and severity pass
    /// their preferences, or always for a test) and, when asked, the administrators' channels.
    /// Returns them (suppressed ones included). Never sends anything itself.
    pub async fn raise(&self, alert: &Alert) -> Result<Vec<Delivery>, MonitoringError> {
        let now = self.clock.now();
        let alert_id = uuid::Uuid::now_v7();
        let body = json!({
            "alert_id": alert_id.to_string(),
            "alert_type": alert.alert_type.as_str(),
            "severity": alert.severity.as_str(),
            "title": alert.title,
            "message": alert.message,
            "user_id": alert.user.map(|u| u.to_string()),
            "incident_id": alert.incident.map(|i| i.to_string()),
            "created_at": now.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        });
        let mut targets: Vec<(Channel, String)> = Vec::new();
        if let Some(user) = alert.user {
            let preferences = self.preferences(user).await?;
            let wanted = alert.alert_type == AlertType::Test
                || (preferences.alert_types.contains(&alert.alert_type)
                    && alert.severity >= preferences.severity_threshold);
            if wanted {
                for (on, channel) in [
                    (preferences.email, Channel::Email),
                    (preferences.sms, Channel::Sms),
                    (preferences.push, Channel::Push),
                ] {
                    if on && self.available(channel) && self.reachable(user, channel).await? {
                        targets.push((channel, format!("user:{user}")));
                    }
                }
            }
        }
        if alert.to_admins {
            if self.settings.admin_webhook.is_some() {
                targets.push((Channel::Webhook, "admins".into()));
            }
            if self.email.is_some() && !self.settings.admin_emails.is_empty() {
                targets.push((Channel::Email, "admins".into()));
            }
        }
        let mut deliveries = Vec::with_capacity(targets.len());
        for (channel, recipient) in targets {
            let state =
                if self.within_limit(&recipient).await? { DeliveryState::Pending } else { DeliveryState::Suppressed };
            if state == DeliveryState::Suppressed {
                metrics::counter!("palisade_alert_deliveries_total", "channel" => channel.as_str(), "outcome" => "suppressed")
                    .increment(1);
            }
            deliveries.push(Delivery {
                id: uuid::Uuid::now_v7(),
                alert_id,
                channel,
                recipient,
                alert: body.clone(),
                state,
                attempts: 0,
                next_attempt_at: now,
                last_error: None,
                created_at: now,
                sent_at: None,
            });
        }
        if !deliveries.is_empty() {
            self.store.enqueue_deliveries(&deliveries).await?;
        }
        Ok(deliveries)
    }

    /// Counts one alert for `recipient` this hour; `false` past the limit.
    async fn within_limit(&self, recipient: &str) -> Result<bool, StoreError> {
        let limit = u64::from(self.settings.per_recipient_per_hour);
        if limit == 0 {
            return Ok(true);
        }
        let count = self.hot.increment(&HotKey::new(&format!("alerts:{recipient}"), "hour"), Duration::HOUR).await?;
        Ok(count.count <= limit)
    }

    /// Raises the alerts an incident that just opened calls for: the administrators' channel at or
    /// above the threshold; the user it is about (`user:<id or username>`), as
    /// `suspicious_activity` for a stolen token or a hijacked session, else `security_incident`.
    pub async fn incident_opened(&self, incident: &Incident) {
        let user = match self.user_of(&incident.subject).await {
            Ok(user) => user,
            Err(e) => {
                tracing::warn!(error = %e, incident = %incident.id, "could not find the incident's user");
                None
            }
        };
        let suspicious = [super::detect::Detector::TokenReuse.name(), super::detect::Detector::SessionHijack.name()];
        let alert = Alert {
            alert_type: if suspicious.contains(&incident.cause.as_str()) {
                AlertType::SuspiciousActivity
            } else {
                AlertType::SecurityIncident
            },
            severity: incident.severity,
            title: format!("Security incident: {}", incident.title),
            message: format!(
                "Palisade opened a {} incident ({}) about {}. Review it at /monitoring/incidents/{}.",
                incident.severity.as_str(),
                incident.cause,
                incident.subject,
                incident.id
            ),
            user,
            incident: Some(incident.id),
            to_admins: incident.severity >= self.settings.admin_threshold,
        };
        if let Err(e) = self.raise(&alert).await {
            tracing::warn!(error = %e, incident = %incident.id, "could not raise the incident's alerts");
        }
    }

    /// Raises the alert a user's own event calls for: a new device (`new_device`, MEDIUM: an approved
    /// device that is not the account's first, as the device service's own notice), a login refused
    /// for its risk (`login_anomaly`, HIGH). Palisade's own records only.
    pub async fn user_event(&self, event: &super::detect::Observed) {
        let (alert_type, severity, title, message) = match event.event_type.name() {
            "DEVICE_NEW" if event.newsworthy_device => (
                AlertType::NewDevice,
                Severity::Medium,
                "New device on your account",
                "A device Palisade had not seen signed in to your account. If it was not you, change your password.",
            ),
            "RISK_BLOCKED" => (
                AlertType::LoginAnomaly,
                Severity::High,
                "Suspicious sign-in blocked",
                "A sign-in to your account was refused for its risk. If it was not you, change your password.",
            ),
            _ => return,
        };
        let user = match self.user_of(event.user().unwrap_or_default()).await {
            Ok(Some(user)) => user,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "could not find an event's user for its alert");
                return;
            }
        };
        let alert = Alert {
            alert_type,
            severity,
            title: title.into(),
            message: message.into(),
            user: Some(user),
            incident: None,
            to_admins: false,
        };
        if let Err(e) = self.raise(&alert).await {
            tracing::warn!(error = %e, "could not raise a user's alert");
        }
    }

    /// The user a subject names: `user:<id or username>`, or a bare id or username.
    async fn user_of(&self, subject: &str) -> Result<Option<UserId>, StoreError> {
        let name = subject.strip_prefix("user:").unwrap_or(subject);
        if name.is_empty() {
            return Ok(None);
        }
        let user = match UserId::parse(name) {
            Ok(id) => self.store.user_by_id(id).await?,
            Err(_) => match crate::user::Username::parse(name) {
                Ok(username) => self.store.user_by_username(&username).await?,
                Err(_) => None,
            },
        };
        Ok(user.map(|u| u.id))
    }

    /// Sends what is due, one round: claims up to a batch, sends each, records the outcome.
    /// Returns how many were handled.
    pub async fn deliver_due(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let due = self.store.due_deliveries(now, CLAIM).await?;
        let mut handled = 0;
        for delivery in due {
            // The lease runs from the claim, not from the round's start: sends before it take time.
            let claimed_at = self.clock.now();
            if !self.store.claim_delivery(delivery.id, &self.instance, claimed_at + LEASE, claimed_at).await? {
                continue;
            }
            let outcome = match self.send(&delivery).await {
                Ok(()) => DeliveryOutcome::Sent(self.clock.now()),
                Err(error) if delivery.attempts + 1 >= MAX_ATTEMPTS => DeliveryOutcome::Dead(error),
                Err(error) => DeliveryOutcome::Retry { at: self.clock.now() + backoff(delivery.attempts + 1), error },
            };
            let label = match &outcome {
                DeliveryOutcome::Sent(_) => "sent",
                DeliveryOutcome::Retry { .. } => "failed",
                DeliveryOutcome::Dead(_) => "dead",
            };
            metrics::counter!("palisade_alert_deliveries_total", "channel" => delivery.channel.as_str(), "outcome" => label)
                .increment(1);
            if let DeliveryOutcome::Dead(error) = &outcome {
                tracing::warn!(delivery = %delivery.id, channel = delivery.channel.as_str(), %error,
                    "an alert could not be delivered: dead letter");
            }
            self.store.finish_delivery(delivery.id, &self.instance, &outcome).await?;
            handled += 1;
        }
        Ok(handled)
    }

    async fn send(&self, delivery: &Delivery) -> Result<(), String> {
        let text = |field: &str| delivery.alert.get(field).and_then(Value::as_str);
        let title = text("title").unwrap_or("Security alert");
        let message = text("message").unwrap_or("");
        let user =
            delivery.recipient.strip_prefix("user:").map(UserId::parse).transpose().map_err(|e| e.to_string())?;
        match (delivery.channel, user) {
            (Channel::Webhook, _) => {
                let webhook = self.settings.admin_webhook.as_ref().ok_or("no administrators' webhook is configured")?;
                webhook.post(&delivery.alert).await.map_err(|e| e.to_string())
            }
            (Channel::Push, _) => {
                let push = self.settings.push.as_ref().ok_or("no push gateway is configured")?;
                push.post(&delivery.alert).await.map_err(|e| e.to_string())
            }
            (Channel::Email, None) => {
                let email = self.email.as_ref().ok_or("no mail server is configured")?;
                for to in &self.settings.admin_emails {
                    email.send_email(to, title, message).await.map_err(|e| e.to_string())?;
                }
                Ok(())
            }
            (Channel::Email, Some(user)) => {
                let email = self.email.as_ref().ok_or("no mail server is configured")?;
                let found = self.store.user_by_id(user).await.map_err(|e| e.to_string())?;
                let to = found.and_then(|u| u.email).ok_or("the user has no e-mail address")?;
                email.send_email(&to, title, message).await.map_err(|e| e.to_string())
            }
            (Channel::Sms, Some(user)) => {
                let sms = self.sms.as_ref().ok_or("no SMS provider is configured")?;
                let phone = self.mfa.sms_number(user).await.map_err(|e| e.to_string())?;
                let phone = phone.ok_or("the user has no confirmed SMS factor")?;
                sms.send_sms(&phone, &format!("{title}: {message}")).await.map_err(|e| e.to_string())
            }
            (Channel::Sms, None) => Err("SMS goes to users only".into()),
        }
    }
}

/// The wait before attempt `attempt + 1`: 2^attempt seconds, at most an hour.
pub fn backoff(attempt: u32) -> Duration {
    Duration::seconds(1i64 << attempt.min(12)).min(Duration::HOUR)
}

/// Delivers due alerts every second until the process ends; failures are logged and retried.
pub async fn deliver_forever(alerter: Arc<Alerter>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Err(e) = alerter.deliver_due().await {
            tracing::warn!(error = %e, "could not deliver alerts");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_an_hour() {
        assert_eq!(backoff(1), Duration::seconds(2));
        assert_eq!(backoff(2), Duration::seconds(4));
        assert_eq!(backoff(5), Duration::seconds(32));
        assert_eq!(backoff(30), Duration::HOUR);
    }

    #[test]
    fn the_default_preferences_are_the_guides() {
        let defaults = AlertPreferences::default();
        assert!(defaults.email && !defaults.sms && defaults.push);
        assert_eq!(defaults.severity_threshold, Severity::Medium);
        assert_eq!(defaults.alert_types.len(), 4);
        assert!(AlertType::parse("test").is_none(), "the test type is not a choice");
        assert_eq!(AlertType::parse("new_device"), Some(AlertType::NewDevice));
    }
}
