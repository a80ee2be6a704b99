//! The security dashboard's figures (the original guide's `get_security_dashboard_data`): computed
//! from what is stored — the audit chain counted per slice, kind and outcome in one grouped query,
//! the addresses with the most failures, and the incidents — never kept as separate counters, so
//! every instance answers the same and nothing is lost on a restart.
//!
//! Which records count as what is decided here, by event type, so Palisade's own records and
//! applications' reports of the same type count alike:
//! - failed logins: `LOGIN_FAILURE`;
//! - blocked attempts: `ACCOUNT_LOCKED`, `RISK_BLOCKED`, `MFA_LOCKED`, `TOKEN_REJECTED`,
//!   `API_KEY_REJECTED`, `PERMISSION_DENIED`;
//! - anomalies: `TOKEN_REUSE`, `SESSION_HIJACK_SUSPECTED`, `RISK_BLOCKED`, `SUSPICIOUS_ACTIVITY`;
//! - policy violations: refused password changes (`auth.password_changed`, failure);
//! - suspicious addresses: the addresses of failed records and of every type above or `MFA_FAILURE`.

use std::collections::BTreeMap;

use time::{Duration, OffsetDateTime};

use super::{EventType, Severity};
use crate::audit::AuditCount;

/// The shortest range the dashboard covers.
pub const MIN_RANGE: Duration = Duration::minutes(5);
/// The longest range the dashboard covers.
pub const MAX_RANGE: Duration = Duration::days(31);
/// Slices per chart.
pub const BUCKETS: u32 = 24;
/// Suspicious addresses listed, at most.
pub const TOP_ADDRESSES: u32 = 10;

const FAILED_LOGINS: &[&str] = &["LOGIN_FAILURE"];
const BLOCKED: &[&str] =
    &["ACCOUNT_LOCKED", "RISK_BLOCKED", "MFA_LOCKED", "TOKEN_REJECTED", "API_KEY_REJECTED", "PERMISSION_DENIED"];
const ANOMALIES: &[&str] = &["TOKEN_REUSE", "SESSION_HIJACK_SUSPECTED", "RISK_BLOCKED", "SUSPICIOUS_ACTIVITY"];

/// The kinds (Palisade's own and reported) of the event types named.
fn kinds_of(names: &[&str]) -> Vec<&'static str> {
    names
        .iter()
        .filter_map(|name| EventType::parse(name))
        .flat_map(|t| {
            let (native, reported) = t.kinds();
            native.into_iter().chain([reported])
        })
        .collect()
}

/// The kinds whose records make an address suspicious, on top of every failed record.
pub fn suspicious_kinds() -> Vec<&'static str> {
    let mut names: Vec<&str> = FAILED_LOGINS.iter().chain(BLOCKED).chain(ANOMALIES).copied().collect();
    names.push("MFA_FAILURE");
    let mut kinds = kinds_of(&names);
    kinds.sort_unstable();
    kinds.dedup();
    kinds
}

/// The dashboard, as computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DashboardData {
    /// The range's start.
    pub since: OffsetDateTime,
    /// Its end.
    pub until: OffsetDateTime,
    /// Each slice's length.
    pub bucket: Duration,
    /// Records of a documented event type.
    pub total_events: u64,
    /// Incidents opened.
    pub security_incidents: u64,
    /// Refusals for security.
    pub blocked_attempts: u64,
    /// Events flagged as anomalous.
    pub anomalies_detected: u64,
    /// Addresses with the most failures, most first.
    pub suspicious_ips: Vec<(String, u64)>,
    /// Failed logins.
    pub failed_logins: u64,
    /// Brute-force incidents opened.
    pub brute_force_attempts: u64,
    /// Every record appended.
    pub audit_events: u64,
    /// Password changes refused.
    pub policy_violations: u64,
    /// Incidents not resolved now, per severity (every severity present).
    pub unresolved: BTreeMap<Severity, u64>,
    /// Per series, one count per slice.
    pub series: BTreeMap<&'static str, Vec<u64>>,
}

/// The slice length for `range`: [`BUCKETS`] slices, each a whole number of seconds.
pub fn bucket_for(range: Duration) -> Duration {
    let seconds = range.whole_seconds().max(1);
    Duration::seconds((seconds + i64::from(BUCKETS) - 1) / i64::from(BUCKETS))
}

/// Computes the dashboard from the stores' counts.
pub fn compute(
    since: OffsetDateTime,
    until: OffsetDateTime,
    records: &[AuditCount],
    incidents: &[(u32, String, u64)],
    unresolved: &[(Severity, u64)],
    suspicious_ips: Vec<(String, u64)>,
) -> DashboardData {
    let failed = kinds_of(FAILED_LOGINS);
    let blocked = kinds_of(BLOCKED);
    let anomalies = kinds_of(ANOMALIES);
    let slots = BUCKETS as usize;
    let mut series: BTreeMap<&'static str, Vec<u64>> =
        ["events", "failed_logins", "blocked_attempts", "incidents"].into_iter().map(|s| (s, vec![0; slots])).collect();
    let mut add = |name: &'static str, bucket: u32, n: u64| {
        if let Some(slot) = series.get_mut(name).and_then(|v| v.get_mut(bucket as usize)) {
            *slot += n;
        }
    };
    let (mut total_events, mut blocked_attempts, mut anomalies_detected) = (0, 0, 0);
    let (mut failed_logins, mut audit_events, mut policy_violations) = (0, 0, 0);
    for record in records {
        let kind = record.kind.as_str();
        audit_events += record.count;
        if EventType::of_kind(kind).is_some() {
            total_events += record.count;
            add("events", record.bucket, record.count);
        }
        if failed.contains(&kind) {
            failed_logins += record.count;
            add("failed_logins", record.bucket, record.count);
        }
        if blocked.contains(&kind) {
            blocked_attempts += record.count;
            add("blocked_attempts", record.bucket, record.count);
        }
        if anomalies.contains(&kind) {
            anomalies_detected += record.count;
        }
        if kind == crate::audit::AuditKind::PasswordChanged.as_str() && record.outcome == "failure" {
            policy_violations += record.count;
        }
    }
    let (mut security_incidents, mut brute_force_attempts) = (0, 0);
    for (bucket, cause, n) in incidents {
        security_incidents += n;
        if cause == super::detect::Detector::BruteForce.name() {
            brute_force_attempts += n;
        }
        add("incidents", *bucket, *n);
    }
    let mut by_severity: BTreeMap<Severity, u64> = Severity::ALL.into_iter().map(|s| (s, 0)).collect();
    for (severity, n) in unresolved {
        *by_severity.entry(*severity).or_default() += n;
    }
    DashboardData {
        since,
        until,
        bucket: bucket_for(until - since),
        total_events,
        security_incidents,
        blocked_attempts,
        anomalies_detected,
        suspicious_ips,
        failed_logins,
        brute_force_attempts,
        audit_events,
        policy_violations,
        unresolved: by_severity,
        series,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(bucket: u32, kind: &str, outcome: &str, count: u64) -> AuditCount {
        AuditCount { bucket, kind: kind.into(), outcome: outcome.into(), count }
    }

    #[test]
    fn records_count_by_event_type_whoever_recorded_them() {
        let start = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let records = [
            count(0, "auth.login_failed", "failure", 7),
            count(3, "event.login_failure", "success", 5),
            count(3, "auth.login", "success", 2),
            count(5, "apikey.rejected", "failure", 4),
            count(5, "auth.login_risk_blocked", "failure", 1),
            count(6, "token.refresh_reuse", "failure", 1),
            count(7, "auth.password_changed", "failure", 2),
            count(7, "auth.password_changed", "success", 9),
            count(8, "key.reencrypted", "success", 3),
            count(23, "event.system_test", "success", 1),
            count(24, "auth.login", "success", 100),
        ];
        let incidents = [(3, "brute_force".to_owned(), 2), (5, "password_spraying".to_owned(), 1)];
        let data = compute(start, start + Duration::days(1), &records, &incidents, &[(Severity::High, 2)], vec![]);
        assert_eq!(data.failed_logins, 12, "Palisade's own and reported failures alike");
        assert_eq!(data.blocked_attempts, 5, "refused keys and risk blocks");
        assert_eq!(data.anomalies_detected, 2, "a risk block and a token reuse");
        assert_eq!(data.policy_violations, 2, "refused password changes only");
        assert_eq!(data.audit_events, 135, "every record, event type or not");
        assert_eq!(data.total_events, 132, "all but key.reencrypted, which is no event type");
        assert_eq!((data.security_incidents, data.brute_force_attempts), (3, 2));
        assert_eq!(data.bucket, Duration::hours(1));
        assert_eq!(data.series["failed_logins"][0], 7);
        assert_eq!(data.series["failed_logins"][3], 5);
        assert_eq!(data.series["incidents"][3], 2);
        assert_eq!(data.series["events"].len(), 24, "a slice past the last is not drawn");
        assert_eq!(data.series["events"].iter().sum::<u64>(), 32);
        assert_eq!(data.unresolved[&Severity::High], 2);
        assert_eq!(data.unresolved[&Severity::Low], 0, "every severity is present");
    }

    #[test]
    fn ranges_are_cut_into_whole_second_slices() {
        assert_eq!(bucket_for(Duration::days(1)), Duration::hours(1));
        assert_eq!(bucket_for(Duration::hours(1)), Duration::seconds(150));
        assert_eq!(bucket_for(Duration::seconds(1000)), Duration::seconds(42), "rounded up: 24 slices cover it");
        assert!(suspicious_kinds().contains(&"auth.login_failed") && suspicious_kinds().contains(&"event.mfa_failure"));
    }
}
