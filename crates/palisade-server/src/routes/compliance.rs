//! Compliance over HTTP (`/compliance/*`): the consent ledger, the export, erasure requests.
//! Parse, call one `ComplianceService` method, shape the answer.

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use palisade_core::compliance::consent::ConsentState;
use palisade_core::compliance::erasure::ErasureRequest;
use palisade_core::compliance::{Consent, ConsentRequest as CoreConsentRequest, rfc3339};
use palisade_core::user::UserId;
use palisade_types::compliance::{
    CheckRequest, CheckResult, ConsentList, ConsentRequest, ConsentStateView, ConsentView, ErasureBody,
    ErasureCountsView, ErasureList, ErasureView, RetentionKindView, RetentionView, ViolationView, WithdrawalView,
};
use serde::Deserialize;

use crate::app::AppState;
use crate::error::ApiError;
use crate::extract::{ApiJson, Authenticated, Meta};

fn consent_view(c: Consent) -> ConsentView {
    let text_sha256 = c.text_sha256();
    ConsentView {
        consent_id: c.id.to_string(),
        consent_type: c.consent_type,
        seq: c.seq,
        action: c.action.as_str().into(),
        version: c.version,
        text_sha256,
        method: c.method,
        ip_address: c.ip,
        user_agent: c.user_agent,
        reason: c.reason,
        recorded_at: rfc3339(c.at),
        valid_until: c.valid_until.map(rfc3339),
    }
}

fn erasure_view(r: ErasureRequest) -> ErasureView {
    let counts = r.progress.counts;
    ErasureView {
        request_id: r.id.to_string(),
        user_id: r.user_id.map(|u| u.to_string()),
        requested_by: r.requested_by.map(|u| u.to_string()),
        reason: r.reason.as_str().into(),
        state: r.state.as_str().into(),
        step: r.progress.step.as_str().into(),
        counts: ErasureCountsView {
            audit_records: counts.audit_records,
            audit_redacted: counts.audit_redacted,
            account_deleted: counts.account_deleted,
            keys_destroyed: counts.keys_destroyed,
        },
        requested_at: rfc3339(r.requested_at),
        deletion_date: rfc3339(r.due_at),
        finished_at: r.finished_at.map(rfc3339),
        outcome: r.outcome,
    }
}

fn user_param(user_id: Option<&str>) -> Result<Option<UserId>, ApiError> {
    user_id
        .map(|id| UserId::parse(id).map_err(|_| ApiError::unprocessable(format!("user_id: `{id}` is not a user id"))))
        .transpose()
}

/// Whose data a read is about.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserParams {
    /// Another user's id (needs `admin`, `compliance:read` or `compliance:admin`); the caller's
    /// own when absent.
    user_id: Option<String>,
}

/// Records the caller's consent: the type, the exact text and its version, how it was collected,
/// and the request's address and user agent. The text is kept once per version, by its SHA-256.
///
/// **Permissions** - any signed-in user, for themselves
#[utoipa::path(post, path = "/compliance/consents", tag = "compliance", security(("bearer" = []), ("api_key" = [])), request_body = ConsentRequest, responses(
    (status = 201, body = ConsentView),
    (status = 401, description = "INVALID_TOKEN", body = palisade_types::problem::Problem),
    (status = 409, description = "CONFLICT: this version was recorded with another text", body = palisade_types::problem::Problem),
    (status = 422, description = "VALIDATION_ERROR: a missing text or version, a bad type or method", body = palisade_types::problem::Problem),
))]
pub(crate) async fn record_consent(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<ConsentRequest>,
) -> Result<(StatusCode, Json<ConsentView>), ApiError> {
    let request = CoreConsentRequest {
        consent_type: body.consent_type,
        text: body.text,
        version: body.version,
        method: body.method,
    };
    let consent = state.palisade.compliance().record_consent(&principal, request, &meta).await?;
    Ok((StatusCode::CREATED, Json(consent_view(consent))))
}

/// A user's consents: each type's state and the whole ledger.
///
/// **Permissions** - any signed-in user for themselves; `admin`, `compliance:read` or
/// `compliance:admin` for anyone
#[utoipa::path(get, path = "/compliance/consents", tag = "compliance", params(UserParams), security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, body = ConsentList),
    (status = 401, description = "INVALID_TOKEN", body = palisade_types::problem::Problem),
    (status = 403, description = "INSUFFICIENT_SCOPE: another user's consents", body = palisade_types::problem::Problem),
    (status = 422, description = "VALIDATION_ERROR: user_id is not an id", body = palisade_types::problem::Problem),
))]
pub(crate) async fn consents(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(params): Query<UserParams>,
) -> Result<Json<ConsentList>, ApiError> {
    let user = user_param(params.user_id.as_deref())?;
    let overview = state.palisade.compliance().consents(&principal, user).await?;
    let state_view = |s: ConsentState| ConsentStateView { status: s.status.into(), latest: consent_view(s.latest) };
    Ok(Json(ConsentList {
        user_id: overview.user_id.to_string(),
        consents: overview.current.into_iter().map(state_view).collect(),
        history: overview.history.into_iter().map(consent_view).collect(),
    }))
}

/// Withdraws the caller's consent of a type. When the type's withdrawal requires it
/// (`compliance_erasure_on_withdrawal`, by default `data_processing`), the erasure of the caller's
/// data is scheduled after the deletion delay (30 days by default) and can be cancelled until then.
///
/// **Permissions** - any signed-in user, for themselves
#[utoipa::path(delete, path = "/compliance/consents/{type}", tag = "compliance", params(("type" = String, Path, description = "the consent type")), security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, body = WithdrawalView),
    (status = 401, description = "INVALID_TOKEN", body = palisade_types::problem::Problem),
    (status = 404, description = "NOT_FOUND: no consent of this type is given", body = palisade_types::problem::Problem),
    (status = 422, description = "VALIDATION_ERROR: not a consent type", body = palisade_types::problem::Problem),
))]
pub(crate) async fn withdraw_consent(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Meta(meta): Meta,
    Path(consent_type): Path<String>,
) -> Result<Json<WithdrawalView>, ApiError> {
    let withdrawal = state.palisade.compliance().withdraw_consent(&principal, &consent_type, &meta).await?;
    Ok(Json(WithdrawalView {
        withdrawn: withdrawal.withdrawn,
        data_deletion_scheduled: withdrawal.data_deletion_scheduled,
        deletion_date: withdrawal.deletion_date.map(rfc3339),
        erasure_request_id: withdrawal.erasure_request_id.map(|id| id.to_string()),
    }))
}

/// Everything Palisade holds on a user (GDPR Art. 15 and 20), as one JSON document sent as it is
/// read: the profile, sessions, devices, second factors and passkeys (without secrets), API keys
/// (without secrets), the consent ledger with the texts, erasure requests, the login history, alert
/// preferences, and every audit event about the user, oldest first. Memory stays bounded whatever
/// the length of the history. A store failure midway cuts the document short (invalid JSON),
/// never silently.
///
/// **Permissions** - any signed-in user for themselves; `admin`, `compliance:read` or
/// `compliance:admin` for anyone
#[utoipa::path(get, path = "/compliance/export", tag = "compliance", params(UserParams), security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, description = "the export document (`format`: `palisade-export/1`)", content_type = "application/json", body = Object),
    (status = 401, description = "INVALID_TOKEN", body = palisade_types::problem::Problem),
    (status = 403, description = "INSUFFICIENT_SCOPE: another user's data", body = palisade_types::problem::Problem),
    (status = 404, description = "NOT_FOUND: no such user", body = palisade_types::problem::Problem),
    (status = 422, description = "VALIDATION_ERROR: user_id is not an id", body = palisade_types::problem::Problem),
))]
pub(crate) async fn export(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Meta(meta): Meta,
    Query(params): Query<UserParams>,
) -> Result<Response, ApiError> {
    let user = user_param(params.user_id.as_deref())?;
    let export = state.palisade.compliance().export(&principal, user, &meta).await?;
    let chunks = futures::stream::unfold(export, |mut export| async move {
        let chunk = export.next_chunk().await?;
        let chunk = chunk.map_err(|e| {
            tracing::error!(error = %e, "an export failed midway; the document is cut short");
            std::io::Error::other("the export failed midway")
        });
        Some((chunk, export))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CONTENT_DISPOSITION, "attachment; filename=\"palisade-export.json\""),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(chunks),
    )
        .into_response())
}

/// Schedules the erasure of a user's data (GDPR Art. 17) after the deletion delay (30 days by
/// default); it can be cancelled until then. An open request is returned as it is. The last
/// administrator cannot be erased.
///
/// **Permissions** - any signed-in user for themselves; `admin` or `compliance:admin` for anyone
#[utoipa::path(post, path = "/compliance/erasure", tag = "compliance", request_body = ErasureBody, security(("bearer" = []), ("api_key" = [])), responses(
    (status = 202, description = "scheduled", body = ErasureView),
    (status = 401, description = "INVALID_TOKEN", body = palisade_types::problem::Problem),
    (status = 403, description = "INSUFFICIENT_SCOPE: another user's data", body = palisade_types::problem::Problem),
    (status = 404, description = "NOT_FOUND: no such user", body = palisade_types::problem::Problem),
    (status = 409, description = "CONFLICT: the last administrator", body = palisade_types::problem::Problem),
    (status = 422, description = "VALIDATION_ERROR: user_id is not an id", body = palisade_types::problem::Problem),
))]
pub(crate) async fn request_erasure(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Meta(meta): Meta,
    body: Option<ApiJson<ErasureBody>>,
) -> Result<(StatusCode, Json<ErasureView>), ApiError> {
    let body = body.map(|ApiJson(b)| b).unwrap_or_default();
    let user = user_param(body.user_id.as_deref())?;
    let request = state.palisade.compliance().request_erasure(&principal, user, &meta).await?;
    Ok((StatusCode::ACCEPTED, Json(erasure_view(request))))
}

/// Which erasure requests to list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct ErasureParams {
    /// Another user's requests (needs `admin`, `compliance:read` or `compliance:admin`).
    user_id: Option<String>,
    /// Everyone's requests (same scopes).
    #[serde(default)]
    all: bool,
}

/// Erasure requests, newest first: the caller's own, another user's, or everyone's.
///
/// **Permissions** - any signed-in user for themselves; `admin`, `compliance:read` or
/// `compliance:admin` for anyone's
#[utoipa::path(get, path = "/compliance/erasure", tag = "compliance", params(ErasureParams), security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, body = ErasureList),
    (status = 401, description = "INVALID_TOKEN", body = palisade_types::problem::Problem),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
    (status = 422, description = "VALIDATION_ERROR: user_id is not an id", body = palisade_types::problem::Problem),
))]
pub(crate) async fn erasure_requests(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Query(params): Query<ErasureParams>,
) -> Result<Json<ErasureList>, ApiError> {
    let user = user_param(params.user_id.as_deref())?;
    let requests = state.palisade.compliance().erasure_requests(&principal, user, params.all).await?;
    Ok(Json(ErasureList { requests: requests.into_iter().map(erasure_view).collect() }))
}

fn request_id(id: &str) -> Result<uuid::Uuid, ApiError> {
    uuid::Uuid::parse_str(id)
        .map_err(|_| ApiError::refused(StatusCode::NOT_FOUND, "NOT_FOUND", "no such erasure request"))
}

/// One erasure request and its progress.
///
/// **Permissions** - its user; `admin`, `compliance:read` or `compliance:admin` for any
#[utoipa::path(get, path = "/compliance/erasure/{id}", tag = "compliance", params(("id" = String, Path, description = "the request id")), security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, body = ErasureView),
    (status = 401, description = "INVALID_TOKEN", body = palisade_types::problem::Problem),
    (status = 404, description = "NOT_FOUND", body = palisade_types::problem::Problem),
))]
pub(crate) async fn erasure_request(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Path(id): Path<String>,
) -> Result<Json<ErasureView>, ApiError> {
    let request = state.palisade.compliance().erasure_request(&principal, request_id(&id)?).await?;
    Ok(Json(erasure_view(request)))
}

/// Cancels a scheduled erasure (not one running or ended).
///
/// **Permissions** - its user; `admin` or `compliance:admin` for any
#[utoipa::path(delete, path = "/compliance/erasure/{id}", tag = "compliance", params(("id" = String, Path, description = "the request id")), security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, description = "cancelled", body = ErasureView),
    (status = 401, description = "INVALID_TOKEN", body = palisade_types::problem::Problem),
    (status = 403, description = "INSUFFICIENT_SCOPE: another user's request", body = palisade_types::problem::Problem),
    (status = 404, description = "NOT_FOUND", body = palisade_types::problem::Problem),
    (status = 409, description = "CONFLICT: it runs or has ended", body = palisade_types::problem::Problem),
))]
pub(crate) async fn cancel_erasure(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Meta(meta): Meta,
    Path(id): Path<String>,
) -> Result<Json<ErasureView>, ApiError> {
    let request = state.palisade.compliance().cancel_erasure(&principal, request_id(&id)?, &meta).await?;
    Ok(Json(erasure_view(request)))
}

/// Checks an action against the compliance rules of the standards asked for (every enabled one by
/// default) and says whether it may go ahead; the guide's `check_compliance`. The rules are
/// explicit and documented (docs/compliance.md). Every check is audited with a keyed hash of the
/// data, never the data; a refusal as a failure naming the rules broken.
///
/// **Permissions** - any signed-in user for actions on their own data (`data.user_id` is
/// theirs); `admin`, `compliance:read` or `compliance:admin` for any
#[utoipa::path(post, path = "/compliance/check", tag = "compliance", request_body = CheckRequest, security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, description = "checked: `allowed` says whether the action may go ahead", body = CheckResult),
    (status = 401, description = "INVALID_TOKEN", body = palisade_types::problem::Problem),
    (status = 403, description = "INSUFFICIENT_SCOPE: another user's data", body = palisade_types::problem::Problem),
    (status = 422, description = "VALIDATION_ERROR: no action, a malformed data member, an unknown or disabled standard", body = palisade_types::problem::Problem),
))]
pub(crate) async fn check(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Meta(meta): Meta,
    ApiJson(body): ApiJson<CheckRequest>,
) -> Result<Json<CheckResult>, ApiError> {
    let request = palisade_core::compliance::check::CheckRequest {
        action: body.action,
        data: body.data,
        standards: body.standards,
    };
    let outcome = state.palisade.compliance().check(&principal, request, &meta).await?;
    Ok(Json(CheckResult {
        allowed: outcome.allowed,
        message: (!outcome.allowed).then(|| "Action blocked due to compliance violations".to_owned()),
        violations: outcome
            .violations
            .into_iter()
            .map(|v| ViolationView {
                rule: v.rule.into(),
                standard: v.standard.as_str().into(),
                requirement: v.requirement.into(),
                message: v.message,
            })
            .collect(),
        standards: outcome.standards.iter().map(|s| s.as_str().to_owned()).collect(),
        rules_applied: outcome.rules_applied.into_iter().map(String::from).collect(),
        data_hash: outcome.data_hash,
    }))
}

fn retention_view(report: palisade_core::compliance::retention::RetentionReport, state: &AppState) -> RetentionView {
    let policy = &state.palisade.compliance().settings().retention;
    let kind = |kind: &str, kept: time::Duration, cutoff: time::OffsetDateTime, rows: u64| RetentionKindView {
        kind: kind.into(),
        retention_days: kept.whole_days(),
        cutoff: rfc3339(cutoff),
        rows,
    };
    let c = report.cutoffs;
    RetentionView {
        at: rfc3339(report.at),
        dry_run: report.dry_run,
        kinds: vec![
            kind("audit", policy.audit, c.audit, report.audit_records),
            kind("login_history", policy.login_history, c.login_history, report.counts.login_history),
            kind("incidents", policy.incidents, c.incidents, report.counts.incidents),
            kind("alert_deliveries", policy.alert_deliveries, c.alert_deliveries, report.counts.alert_deliveries),
        ],
        audit_checkpoint: report.audit_checkpoint,
    }
}

/// What the retention policy would remove now (a dry run): per kind, its retention, its cutoff
/// and the rows past it. The policy is applied every six hours by each instance.
///
/// **Permissions** - `admin`, `compliance:read` or `compliance:admin`
#[utoipa::path(get, path = "/compliance/retention", tag = "compliance", security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, body = RetentionView),
    (status = 401, description = "INVALID_TOKEN", body = palisade_types::problem::Problem),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
))]
pub(crate) async fn retention_preview(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Meta(meta): Meta,
) -> Result<Json<RetentionView>, ApiError> {
    let report = state.palisade.compliance().retention(&principal, true, &meta).await?;
    Ok(Json(retention_view(report, &state)))
}

/// Applies the retention policy now: removes the login history, resolved incidents and finished
/// alert deliveries past their retention, and archives the audit records past theirs behind a
/// sealed checkpoint (the chain still verifies from it). Audited as `compliance.retention`.
///
/// **Permissions** - `admin` or `compliance:admin`
#[utoipa::path(post, path = "/compliance/retention", tag = "compliance", security(("bearer" = []), ("api_key" = [])), responses(
    (status = 200, body = RetentionView),
    (status = 401, description = "INVALID_TOKEN", body = palisade_types::problem::Problem),
    (status = 403, description = "INSUFFICIENT_SCOPE", body = palisade_types::problem::Problem),
))]
pub(crate) async fn retention_apply(
    State(state): State<AppState>,
    Authenticated(principal): Authenticated,
    Meta(meta): Meta,
) -> Result<Json<RetentionView>, ApiError> {
    let report = state.palisade.compliance().retention(&principal, false, &meta).await?;
    Ok(Json(retention_view(report, &state)))
}
