//! Table-driven tests of every factor and decision boundary, and the monotonicity property.
//!
//! Every table starts from one quiet [`Scenario::base`] (a known device logging in from Paris on a
//! Wednesday morning, as it always does) and changes one thing; a row names the factors that must
//! fire (with their contribution), the factors that must be absent (with the cause the reason must
//! name) and the score. Exact sets are compared, so a factor firing where it should not fails too.

use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use proptest::prelude::*;
use proptest::sample;
use time::{Date, Duration, Month, OffsetDateTime, Weekday};

use super::engine::{
    DeviceFamiliarity, FactorName, PastLogin, RiskAssessment, RiskContext, RiskDecision, RiskHistory, RiskSettings,
    RiskThresholds, RiskWeights, assess, combine,
};
use super::geo::{Anonymizer, GeoCapabilities, GeoInfo};

const PARIS: (f64, f64) = (48.8566, 2.3522);
const NEW_YORK: (f64, f64) = (40.7128, -74.0060);
/// 30 km due north of Paris (one degree of latitude is 111.19 km).
const NORTH_OF_PARIS: (f64, f64) = (48.8566 + 30.0 / 111.19, 2.3522);
const ADDRESS: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7));
const TOLERANCE: f64 = 1e-9;

/// A UTC instant in 2026.
fn utc(month: Month, day: u8, hour: u8, minute: u8) -> OffsetDateTime {
    Date::from_calendar_date(2026, month, day)
        .and_then(|date| date.with_hms(hour, minute, 0))
        .expect("a valid 2026 date and time")
        .assume_utc()
}

fn net(s: &str) -> IpNet {
    s.parse().expect("a valid network")
}

fn paris_login(at: OffsetDateTime) -> PastLogin {
    PastLogin { at, country: Some("FR".into()), asn: Some(3215), location: Some(PARIS), accuracy_km: Some(20) }
}

/// Settings, context and history of one login attempt.
#[derive(Debug, Clone)]
struct Scenario {
    settings: RiskSettings,
    context: RiskContext,
    history: RiskHistory,
}

impl Scenario {
    /// A known device, from Paris (FR, AS3215), Wednesday 2026-06-03 10:00 UTC, every GeoIP
    /// database loaded, no failures, and six past logins from Paris on weekdays between 09 and 11h:
    /// nothing fires.
    fn base() -> Self {
        let context = RiskContext {
            at: utc(Month::June, 3, 10, 0),
            ip: Some(ADDRESS),
            geo: GeoInfo {
                country: Some("FR".into()),
                city: Some("Paris".into()),
                location: Some(PARIS),
                accuracy_km: Some(20),
                asn: Some(3215),
                network_org: Some("Orange".into()),
                anonymizer: None,
            },
            geo_capabilities: GeoCapabilities { country: true, location: true, asn: true, anonymizer: true },
            device: DeviceFamiliarity::Known,
            account_failures: 0,
            address_failures: 0,
        };
        // Newest first: Tue, Mon, Fri, Thu, Wed, Tue.
        let logins = [
            utc(Month::June, 2, 9, 15),
            utc(Month::June, 1, 10, 40),
            utc(Month::May, 29, 11, 5),
            utc(Month::May, 28, 9, 50),
            utc(Month::May, 27, 10, 20),
            utc(Month::May, 26, 11, 30),
        ]
        .into_iter()
        .map(paris_login)
        .collect();
        Self { settings: RiskSettings::default(), context, history: RiskHistory { logins } }
    }

    fn assess(&self) -> RiskAssessment {
        assess(&self.settings, &self.context, &self.history)
    }

    /// Moves the newest past login to `ago` before the attempt (negative: after it).
    fn last_login_ago(&mut self, ago: Duration) {
        self.history.logins[0].at = self.context.at - ago;
    }

    /// Puts the attempt at `location` with no other change.
    fn from(&mut self, location: (f64, f64)) {
        self.context.geo.location = Some(location);
    }

    fn first_login(&mut self) {
        self.history.logins.clear();
    }

    fn allow_listed(&mut self) {
        self.settings.allow = vec![net("203.0.113.0/29")];
    }
}

/// A factor a row expects to fire.
struct Fired {
    name: FactorName,
    weight: f64,
    /// A part of the detail.
    detail: &'static str,
}

fn fired(name: FactorName, weight: f64, detail: &'static str) -> Fired {
    Fired { name, weight, detail }
}

struct Row {
    name: &'static str,
    change: fn(&mut Scenario),
    fired: Vec<Fired>,
    /// Absent factors and a part of the reason.
    absent: Vec<(FactorName, &'static str)>,
    score: f64,
}

/// The factors an allow-listed address skips.
fn allow_listed_absent() -> Vec<(FactorName, &'static str)> {
    [FactorName::NewNetwork, FactorName::AddressFailures, FactorName::DeniedAddress, FactorName::Anonymizer]
        .into_iter()
        .map(|name| (name, "allow list"))
        .collect()
}

/// The factors a first login cannot evaluate.
fn first_login_absent() -> Vec<(FactorName, &'static str)> {
    vec![
        (FactorName::NewDevice, "first login"),
        (FactorName::NewCountry, "first login"),
        (FactorName::NewNetwork, "first login"),
        (FactorName::ImpossibleTravel, "no past login with a known location"),
        (FactorName::UnusualHour, "fewer than 5 past logins"),
        (FactorName::UnusualWeekday, "fewer than 5 past logins"),
    ]
}

fn sorted(mut names: Vec<FactorName>) -> Vec<FactorName> {
    names.sort();
    names
}

/// Runs every row and fails with the list of every row that went wrong.
fn check(rows: Vec<Row>) {
    let mut failures = Vec::new();
    for row in rows {
        let mut scenario = Scenario::base();
        (row.change)(&mut scenario);
        let got = scenario.assess();
        let mut fail = |what: String| failures.push(format!("{}: {what}\n    got {got:?}", row.name));

        let want: Vec<FactorName> = sorted(row.fired.iter().map(|f| f.name).collect());
        let have: Vec<FactorName> = sorted(got.factors.iter().map(|f| f.name).collect());
        if want != have {
            fail(format!("factors fired {have:?}, expected {want:?}"));
        }
        for expected in &row.fired {
            if let Some(factor) = got.factors.iter().find(|f| f.name == expected.name) {
                if (factor.weight - expected.weight).abs() > TOLERANCE {
                    fail(format!("{:?} weighs {}, expected {}", expected.name, factor.weight, expected.weight));
                }
                if !factor.detail.contains(expected.detail) {
                    fail(format!("{:?} detail {:?} lacks {:?}", expected.name, factor.detail, expected.detail));
                }
            }
        }
        if got.factors.windows(2).any(|w| w[0].weight < w[1].weight) {
            fail("factors not strongest first".into());
        }

        let want: Vec<FactorName> = sorted(row.absent.iter().map(|(name, _)| *name).collect());
        let have: Vec<FactorName> = sorted(got.absent.iter().map(|a| a.name).collect());
        if want != have {
            fail(format!("factors absent {have:?}, expected {want:?}"));
        }
        for (name, cause) in &row.absent {
            if let Some(absent) = got.absent.iter().find(|a| a.name == *name)
                && !absent.reason.contains(cause)
            {
                fail(format!("{name:?} absent because {:?}, expected a mention of {cause:?}", absent.reason));
            }
        }

        if (got.score - row.score).abs() > TOLERANCE {
            fail(format!("score {}, expected {}", got.score, row.score));
        }
        let decision = RiskThresholds::default().decide(row.score);
        if got.decision != decision {
            fail(format!("decision {:?}, expected {decision:?}", got.decision));
        }
    }
    assert!(failures.is_empty(), "{} row(s) failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn the_base_scenario_is_a_quiet_wednesday_morning() {
    let scenario = Scenario::base();
    assert_eq!(scenario.context.at.weekday(), Weekday::Wednesday);
    assert_eq!(scenario.settings.validate(), Ok(()));
    let got = scenario.assess();
    assert_eq!(got, RiskAssessment { score: 0.0, decision: RiskDecision::Allow, factors: vec![], absent: vec![] });
}

#[test]
fn new_device() {
    check(vec![
        Row {
            name: "a new device fires",
            change: |s| s.context.device = DeviceFamiliarity::New,
            fired: vec![fired(FactorName::NewDevice, 0.25, "first login from this device")],
            absent: vec![],
            score: 0.25,
        },
        Row { name: "a known device is quiet", change: |_| {}, fired: vec![], absent: vec![], score: 0.0 },
        Row {
            name: "a trusted device only discounts",
            change: |s| s.context.device = DeviceFamiliarity::Trusted,
            fired: vec![fired(FactorName::TrustedDevice, 0.5, "trusts")],
            absent: vec![],
            score: 0.0,
        },
        Row {
            name: "a new device on a first login is absent",
            change: |s| {
                s.context.device = DeviceFamiliarity::New;
                s.first_login();
            },
            fired: vec![],
            absent: first_login_absent(),
            score: 0.0,
        },
    ]);
}

#[test]
fn new_country() {
    check(vec![
        Row {
            name: "a new country fires",
            change: |s| s.context.geo.country = Some("US".into()),
            fired: vec![fired(FactorName::NewCountry, 0.35, "first login from US")],
            absent: vec![],
            score: 0.35,
        },
        Row {
            name: "a country seen in the oldest login is quiet",
            change: |s| {
                s.context.geo.country = Some("US".into());
                s.history.logins[5].country = Some("US".into());
            },
            fired: vec![],
            absent: vec![],
            score: 0.0,
        },
        Row {
            name: "no country database",
            change: |s| {
                s.context.geo.country = Some("US".into());
                s.context.geo_capabilities.country = false;
            },
            fired: vec![],
            absent: vec![(FactorName::NewCountry, "no GeoIP country database")],
            score: 0.0,
        },
        Row {
            name: "the address is not in the database",
            change: |s| s.context.geo.country = None,
            fired: vec![],
            absent: vec![(FactorName::NewCountry, "address not in the GeoIP database")],
            score: 0.0,
        },
        Row {
            name: "no past login with a country",
            change: |s| {
                s.context.geo.country = Some("US".into());
                s.history.logins.iter_mut().for_each(|l| l.country = None);
            },
            fired: vec![],
            absent: vec![(FactorName::NewCountry, "no past login with a known country")],
            score: 0.0,
        },
        Row {
            name: "a new country on a first login is absent",
            change: |s| {
                s.context.geo.country = Some("US".into());
                s.first_login();
            },
            fired: vec![],
            absent: first_login_absent(),
            score: 0.0,
        },
    ]);
}

#[test]
fn new_network() {
    check(vec![
        Row {
            name: "a new ASN fires",
            change: |s| s.context.geo.asn = Some(16509),
            fired: vec![fired(FactorName::NewNetwork, 0.15, "AS16509")],
            absent: vec![],
            score: 0.15,
        },
        Row {
            name: "no ASN database",
            change: |s| {
                s.context.geo.asn = Some(16509);
                s.context.geo_capabilities.asn = false;
            },
            fired: vec![],
            absent: vec![(FactorName::NewNetwork, "no GeoIP ASN database")],
            score: 0.0,
        },
        Row {
            name: "the address is not in the ASN database",
            change: |s| s.context.geo.asn = None,
            fired: vec![],
            absent: vec![(FactorName::NewNetwork, "address not in the ASN database")],
            score: 0.0,
        },
        Row {
            name: "no past login with a network",
            change: |s| {
                s.context.geo.asn = Some(16509);
                s.history.logins.iter_mut().for_each(|l| l.asn = None);
            },
            fired: vec![],
            absent: vec![(FactorName::NewNetwork, "no past login with a known network")],
            score: 0.0,
        },
        Row {
            name: "an allow-listed address skips the new network",
            change: |s| {
                s.context.geo.asn = Some(16509);
                s.allow_listed();
            },
            fired: vec![],
            absent: allow_listed_absent(),
            score: 0.0,
        },
    ]);
}

#[test]
fn impossible_travel() {
    check(vec![
        Row {
            name: "Paris to New York in 1 h fires",
            change: |s| {
                s.from(NEW_YORK);
                s.last_login_ago(Duration::hours(1));
            },
            fired: vec![fired(FactorName::ImpossibleTravel, 0.7, "km/h")],
            absent: vec![],
            score: 0.7,
        },
        Row {
            // 5837 km less 40 km of accuracy radii in 6 h: 966 km/h.
            name: "Paris to New York in 6 h fires",
            change: |s| {
                s.from(NEW_YORK);
                s.last_login_ago(Duration::hours(6));
            },
            fired: vec![fired(FactorName::ImpossibleTravel, 0.7, "> 900 km/h")],
            absent: vec![],
            score: 0.7,
        },
        Row {
            // 828 km/h.
            name: "Paris to New York in 7 h is a flight",
            change: |s| {
                s.from(NEW_YORK);
                s.last_login_ago(Duration::hours(7));
            },
            fired: vec![],
            absent: vec![],
            score: 0.0,
        },
        Row {
            name: "Paris to New York in 10 h is a flight",
            change: |s| {
                s.from(NEW_YORK);
                s.last_login_ago(Duration::hours(10));
            },
            fired: vec![],
            absent: vec![],
            score: 0.0,
        },
        Row {
            name: "a faster airliner setting lets 6 h pass",
            change: |s| {
                s.settings.max_travel_kmh = 1000.0;
                s.from(NEW_YORK);
                s.last_login_ago(Duration::hours(6));
            },
            fired: vec![],
            absent: vec![],
            score: 0.0,
        },
        Row {
            name: "accuracy radii absorb 30 km in a minute",
            change: |s| {
                s.from(NORTH_OF_PARIS);
                s.last_login_ago(Duration::minutes(1));
            },
            fired: vec![],
            absent: vec![],
            score: 0.0,
        },
        Row {
            name: "without radii 30 km in a minute fires",
            change: |s| {
                s.from(NORTH_OF_PARIS);
                s.context.geo.accuracy_km = None;
                s.last_login_ago(Duration::minutes(1));
                s.history.logins[0].accuracy_km = None;
            },
            fired: vec![fired(FactorName::ImpossibleTravel, 0.7, "30 km")],
            absent: vec![],
            score: 0.7,
        },
        Row {
            // 10 h of flight the other way would be possible: the order of the clocks is not trusted.
            name: "a login before the last one counts as simultaneous",
            change: |s| {
                s.from(NEW_YORK);
                s.last_login_ago(-Duration::hours(10));
            },
            fired: vec![fired(FactorName::ImpossibleTravel, 0.7, "km/h")],
            absent: vec![],
            score: 0.7,
        },
        Row {
            name: "the attempt's own radius counts",
            change: |s| {
                s.from(NORTH_OF_PARIS);
                s.context.geo.accuracy_km = Some(25);
                s.last_login_ago(Duration::minutes(1));
                s.history.logins[0].accuracy_km = None;
            },
            fired: vec![],
            absent: vec![],
            score: 0.0,
        },
        Row {
            name: "the last login's radius counts",
            change: |s| {
                s.from(NORTH_OF_PARIS);
                s.context.geo.accuracy_km = None;
                s.last_login_ago(Duration::minutes(1));
                s.history.logins[0].accuracy_km = Some(25);
            },
            fired: vec![],
            absent: vec![],
            score: 0.0,
        },
        Row {
            name: "a login before the last one from the same place is quiet",
            change: |s| s.last_login_ago(-Duration::hours(1)),
            fired: vec![],
            absent: vec![],
            score: 0.0,
        },
        Row {
            name: "compares with the newest login that has a location",
            change: |s| {
                s.from(NEW_YORK);
                s.last_login_ago(Duration::hours(1));
                s.history.logins[0].location = None;
            },
            fired: vec![],
            absent: vec![],
            score: 0.0,
        },
        Row {
            name: "the address has no location",
            change: |s| {
                s.context.geo.location = None;
                s.last_login_ago(Duration::hours(1));
            },
            fired: vec![],
            absent: vec![(FactorName::ImpossibleTravel, "address has no location")],
            score: 0.0,
        },
        Row {
            name: "no city database",
            change: |s| {
                s.from(NEW_YORK);
                s.last_login_ago(Duration::hours(1));
                s.context.geo_capabilities.location = false;
            },
            fired: vec![],
            absent: vec![(FactorName::ImpossibleTravel, "no GeoIP city database")],
            score: 0.0,
        },
        Row {
            name: "no past login with a location",
            change: |s| {
                s.from(NEW_YORK);
                s.history.logins.iter_mut().for_each(|l| l.location = None);
            },
            fired: vec![],
            absent: vec![(FactorName::ImpossibleTravel, "no past login with a known location")],
            score: 0.0,
        },
    ]);
}

#[test]
fn failures() {
    check(vec![
        Row {
            name: "3 account failures of 5",
            change: |s| s.context.account_failures = 3,
            fired: vec![fired(FactorName::AccountFailures, 0.18, "3 failed")],
            absent: vec![],
            score: 0.18,
        },
        Row {
            name: "1 account failure of 5",
            change: |s| s.context.account_failures = 1,
            fired: vec![fired(FactorName::AccountFailures, 0.06, "1 failed")],
            absent: vec![],
            score: 0.06,
        },
        Row {
            name: "5 account failures saturate",
            change: |s| s.context.account_failures = 5,
            fired: vec![fired(FactorName::AccountFailures, 0.3, "5 failed")],
            absent: vec![],
            score: 0.3,
        },
        Row {
            name: "10 account failures are capped",
            change: |s| s.context.account_failures = 10,
            fired: vec![fired(FactorName::AccountFailures, 0.3, "10 failed")],
            absent: vec![],
            score: 0.3,
        },
        Row {
            name: "a saturation of 2",
            change: |s| {
                s.settings.account_failures_saturation = 2;
                s.context.account_failures = 1;
            },
            fired: vec![fired(FactorName::AccountFailures, 0.15, "1 failed")],
            absent: vec![],
            score: 0.15,
        },
        Row {
            name: "account failures count on an allow-listed address",
            change: |s| {
                s.context.account_failures = 3;
                s.allow_listed();
            },
            fired: vec![fired(FactorName::AccountFailures, 0.18, "on the account")],
            absent: allow_listed_absent(),
            score: 0.18,
        },
        Row {
            name: "5 address failures of 20",
            change: |s| s.context.address_failures = 5,
            fired: vec![fired(FactorName::AddressFailures, 0.0875, "5 failed login(s) from the address")],
            absent: vec![],
            score: 0.0875,
        },
        Row {
            name: "20 address failures saturate",
            change: |s| s.context.address_failures = 20,
            fired: vec![fired(FactorName::AddressFailures, 0.35, "20 failed")],
            absent: vec![],
            score: 0.35,
        },
        Row {
            name: "40 address failures are capped",
            change: |s| s.context.address_failures = 40,
            fired: vec![fired(FactorName::AddressFailures, 0.35, "40 failed")],
            absent: vec![],
            score: 0.35,
        },
        Row {
            name: "address failures are skipped for an allow-listed address",
            change: |s| {
                s.context.address_failures = 40;
                s.allow_listed();
            },
            fired: vec![],
            absent: allow_listed_absent(),
            score: 0.0,
        },
    ]);
}

#[test]
fn unusual_hour() {
    check(vec![
        Row {
            name: "03:00 against 09-11h fires",
            change: |s| s.context.at = utc(Month::June, 3, 3, 0),
            fired: vec![fired(FactorName::UnusualHour, 0.1, "03:00")],
            absent: vec![],
            score: 0.1,
        },
        Row {
            name: "07:00 is two hours before 09",
            change: |s| s.context.at = utc(Month::June, 3, 7, 59),
            fired: vec![fired(FactorName::UnusualHour, 0.1, "07:00")],
            absent: vec![],
            score: 0.1,
        },
        Row {
            name: "08:00 is within an hour of 09",
            change: |s| s.context.at = utc(Month::June, 3, 8, 0),
            fired: vec![],
            absent: vec![],
            score: 0.0,
        },
        Row {
            name: "12:00 is within an hour of 11",
            change: |s| s.context.at = utc(Month::June, 3, 12, 59),
            fired: vec![],
            absent: vec![],
            score: 0.0,
        },
        Row {
            name: "13:00 is two hours after 11",
            change: |s| s.context.at = utc(Month::June, 3, 13, 0),
            fired: vec![fired(FactorName::UnusualHour, 0.1, "13:00")],
            absent: vec![],
            score: 0.1,
        },
        Row {
            name: "00:30 is within an hour of 23:00 across midnight",
            change: |s| {
                for login in &mut s.history.logins {
                    login.at = login.at.replace_hour(23).expect("23 is an hour");
                }
                s.context.at = utc(Month::June, 3, 0, 30);
            },
            fired: vec![],
            absent: vec![],
            score: 0.0,
        },
        Row {
            name: "02:00 is three hours after 23:00",
            change: |s| {
                for login in &mut s.history.logins {
                    login.at = login.at.replace_hour(23).expect("23 is an hour");
                }
                s.context.at = utc(Month::June, 3, 2, 0);
            },
            fired: vec![fired(FactorName::UnusualHour, 0.1, "02:00")],
            absent: vec![],
            score: 0.1,
        },
        Row {
            name: "4 past logins are too few",
            change: |s| {
                s.history.logins.truncate(4);
                s.context.at = utc(Month::June, 7, 3, 0);
            },
            fired: vec![],
            absent: vec![
                (FactorName::UnusualHour, "fewer than 5 past logins"),
                (FactorName::UnusualWeekday, "fewer than 5 past logins"),
            ],
            score: 0.0,
        },
        Row {
            // Sunday 03:00: both habits broken, 1 − 0.9·0.95.
            name: "5 past logins are enough",
            change: |s| {
                s.history.logins.truncate(5);
                s.context.at = utc(Month::June, 7, 3, 0);
            },
            fired: vec![
                fired(FactorName::UnusualHour, 0.1, "03:00"),
                fired(FactorName::UnusualWeekday, 0.05, "Sunday"),
            ],
            absent: vec![],
            score: 0.145,
        },
        Row {
            name: "a custom minimum history",
            change: |s| {
                s.settings.min_history_for_time = 7;
                s.context.at = utc(Month::June, 3, 3, 0);
            },
            fired: vec![],
            absent: vec![
                (FactorName::UnusualHour, "fewer than 7 past logins"),
                (FactorName::UnusualWeekday, "fewer than 7 past logins"),
            ],
            score: 0.0,
        },
    ]);
}

#[test]
fn unusual_weekday() {
    check(vec![
        Row {
            name: "a Sunday against a weekday history fires",
            change: |s| s.context.at = utc(Month::June, 7, 10, 0),
            fired: vec![fired(FactorName::UnusualWeekday, 0.05, "Sunday")],
            absent: vec![],
            score: 0.05,
        },
        Row {
            name: "a Saturday against a weekday history fires",
            change: |s| s.context.at = utc(Month::June, 6, 10, 0),
            fired: vec![fired(FactorName::UnusualWeekday, 0.05, "Saturday")],
            absent: vec![],
            score: 0.05,
        },
        Row {
            name: "a Thursday is usual",
            change: |s| s.context.at = utc(Month::June, 4, 10, 0),
            fired: vec![],
            absent: vec![],
            score: 0.0,
        },
    ]);
}

#[test]
fn denied_address() {
    check(vec![
        Row {
            name: "a denied address blocks even a trusted device",
            change: |s| {
                s.settings.deny = vec![net("203.0.113.0/24")];
                s.context.device = DeviceFamiliarity::Trusted;
            },
            fired: vec![fired(FactorName::DeniedAddress, 1.0, "deny list")],
            absent: vec![],
            score: 1.0,
        },
        Row {
            name: "the allow list overrides the deny list",
            change: |s| {
                s.settings.deny = vec![net("203.0.113.0/24")];
                s.allow_listed();
            },
            fired: vec![],
            absent: allow_listed_absent(),
            score: 0.0,
        },
        Row {
            name: "an allow list that does not contain the address does not override",
            change: |s| {
                s.settings.deny = vec![net("203.0.113.0/24")];
                s.settings.allow = vec![net("203.0.113.8/29")];
            },
            fired: vec![fired(FactorName::DeniedAddress, 1.0, "deny list")],
            absent: vec![],
            score: 1.0,
        },
        Row {
            name: "a deny list elsewhere is quiet",
            change: |s| s.settings.deny = vec![net("198.51.100.0/24"), net("2001:db8::/32")],
            fired: vec![],
            absent: vec![],
            score: 0.0,
        },
        Row {
            name: "no address, nothing denied",
            change: |s| {
                s.settings.deny = vec![net("0.0.0.0/0")];
                s.context.ip = None;
            },
            fired: vec![],
            absent: vec![],
            score: 0.0,
        },
    ]);
}

#[test]
fn anonymizer() {
    check(vec![
        Row {
            name: "a Tor exit is full strength",
            change: |s| s.context.geo.anonymizer = Some(Anonymizer { tor_exit: true, ..Anonymizer::default() }),
            fired: vec![fired(FactorName::Anonymizer, 0.45, "tor_exit")],
            absent: vec![],
            score: 0.45,
        },
        Row {
            name: "a public proxy is full strength",
            change: |s| s.context.geo.anonymizer = Some(Anonymizer { public_proxy: true, ..Anonymizer::default() }),
            fired: vec![fired(FactorName::Anonymizer, 0.45, "public_proxy")],
            absent: vec![],
            score: 0.45,
        },
        Row {
            name: "an anonymous VPN is 0.8",
            change: |s| s.context.geo.anonymizer = Some(Anonymizer { anonymous_vpn: true, ..Anonymizer::default() }),
            fired: vec![fired(FactorName::Anonymizer, 0.36, "anonymous_vpn")],
            absent: vec![],
            score: 0.36,
        },
        Row {
            name: "a hosting provider is 0.5",
            change: |s| {
                s.context.geo.anonymizer = Some(Anonymizer { hosting_provider: true, ..Anonymizer::default() });
            },
            fired: vec![fired(FactorName::Anonymizer, 0.225, "hosting_provider")],
            absent: vec![],
            score: 0.225,
        },
        Row {
            name: "the strongest flag counts, every flag is named",
            change: |s| {
                s.context.geo.anonymizer =
                    Some(Anonymizer { tor_exit: true, hosting_provider: true, ..Anonymizer::default() });
            },
            fired: vec![fired(FactorName::Anonymizer, 0.45, "tor_exit, hosting_provider")],
            absent: vec![],
            score: 0.45,
        },
        Row {
            name: "no flag is quiet",
            change: |s| s.context.geo.anonymizer = Some(Anonymizer::default()),
            fired: vec![],
            absent: vec![],
            score: 0.0,
        },
        Row {
            name: "no anonymous-IP database",
            change: |s| {
                s.context.geo.anonymizer = Some(Anonymizer { tor_exit: true, ..Anonymizer::default() });
                s.context.geo_capabilities.anonymizer = false;
            },
            fired: vec![],
            absent: vec![(FactorName::Anonymizer, "no GeoIP anonymous-IP database")],
            score: 0.0,
        },
        Row {
            name: "an allow-listed anonymizer is skipped",
            change: |s| {
                s.context.geo.anonymizer = Some(Anonymizer { tor_exit: true, ..Anonymizer::default() });
                s.allow_listed();
            },
            fired: vec![],
            absent: allow_listed_absent(),
            score: 0.0,
        },
    ]);
}

#[test]
fn trusted_device() {
    check(vec![
        Row {
            name: "a trusted device halves the score",
            change: |s| {
                s.context.device = DeviceFamiliarity::Trusted;
                s.context.geo.country = Some("US".into());
            },
            fired: vec![fired(FactorName::NewCountry, 0.35, "US"), fired(FactorName::TrustedDevice, 0.5, "trusts")],
            absent: vec![],
            score: 0.175,
        },
        Row {
            name: "a custom discount",
            change: |s| {
                s.settings.weights.trusted_device = 0.2;
                s.context.device = DeviceFamiliarity::Trusted;
                s.context.geo.country = Some("US".into());
            },
            fired: vec![fired(FactorName::NewCountry, 0.35, "US"), fired(FactorName::TrustedDevice, 0.2, "trusts")],
            absent: vec![],
            score: 0.28,
        },
        Row {
            name: "a zero discount is not listed",
            change: |s| {
                s.settings.weights.trusted_device = 0.0;
                s.context.device = DeviceFamiliarity::Trusted;
                s.context.geo.country = Some("US".into());
            },
            fired: vec![fired(FactorName::NewCountry, 0.35, "US")],
            absent: vec![],
            score: 0.35,
        },
        Row {
            name: "a known device is not discounted",
            change: |s| s.context.geo.country = Some("US".into()),
            fired: vec![fired(FactorName::NewCountry, 0.35, "US")],
            absent: vec![],
            score: 0.35,
        },
    ]);
}

#[test]
fn a_zero_weight_silences_its_factor() {
    check(vec![Row {
        name: "new_device weighs nothing",
        change: |s| {
            s.settings.weights.new_device = 0.0;
            s.context.device = DeviceFamiliarity::New;
        },
        fired: vec![],
        absent: vec![],
        score: 0.0,
    }]);
}

#[test]
fn decision_boundaries_are_strict() {
    let defaults = RiskThresholds::default();
    assert_eq!((defaults.mfa, defaults.enhanced, defaults.block), (0.2, 0.5, 0.8));
    let custom = RiskThresholds { mfa: 0.1, enhanced: 0.3, block: 0.6 };
    let degenerate = RiskThresholds { mfa: 0.5, enhanced: 0.5, block: 0.5 };
    let never_block = RiskThresholds { mfa: 0.0, enhanced: 0.9, block: 1.0 };
    use RiskDecision::{Allow, Block, EnhancedMfa, Mfa};
    let rows = [
        (defaults, 0.0, Allow),
        (defaults, 0.2, Allow),
        (defaults, 0.200_000_1, Mfa),
        (defaults, 0.5, Mfa),
        (defaults, 0.500_01, EnhancedMfa),
        (defaults, 0.8, EnhancedMfa),
        (defaults, 0.800_01, Block),
        (defaults, 1.0, Block),
        (custom, 0.1, Allow),
        (custom, 0.100_01, Mfa),
        (custom, 0.3, Mfa),
        (custom, 0.300_01, EnhancedMfa),
        (custom, 0.6, EnhancedMfa),
        (custom, 0.600_01, Block),
        (degenerate, 0.5, Allow),
        (degenerate, 0.500_01, Block),
        (never_block, 0.0, Allow),
        (never_block, 0.000_1, Mfa),
        (never_block, 1.0, EnhancedMfa),
    ];
    for (thresholds, score, expected) in rows {
        assert_eq!(thresholds.decide(score), expected, "{score} with {thresholds:?}");
    }
}

#[test]
fn a_score_on_a_threshold_stays_on_its_side() {
    // The engine rounds to 4 decimals: a single factor of weight 0.2 scores 0.2, not above it.
    let mut scenario = Scenario::base();
    scenario.context.device = DeviceFamiliarity::New;
    scenario.settings.weights.new_device = 0.2;
    let got = scenario.assess();
    assert_eq!((got.score, got.decision), (0.2, RiskDecision::Allow));
    scenario.settings.weights.new_device = 0.2001;
    let got = scenario.assess();
    assert_eq!((got.score, got.decision), (0.2001, RiskDecision::Mfa));
}

#[test]
fn factors_combine_as_a_noisy_or_end_to_end() {
    struct Combination {
        name: &'static str,
        change: fn(&mut Scenario),
        score: f64,
        decision: RiskDecision,
    }
    let rows = [
        Combination {
            // 1 − 0.75·0.65 (a sum would be 0.6).
            name: "new device and new country",
            change: |s| {
                s.context.device = DeviceFamiliarity::New;
                s.context.geo.country = Some("US".into());
            },
            score: 0.5125,
            decision: RiskDecision::EnhancedMfa,
        },
        Combination {
            // 1 − 0.85·0.9 (a sum would be 0.25).
            name: "new network at an unusual hour",
            change: |s| {
                s.context.geo.asn = Some(16509);
                s.context.at = utc(Month::June, 3, 3, 0);
            },
            score: 0.235,
            decision: RiskDecision::Mfa,
        },
        Combination {
            // 1 − 0.75·0.65·0.85·0.7 = 0.7099375 (a sum would be 1.05, a block).
            name: "new device, country and network after 10 failures",
            change: |s| {
                s.context.device = DeviceFamiliarity::New;
                s.context.geo.country = Some("US".into());
                s.context.geo.asn = Some(16509);
                s.context.account_failures = 10;
            },
            score: 0.7099,
            decision: RiskDecision::EnhancedMfa,
        },
        Combination {
            // 1 − 0.65·0.3 = 0.805, just above the block threshold.
            name: "to New York in an hour, a new country",
            change: |s| {
                s.from(NEW_YORK);
                s.context.geo.country = Some("US".into());
                s.last_login_ago(Duration::hours(1));
            },
            score: 0.805,
            decision: RiskDecision::Block,
        },
        Combination {
            // The same, halved by a trusted device.
            name: "to New York in an hour, a new country, a trusted device",
            change: |s| {
                s.from(NEW_YORK);
                s.context.geo.country = Some("US".into());
                s.last_login_ago(Duration::hours(1));
                s.context.device = DeviceFamiliarity::Trusted;
            },
            score: 0.4025,
            decision: RiskDecision::Mfa,
        },
    ];
    for row in rows {
        let mut scenario = Scenario::base();
        (row.change)(&mut scenario);
        let got = scenario.assess();
        assert!((got.score - row.score).abs() < 5e-5, "{}: score {}, expected {}", row.name, got.score, row.score);
        assert_eq!(got.decision, row.decision, "{}", row.name);
    }
}

#[test]
fn combine_is_a_noisy_or() {
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert_eq!(combine([]), 0.0);
    assert!(close(combine([0.37]), 0.37));
    assert!(close(combine([0.3, 0.3]), 0.51));
    assert!(close(combine([0.5, 0.5, 0.5]), 0.875));
    assert_eq!(combine([1.0, 0.2]), 1.0);
    assert_eq!(combine([0.0, 0.0]), 0.0);
    // Out of range contributions are clamped first.
    assert_eq!(combine([1.5]), 1.0);
    assert_eq!(combine([-0.5]), 0.0);
    assert!(close(combine([-0.5, 0.3]), 0.3));
    assert_eq!(combine([2.0, 0.3]), 1.0);
    // Order does not matter.
    let orders = [[0.1, 0.2, 0.7], [0.7, 0.1, 0.2], [0.2, 0.7, 0.1]];
    for order in orders {
        assert!(close(combine(order), 1.0 - 0.9 * 0.8 * 0.3), "{order:?}");
    }
}

#[test]
fn validate_names_the_problem() {
    assert_eq!(RiskSettings::default().validate(), Ok(()));
    type Change = fn(&mut RiskSettings);
    let fine: [(&str, Change); 4] = [
        ("equal thresholds", |s| s.thresholds = RiskThresholds { mfa: 0.5, enhanced: 0.5, block: 0.5 }),
        ("extreme thresholds", |s| s.thresholds = RiskThresholds { mfa: 0.0, enhanced: 0.0, block: 1.0 }),
        ("weights at the bounds", |s| {
            s.weights.new_device = 0.0;
            s.weights.anonymizer = 1.0;
        }),
        ("saturations of 1", |s| {
            s.account_failures_saturation = 1;
            s.address_failures_saturation = 1;
        }),
    ];
    for (name, change) in fine {
        let mut settings = RiskSettings::default();
        change(&mut settings);
        assert_eq!(settings.validate(), Ok(()), "{name}");
    }
    let wrong: [(&str, Change, &str); 14] = [
        ("mfa above enhanced", |s| s.thresholds.mfa = 0.6, "thresholds"),
        ("enhanced above block", |s| s.thresholds.enhanced = 0.9, "thresholds"),
        ("block above 1", |s| s.thresholds.block = 1.1, "thresholds"),
        ("mfa below 0", |s| s.thresholds.mfa = -0.1, "thresholds"),
        ("NaN threshold", |s| s.thresholds.enhanced = f64::NAN, "thresholds"),
        ("NaN weight", |s| s.weights.new_country = f64::NAN, "new_country"),
        ("weight above 1", |s| s.weights.anonymizer = 1.5, "anonymizer"),
        ("negative weight", |s| s.weights.unusual_weekday = -0.01, "unusual_weekday"),
        ("discount above 1", |s| s.weights.trusted_device = 1.01, "trusted_device"),
        ("zero speed", |s| s.max_travel_kmh = 0.0, "travel speed"),
        ("negative speed", |s| s.max_travel_kmh = -900.0, "travel speed"),
        ("infinite speed", |s| s.max_travel_kmh = f64::INFINITY, "travel speed"),
        ("zero account saturation", |s| s.account_failures_saturation = 0, "saturation"),
        ("zero address saturation", |s| s.address_failures_saturation = 0, "saturation"),
    ];
    for (name, change, mention) in wrong {
        let mut settings = RiskSettings::default();
        change(&mut settings);
        match settings.validate() {
            Ok(()) => panic!("{name}: accepted"),
            Err(message) => assert!(message.contains(mention), "{name}: {message:?} lacks {mention:?}"),
        }
    }
}

// Property tests.

const COUNTRIES: &[&str] = &["FR", "DE", "US", "JP"];
const ASNS: &[u32] = &[3215, 3320, 7922, 2516];
const PLACES: &[(f64, f64)] = &[PARIS, NORTH_OF_PARIS, NEW_YORK, (35.6762, 139.6503), (-33.8688, 151.2093)];
const ADDRESSES: &[IpAddr] = &[
    ADDRESS,
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, 20)),
    IpAddr::V6(std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
];
const NETS: &[&str] = &["203.0.113.0/24", "203.0.113.7/32", "198.51.100.0/24", "2001:db8::/32", "0.0.0.0/0"];
/// Neither in `COUNTRIES` nor in `ASNS`.
const UNSEEN_COUNTRY: &str = "ZZ";
const UNSEEN_ASN: u32 = 4_200_000_000;

fn arb_anonymizer() -> impl Strategy<Value = Anonymizer> {
    any::<[bool; 4]>().prop_map(|[tor_exit, public_proxy, anonymous_vpn, hosting_provider]| Anonymizer {
        tor_exit,
        public_proxy,
        anonymous_vpn,
        hosting_provider,
    })
}

fn arb_country() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(sample::select(COUNTRIES).prop_map(str::to_owned))
}

fn arb_nets() -> impl Strategy<Value = Vec<IpNet>> {
    sample::subsequence(NETS, 0..=2).prop_map(|nets| nets.into_iter().map(net).collect())
}

prop_compose! {
    fn arb_settings()(
        weights in proptest::array::uniform10(0.0..=1.0_f64),
        mut thresholds in proptest::array::uniform3(0.0..=1.0_f64),
        max_travel_kmh in 100.0..2000.0_f64,
        account_failures_saturation in 1..30_u32,
        address_failures_saturation in 1..30_u32,
        min_history_for_time in 0..8_usize,
        deny in arb_nets(),
        allow in arb_nets(),
    ) -> RiskSettings {
        thresholds.sort_by(f64::total_cmp);
        let mut settings = RiskSettings {
            thresholds: RiskThresholds { mfa: thresholds[0], enhanced: thresholds[1], block: thresholds[2] },
            weights: RiskWeights::default(),
            max_travel_kmh,
            account_failures_saturation,
            address_failures_saturation,
            min_history_for_time,
            deny,
            allow,
            ..RiskSettings::default()
        };
        let settable = FactorName::ALL.into_iter().filter(|f| *f != FactorName::DeniedAddress);
        for (factor, weight) in settable.zip(weights) {
            settings.weights.set(factor, weight);
        }
        settings
    }
}

prop_compose! {
    fn arb_context()(
        minutes in -43_200..43_200_i64,
        ip in proptest::option::of(sample::select(ADDRESSES)),
        country in arb_country(),
        location in proptest::option::of(sample::select(PLACES)),
        accuracy_km in proptest::option::of(0..200_u32),
        asn in proptest::option::of(sample::select(ASNS)),
        anonymizer in proptest::option::of(arb_anonymizer()),
        capabilities in any::<[bool; 4]>(),
        device in sample::select(&[DeviceFamiliarity::New, DeviceFamiliarity::Known, DeviceFamiliarity::Trusted][..]),
        account_failures in 0..50_u64,
        address_failures in 0..50_u64,
    ) -> RiskContext {
        let [country_db, location_db, asn_db, anonymizer_db] = capabilities;
        RiskContext {
            at: utc(Month::June, 3, 10, 0) + Duration::minutes(minutes),
            ip,
            geo: GeoInfo { country, city: None, location, accuracy_km, asn, network_org: None, anonymizer },
            geo_capabilities: GeoCapabilities {
                country: country_db,
                location: location_db,
                asn: asn_db,
                anonymizer: anonymizer_db,
            },
            device,
            account_failures,
            address_failures,
        }
    }
}

prop_compose! {
    fn arb_login()(
        minutes in -1_440..129_600_i64,
        country in arb_country(),
        asn in proptest::option::of(sample::select(ASNS)),
        location in proptest::option::of(sample::select(PLACES)),
        accuracy_km in proptest::option::of(0..200_u32),
    ) -> PastLogin {
        PastLogin { at: utc(Month::June, 3, 10, 0) - Duration::minutes(minutes), country, asn, location, accuracy_km }
    }
}

prop_compose! {
    fn arb_scenario()(
        settings in arb_settings(),
        context in arb_context(),
        mut logins in proptest::collection::vec(arb_login(), 0..10),
    ) -> Scenario {
        logins.sort_by_key(|login| std::cmp::Reverse(login.at));
        Scenario { settings, context, history: RiskHistory { logins } }
    }
}

/// A change that makes one factor stronger (or leaves it as it is).
#[derive(Debug, Clone, Copy)]
enum Stronger {
    AccountFailures,
    AddressFailures,
    NewDevice,
    UntrustedDevice,
    UnseenCountry,
    UnseenNetwork,
    AnonymizerFlag(usize),
    Denied,
}

impl Stronger {
    const ALL: [Self; 11] = [
        Self::AccountFailures,
        Self::AddressFailures,
        Self::NewDevice,
        Self::UntrustedDevice,
        Self::UnseenCountry,
        Self::UnseenNetwork,
        Self::AnonymizerFlag(0),
        Self::AnonymizerFlag(1),
        Self::AnonymizerFlag(2),
        Self::AnonymizerFlag(3),
        Self::Denied,
    ];

    fn apply(self, scenario: &mut Scenario, more: u64) {
        let context = &mut scenario.context;
        match self {
            Self::AccountFailures => context.account_failures += more,
            Self::AddressFailures => context.address_failures += more,
            Self::NewDevice => context.device = DeviceFamiliarity::New,
            Self::UntrustedDevice => {
                if context.device == DeviceFamiliarity::Trusted {
                    context.device = DeviceFamiliarity::Known;
                }
            }
            Self::UnseenCountry => context.geo.country = Some(UNSEEN_COUNTRY.into()),
            Self::UnseenNetwork => context.geo.asn = Some(UNSEEN_ASN),
            Self::AnonymizerFlag(flag) => {
                let flags = context.geo.anonymizer.get_or_insert_with(Anonymizer::default);
                match flag {
                    0 => flags.tor_exit = true,
                    1 => flags.public_proxy = true,
                    2 => flags.anonymous_vpn = true,
                    _ => flags.hosting_provider = true,
                }
            }
            Self::Denied => {
                if let Some(ip) = context.ip {
                    scenario.settings.deny.push(IpNet::from(ip));
                }
            }
        }
    }
}

proptest! {
    #[test]
    fn the_score_is_a_probability_and_decides(scenario in arb_scenario()) {
        prop_assert_eq!(scenario.settings.validate(), Ok(()));
        let got = scenario.assess();
        prop_assert!((0.0..=1.0).contains(&got.score), "{}", got.score);
        prop_assert_eq!(got.decision, scenario.settings.thresholds.decide(got.score));
        for factor in &got.factors {
            prop_assert!(factor.weight > 0.0 && factor.weight <= 1.0, "{:?}", factor);
            prop_assert!(!got.absent.iter().any(|a| a.name == factor.name), "{:?} both fired and absent", factor.name);
        }
    }

    #[test]
    fn a_stronger_factor_never_lowers_the_score(scenario in arb_scenario(), more in 1..50_u64) {
        let before = scenario.assess();
        for change in Stronger::ALL {
            let mut stronger = scenario.clone();
            change.apply(&mut stronger, more);
            let after = stronger.assess();
            prop_assert!(
                after.score >= before.score,
                "{:?}: {} → {}\nbefore {:?}\nafter {:?}", change, before.score, after.score, before, after
            );
        }
    }

    #[test]
    fn a_heavier_weight_never_lowers_the_score(
        scenario in arb_scenario(),
        factor in sample::select(&FactorName::ALL[..]),
        fraction in 0.0..=1.0_f64,
    ) {
        let mut heavier = scenario.clone();
        let weight = scenario.settings.weights.of(factor);
        heavier.settings.weights.set(factor, weight + (1.0 - weight) * fraction);
        let (before, after) = (scenario.assess().score, heavier.assess().score);
        if factor == FactorName::TrustedDevice {
            // The discount works the other way.
            prop_assert!(after <= before, "{:?}: {} → {}", factor, before, after);
        } else {
            prop_assert!(after >= before, "{:?}: {} → {}", factor, before, after);
        }
    }

    #[test]
    fn combine_is_monotone_and_order_free(
        contributions in proptest::collection::vec(-0.5..1.5_f64, 0..8),
        index in any::<sample::Index>(),
        more in 0.0..1.0_f64,
        seed in any::<u64>(),
    ) {
        let before = combine(contributions.iter().copied());
        prop_assert!((0.0..=1.0).contains(&before));
        if !contributions.is_empty() {
            let mut stronger = contributions.clone();
            stronger[index.index(contributions.len())] += more;
            prop_assert!(combine(stronger) >= before);
        }
        let mut rotated = contributions.clone();
        if !rotated.is_empty() {
            let len = rotated.len();
            rotated.rotate_left((seed as usize) % len);
            rotated.reverse();
        }
        prop_assert!((combine(rotated) - before).abs() < 1e-12);
    }
}
