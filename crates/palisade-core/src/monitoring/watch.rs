//! The pipeline from the audit chain to incidents: every stored record is handed to a bounded queue
//! (never waited on: a full queue drops the batch and counts it, so monitoring can never slow a
//! login); one task takes batches off it, counts each detector's windows in the hot store (shared by
//! every instance) and raises incidents for what the detectors find.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

use super::detect::{Count, Detector, Observed, Thresholds};
use super::{EventType, Incident, IncidentRaise};
use crate::audit::{AuditEvent, AuditKind, AuditLog, AuditObserver, AuditRecord, Outcome};
use crate::clock::Clock;
use crate::store::{HotKey, HotStore, IncidentStore, StoreError};

/// Batches of records waiting for the detectors, at most.
pub const QUEUE_BATCHES: usize = 1024;

/// The queue's sending end, as the audit log's observer.
pub struct Feed {
    sender: mpsc::Sender<Vec<AuditRecord>>,
    dropped: Arc<AtomicU64>,
}

impl AuditObserver for Feed {
    fn observe(&self, records: &[AuditRecord]) {
        if self.sender.try_send(records.to_vec()).is_err() {
            let before = self.dropped.fetch_add(records.len() as u64, Ordering::Relaxed);
            let total = before + records.len() as u64;
            // Said once per 1,000 records dropped, not once per batch: an overload must not flood the log.
            if before / 1000 != total / 1000 || before == 0 {
                tracing::warn!(total, "monitoring queue full: records not examined by the detectors");
            }
        }
    }
}

/// The detectors over the hot store, raising incidents.
pub struct Detection {
    hot: Arc<dyn HotStore>,
    incidents: Arc<dyn IncidentStore>,
    audit: Arc<AuditLog>,
    clock: Arc<dyn Clock>,
    thresholds: Thresholds,
    dropped: Arc<AtomicU64>,
}

impl Detection {
    /// The detectors, and the observer to give the audit log; `run` the returned receiver's loop.
    pub fn new(
        hot: Arc<dyn HotStore>,
        incidents: Arc<dyn IncidentStore>,
        audit: Arc<AuditLog>,
        clock: Arc<dyn Clock>,
        thresholds: Thresholds,
    ) -> (Arc<Self>, Arc<Feed>, mpsc::Receiver<Vec<AuditRecord>>) {
        let (sender, receiver) = mpsc::channel(QUEUE_BATCHES);
        let dropped = Arc::new(AtomicU64::new(0));
        let detection = Arc::new(Self { hot, incidents, audit, clock, thresholds, dropped: dropped.clone() });
        (detection, Arc::new(Feed { sender, dropped }), receiver)
    }

    /// Records dropped because the queue was full, since start.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Takes batches off the queue until every sender is gone.
    pub async fn run(self: Arc<Self>, mut receiver: mpsc::Receiver<Vec<AuditRecord>>) {
        while let Some(records) = receiver.recv().await {
            for record in &records {
                if let Err(e) = self.examine(record).await {
                    tracing::warn!(error = %e, seq = record.seq, "a record could not be examined");
                }
            }
        }
    }

    /// Runs every detector on one record; returns the incidents opened or attached to.
    pub async fn examine(&self, record: &AuditRecord) -> Result<Vec<(Incident, bool)>, StoreError> {
        let Some(event_type) = EventType::of_kind(&record.kind) else { return Ok(Vec::new()) };
        let event = Observed { seq: record.seq, event_type, subject: record.subject.clone(), ip: record.ip.clone() };
        let mut raised = Vec::new();
        for detector in Detector::ALL {
            let mut counts = Vec::new();
            for window in detector.windows(&event, &self.thresholds) {
                let key = HotKey::new(&format!("detect:{}", detector.name()), &window.key);
                let count = match &window.count {
                    Count::Hits => self.hot.increment(&key, window.length).await?.count,
                    Count::Peek => self.hot.count(&key).await?,
                    Count::Distinct(member) => {
                        self.hot.set_add(&key, member, window.length).await?;
                        self.hot.set_members(&key).await?.len() as u64
                    }
                };
                counts.push(count);
            }
            let Some(finding) = detector.judge(&event, &counts, &self.thresholds) else { continue };
            let raise = IncidentRaise {
                id: uuid::Uuid::now_v7(),
                cause: detector.name().into(),
                subject: finding.subject,
                severity: finding.severity,
                title: finding.title,
                details: finding.details,
                events: vec![record.seq],
                at: self.clock.now(),
            };
            let (incident, opened) = self.incidents.raise_incident(&raise).await?;
            if opened {
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
            }
            raised.push((incident, opened));
        }
        Ok(raised)
    }
}
