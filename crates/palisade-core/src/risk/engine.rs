//! The risk engine: a pure function from what is known about a login attempt (the context) and the
//! user's past logins (the history) to a score, a decision and the factors that made them.
//!
//! # The score
//! Each factor that fires has a *strength* `s` in 0..=1 (how strongly it fired: 3 failures out of a
//! saturation of 5 is 0.6) and a configured *weight* `w` in 0..=1. Its contribution is `w·s`, and
//! the factors combine as independent pieces of evidence (a "noisy OR"):
//!
//! ```text
//! score = 1 − Π (1 − wᵢ·sᵢ)
//! ```
//!
//! so the score stays in 0..=1, a factor of weight 1 alone reaches 1, two factors of 0.3 give 0.51,
//! and raising any factor's strength never lowers the score (the property test below checks it). A
//! trusted device (high trust, or remembered after MFA) then multiplies the score by
//! `1 − trusted_device_discount`. An address on the deny list scores 1 whatever else holds.
//!
//! # The decision
//! Above `thresholds.block` the login is refused; above `enhanced`, two distinct factors; above
//! `mfa`, one factor; otherwise the ordinary path (as in the product's original guide: `> 0.8`,
//! `> 0.5`, `> 0.2`).
//!
//! Nothing here reads a clock, a store or the network: it is table-tested as it is.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::geo::{GeoCapabilities, GeoInfo, distance_km};

/// What the engine decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskDecision {
    /// The ordinary login path.
    Allow,
    /// One second factor.
    Mfa,
    /// Two distinct second factors.
    EnhancedMfa,
    /// Refused.
    Block,
}

impl RiskDecision {
    /// The stable name (`allow`, `mfa`, `enhanced_mfa`, `block`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Mfa => "mfa",
            Self::EnhancedMfa => "enhanced_mfa",
            Self::Block => "block",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "allow" => Some(Self::Allow),
            "mfa" => Some(Self::Mfa),
            "enhanced_mfa" => Some(Self::EnhancedMfa),
            "block" => Some(Self::Block),
            _ => None,
        }
    }

    /// Distinct second factors this decision asks for (0, 1 or 2; a block asks for none).
    pub fn factors_required(self) -> u8 {
        match self {
            Self::Allow | Self::Block => 0,
            Self::Mfa => 1,
            Self::EnhancedMfa => 2,
        }
    }
}

/// The factors the engine knows, by their stable names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactorName {
    /// A device this user has not logged in from.
    NewDevice,
    /// A country this user has not logged in from.
    NewCountry,
    /// An autonomous system (network) this user has not logged in from.
    NewNetwork,
    /// Faster than an airliner since the last login.
    ImpossibleTravel,
    /// Recent failed logins on this account.
    AccountFailures,
    /// Recent failed logins from this address (any account).
    AddressFailures,
    /// An hour of the day this user does not log in at.
    UnusualHour,
    /// A day of the week this user does not log in on.
    UnusualWeekday,
    /// The address is on the configured deny list.
    DeniedAddress,
    /// A Tor exit, public proxy, anonymous VPN or hosting network.
    Anonymizer,
    /// A device the user trusts (high trust or remembered after MFA): lowers the score.
    TrustedDevice,
}

impl FactorName {
    /// Every factor, in a stable order.
    pub const ALL: [Self; 11] = [
        Self::NewDevice,
        Self::NewCountry,
        Self::NewNetwork,
        Self::ImpossibleTravel,
        Self::AccountFailures,
        Self::AddressFailures,
        Self::UnusualHour,
        Self::UnusualWeekday,
        Self::DeniedAddress,
        Self::Anonymizer,
        Self::TrustedDevice,
    ];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewDevice => "new_device",
            Self::NewCountry => "new_country",
            Self::NewNetwork => "new_network",
            Self::ImpossibleTravel => "impossible_travel",
            Self::AccountFailures => "account_failures",
            Self::AddressFailures => "address_failures",
            Self::UnusualHour => "unusual_hour",
            Self::UnusualWeekday => "unusual_weekday",
            Self::DeniedAddress => "denied_address",
            Self::Anonymizer => "anonymizer",
            Self::TrustedDevice => "trusted_device",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }
}

/// The configured weight of each factor, each in 0..=1 (`trusted_device` is the fraction of the
/// score a trusted device takes off).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RiskWeights {
    /// `new_device` (default 0.25).
    pub new_device: f64,
    /// `new_country` (default 0.35).
    pub new_country: f64,
    /// `new_network` (default 0.15).
    pub new_network: f64,
    /// `impossible_travel` (default 0.7).
    pub impossible_travel: f64,
    /// `account_failures` (default 0.3).
    pub account_failures: f64,
    /// `address_failures` (default 0.35).
    pub address_failures: f64,
    /// `unusual_hour` (default 0.1).
    pub unusual_hour: f64,
    /// `unusual_weekday` (default 0.05).
    pub unusual_weekday: f64,
    /// `anonymizer` (default 0.45).
    pub anonymizer: f64,
    /// `trusted_device`: the fraction of the score a trusted device takes off (default 0.5).
    pub trusted_device: f64,
}

impl Default for RiskWeights {
    fn default() -> Self {
        Self {
            new_device: 0.25,
            new_country: 0.35,
            new_network: 0.15,
            impossible_travel: 0.7,
            account_failures: 0.3,
            address_failures: 0.35,
            unusual_hour: 0.1,
            unusual_weekday: 0.05,
            anonymizer: 0.45,
            trusted_device: 0.5,
        }
    }
}

impl RiskWeights {
    /// The weight of `factor` (`denied_address` is always 1).
    pub fn of(&self, factor: FactorName) -> f64 {
        match factor {
            FactorName::NewDevice => self.new_device,
            FactorName::NewCountry => self.new_country,
            FactorName::NewNetwork => self.new_network,
            FactorName::ImpossibleTravel => self.impossible_travel,
            FactorName::AccountFailures => self.account_failures,
            FactorName::AddressFailures => self.address_failures,
            FactorName::UnusualHour => self.unusual_hour,
            FactorName::UnusualWeekday => self.unusual_weekday,
            FactorName::DeniedAddress => 1.0,
            FactorName::Anonymizer => self.anonymizer,
            FactorName::TrustedDevice => self.trusted_device,
        }
    }

    /// Sets the weight of `factor`; `false` for `denied_address`, whose weight is fixed.
    pub fn set(&mut self, factor: FactorName, weight: f64) -> bool {
        let slot = match factor {
            FactorName::NewDevice => &mut self.new_device,
            FactorName::NewCountry => &mut self.new_country,
            FactorName::NewNetwork => &mut self.new_network,
            FactorName::ImpossibleTravel => &mut self.impossible_travel,
            FactorName::AccountFailures => &mut self.account_failures,
            FactorName::AddressFailures => &mut self.address_failures,
            FactorName::UnusualHour => &mut self.unusual_hour,
            FactorName::UnusualWeekday => &mut self.unusual_weekday,
            FactorName::DeniedAddress => return false,
            FactorName::Anonymizer => &mut self.anonymizer,
            FactorName::TrustedDevice => &mut self.trusted_device,
        };
        *slot = weight;
        true
    }
}

/// Scores above which each decision applies (`> mfa` → MFA, `> enhanced` → enhanced MFA,
/// `> block` → blocked); `0 ≤ mfa ≤ enhanced ≤ block ≤ 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RiskThresholds {
    /// Default 0.2.
    pub mfa: f64,
    /// Default 0.5.
    pub enhanced: f64,
    /// Default 0.8.
    pub block: f64,
}

impl Default for RiskThresholds {
    fn default() -> Self {
        Self { mfa: 0.2, enhanced: 0.5, block: 0.8 }
    }
}

impl RiskThresholds {
    /// The decision for `score`.
    pub fn decide(&self, score: f64) -> RiskDecision {
        if score > self.block {
            RiskDecision::Block
        } else if score > self.enhanced {
            RiskDecision::EnhancedMfa
        } else if score > self.mfa {
            RiskDecision::Mfa
        } else {
            RiskDecision::Allow
        }
    }
}

/// The engine's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskSettings {
    /// Whether logins are scored at all (`SECURITY_RISK_ANALYSIS_ENABLED`, default true).
    pub enabled: bool,
    /// Decision thresholds.
    pub thresholds: RiskThresholds,
    /// Factor weights.
    pub weights: RiskWeights,
    /// Travel faster than this between two logins is impossible (default 900 km/h, an airliner).
    pub max_travel_kmh: f64,
    /// Account failures at which `account_failures` reaches full strength (default 5).
    pub account_failures_saturation: u32,
    /// Address failures at which `address_failures` reaches full strength (default 20).
    pub address_failures_saturation: u32,
    /// Past logins needed before the time-of-day and day-of-week factors speak (default 5).
    pub min_history_for_time: usize,
    /// Addresses whose logins are refused (`denied_address`).
    pub deny: Vec<IpNet>,
    /// Addresses exempt from the address factors (deny list, anonymizer, address failures, new
    /// network): an office or VPN egress the operator vouches for.
    pub allow: Vec<IpNet>,
}

impl Default for RiskSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            thresholds: RiskThresholds::default(),
            weights: RiskWeights::default(),
            max_travel_kmh: 900.0,
            account_failures_saturation: 5,
            address_failures_saturation: 20,
            min_history_for_time: 5,
            deny: Vec::new(),
            allow: Vec::new(),
        }
    }
}

impl RiskSettings {
    /// Checks the settings are consistent; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        let t = &self.thresholds;
        let unit = |v: f64| (0.0..=1.0).contains(&v);
        if !(unit(t.mfa) && unit(t.enhanced) && unit(t.block) && t.mfa <= t.enhanced && t.enhanced <= t.block) {
            return Err(format!(
                "risk thresholds must satisfy 0 ≤ mfa ≤ enhanced ≤ block ≤ 1, got {},{},{}",
                t.mfa, t.enhanced, t.block
            ));
        }
        for factor in FactorName::ALL {
            let w = self.weights.of(factor);
            if !unit(w) {
                return Err(format!("risk weight {} must be within 0..=1, got {w}", factor.as_str()));
            }
        }
        if !(self.max_travel_kmh.is_finite() && self.max_travel_kmh > 0.0) {
            return Err(format!("max travel speed must be a positive number of km/h, got {}", self.max_travel_kmh));
        }
        if self.account_failures_saturation == 0 || self.address_failures_saturation == 0 {
            return Err("failure saturations must be at least 1".into());
        }
        Ok(())
    }
}

/// How familiar the device of the attempt is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceFamiliarity {
    /// Never seen for this user.
    New,
    /// Seen before.
    Known,
    /// Seen before and trusted: high trust level, or a valid remember-device token.
    Trusted,
}

/// What is known about the attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskContext {
    /// When it happens.
    pub at: OffsetDateTime,
    /// The client's address.
    pub ip: Option<IpAddr>,
    /// What GeoIP says about the address.
    pub geo: GeoInfo,
    /// What the GeoIP databases can say at all.
    pub geo_capabilities: GeoCapabilities,
    /// The device.
    pub device: DeviceFamiliarity,
    /// Failed logins on the account in the lockout window, before this one.
    pub account_failures: u64,
    /// Failed logins from the address in the lockout window, any account.
    pub address_failures: u64,
}

/// One past successful login of the user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastLogin {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// Country, if known.
    pub country: Option<String>,
    /// Autonomous system, if known.
    pub asn: Option<u32>,
    /// Coordinates, if known.
    pub location: Option<(f64, f64)>,
    /// Accuracy radius of the coordinates, km.
    pub accuracy_km: Option<u32>,
}

/// The user's past successful logins, newest first.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RiskHistory {
    /// Newest first.
    pub logins: Vec<PastLogin>,
}

/// One factor that fired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskFactor {
    /// Which.
    pub name: FactorName,
    /// Its contribution `w·s` (for `trusted_device`, the fraction taken off).
    pub weight: f64,
    /// Why, in words an administrator reads.
    pub detail: String,
}

/// A factor that could not be evaluated, and why (no database, no history …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbsentFactor {
    /// Which.
    pub name: FactorName,
    /// Why it was not evaluated.
    pub reason: String,
}

/// The engine's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskAssessment {
    /// 0..=1.
    pub score: f64,
    /// What to do.
    pub decision: RiskDecision,
    /// The factors that fired, strongest first.
    pub factors: Vec<RiskFactor>,
    /// The factors that could not be evaluated.
    pub absent: Vec<AbsentFactor>,
}

impl RiskAssessment {
    /// The names of the factors that fired (what a refused client is told).
    pub fn factor_names(&self) -> Vec<&'static str> {
        self.factors.iter().map(|f| f.name.as_str()).collect()
    }

    /// An assessment of nothing (risk analysis off).
    pub fn none() -> Self {
        Self { score: 0.0, decision: RiskDecision::Allow, factors: Vec::new(), absent: Vec::new() }
    }
}

/// Combines contributions `w·s` (each clamped to 0..=1) as a noisy OR.
pub fn combine(contributions: impl IntoIterator<Item = f64>) -> f64 {
    let keep = contributions.into_iter().fold(1.0_f64, |keep, c| keep * (1.0 - c.clamp(0.0, 1.0)));
    (1.0 - keep).clamp(0.0, 1.0)
}

/// Scores an attempt.
pub fn assess(settings: &RiskSettings, context: &RiskContext, history: &RiskHistory) -> RiskAssessment {
    let mut fired: Vec<(FactorName, f64, String)> = Vec::new();
    let mut absent: Vec<AbsentFactor> = Vec::new();
    let mut skip = |name: FactorName, reason: &str| absent.push(AbsentFactor { name, reason: reason.to_owned() });
    let allowed = context.ip.is_some_and(|ip| settings.allow.iter().any(|net| net.contains(&ip)));
    let first_login = history.logins.is_empty();

    // The device.
    match context.device {
        _ if first_login => skip(FactorName::NewDevice, "first login: no device to compare with"),
        DeviceFamiliarity::New => fired.push((FactorName::NewDevice, 1.0, "first login from this device".into())),
        DeviceFamiliarity::Known | DeviceFamiliarity::Trusted => {}
    }

    // Where: country, network, travel.
    let geo = &context.geo;
    let caps = &context.geo_capabilities;
    match (&geo.country, caps.country) {
        (_, false) => skip(FactorName::NewCountry, "no GeoIP country database"),
        (None, true) => skip(FactorName::NewCountry, "address not in the GeoIP database"),
        (Some(_), true) if first_login => skip(FactorName::NewCountry, "first login: no country to compare with"),
        (Some(country), true) => {
            let seen: Vec<&str> = history.logins.iter().filter_map(|l| l.country.as_deref()).collect();
            if seen.is_empty() {
                skip(FactorName::NewCountry, "no past login with a known country");
            } else if !seen.contains(&country.as_str()) {
                fired.push((FactorName::NewCountry, 1.0, format!("first login from {country}")));
            }
        }
    }
    match (geo.asn, caps.asn) {
        _ if allowed => skip(FactorName::NewNetwork, "address on the allow list"),
        (_, false) => skip(FactorName::NewNetwork, "no GeoIP ASN database"),
        (None, true) => skip(FactorName::NewNetwork, "address not in the ASN database"),
        (Some(_), true) if first_login => skip(FactorName::NewNetwork, "first login: no network to compare with"),
        (Some(asn), true) => {
            let seen: Vec<u32> = history.logins.iter().filter_map(|l| l.asn).collect();
            if seen.is_empty() {
                skip(FactorName::NewNetwork, "no past login with a known network");
            } else if !seen.contains(&asn) {
                fired.push((FactorName::NewNetwork, 1.0, format!("first login from AS{asn}")));
            }
        }
    }
    match (geo.location, caps.location) {
        (_, false) => skip(FactorName::ImpossibleTravel, "no GeoIP city database"),
        (None, true) => skip(FactorName::ImpossibleTravel, "address has no location in the GeoIP database"),
        (Some(here), true) => match history.logins.iter().find(|l| l.location.is_some()) {
            None => skip(FactorName::ImpossibleTravel, "no past login with a known location"),
            Some(last) => {
                if let Some(detail) = travel(settings, here, geo.accuracy_km, last, context.at) {
                    fired.push((FactorName::ImpossibleTravel, 1.0, detail));
                }
            }
        },
    }

    // Failures.
    let strength = |n: u64, saturation: u32| (n as f64 / f64::from(saturation.max(1))).min(1.0);
    if context.account_failures > 0 {
        let s = strength(context.account_failures, settings.account_failures_saturation);
        let n = context.account_failures;
        fired.push((FactorName::AccountFailures, s, format!("{n} failed login(s) on the account recently")));
    }
    if allowed {
        skip(FactorName::AddressFailures, "address on the allow list");
    } else if context.address_failures > 0 {
        let s = strength(context.address_failures, settings.address_failures_saturation);
        let n = context.address_failures;
        fired.push((FactorName::AddressFailures, s, format!("{n} failed login(s) from the address recently")));
    }

    // When, against the user's own habits (UTC: the user's zone is not known, but habits are).
    if history.logins.len() < settings.min_history_for_time {
        let reason = format!("fewer than {} past logins", settings.min_history_for_time);
        skip(FactorName::UnusualHour, &reason);
        skip(FactorName::UnusualWeekday, &reason);
    } else {
        let utc = |at: OffsetDateTime| at.to_offset(time::UtcOffset::UTC);
        let now = utc(context.at);
        let hour = i32::from(now.hour());
        let near = |h: u8| {
            let d = (i32::from(h) - hour).rem_euclid(24);
            d <= 1 || d >= 23
        };
        if !history.logins.iter().any(|l| near(utc(l.at).hour())) {
            fired.push((FactorName::UnusualHour, 1.0, format!("no past login within an hour of {hour:02}:00 UTC")));
        }
        let day = now.weekday();
        if !history.logins.iter().any(|l| utc(l.at).weekday() == day) {
            fired.push((FactorName::UnusualWeekday, 1.0, format!("no past login on a {day}")));
        }
    }

    // Reputation.
    let denied = !allowed && context.ip.is_some_and(|ip| settings.deny.iter().any(|net| net.contains(&ip)));
    if allowed {
        skip(FactorName::DeniedAddress, "address on the allow list");
    } else if denied {
        fired.push((FactorName::DeniedAddress, 1.0, "address on the deny list".into()));
    }
    match (geo.anonymizer, caps.anonymizer) {
        _ if allowed => skip(FactorName::Anonymizer, "address on the allow list"),
        (_, false) => skip(FactorName::Anonymizer, "no GeoIP anonymous-IP database"),
        (None, true) => {}
        (Some(flags), true) if flags.any() => {
            let s = if flags.tor_exit || flags.public_proxy {
                1.0
            } else if flags.anonymous_vpn {
                0.8
            } else {
                0.5
            };
            fired.push((FactorName::Anonymizer, s, flags.names().join(", ")));
        }
        (Some(_), true) => {}
    }

    let mut factors: Vec<RiskFactor> = fired
        .into_iter()
        .map(|(name, s, detail)| RiskFactor { name, weight: round(settings.weights.of(name) * s), detail })
        .filter(|f| f.weight > 0.0)
        .collect();
    let mut score = combine(factors.iter().map(|f| f.weight));
    if context.device == DeviceFamiliarity::Trusted && !denied {
        let discount = settings.weights.trusted_device.clamp(0.0, 1.0);
        if discount > 0.0 {
            score *= 1.0 - discount;
            factors.push(RiskFactor {
                name: FactorName::TrustedDevice,
                weight: round(discount),
                detail: "a device the user trusts".into(),
            });
        }
    }
    if denied {
        score = 1.0;
    }
    let score = round(score);
    factors.sort_by(|a, b| b.weight.total_cmp(&a.weight).then(a.name.cmp(&b.name)));
    RiskAssessment { score, decision: settings.thresholds.decide(score), factors, absent }
}

/// The impossible-travel explanation, if the move from `last` to `here` by `at` is too fast. The
/// accuracy radii of both points are taken off the distance first, so two fuzzy fixes in one
/// metropolitan area never count as travel.
fn travel(
    settings: &RiskSettings,
    here: (f64, f64),
    accuracy_km: Option<u32>,
    last: &PastLogin,
    at: OffsetDateTime,
) -> Option<String> {
    let there = last.location?;
    let slack = f64::from(accuracy_km.unwrap_or(0)) + f64::from(last.accuracy_km.unwrap_or(0));
    let distance = (distance_km(there, here) - slack).max(0.0);
    if distance <= 0.0 {
        return None;
    }
    // A login "before" the last one (clock skew between instances) counts as simultaneous.
    let hours = ((at - last.at).as_seconds_f64() / 3600.0).max(1.0 / 3600.0);
    let speed = distance / hours;
    (speed > settings.max_travel_kmh).then(|| {
        format!(
            "{distance:.0} km in {hours:.2} h since the last login ({speed:.0} km/h > {:.0} km/h)",
            settings.max_travel_kmh
        )
    })
}

/// Rounds to 4 decimals, so scores read well and compare stably.
fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}
