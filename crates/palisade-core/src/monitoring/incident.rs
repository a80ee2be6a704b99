//! Incidents: what a detector raises. One open incident per cause and subject: a detector that
//! fires again attaches its events to the open one (deduplication) and may raise its severity.
//! Lifecycle: open → acknowledged → resolved (or open → resolved); a resolved incident is closed
//! for good, and the next firing opens a new one.

use serde_json::Value;
use time::OffsetDateTime;

/// How bad an incident is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Worth a look.
    Low,
    /// Someone should look today.
    Medium,
    /// Someone should look now.
    High,
    /// An attack in progress.
    Critical,
}

impl Default for Severity {
    /// MEDIUM: the original guide's `alert_severity_threshold`.
    fn default() -> Self {
        Self::Medium
    }
}

impl Severity {
    /// Every severity, least first.
    pub const ALL: [Self; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "LOW",
            Self::Medium => "MEDIUM",
            Self::High => "HIGH",
            Self::Critical => "CRITICAL",
        }
    }

    /// Parses a wire name, in any letter case.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// Where an incident is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IncidentState {
    /// Raised, nobody has looked yet.
    Open,
    /// Someone is on it.
    Acknowledged,
    /// Closed.
    Resolved,
}

impl IncidentState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
        }
    }

    /// Parses a wire name, in any letter case.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Open, Self::Acknowledged, Self::Resolved].into_iter().find(|v| v.as_str().eq_ignore_ascii_case(s.trim()))
    }

    /// Whether `self` may move to `to`: forward only, and never out of `resolved`.
    pub fn may_become(self, to: Self) -> bool {
        matches!((self, to), (Self::Open, Self::Acknowledged | Self::Resolved) | (Self::Acknowledged, Self::Resolved))
    }
}

/// The most event references an incident keeps (its count goes on).
pub const MAX_ATTACHED_EVENTS: usize = 100;

/// An incident, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Incident {
    /// Its id.
    pub id: uuid::Uuid,
    /// The detector that raised it (`brute_force`, `token_reuse` …).
    pub cause: String,
    /// What it is about (`user:alice`, `ip:203.0.113.9`, `global`).
    pub subject: String,
    /// The highest severity it was raised with.
    pub severity: Severity,
    /// Where it is.
    pub state: IncidentState,
    /// One line for a human.
    pub title: String,
    /// What the detector saw, as JSON (counts, thresholds, window).
    pub details: Value,
    /// Sequence numbers of the audit records that raised it, oldest first, at most
    /// [`MAX_ATTACHED_EVENTS`].
    pub events: Vec<i64>,
    /// How many times it was raised (firings attached).
    pub occurrences: u64,
    /// When it was opened.
    pub opened_at: OffsetDateTime,
    /// When it was last raised.
    pub last_seen_at: OffsetDateTime,
    /// When its state last changed (or it was opened).
    pub updated_at: OffsetDateTime,
    /// Who moved it to its state (`None` while open).
    pub updated_by: Option<String>,
}

/// A detector's finding, to open an incident or attach to the open one.
#[derive(Debug, Clone, PartialEq)]
pub struct IncidentRaise {
    /// The id a new incident takes.
    pub id: uuid::Uuid,
    /// The detector.
    pub cause: String,
    /// What it is about.
    pub subject: String,
    /// How bad.
    pub severity: Severity,
    /// One line for a human.
    pub title: String,
    /// What the detector saw.
    pub details: Value,
    /// The audit records that raised it.
    pub events: Vec<i64>,
    /// When.
    pub at: OffsetDateTime,
}

/// Which incidents to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentFilter {
    /// Only in this state.
    pub state: Option<IncidentState>,
    /// Only at least this severe.
    pub min_severity: Option<Severity>,
    /// Only those opened before the incident with this id (the cursor; ids are time-ordered).
    pub before: Option<uuid::Uuid>,
    /// At most this many.
    pub limit: u32,
}
