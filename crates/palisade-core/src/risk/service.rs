//! Scoring logins against the stores: the context from the request, GeoIP and the device registry,
//! the history from past succeeded logins, and a durable record of every assessment of a user
//! whose password was right (blocked, pending a second factor, or succeeded).

use std::net::IpAddr;
use std::sync::Arc;

use super::engine::{DeviceFamiliarity, RiskAssessment, RiskContext, RiskHistory, RiskSettings, assess};
use super::geo::{GeoInfo, GeoIp};
use super::{LoginResult, RiskRecord};
use crate::auth::AuthError;
use crate::clock::Clock;
use crate::device::DeviceId;
use crate::store::{DurableStore, HotStore};
use crate::user::UserId;

/// Past logins compared with (the newest).
const HISTORY_DEPTH: u32 = 50;

/// One login attempt to score.
#[derive(Debug, Clone)]
pub struct LoginAttempt<'a> {
    /// The user whose password was right.
    pub user: UserId,
    /// The client address, as text.
    pub ip: Option<&'a str>,
    /// What GeoIP says about it.
    pub geo: &'a GeoInfo,
    /// How familiar the device is.
    pub device: DeviceFamiliarity,
    /// The device's registry id, if known.
    pub device_id: Option<DeviceId>,
    /// Failed logins on the account in the lockout window, before this one.
    pub account_failures: u64,
}

/// Scores login attempts and records them.
pub struct RiskService {
    store: Arc<dyn DurableStore>,
    hot: Arc<dyn HotStore>,
    geo: Arc<dyn GeoIp>,
    clock: Arc<dyn Clock>,
    settings: RiskSettings,
}

impl RiskService {
    /// Wires the service.
    pub fn new(
        store: Arc<dyn DurableStore>,
        hot: Arc<dyn HotStore>,
        geo: Arc<dyn GeoIp>,
        clock: Arc<dyn Clock>,
        settings: RiskSettings,
    ) -> Self {
        Self { store, hot, geo, clock, settings }
    }

    /// The settings in force.
    pub fn settings(&self) -> &RiskSettings {
        &self.settings
    }

    /// Whether logins are scored.
    pub fn enabled(&self) -> bool {
        self.settings.enabled
    }

    /// The GeoIP databases.
    pub fn geo(&self) -> &Arc<dyn GeoIp> {
        &self.geo
    }

    /// Scores an attempt without recording it.
    pub async fn assess(&self, attempt: &LoginAttempt<'_>) -> Result<RiskAssessment, AuthError> {
        if !self.settings.enabled {
            return Ok(RiskAssessment::none());
        }
        let ip = attempt.ip.and_then(|ip| ip.parse::<IpAddr>().ok());
        let (history, address_failures) = tokio::join!(self.store.login_history(attempt.user, HISTORY_DEPTH), async {
            match attempt.ip {
                Some(ip) => self.hot.count(&crate::auth::lockout::ip_failures_key(ip)).await,
                None => Ok(0),
            }
        });
        let context = RiskContext {
            at: self.clock.now(),
            ip,
            geo: attempt.geo.clone(),
            geo_capabilities: self.geo.capabilities(),
            device: attempt.device,
            account_failures: attempt.account_failures,
            address_failures: address_failures?,
        };
        Ok(assess(&self.settings, &context, &RiskHistory { logins: history? }))
    }

    /// Scores an attempt and records it: `blocked` when the decision is a block, `pending`
    /// otherwise (settled as `succeeded` when the login completes). `None` when scoring is off.
    pub async fn assess_and_record(&self, attempt: &LoginAttempt<'_>) -> Result<Option<RiskRecord>, AuthError> {
        if !self.settings.enabled {
            return Ok(None);
        }
        let assessment = self.assess(attempt).await?;
        let result =
            if assessment.decision == super::RiskDecision::Block { LoginResult::Blocked } else { LoginResult::Pending };
        let record = RiskRecord {
            id: uuid::Uuid::now_v7(),
            user_id: attempt.user,
            at: self.clock.now(),
            ip: attempt.ip.map(str::to_owned),
            country: attempt.geo.country.clone(),
            city: attempt.geo.city.clone(),
            location: attempt.geo.location,
            accuracy_km: attempt.geo.accuracy_km,
            asn: attempt.geo.asn,
            device_id: attempt.device_id,
            assessment,
            result,
        };
        self.store.insert_risk_record(&record).await?;
        Ok(Some(record))
    }

    /// Records that a pending attempt completed (it joins the user's history).
    pub async fn succeeded(&self, id: uuid::Uuid) -> Result<(), AuthError> {
        self.store.settle_risk_record(id, LoginResult::Succeeded).await?;
        Ok(())
    }

    /// The user's most recent assessments, newest first.
    pub async fn recent(&self, user: UserId, limit: u32) -> Result<Vec<RiskRecord>, AuthError> {
        Ok(self.store.risk_records(user, limit.clamp(1, 500)).await?)
    }
}
