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
    /// Whether an application reported it (rather than Palisade recording it).
    pub reported: bool,
    /// When it happened.
    pub at: time::OffsetDateTime,
    /// The risk factors its login carried (`impossible_travel`, `new_country` …), from the record's
    /// `risk_factors` detail.
    pub risk_factors: Vec<String>,
    /// For a new device: whether it is news to its user (approved, and not the account's first).
    pub newsworthy_device: bool,
}

impl Observed {
    /// The user it is about: the actor of Palisade's own login, reuse, hijack and new-device records
    /// (whose subject is the session or the device), else the subject.
    pub fn user(&self) -> Option<&str> {
        let by_actor = !self.reported
            && matches!(
                self.event_type.name(),
                "LOGIN_SUCCESS" | "TOKEN_REUSE" | "SESSION_HIJACK_SUSPECTED" | "DEVICE_NEW"
            );
        if by_actor { self.actor.as_deref().or(self.subject.as_deref()) } else { self.subject.as_deref() }
    }
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
    /// Unusual activity: the length of one slot of a user's history.
    pub baseline_slot: Duration,
    /// Unusual activity: how many past slots make the baseline.
    pub baseline_slots: u32,
    /// Unusual activity: the least events in the current slot that may fire.
    pub baseline_min_events: u64,
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
            baseline_slot: Duration::minutes(15),
            baseline_slots: 16,
            baseline_min_events: 30,
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
    /// A login from too far, too fast after the one before (the risk engine's factor).
    ImpossibleTravel,
    /// A login from a country the user never logged in from (the risk engine's factor).
    NewCountry,
    /// A user's events in one slot far above their own recent slots (median and MAD).
    UnusualActivity,
}

impl Detector {
    /// Every detector.
    pub const ALL: [Self; 9] = [
        Self::BruteForce,
        Self::PasswordSpraying,
        Self::CredentialStuffing,
        Self::TokenReuse,
        Self::SessionHijack,
        Self::ApiKeyAbuse,
        Self::ImpossibleTravel,
        Self::NewCountry,
        Self::UnusualActivity,
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
            Self::ImpossibleTravel => "impossible_travel",
            Self::NewCountry => "new_country",
            Self::UnusualActivity => "unusual_activity",
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
            Self::UnusualActivity => {
                // One counter per user and slot; the current slot is counted, the past ones read.
                let Some(user) = event.user().filter(|_| BASELINE_TYPES.contains(&name)) else { return Vec::new() };
                let slot_seconds = t.baseline_slot.whole_seconds().max(1);
                let slot = event.at.unix_timestamp().div_euclid(slot_seconds);
                let keep = t.baseline_slot * (i32::try_from(t.baseline_slots).unwrap_or(i32::MAX).saturating_add(1));
                let mut windows = vec![hits(format!("{user}:{slot}"), keep)];
                windows.extend((1..=i64::from(t.baseline_slots)).map(|back| Window {
                    key: format!("{user}:{}", slot - back),
                    count: Count::Peek,
                    length: keep,
                }));
                windows
            }
            Self::TokenReuse | Self::SessionHijack | Self::ImpossibleTravel | Self::NewCountry => Vec::new(),
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
            Self::ImpossibleTravel | Self::NewCountry => {
                let (factor, severity, what) = match self {
                    Self::ImpossibleTravel => {
                        ("impossible_travel", Severity::High, "too far and too fast after the one before")
                    }
                    _ => ("new_country", Severity::Medium, "from a country never seen for this account"),
                };
                if !event.risk_factors.iter().any(|f| f == factor) {
                    return None;
                }
                let user = event.user().unwrap_or(subject);
                Some(Finding {
                    subject: format!("user:{user}"),
                    severity,
                    title: format!("a login to {user} {what}"),
                    details: serde_json::json!({ "ip": event.ip, "event_type": name, "risk_factors": event.risk_factors }),
                })
            }
            Self::UnusualActivity => {
                let (&current, history) = counts.split_first()?;
                let baseline = Baseline::of(history);
                let threshold = baseline.threshold(t.baseline_min_events);
                // Fires once per slot: when the count reaches the threshold (counts rise by one).
                if current != threshold || baseline.active_slots < BASELINE_MIN_ACTIVE_SLOTS {
                    return None;
                }
                let user = event.user()?;
                Some(Finding {
                    subject: format!("user:{user}"),
                    severity: Severity::Medium,
                    title: format!(
                        "{current} events of {user} in {} min, against a usual {} (median of the last {} slots)",
                        t.baseline_slot.whole_minutes(),
                        baseline.median,
                        history.len()
                    ),
                    details: serde_json::json!({
                        "events": current,
                        "median": baseline.median,
                        "mad": baseline.mad,
                        "threshold": threshold,
                        "slot_seconds": t.baseline_slot.whole_seconds(),
                        "history": history,
                    }),
                })
            }
        }
    }
}

/// The event types a user's activity baseline counts.
const BASELINE_TYPES: &[&str] = &[
    "LOGIN_SUCCESS",
    "LOGIN_FAILURE",
    "TOKEN_REFRESH",
    "DATA_ACCESS",
    "DATA_EXPORT",
    "DATA_DECRYPTED",
    "PERMISSION_DENIED",
    "API_KEY_CREATED",
    "PASSWORD_CHANGE",
];

/// Past slots with any activity a baseline needs before it may fire (a new or dormant account has
/// no "usual" to be far above; brute force and the other detectors still watch it).
pub const BASELINE_MIN_ACTIVE_SLOTS: usize = 3;

/// A user's usual activity: the median of their past slots and the median absolute deviation
/// around it (robust to the odd busy slot, unlike a mean and standard deviation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Baseline {
    /// The median count per slot.
    pub median: u64,
    /// The median absolute deviation from it.
    pub mad: u64,
    /// Past slots with at least one event.
    pub active_slots: usize,
}

impl Baseline {
    /// The baseline of `history` (counts per past slot; the lower middle value for an even count).
    pub fn of(history: &[u64]) -> Self {
        let middle = |values: &mut Vec<u64>| -> u64 {
            values.sort_unstable();
            values.get(values.len().saturating_sub(1) / 2).copied().unwrap_or(0)
        };
        let median = middle(&mut history.to_vec());
        let mad = middle(&mut history.iter().map(|c| c.abs_diff(median)).collect());
        Self { median, mad, active_slots: history.iter().filter(|c| **c > 0).count() }
    }

    /// The count that is unusual: the median plus the larger of 5 scaled MADs (1.4826 × MAD
    /// estimates the standard deviation of normal data; 5 of them is far in the tail) and 20
    /// events, and never below `min_events`.
    pub fn threshold(self, min_events: u64) -> u64 {
        // 5 × 1.4826 ≈ 7.413, in integer arithmetic rounded up.
        let spread = (self.mad * 7413).div_ceil(1000).max(20);
        (self.median + spread).max(min_events)
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
            reported: false,
            at: time::OffsetDateTime::UNIX_EPOCH + Duration::days(20_000),
            risk_factors: Vec::new(),
            newsworthy_device: false,
            event_type: EventType::parse(name).unwrap(),
            subject: subject.map(str::to_owned),
            ip: ip.map(str::to_owned),
        }
    }

    #[test]
    fn geo_detectors_fire_on_the_risk_factors_of_a_login() {
        let t = Thresholds::default();
        let travelled = Observed {
            actor: Some("user-7".into()),
            risk_factors: vec!["new_device".into(), "impossible_travel".into()],
            ..event("LOGIN_SUCCESS", Some("session-3"), Some("81.2.69.142"))
        };
        let found = Detector::ImpossibleTravel.judge(&travelled, &[], &t).unwrap();
        assert_eq!((found.subject.as_str(), found.severity), ("user:user-7", Severity::High));
        assert!(Detector::NewCountry.judge(&travelled, &[], &t).is_none(), "no new_country factor");
        let abroad =
            Observed { risk_factors: vec!["new_country".into()], ..event("RISK_BLOCKED", Some("alice"), None) };
        assert_eq!(Detector::NewCountry.judge(&abroad, &[], &t).unwrap().subject, "user:alice");
        assert!(Detector::ImpossibleTravel.judge(&abroad, &[], &t).is_none());
    }

    #[test]
    fn unusual_activity_compares_a_slot_with_the_users_own_median_and_mad() {
        let t = Thresholds::default();
        // A steady user: about 4 events per slot.
        let steady = [4, 5, 3, 4, 4, 6, 4, 3, 5, 4, 4, 4, 5, 3, 4, 4];
        let b = Baseline::of(&steady);
        assert_eq!((b.median, b.mad, b.active_slots), (4, 0, 16));
        assert_eq!(b.threshold(30), 30, "20 over a median of 4, but never below the minimum of 30");
        // A bursty user: the spread widens the band.
        let bursty = [0, 40, 2, 35, 1, 50, 3, 45, 0, 38, 2, 41, 1, 39, 0, 44];
        let b = Baseline::of(&bursty);
        assert_eq!((b.median, b.mad), (3, 3));
        assert_eq!(b.threshold(30), 30);
        let busy = [100, 110, 90, 105, 95, 100, 120, 80, 100, 100, 100, 100, 100, 100, 100, 100];
        let b = Baseline::of(&busy);
        assert_eq!((b.median, b.mad), (100, 0));
        assert_eq!(b.threshold(30), 120, "the median plus at least 20");
        let wide = [10, 30, 10, 30, 10, 30, 10, 30];
        let b = Baseline::of(&wide);
        assert_eq!((b.median, b.mad), (10, 0), "the lower middle of an even count");
        let spread = [10, 20, 30, 40, 50];
        let b = Baseline::of(&spread);
        assert_eq!((b.median, b.mad), (30, 10));
        assert_eq!(b.threshold(1), 30 + 75, "5 × 1.4826 × 10 = 74.1, rounded up");

        let login = Observed { actor: Some("user-7".into()), ..event("LOGIN_SUCCESS", Some("session"), None) };
        let mut counts = vec![30];
        counts.extend(steady);
        assert_eq!(Detector::UnusualActivity.judge(&login, &counts, &t).unwrap().subject, "user:user-7");
        counts[0] = 31;
        assert!(Detector::UnusualActivity.judge(&login, &counts, &t).is_none(), "once per slot, at the threshold");
        counts[0] = 29;
        assert!(Detector::UnusualActivity.judge(&login, &counts, &t).is_none());
        let mut dormant = vec![30, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 5];
        assert!(Detector::UnusualActivity.judge(&login, &dormant, &t).is_none(), "two active slots are no baseline");
        dormant[14] = 1;
        assert!(Detector::UnusualActivity.judge(&login, &dormant, &t).is_some(), "three are");
        // The windows: the current slot counted, the sixteen before read.
        let windows = Detector::UnusualActivity.windows(&login, &t);
        assert_eq!(windows.len(), 17);
        assert_eq!(windows[0].count, Count::Hits);
        assert!(windows[1..].iter().all(|w| w.count == Count::Peek));
        assert!(Detector::UnusualActivity.windows(&event("KEY_ROTATED", Some("x"), None), &t).is_empty());
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
