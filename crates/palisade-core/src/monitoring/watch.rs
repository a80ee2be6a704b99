//! The pipeline from the audit chain to incidents: every stored record is handed to a bounded queue
//! (never waited on: a full queue drops the batch and counts it, so monitoring can never slow a
//! login); one task takes batches off it, counts each detector's windows in the hot store (shared by
//! every instance) and raises incidents for what the detectors find.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;

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

/// The queue's sending end, as the audit log's observer.
pub struct Feed {
    sender: mpsc::Sender<Vec<AuditRecord>>,
    dropped: AtomicU64,
    refused: AtomicU64,
}

impl Feed {
    /// Whether the queue can take another batch now.
    pub fn has_room(&self) -> bool {
        self.sender.capacity() > 0
    }

    /// Counts a report refused because the queue was full.
    pub fn refused(&self) {
        self.refused.fetch_add(1, Ordering::Relaxed);
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
    responder: Option<Arc<Responder>>,
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
    ) -> (Arc<Self>, Arc<Feed>, mpsc::Receiver<Vec<AuditRecord>>) {
        let (sender, receiver) = mpsc::channel(QUEUE_BATCHES);
        let detection = Arc::new(Self { hot, incidents, audit, clock, thresholds, responder });
        (detection, Arc::new(Feed { sender, dropped: AtomicU64::new(0), refused: AtomicU64::new(0) }), receiver)
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
                })
            })
            .collect();
        let mut raised = Vec::new();
        if events.is_empty() {
            return raised;
        }
        for detector in Detector::ALL {
            if let Err(e) = self.run_detector(detector, &events, &mut raised).await {
                tracing::warn!(error = %e, detector = detector.name(), records = events.len(),
                    "records could not be examined");
            }
        }
        raised
    }

    async fn run_detector(
        &self,
        detector: Detector,
        events: &[Observed],
        raised: &mut Vec<(Incident, bool)>,
    ) -> Result<(), StoreError> {
        let tag = format!("detect:{}", detector.name());
        let mut steps = Vec::new();
        let mut spans = Vec::with_capacity(events.len());
        for event in events {
            let start = steps.len();
            for window in detector.windows(event, &self.thresholds) {
                let key = HotKey::new(&tag, &window.key);
                steps.push(match window.count {
                    Count::Hits => Tally::Hit { key, window: window.length },
                    Count::Peek => Tally::Peek { key },
                    Count::Distinct(member) => Tally::Add { key, member, ttl: window.length },
                });
            }
            spans.push(start..steps.len());
        }
        let counts = if steps.is_empty() { Vec::new() } else { self.hot.tally(&steps).await? };
        for (event, span) in events.iter().zip(spans) {
            let Some(counts) = counts.get(span) else { continue };
            let Some(finding) = detector.judge(event, counts, &self.thresholds) else { continue };
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
            if let Some(responder) = &self.responder {
                responder.respond(&incident, event).await;
            }
        }
        Ok((incident, opened))
    }
}
