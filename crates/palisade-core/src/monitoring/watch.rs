//! The pipeline from the audit chain to incidents: every stored record is handed to a bounded queue
//! (never waited on: a full queue drops the batch and counts it, so monitoring can never slow a
//! login); one task takes batches off it, counts each detector's windows in the hot store (shared by
//! every instance) and raises incidents for what the detectors find.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use super::alert::Alerter;
use super::detect::{Count, Detector, Finding, Observed, Thresholds};
use super::respond::Responder;
use super::{EventType, Incident, IncidentRaise};
use crate::audit::{AuditEvent, AuditKind, AuditLog, AuditObserver, AuditRecord, Outcome};
use crate::clock::Clock;
use crate::store::{HotKey, HotStore, IncidentStore, StoreError, Tally};

/// Batches of records waiting for the detectors, at most.
pub const QUEUE_BATCHES: usize = 1024;

/// Records examined together, at most: one hot-store call per detector for all of them.
pub const EXAMINE_AT_ONCE: usize = 512;

/// The audit log's observer: counts every stored event by type (`palisade_security_events_total`)
/// and, with the detectors on, hands the records to their queue.
pub struct Feed {
    sender: Option<mpsc::Sender<Vec<AuditRecord>>>,
    dropped: AtomicU64,
    refused: AtomicU64,
}

impl Feed {
    /// A feed that only counts: the detectors are off.
    pub fn counting_only() -> Arc<Self> {
        Arc::new(Self { sender: None, dropped: AtomicU64::new(0), refused: AtomicU64::new(0) })
    }

    /// Whether the queue can take another batch now (always, without detectors).
    pub fn has_room(&self) -> bool {
        self.sender.as_ref().is_none_or(|sender| sender.capacity() > 0)
    }

    /// Counts a report refused because the queue was full.
    pub fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("palisade_monitoring_reports_refused_total").increment(1);
    }

    /// Reports refused because the queue was full, since start.
    pub fn refused_count(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Palisade's own records dropped because the queue was full, since start.
    pub fn dropped_count(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl AuditObserver for Feed {
    fn observe(&self, records: &[AuditRecord]) {
        for record in records {
            if let Some(event_type) = EventType::of_kind(&record.kind) {
                metrics::counter!("palisade_security_events_total", "type" => event_type.name()).increment(1);
            }
        }
        let Some(sender) = &self.sender else { return };
        if sender.try_send(records.to_vec()).is_err() {
            metrics::counter!("palisade_monitoring_dropped_total").increment(records.len() as u64);
            let before = self.dropped.fetch_add(records.len() as u64, Ordering::Relaxed);
            let total = before + records.len() as u64;
            // Said once per 1,000 records dropped, not once per batch: an overload must not flood the log.
            if before / 1000 != total / 1000 || before == 0 {
                tracing::warn!(total, "monitoring queue full: records not examined by the detectors");
            }
        }
    }
}

/// Creates every monitoring counter at zero for its known labels, so a rule such as
/// `increase(palisade_incidents_opened_total{severity="CRITICAL"}[5m]) > 0` sees the first incident
/// after a start (a series born at its first increment has no earlier sample to increase from).
pub fn zero_counters() {
    for detector in Detector::ALL {
        metrics::counter!("palisade_detector_findings_total", "detector" => detector.name()).increment(0);
        for severity in super::Severity::ALL {
            metrics::counter!("palisade_incidents_opened_total", "cause" => detector.name(),
                "severity" => severity.as_str())
            .increment(0);
        }
    }
    for kind in super::ResponseKind::ALL {
        for outcome in ["taken", "skipped", "failed"] {
            metrics::counter!("palisade_auto_responses_total", "action" => kind.as_str(), "outcome" => outcome)
                .increment(0);
        }
        metrics::counter!("palisade_auto_responses_reverted_total", "action" => kind.as_str()).increment(0);
    }
    for channel in super::alert::Channel::ALL {
        for outcome in ["sent", "failed", "dead", "suppressed"] {
            metrics::counter!("palisade_alert_deliveries_total", "channel" => channel.as_str(), "outcome" => outcome)
                .increment(0);
        }
    }
    metrics::counter!("palisade_monitoring_dropped_total").increment(0);
    metrics::counter!("palisade_monitoring_reports_refused_total").increment(0);
}

/// Whether a `device.registered` record is news to its user: approved and not the account's first.
fn newsworthy_device(details: &str) -> bool {
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(details) else { return false };
    let flag = |name: &str| map.get(name).and_then(serde_json::Value::as_bool);
    flag("approved") == Some(true) && flag("first") == Some(false)
}

/// The `risk_factors` detail of a record (a comma-separated text, or an array of texts), without
/// parsing records that have none.
fn risk_factors(details: &str) -> Vec<String> {
    if !details.contains("risk_factors") {
        return Vec::new();
    }
    let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(details) else {
        return Vec::new();
    };
    match map.get("risk_factors") {
        Some(serde_json::Value::String(text)) => {
            text.split(',').map(str::trim).filter(|f| !f.is_empty()).map(str::to_owned).collect()
        }
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

/// The detectors over the hot store, raising incidents.
pub struct Detection {
    hot: Arc<dyn HotStore>,
    incidents: Arc<dyn IncidentStore>,
    audit: Arc<AuditLog>,
    clock: Arc<dyn Clock>,
    thresholds: Thresholds,
    responder: Option<Arc<Responder>>,
    alerter: Arc<Alerter>,
}

impl Detection {
    /// The detectors, and the observer to give the audit log; `run` the returned receiver's loop.
    /// With a `responder`, the automatic responses its rules name are taken whenever an incident opens.
    pub fn new(
        hot: Arc<dyn HotStore>,
        incidents: Arc<dyn IncidentStore>,
        audit: Arc<AuditLog>,
        clock: Arc<dyn Clock>,
        thresholds: Thresholds,
        responder: Option<Arc<Responder>>,
        alerter: Arc<Alerter>,
    ) -> (Arc<Self>, Arc<Feed>, mpsc::Receiver<Vec<AuditRecord>>) {
        let (sender, receiver) = mpsc::channel(QUEUE_BATCHES);
        let detection = Arc::new(Self { hot, incidents, audit, clock, thresholds, responder, alerter });
        let feed = Feed { sender: Some(sender), dropped: AtomicU64::new(0), refused: AtomicU64::new(0) };
        (detection, Arc::new(feed), receiver)
    }

    /// Takes batches off the queue until every sender is gone, examining what has queued up together
    /// (up to [`EXAMINE_AT_ONCE`] records): the more that wait, the fewer hot-store calls each costs.
    pub async fn run(self: Arc<Self>, mut receiver: mpsc::Receiver<Vec<AuditRecord>>) {
        while let Some(mut records) = receiver.recv().await {
            while records.len() < EXAMINE_AT_ONCE {
                match receiver.try_recv() {
                    Ok(more) => records.extend(more),
                    Err(_) => break,
                }
            }
            self.examine(&records).await;
        }
    }

    /// Runs every detector on `records`, in order: one hot-store [`HotStore::tally`] per detector
    /// counts all its windows for the whole batch, then it judges each record on the counts as they
    /// stood after that record. Returns the incidents opened (`true`) or attached to. A detector whose
    /// counting or raising fails is logged and skipped; the others still run.
    pub async fn examine(&self, records: &[AuditRecord]) -> Vec<(Incident, bool)> {
        let events: Vec<Observed> = records
            .iter()
            .filter_map(|record| {
                let event_type = EventType::of_kind(&record.kind)?;
                let own = !record.kind.starts_with("event.");
                Some(Observed {
                    seq: record.seq,
                    event_type,
                    subject: record.subject.clone(),
                    actor: if own { record.actor.clone() } else { None },
                    ip: record.ip.clone(),
                    reported: !own,
                    at: record.at,
                    risk_factors: risk_factors(&record.details),
                    newsworthy_device: own && event_type.name() == "DEVICE_NEW" && newsworthy_device(&record.details),
                })
            })
            .collect();
        let mut raised = Vec::new();
        if events.is_empty() {
            return raised;
        }
        for event in events.iter().filter(|e| e.actor.is_some() || e.subject.is_some()) {
            if matches!(event.event_type.name(), "DEVICE_NEW" | "RISK_BLOCKED") && !event.reported {
                self.alerter.user_event(event).await;
            }
        }
        for detector in Detector::ALL {
            if let Err(e) = self.run_detector(detector, &events, &mut raised).await {
                tracing::warn!(error = %e, detector = detector.name(), records = events.len(),
                    "records could not be examined");
            }
        }
        raised
    }

    /// Counts `detector`'s windows for every event in one tally, then judges each in order. A read
    /// of a counter already read in this batch, and not counted since, is not sent twice (the
    /// activity baseline reads the same past slots for every event of a user).
    async fn run_detector(
        &self,
        detector: Detector,
        events: &[Observed],
        raised: &mut Vec<(Incident, bool)>,
    ) -> Result<(), StoreError> {
        let tag = format!("detect:{}", detector.name());
        let mut steps = Vec::new();
        // Per event, the index into `steps` of each of its windows' answers.
        let mut plans: Vec<Vec<usize>> = Vec::with_capacity(events.len());
        // Counters read and not counted since: their step.
        let mut read: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for event in events {
            let mut plan = Vec::new();
            for window in detector.windows(event, &self.thresholds) {
                let key = HotKey::new(&tag, &window.key);
                if window.count == Count::Peek
                    && let Some(&step) = read.get(key.as_str())
                {
                    plan.push(step);
                    continue;
                }
                match &window.count {
                    Count::Peek => read.insert(key.as_str().to_owned(), steps.len()),
                    _ => read.remove(key.as_str()),
                };
                plan.push(steps.len());
                steps.push(match window.count {
                    Count::Hits => Tally::Hit { key, window: window.length },
                    Count::Peek => Tally::Peek { key },
                    Count::Distinct(member) => Tally::Add { key, member, ttl: window.length },
                });
            }
            plans.push(plan);
        }
        let counts = if steps.is_empty() { Vec::new() } else { self.hot.tally(&steps).await? };
        for (event, plan) in events.iter().zip(plans) {
            let Some(counts) = plan.iter().map(|step| counts.get(*step).copied()).collect::<Option<Vec<u64>>>() else {
                continue;
            };
            let Some(finding) = detector.judge(event, &counts, &self.thresholds) else { continue };
            raised.push(self.raise(detector, event, finding).await?);
        }
        Ok(())
    }

    async fn raise(
        &self,
        detector: Detector,
        event: &Observed,
        finding: Finding,
    ) -> Result<(Incident, bool), StoreError> {
        let raise = IncidentRaise {
            id: uuid::Uuid::now_v7(),
            cause: detector.name().into(),
            subject: finding.subject,
            severity: finding.severity,
            title: finding.title,
            details: finding.details,
            events: vec![event.seq],
            at: self.clock.now(),
        };
        let (incident, opened) = self.incidents.raise_incident(&raise).await?;
        metrics::counter!("palisade_detector_findings_total", "detector" => detector.name()).increment(1);
        if opened {
            metrics::counter!("palisade_incidents_opened_total", "cause" => detector.name(),
                "severity" => incident.severity.as_str())
            .increment(1);
            let audited = AuditEvent::new(AuditKind::IncidentOpened, Outcome::Success)
                .actor(format!("detector:{}", detector.name()))
                .subject(incident.subject.clone())
                .detail("incident", incident.id.to_string())
                .detail("severity", incident.severity.as_str());
            if let Err(e) = self.audit.append(audited).await {
                tracing::warn!(error = %e, "could not audit an incident");
            }
            tracing::warn!(incident = %incident.id, cause = detector.name(), subject = %incident.subject,
                severity = incident.severity.as_str(), "incident opened");
            if let Some(responder) = &self.responder {
                responder.respond(&incident, event).await;
            }
            self.alerter.incident_opened(&incident).await;
        }
        Ok((incident, opened))
    }
}
