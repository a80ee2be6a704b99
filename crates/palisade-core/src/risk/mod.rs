//! Risk-based authentication: every login attempt scored from explainable factors (device,
//! country, network, travel speed, failure velocity, the user's own hours and days, address lists,
//! anonymizers), and a decision — allow, one factor, two factors, or block.
//!
//! # Layout
//! - [`geo`]: the GeoIP port (the MaxMind adapter lives in `palisade-server`).
//! - [`engine`]: the pure scoring function and its settings.
//! - [`service`]: gathers the context and the history from the stores, scores, records.
//!
//! This module never talks to the network: GeoIP lookups are in process.

pub mod engine;
pub mod geo;
pub mod service;
#[cfg(test)]
mod tests;

pub use engine::{
    AbsentFactor, DeviceFamiliarity, FactorName, PastLogin, RiskAssessment, RiskContext, RiskDecision, RiskFactor,
    RiskHistory, RiskSettings, RiskThresholds, RiskWeights, assess,
};
pub use geo::{Anonymizer, GeoCapabilities, GeoInfo, GeoIp, GeoStatus, NoGeoIp};
pub use service::{LoginAttempt, RiskService};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::device::DeviceId;
use crate::user::UserId;

/// What a login carries of its assessment through its steps: what the client is told (score and
/// factor names — nothing an attacker could tune against beyond the names) and the record to settle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RiskSummary {
    /// The record of the assessment.
    pub record: uuid::Uuid,
    /// The score.
    pub score: f64,
    /// The decision.
    pub decision: RiskDecision,
    /// The names of the factors that fired.
    pub factors: Vec<String>,
}

impl RiskSummary {
    /// The summary of a record.
    pub fn of(record: &RiskRecord) -> Self {
        Self {
            record: record.id,
            score: record.assessment.score,
            decision: record.assessment.decision,
            factors: record.assessment.factor_names().into_iter().map(str::to_owned).collect(),
        }
    }
}

/// What became of a scored login attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LoginResult {
    /// Waiting for its second step (or abandoned there).
    Pending,
    /// Logged in: part of the user's history from now on.
    Succeeded,
    /// Refused by the risk decision.
    Blocked,
}

impl LoginResult {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Blocked => "blocked",
        }
    }

    /// Parses a stable name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "succeeded" => Some(Self::Succeeded),
            "blocked" => Some(Self::Blocked),
            _ => None,
        }
    }
}

/// One scored login attempt, kept durably: the admin's view of a user's recent risk, and — once
/// succeeded — the user's login history the next assessment compares with.
#[derive(Debug, Clone, PartialEq)]
pub struct RiskRecord {
    /// Its id (time-ordered).
    pub id: uuid::Uuid,
    /// The user whose password was right.
    pub user_id: UserId,
    /// When.
    pub at: OffsetDateTime,
    /// The client address.
    pub ip: Option<String>,
    /// Country (ISO code), if GeoIP knew it.
    pub country: Option<String>,
    /// City, if GeoIP knew it.
    pub city: Option<String>,
    /// Coordinates, if GeoIP knew them.
    pub location: Option<(f64, f64)>,
    /// Accuracy radius of the coordinates, km.
    pub accuracy_km: Option<u32>,
    /// Autonomous system, if GeoIP knew it.
    pub asn: Option<u32>,
    /// The device, if registered.
    pub device_id: Option<DeviceId>,
    /// The assessment (score, decision, factors, absent factors).
    pub assessment: RiskAssessment,
    /// What became of the attempt.
    pub result: LoginResult,
}

impl RiskRecord {
    /// The past login this record is, for the history.
    pub fn as_past_login(&self) -> PastLogin {
        PastLogin {
            at: self.at,
            country: self.country.clone(),
            asn: self.asn,
            location: self.location,
            accuracy_km: self.accuracy_km,
        }
    }
}
