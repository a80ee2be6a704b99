//! The caller's devices under `/auth/devices`, and an administrator's view of a user's risk
//! assessments (`/admin/users/{id}/risk`).

use axum::Json;
use axum::extract::{Path, Query, State};
use palisade_core::device::{DeviceId, DeviceRecord, DeviceUpdate, TrustLevel};
use palisade_core::risk::RiskRecord;
use palisade_core::user::UserId;
use palisade_types::devices::{
    AbsentFactorView, Device, DeviceList, DeviceRemoved, DeviceUpdateRequest, RiskAssessmentList, RiskAssessmentView,
    RiskFactorView,
};
use serde::Deserialize;
use time::format_description::well_known::Rfc3339;

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Authenticated, Meta};

/// The caller's devices, most recently seen first.
///
/// **Permissions** - a bearer access token with the `user` scope
#[utoipa::path(get, path = "/auth/devices", tag = "devices", security(("bearer" = [])), responses((status = 200, body = DeviceList)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
) -> Result<Json<DeviceList>, ApiError> {
    let auth = state.palisade.auth();
    let devices = auth.devices_of(&principal).await?;
    let current = match principal.session_id {
        Some(session) => auth.sessions().get(principal.user_id, session).await?.and_then(|s| s.device_id),
        None => None,
    };
    Ok(Json(DeviceList { devices: devices.into_iter().map(|d| device(d, current)).collect() }))
}

/// Renames or re-trusts one of the caller's devices (`trust_level` `high` lowers the risk score of
/// its logins).
///
/// **Permissions** - a bearer access token with the `user` scope; only the caller's own devices
#[utoipa::path(patch, path = "/auth/devices/{id}", tag = "devices", security(("bearer" = [])), params(("id" = String, Path, description = "device id")), request_body = DeviceUpdateRequest, responses(
    (status = 200, body = Device),
    (status = 404, body = palisade_types::problem::Problem),
    (status = 422, description = "VALIDATION_ERROR: a bad name or trust level", body = palisade_types::problem::Problem),
))]
pub(crate) async fn update(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<DeviceUpdateRequest>,
) -> Result<Json<Device>, ApiError> {
    let id = DeviceId::parse(&id).map_err(|_| ApiError::NotFound)?;
    let update = DeviceUpdate {
        name: body.name,
        trust_level: body
            .trust_level
            .as_deref()
            .map(TrustLevel::parse)
            .transpose()
            .map_err(palisade_core::auth::AuthError::from)?,
    };
    if update.name.is_none() && update.trust_level.is_none() {
        return Err(ApiError::unprocessable("give a name, a trust_level, or both"));
    }
    let device = state.palisade.auth().update_device(&principal, id, update, &meta).await?;
    Ok(Json(self::device(device, None)))
}

/// Approves one of the caller's devices (a login waiting for it goes on).
///
/// **Permissions** - a bearer access token with the `user` scope; only the caller's own devices
#[utoipa::path(post, path = "/auth/devices/{id}/approve", tag = "devices", security(("bearer" = [])), params(("id" = String, Path, description = "device id")), responses(
    (status = 204),
    (status = 404, body = palisade_types::problem::Problem),
))]
pub(crate) async fn approve(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<axum::http::StatusCode, ApiError> {
    let id = DeviceId::parse(&id).map_err(|_| ApiError::NotFound)?;
    state.palisade.auth().approve_device(&principal, id, &meta).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Forgets one of the caller's devices; every session opened from it ends with its refresh family.
///
/// **Permissions** - a bearer access token with the `user` scope; only the caller's own devices
#[utoipa::path(delete, path = "/auth/devices/{id}", tag = "devices", security(("bearer" = [])), params(("id" = String, Path, description = "device id")), responses(
    (status = 200, body = DeviceRemoved),
    (status = 404, body = palisade_types::problem::Problem),
))]
pub(crate) async fn remove(
    State(state): State<AppState>,
    Meta(meta): Meta,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<DeviceRemoved>, ApiError> {
    let id = DeviceId::parse(&id).map_err(|_| ApiError::NotFound)?;
    let sessions_ended = state.palisade.auth().remove_device(&principal, id, &meta).await?;
    Ok(Json(DeviceRemoved { sessions_ended }))
}

/// Approves a device through the link mailed to its user (the page `/devices/approve` posts
/// here); the link works once.
///
/// **Permissions** - the link's token
#[utoipa::path(post, path = "/auth/devices/approve-link", tag = "devices", request_body = palisade_types::mfa::ApprovalLinkRequest, responses(
    (status = 204),
    (status = 401, description = "INVALID_TOKEN: unknown, expired or already used", body = palisade_types::problem::Problem),
    (status = 404, description = "NOT_FOUND: the device was removed while it waited (the link is spent)", body = palisade_types::problem::Problem),
))]
pub(crate) async fn approve_link(
    State(state): State<AppState>,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<palisade_types::mfa::ApprovalLinkRequest>,
) -> Result<axum::http::StatusCode, ApiError> {
    state.palisade.auth().approve_by_link(body.token.trim(), &meta).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// How many assessments `GET /admin/users/{id}/risk` answers.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub(crate) struct RiskPage {
    /// At most this many, newest first (1–500, default 50).
    limit: Option<u32>,
}

/// A user's recent login risk assessments, with every factor, its contribution and why it fired,
/// and the factors that could not be evaluated.
///
/// **Permissions** - `admin`
#[utoipa::path(get, path = "/admin/users/{id}/risk", tag = "admin", security(("bearer" = []), ("api_key" = [])), params(("id" = String, Path, description = "user id"), RiskPage), responses(
    (status = 200, body = RiskAssessmentList),
    (status = 404, body = palisade_types::problem::Problem),
))]
pub(crate) async fn user_risk(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
    Query(page): Query<RiskPage>,
) -> Result<Json<RiskAssessmentList>, ApiError> {
    let user = UserId::parse(&id).map_err(|_| ApiError::NotFound)?;
    let records = state.palisade.auth().risk_of(&principal, user, page.limit.unwrap_or(50)).await?;
    Ok(Json(RiskAssessmentList { assessments: records.into_iter().map(assessment).collect() }))
}

fn device(d: DeviceRecord, current: Option<DeviceId>) -> Device {
    Device {
        current: Some(d.id) == current,
        device_id: d.id.to_string(),
        name: d.name,
        device_type: d.device_type,
        os: d.os,
        browser: d.browser,
        first_seen_at: d.first_seen_at.format(&Rfc3339).unwrap_or_default(),
        last_seen_at: d.last_seen_at.format(&Rfc3339).unwrap_or_default(),
        last_ip: d.last_ip,
        last_country: d.last_country,
        last_city: d.last_city,
        trust_level: d.trust_level.as_str().to_owned(),
        approved: d.approved,
    }
}

fn assessment(r: RiskRecord) -> RiskAssessmentView {
    RiskAssessmentView {
        id: r.id.to_string(),
        at: r.at.format(&Rfc3339).unwrap_or_default(),
        ip: r.ip,
        country: r.country,
        city: r.city,
        asn: r.asn,
        device_id: r.device_id.map(|d| d.to_string()),
        score: r.assessment.score,
        decision: r.assessment.decision.as_str().to_owned(),
        result: r.result.as_str().to_owned(),
        factors: r
            .assessment
            .factors
            .into_iter()
            .map(|f| RiskFactorView { name: f.name.as_str().to_owned(), weight: f.weight, detail: f.detail })
            .collect(),
        absent: r
            .assessment
            .absent
            .into_iter()
            .map(|a| AbsentFactorView { name: a.name.as_str().to_owned(), reason: a.reason })
            .collect(),
    }
}
