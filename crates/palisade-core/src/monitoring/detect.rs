//! Detectors: small pure rules over one event and the counts of its sliding windows.
//!
//! Each detector says which windows it needs ([`Detector::windows`]) for an event; the pipeline
//! counts them in the hot store (so every instance sees the same counts) and hands the counts back
//! to [`Detector::judge`], which decides without any I/O. That split is what the table-driven tests
//! exercise.
//!
//! Windows are fixed windows of the hot store's `increment` (a count of hits) or distinct-member
//! sets (a `Tally::Add` answering the set's size), started by their first hit: a burst straddling two windows can be
//! seen as two halves, so thresholds should be read as "about N per window".

use time::Duration;

use super::{EventType, Severity};

/// An event as the detectors see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// The audit record's sequence number.
    pub seq: i64,
    /// Its type.
    pub event_type: EventType,
    /// Whom it concerns (a user id, or the username a failed login tried).
    pub subject: Option<String>,
    /// Who acted, for Palisade's own records (`None` for applications' reports, whose actor is the
    /// reporting key). On a refresh-token reuse and a hijack suspicion the subject is the session and
    /// the actor its user.
    pub actor: Option<String>,
    /// The client's address.
    pub ip: Option<String>,
}

/// What a window counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Count {
    /// Hits of `key`.
    Hits,
    /// Distinct `member`s (the set's life restarts at each add: a sliding window).
    Distinct(String),
    /// The current count of `key`'s hits, without counting one.
    Peek,
}

/// One window a detector needs counted for an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Which count (within the detector's own key space).
    pub key: String,
    /// What it counts.
    pub count: Count,
    /// How long.
    pub length: Duration,
}

/// A detector's decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The subject of the incident (`user:alice`, `ip:203.0.113.9`).
    pub subject: String,
    /// How bad.
    pub severity: Severity,
    /// One line for a human.
    pub title: String,
    /// What was seen.
    pub details: serde_json::Value,
}

/// Thresholds, all configurable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Thresholds {
    /// Brute force: failed logins on one account per window.
    pub brute_force_failures: u64,
    /// Brute force: the window.
    pub brute_force_window: Duration,
    /// Password spraying: distinct accounts failing from one address per window.
    pub spraying_accounts: u64,
    /// Password spraying: the window.
    pub spraying_window: Duration,
    /// Credential stuffing: failed logins everywhere per window…
    pub stuffing_failures: u64,
    /// …from at least this many distinct addresses…
    pub stuffing_addresses: u64,
    /// …and at least this share of all logins failing, in percent.
    pub stuffing_failure_percent: u64,
    /// Credential stuffing: the window.
    pub stuffing_window: Duration,
    /// API-key abuse: refused uses of keys from one address per window.
    pub api_key_refusals: u64,
    /// API-key abuse: the window.
    pub api_key_window: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            brute_force_failures: 10,
            brute_force_window: Duration::minutes(5),
            spraying_accounts: 10,
            spraying_window: Duration::minutes(10),
            stuffing_failures: 100,
            stuffing_addresses: 20,
            stuffing_failure_percent: 80,
            stuffing_window: Duration::minutes(5),
            api_key_refusals: 20,
            api_key_window: Duration::minutes(1),
        }
    }
}

/// Every detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detector {
    /// Many failed logins on one account.
    BruteForce,
    /// One address failing on many accounts.
    PasswordSpraying,
    /// Many failures from many addresses, most logins failing.
    CredentialStuffing,
    /// A spent refresh token came back (its family was revoked).
    TokenReuse,
    /// A session used from a client that does not match it.
    SessionHijack,
    /// Repeated refused API-key uses from one address.
    ApiKeyAbuse,
}

impl Detector {
    /// Every detector.
    pub const ALL: [Self; 6] = [
        Self::BruteForce,
        Self::PasswordSpraying,
        Self::CredentialStuffing,
        Self::TokenReuse,
        Self::SessionHijack,
        Self::ApiKeyAbuse,
    ];

    /// Its name: the incident's cause.
    pub fn name(self) -> &'static str {
        match self {
            Self::BruteForce => "brute_force",
            Self::PasswordSpraying => "password_spraying",
            Self::CredentialStuffing => "credential_stuffing",
            Self::TokenReuse => "token_reuse",
            Self::SessionHijack => "session_hijack",
            Self::ApiKeyAbuse => "api_key_abuse",
        }
    }

    /// The windows to count for `event` (empty: the detector has nothing to say about it).
    pub fn windows(self, event: &Observed, t: &Thresholds) -> Vec<Window> {
        let name = event.event_type.name();
        let failure = name == "LOGIN_FAILURE";
        let login = failure || name == "LOGIN_SUCCESS";
        let hits = |key: String, length| Window { key, count: Count::Hits, length };
        match self {
            Self::BruteForce => match (&event.subject, failure) {
                (Some(subject), true) => vec![hits(format!("user:{subject}"), t.brute_force_window)],
                _ => Vec::new(),
            },
            Self::PasswordSpraying => match (&event.ip, &event.subject, failure) {
                (Some(ip), Some(subject), true) => vec![Window {
                    key: format!("ip:{ip}"),
                    count: Count::Distinct(subject.clone()),
                    length: t.spraying_window,
                }],
                _ => Vec::new(),
            },
            Self::CredentialStuffing => {
                if !login {
                    return Vec::new();
                }
                let mut windows =
                    vec![hits(if failure { "failures".into() } else { "successes".into() }, t.stuffing_window)];
                if failure {
                    let ip = event.ip.clone().unwrap_or_else(|| "unknown".into());
                    windows.push(Window {
                        key: "addresses".into(),
                        count: Count::Distinct(ip),
                        length: t.stuffing_window,
                    });
                    windows.push(Window { key: "successes".into(), count: Count::Peek, length: t.stuffing_window });
                }
                windows
            }
            Self::ApiKeyAbuse => match (&event.ip, name == "API_KEY_REJECTED") {
                (Some(ip), true) => vec![hits(format!("ip:{ip}"), t.api_key_window)],
                _ => Vec::new(),
            },
            Self::TokenReuse | Self::SessionHijack => Vec::new(),
        }
    }

    /// Decides on `event` given the counts of [`Self::windows`], in the same order.
    pub fn judge(self, event: &Observed, counts: &[u64], t: &Thresholds) -> Option<Finding> {
        let name = event.event_type.name();
        let subject = event.subject.as_deref().unwrap_or("unknown");
        match self {
            // Fire when the threshold is reached, and again at each multiple of it (a long attack
            // keeps attaching to the open incident rather than firing at every event).
            Self::BruteForce => {
                if name != "LOGIN_FAILURE" {
                    return None;
                }
                let failures = *counts.first()?;
                reached(failures, t.brute_force_failures).then(|| Finding {
                    subject: format!("user:{subject}"),
                    severity: if failures >= t.brute_force_failures * 5 { Severity::Critical } else { Severity::High },
                    title: format!("{failures} failed logins on account {subject}"),
                    details: serde_json::json!({
                        "failures": failures,
                        "threshold": t.brute_force_failures,
                        "window_seconds": t.brute_force_window.whole_seconds(),
                    }),
                })
            }
            Self::PasswordSpraying => {
                if name != "LOGIN_FAILURE" {
                    return None;
                }
                let accounts = *counts.first()?;
                let ip = event.ip.as_deref()?;
                reached(accounts, t.spraying_accounts).then(|| Finding {
                    subject: format!("ip:{ip}"),
                    severity: Severity::High,
                    title: format!("{accounts} accounts failing from {ip}"),
                    details: serde_json::json!({
                        "accounts": accounts,
                        "threshold": t.spraying_accounts,
                        "window_seconds": t.spraying_window.whole_seconds(),
                    }),
                })
            }
            Self::CredentialStuffing => {
                if name != "LOGIN_FAILURE" {
                    return None;
                }
                let (&failures, &addresses, &successes) = (counts.first()?, counts.get(1)?, counts.get(2)?);
                let percent = failures.saturating_mul(100) / failures.saturating_add(successes).max(1);
                let fires = reached(failures, t.stuffing_failures)
                    && addresses >= t.stuffing_addresses
                    && percent >= t.stuffing_failure_percent;
                fires.then(|| Finding {
                    subject: "global".into(),
                    severity: Severity::Critical,
                    title: format!("{failures} failed logins from {addresses} addresses ({percent} % of logins)"),
                    details: serde_json::json!({
                        "failures": failures,
                        "addresses": addresses,
                        "successes": successes,
                        "failure_percent": percent,
                        "window_seconds": t.stuffing_window.whole_seconds(),
                    }),
                })
            }
            Self::ApiKeyAbuse => {
                if name != "API_KEY_REJECTED" {
                    return None;
                }
                let refusals = *counts.first()?;
                let ip = event.ip.as_deref()?;
                reached(refusals, t.api_key_refusals).then(|| Finding {
                    subject: format!("ip:{ip}"),
                    severity: Severity::Medium,
                    title: format!("{refusals} refused API-key uses from {ip}"),
                    details: serde_json::json!({
                        "refusals": refusals,
                        "threshold": t.api_key_refusals,
                        "window_seconds": t.api_key_window.whole_seconds(),
                    }),
                })
            }
            Self::TokenReuse => (name == "TOKEN_REUSE").then(|| Finding {
                // Palisade's own record names the session as subject and its user as actor; a
                // report names the user as subject.
                subject: format!("user:{}", event.actor.as_deref().unwrap_or(subject)),
                severity: Severity::High,
                title: format!("a spent refresh token of {subject} was used again; its family was revoked"),
                details: serde_json::json!({}),
            }),
            Self::SessionHijack => (name == "SESSION_HIJACK_SUSPECTED").then(|| Finding {
                subject: format!("user:{}", event.actor.as_deref().unwrap_or(subject)),
                severity: Severity::Medium,
                title: format!("a session of {subject} was used from a client that does not match it"),
                details: serde_json::json!({ "ip": event.ip }),
            }),
        }
    }
}

/// `count` has just reached `threshold` or a multiple of it.
fn reached(count: u64, threshold: u64) -> bool {
    threshold > 0 && count >= threshold && count.is_multiple_of(threshold)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(name: &str, subject: Option<&str>, ip: Option<&str>) -> Observed {
        Observed {
            seq: 1,
            actor: None,
            event_type: EventType::parse(name).unwrap(),
            subject: subject.map(str::to_owned),
            ip: ip.map(str::to_owned),
        }
    }

    #[test]
    fn reuse_and_hijack_are_about_the_acting_user_not_the_session() {
        let t = Thresholds::default();
        for (name, detector) in
            [("TOKEN_REUSE", Detector::TokenReuse), ("SESSION_HIJACK_SUSPECTED", Detector::SessionHijack)]
        {
            // Palisade's own record: the session as subject, its user as actor.
            let own = Observed { actor: Some("user-id-7".into()), ..event(name, Some("session-id-3"), None) };
            assert_eq!(detector.judge(&own, &[], &t).unwrap().subject, "user:user-id-7", "{name}");
            // A report: the user as subject, no actor.
            let reported = event(name, Some("bob"), None);
            assert_eq!(detector.judge(&reported, &[], &t).unwrap().subject, "user:bob", "{name}");
        }
    }

    #[test]
    fn each_detector_fires_exactly_at_its_threshold() {
        let t = Thresholds::default();
        let failure = event("LOGIN_FAILURE", Some("alice"), Some("203.0.113.9"));
        let success = event("LOGIN_SUCCESS", Some("alice"), Some("203.0.113.9"));
        let rejected = event("API_KEY_REJECTED", None, Some("198.51.100.7"));
        let reuse = event("TOKEN_REUSE", Some("bob"), None);
        let hijack = event("SESSION_HIJACK_SUSPECTED", Some("bob"), None);
        // (detector, event, counts, expected severity or None)
        let table: Vec<(Detector, &Observed, Vec<u64>, Option<Severity>)> = vec![
            (Detector::BruteForce, &failure, vec![9], None),
            (Detector::BruteForce, &failure, vec![10], Some(Severity::High)),
            (Detector::BruteForce, &failure, vec![11], None),
            (Detector::BruteForce, &failure, vec![20], Some(Severity::High)),
            (Detector::BruteForce, &failure, vec![50], Some(Severity::Critical)),
            (Detector::BruteForce, &success, vec![10], None),
            (Detector::PasswordSpraying, &failure, vec![9], None),
            (Detector::PasswordSpraying, &failure, vec![10], Some(Severity::High)),
            (Detector::PasswordSpraying, &success, vec![10], None),
            (Detector::ApiKeyAbuse, &failure, vec![20], None),
            (Detector::CredentialStuffing, &failure, vec![100, 20, 25], Some(Severity::Critical)),
            (Detector::CredentialStuffing, &failure, vec![100, 19, 0], None),
            (Detector::CredentialStuffing, &failure, vec![100, 50, 26], None),
            (Detector::CredentialStuffing, &failure, vec![99, 50, 0], None),
            (Detector::CredentialStuffing, &success, vec![100, 50, 0], None),
            (Detector::ApiKeyAbuse, &rejected, vec![19], None),
            (Detector::ApiKeyAbuse, &rejected, vec![20], Some(Severity::Medium)),
            (Detector::TokenReuse, &reuse, vec![], Some(Severity::High)),
            (Detector::TokenReuse, &failure, vec![], None),
            (Detector::SessionHijack, &hijack, vec![], Some(Severity::Medium)),
        ];
        for (detector, event, counts, expected) in table {
            let finding = detector.judge(event, &counts, &t);
            assert_eq!(finding.as_ref().map(|f| f.severity), expected, "{detector:?} {event:?} {counts:?}");
        }
    }

    #[test]
    fn windows_name_the_subject_and_address_they_count() {
        let t = Thresholds::default();
        let failure = event("LOGIN_FAILURE", Some("alice"), Some("203.0.113.9"));
        assert_eq!(Detector::BruteForce.windows(&failure, &t)[0].key, "user:alice");
        let spraying = &Detector::PasswordSpraying.windows(&failure, &t)[0];
        assert_eq!((spraying.key.as_str(), &spraying.count), ("ip:203.0.113.9", &Count::Distinct("alice".into())));
        let stuffing = Detector::CredentialStuffing.windows(&failure, &t);
        assert_eq!(
            stuffing.iter().map(|w| w.count.clone()).collect::<Vec<_>>(),
            [Count::Hits, Count::Distinct("203.0.113.9".into()), Count::Peek]
        );
        assert!(Detector::BruteForce.windows(&event("LOGIN_FAILURE", None, None), &t).is_empty());
        assert!(Detector::TokenReuse.windows(&failure, &t).is_empty());
        let found = Detector::BruteForce.judge(&failure, &[10], &t).unwrap();
        assert_eq!(found.subject, "user:alice");
        assert_eq!(found.details["failures"], 10);
    }
}
