//! The one place that turns failures into HTTP answers: every error leaves as
//! `application/problem+json` with a stable `code`. A 5xx body is a fixed message and the request
//! id; the cause goes to the log only.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use palisade_types::problem::{Problem, ProblemItem};

/// Content type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A failure as the API reports it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (400) or well-formed but invalid (422).
    #[error("{detail}")]
    Validation {
        /// 400 or 422.
        status: StatusCode,
        /// What is wrong, for the caller.
        detail: String,
    },
    /// No such route or resource.
    #[error("not found")]
    NotFound,
    /// A store the answer depends on is unreachable: fail closed.
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// Anything else: logged in full, reported as a fixed message.
    #[error("internal error: {0}")]
    Internal(String),
    /// A refusal with its own status and code (authentication, policy, conflicts …).
    #[error("{code}: {detail}")]
    Refused {
        /// The status.
        status: StatusCode,
        /// The stable code.
        code: &'static str,
        /// What happened, for a human.
        detail: String,
        /// Seconds to wait (`Retry-After`).
        retry_after: Option<u64>,
        /// The exceeded rate limit (`RateLimit-*` headers).
        rate_limit: Option<u64>,
        /// `TOKEN_REVOKED`: log in again.
        require_reauth: Option<bool>,
        /// Every failed rule or field.
        errors: Option<Vec<ProblemItem>>,
    },
    /// `RISK_BLOCKED` (403): the login's risk score and the names of its factors.
    #[error("RISK_BLOCKED: score {score}")]
    RiskBlocked {
        /// The score.
        score: f64,
        /// The factor names.
        factors: Vec<String>,
    },
}

impl ApiError {
    /// A 422 with `detail`.
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::Validation { status: StatusCode::UNPROCESSABLE_ENTITY, detail: detail.into() }
    }

    /// A 400 with `detail`.
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::Validation { status: StatusCode::BAD_REQUEST, detail: detail.into() }
    }
}

/// The problem for a bare status, used for answers the framework makes itself (405, 413, 408 …).
pub(crate) fn problem_for_status(status: StatusCode) -> (String, String) {
    let code = match status {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => "VALIDATION_ERROR",
        StatusCode::UNAUTHORIZED => "INVALID_CREDENTIALS",
        StatusCode::FORBIDDEN => "FORBIDDEN",
        StatusCode::NOT_FOUND => "NOT_FOUND",
        StatusCode::METHOD_NOT_ALLOWED => "METHOD_NOT_ALLOWED",
        StatusCode::REQUEST_TIMEOUT => "REQUEST_TIMEOUT",
        StatusCode::CONFLICT => "CONFLICT",
        StatusCode::PAYLOAD_TOO_LARGE => "PAYLOAD_TOO_LARGE",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "UNSUPPORTED_MEDIA_TYPE",
        StatusCode::TOO_MANY_REQUESTS => "RATE_LIMITED",
        StatusCode::SERVICE_UNAVAILABLE => "SERVICE_UNAVAILABLE",
        _ if status.is_server_error() => "INTERNAL_ERROR",
        _ => "ERROR",
    };
    let detail = match status {
        StatusCode::NOT_FOUND => "no such route or resource",
        StatusCode::METHOD_NOT_ALLOWED => "this route does not accept this method",
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is larger than 1 MiB",
        StatusCode::REQUEST_TIMEOUT => "the request took too long",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "expected Content-Type: application/json",
        StatusCode::SERVICE_UNAVAILABLE => "a component this request needs is unavailable; retry later",
        _ if status.is_server_error() => "an internal error occurred; quote the request id when reporting it",
        _ => status.canonical_reason().unwrap_or("error"),
    };
    (code.to_owned(), detail.to_owned())
}

/// Builds a problem response. The request id is filled in by the problem middleware.
pub(crate) fn problem_response(status: StatusCode, code: &str, detail: String) -> Response {
    build_problem(status, code, detail, None, None)
}

/// Builds a problem response with its optional members.
fn build_problem(
    status: StatusCode,
    code: &str,
    detail: String,
    require_reauth: Option<bool>,
    errors: Option<Vec<ProblemItem>>,
) -> Response {
    let body = Problem {
        kind: format!("https://palisade.dev/problems/{}", code.to_ascii_lowercase().replace('_', "-")),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail,
        code: code.to_owned(),
        request_id: None,
        require_reauth,
        errors,
        risk_score: None,
        risk_factors: None,
    };
    let mut response = (status, axum::Json(body)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Validation { status, detail } => problem_response(status, "VALIDATION_ERROR", detail),
            Self::NotFound => {
                let (code, detail) = problem_for_status(StatusCode::NOT_FOUND);
                problem_response(StatusCode::NOT_FOUND, &code, detail)
            }
            Self::Unavailable(cause) => {
                tracing::warn!(%cause, "failing closed: a store is unavailable");
                let (code, detail) = problem_for_status(StatusCode::SERVICE_UNAVAILABLE);
                problem_response(StatusCode::SERVICE_UNAVAILABLE, &code, detail)
            }
            Self::Internal(cause) => {
                tracing::error!(%cause, "internal error");
                let (code, detail) = problem_for_status(StatusCode::INTERNAL_SERVER_ERROR);
                problem_response(StatusCode::INTERNAL_SERVER_ERROR, &code, detail)
            }
            Self::RiskBlocked { score, factors } => {
                let status = StatusCode::FORBIDDEN;
                let body = Problem {
                    kind: "https://palisade.dev/problems/risk-blocked".to_owned(),
                    title: status.canonical_reason().unwrap_or("Forbidden").to_owned(),
                    status: status.as_u16(),
                    detail: "the login was refused: its risk is too high".to_owned(),
                    code: "RISK_BLOCKED".to_owned(),
                    request_id: None,
                    require_reauth: None,
                    errors: None,
                    risk_score: Some(score),
                    risk_factors: Some(factors),
                };
                let mut response = (status, axum::Json(body)).into_response();
                response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
                response
            }
            Self::Refused { status, code, detail, retry_after, rate_limit, require_reauth, errors } => {
                let mut response = build_problem(status, code, detail, require_reauth, errors);
                if let Some(secs) = retry_after {
                    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
                }
                if let Some(limit) = rate_limit {
                    // IETF RateLimit header fields: the exceeded window, nothing left, and when it resets.
                    let headers = response.headers_mut();
                    headers.insert("ratelimit-limit", HeaderValue::from(limit));
                    headers.insert("ratelimit-remaining", HeaderValue::from(0u32));
                    if let Some(secs) = retry_after {
                        headers.insert("ratelimit-reset", HeaderValue::from(secs));
                    }
                }
                if status == StatusCode::UNAUTHORIZED && code != "INVALID_CREDENTIALS" {
                    let value = if code == "TOKEN_EXPIRED" {
                        r#"Bearer error="invalid_token", error_description="the access token expired""#
                    } else {
                        r#"Bearer error="invalid_token""#
                    };
                    response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(value));
                }
                response
            }
        }
    }
}

impl From<palisade_core::store::StoreError> for ApiError {
    fn from(e: palisade_core::store::StoreError) -> Self {
        if e.is_unavailable() { Self::Unavailable(e.to_string()) } else { Self::Internal(e.to_string()) }
    }
}

impl From<palisade_core::crypto::CryptoError> for ApiError {
    fn from(e: palisade_core::crypto::CryptoError) -> Self {
        match e {
            e @ palisade_core::crypto::CryptoError::VersionOutOfRange { .. } => Self::unprocessable(e.to_string()),
            e if e.is_unavailable() => Self::Unavailable(e.to_string()),
            e => Self::Internal(e.to_string()),
        }
    }
}

impl From<palisade_core::crypto::reencrypt::ReencryptError> for ApiError {
    fn from(e: palisade_core::crypto::reencrypt::ReencryptError) -> Self {
        match e {
            palisade_core::crypto::reencrypt::ReencryptError::Store(e) => e.into(),
            palisade_core::crypto::reencrypt::ReencryptError::Crypto(e) => e.into(),
        }
    }
}

impl From<palisade_core::oauth::OAuthClientError> for ApiError {
    fn from(e: palisade_core::oauth::OAuthClientError) -> Self {
        use palisade_core::oauth::OAuthClientError as O;
        match e {
            O::Auth(e) => e.into(),
            e @ O::Invalid { .. } => Self::unprocessable(e.to_string()),
            O::NotFound => Self::refused(StatusCode::NOT_FOUND, "NOT_FOUND", "no such client"),
            O::Store(e) => e.into(),
            O::Crypto(e) => e.into(),
            O::Audit(e) => e.into(),
            e @ O::Random => Self::Internal(e.to_string()),
        }
    }
}

impl From<palisade_core::compliance::ComplianceError> for ApiError {
    fn from(e: palisade_core::compliance::ComplianceError) -> Self {
        use palisade_core::compliance::ComplianceError as C;
        match e {
            C::Auth(e) => e.into(),
            e @ C::Invalid { .. } => Self::unprocessable(e.to_string()),
            C::NotFound(detail) => Self::refused(StatusCode::NOT_FOUND, "NOT_FOUND", detail),
            C::Conflict(detail) => Self::refused(StatusCode::CONFLICT, "CONFLICT", detail),
            C::Store(e) => e.into(),
            C::Audit(e) => e.into(),
            C::Crypto(e) => e.into(),
        }
    }
}

impl From<palisade_core::compliance::report::ReportError> for ApiError {
    fn from(e: palisade_core::compliance::report::ReportError) -> Self {
        use palisade_core::compliance::report::ReportError as R;
        match e {
            R::Auth(e) => e.into(),
            // A standard turned off is a report this deployment does not have: 404, saying which
            // setting turns it on.
            e @ R::Disabled { .. } => Self::refused(StatusCode::NOT_FOUND, "NOT_FOUND", e.to_string()),
            e @ R::Invalid(_) => Self::unprocessable(e.to_string()),
            R::Store(e) => e.into(),
            R::Audit(e) => e.into(),
            R::Crypto(e) => e.into(),
            e @ R::SigningKeys(_) if e.is_unavailable() => Self::Unavailable(e.to_string()),
            e @ R::SigningKeys(_) => Self::Internal(e.to_string()),
        }
    }
}

impl From<palisade_core::monitoring::MonitoringError> for ApiError {
    fn from(e: palisade_core::monitoring::MonitoringError) -> Self {
        use palisade_core::monitoring::MonitoringError as M;
        match e {
            M::Auth(e) => e.into(),
            e @ M::Invalid { .. } => Self::unprocessable(e.to_string()),
            e @ M::TooLarge { .. } => Self::Refused {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                code: "PAYLOAD_TOO_LARGE",
                detail: e.to_string(),
                retry_after: None,
                rate_limit: None,
                require_reauth: None,
                errors: None,
            },
            M::Store(e) => e.into(),
            M::Audit(e) => e.into(),
            M::NotFound => Self::NotFound,
            M::Conflict(detail) => Self::Refused {
                status: StatusCode::CONFLICT,
                code: "CONFLICT",
                detail,
                retry_after: None,
                rate_limit: None,
                require_reauth: None,
                errors: None,
            },
            e @ M::Overloaded => Self::Refused {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "SERVICE_UNAVAILABLE",
                detail: e.to_string(),
                retry_after: Some(1),
                rate_limit: None,
                require_reauth: None,
                errors: None,
            },
        }
    }
}

impl From<palisade_core::audit::AuditError> for ApiError {
    fn from(e: palisade_core::audit::AuditError) -> Self {
        if e.is_unavailable() { Self::Unavailable(e.to_string()) } else { Self::Internal(e.to_string()) }
    }
}

impl ApiError {
    /// A refusal with `status`, `code` and `detail` and nothing else.
    pub(crate) fn refused(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Self::Refused {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
            rate_limit: None,
            require_reauth: None,
            errors: None,
        }
    }
}

impl From<palisade_core::crypto::CryptoServiceError> for ApiError {
    fn from(e: palisade_core::crypto::CryptoServiceError) -> Self {
        use palisade_core::crypto::CryptoServiceError as C;
        match e {
            C::Auth(e) => e.into(),
            e @ (C::Invalid { .. } | C::TooLarge { .. }) => Self::unprocessable(e.to_string()),
            e @ C::DecryptionFailed => {
                Self::refused(StatusCode::UNPROCESSABLE_ENTITY, "DECRYPTION_FAILED", e.to_string())
            }
            e @ C::KeyVersionRetired { .. } => {
                Self::refused(StatusCode::UNPROCESSABLE_ENTITY, "KEY_VERSION_RETIRED", e.to_string())
            }
            e @ C::HsmRequired(_) => Self::Unavailable(e.to_string()),
            C::Crypto(e) => e.into(),
            C::Audit(e) => e.into(),
        }
    }
}

impl From<palisade_core::auth::AuthError> for ApiError {
    fn from(e: palisade_core::auth::AuthError) -> Self {
        use palisade_core::auth::AuthError as A;
        match e {
            A::InvalidCredentials => {
                Self::refused(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS", "invalid username or password")
            }
            A::AccountLocked { retry_after_secs } => Self::Refused {
                status: StatusCode::LOCKED,
                code: "ACCOUNT_LOCKED",
                detail: "too many failed logins: the account is locked for a while".into(),
                retry_after: Some(retry_after_secs),
                rate_limit: None,
                require_reauth: None,
                errors: None,
            },
            A::RateLimited { retry_after_secs } => Self::Refused {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "RATE_LIMITED",
                detail: "too many failed logins from this address; retry later".into(),
                retry_after: Some(retry_after_secs),
                rate_limit: None,
                require_reauth: None,
                errors: None,
            },
            A::PasswordPolicy(violations) => Self::Refused {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "PASSWORD_POLICY",
                detail: "the password does not meet the password policy".into(),
                retry_after: None,
                rate_limit: None,
                require_reauth: None,
                errors: Some(
                    violations
                        .into_iter()
                        .map(|v| ProblemItem { rule: v.rule.to_owned(), message: v.message })
                        .collect(),
                ),
            },
            A::Invalid(input) => Self::Refused {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "VALIDATION_ERROR",
                detail: input.to_string(),
                retry_after: None,
                rate_limit: None,
                require_reauth: None,
                errors: Some(vec![ProblemItem { rule: input.field.to_owned(), message: input.expected.to_owned() }]),
            },
            A::Conflict(what) => {
                Self::refused(StatusCode::CONFLICT, "CONFLICT", format!("this {what} is already taken"))
            }
            A::InvalidToken => Self::refused(StatusCode::UNAUTHORIZED, "INVALID_TOKEN", "the token is invalid"),
            A::TokenExpired => Self::refused(StatusCode::UNAUTHORIZED, "TOKEN_EXPIRED", "the token has expired"),
            A::TokenRevoked { require_reauth } => Self::Refused {
                status: StatusCode::UNAUTHORIZED,
                code: "TOKEN_REVOKED",
                detail: "the token was revoked; log in again".into(),
                retry_after: None,
                rate_limit: None,
                require_reauth: Some(require_reauth),
                errors: None,
            },
            A::InsufficientScope(scope) => {
                Self::refused(StatusCode::FORBIDDEN, "INSUFFICIENT_SCOPE", format!("this needs the `{scope}` scope"))
            }
            A::SessionRequired => Self::refused(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                "this needs a login session (a bearer access token), not an API key",
            ),
            A::InvalidCode => Self::refused(
                StatusCode::UNAUTHORIZED,
                "INVALID_CREDENTIALS",
                "the code is wrong, already used or expired",
            ),
            A::MfaLocked { retry_after_secs } => Self::Refused {
                status: StatusCode::LOCKED,
                code: "ACCOUNT_LOCKED",
                detail: "too many wrong second-factor codes: multi-factor authentication is locked for a while".into(),
                retry_after: Some(retry_after_secs),
                rate_limit: None,
                require_reauth: None,
                errors: None,
            },
            A::StepUpRequired => Self::refused(
                StatusCode::UNAUTHORIZED,
                "MFA_REQUIRED",
                "changing second factors needs a login that passed one: log in again with your second factor",
            ),
            A::PasskeyRejected => {
                Self::refused(StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS", "the passkey did not verify")
            }
            A::CeremonyUnknown => Self::refused(
                StatusCode::UNAUTHORIZED,
                "INVALID_TOKEN",
                "unknown, expired or already used challenge_id: start the ceremony again",
            ),
            A::MfaTokenUsed => Self::refused(
                StatusCode::UNAUTHORIZED,
                "INVALID_TOKEN",
                "this mfa_token was already used; log in again",
            ),
            A::MethodUnavailable(detail) => Self::Refused {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code: "VALIDATION_ERROR",
                errors: Some(vec![ProblemItem { rule: "method".into(), message: detail.clone() }]),
                detail,
                retry_after: None,
                rate_limit: None,
                require_reauth: None,
            },
            A::AlreadyEnrolled(kind) => Self::refused(
                StatusCode::CONFLICT,
                "CONFLICT",
                format!("a confirmed {kind} factor exists; remove it first"),
            ),
            A::NotPending(what) => {
                Self::refused(StatusCode::CONFLICT, "CONFLICT", format!("no {what} setup awaits confirmation"))
            }
            A::CodeThrottled { retry_after_secs } => Self::Refused {
                status: StatusCode::TOO_MANY_REQUESTS,
                code: "RATE_LIMITED",
                detail: format!("a code was sent recently; ask for another in {retry_after_secs} s"),
                retry_after: Some(retry_after_secs),
                rate_limit: None,
                require_reauth: None,
                errors: None,
            },
            A::RiskBlocked { score, factors } => Self::RiskBlocked { score, factors },
            A::SessionHijackSuspected => Self::Refused {
                status: StatusCode::UNAUTHORIZED,
                code: "SESSION_HIJACK_SUSPECTED",
                detail: "the session was used from another client and was ended; log in again".into(),
                retry_after: None,
                rate_limit: None,
                require_reauth: Some(true),
                errors: None,
            },
            A::SessionLimit => Self::refused(
                StatusCode::CONFLICT,
                "CONFLICT",
                "another session of this account is active: log out there first (concurrent sessions are off)",
            ),
            A::NotFound => Self::NotFound,
            A::Unavailable(cause) => Self::Unavailable(cause),
            A::Internal(cause) => Self::Internal(cause),
        }
    }
}

/// The stable code of an API-key refusal.
pub(crate) fn api_key_code(e: &palisade_core::api_key::ApiKeyError) -> &'static str {
    use palisade_core::api_key::ApiKeyError as K;
    match e {
        K::Invalid => "INVALID_TOKEN",
        K::ForbiddenIp => "FORBIDDEN_IP",
        K::InsufficientScope(_) => "INSUFFICIENT_SCOPE",
        K::RateLimited { .. } => "RATE_LIMITED",
        K::BadInput { .. } => "VALIDATION_ERROR",
        K::NotFound => "NOT_FOUND",
        K::Unavailable(_) => "SERVICE_UNAVAILABLE",
        K::Internal(_) => "INTERNAL_ERROR",
    }
}

impl From<palisade_core::api_key::ApiKeyError> for ApiError {
    fn from(e: palisade_core::api_key::ApiKeyError) -> Self {
        use palisade_core::api_key::ApiKeyError as K;
        let code = api_key_code(&e);
        match e {
            K::Invalid => Self::refused(StatusCode::UNAUTHORIZED, code, "the API key is invalid, revoked or expired"),
            K::ForbiddenIp => {
                Self::refused(StatusCode::FORBIDDEN, code, "this API key may not be used from this address")
            }
            K::InsufficientScope(scope) => {
                Self::refused(StatusCode::FORBIDDEN, code, format!("the API key lacks the `{scope}` scope"))
            }
            K::RateLimited { retry_after_secs, limit } => Self::Refused {
                status: StatusCode::TOO_MANY_REQUESTS,
                code,
                detail: format!("rate limit of {limit} requests exceeded; retry in {retry_after_secs} s"),
                retry_after: Some(retry_after_secs),
                rate_limit: Some(limit),
                require_reauth: None,
                errors: None,
            },
            K::BadInput { field, problem } => Self::Refused {
                status: StatusCode::UNPROCESSABLE_ENTITY,
                code,
                detail: format!("{field}: {problem}"),
                retry_after: None,
                rate_limit: None,
                require_reauth: None,
                errors: Some(vec![ProblemItem { rule: field.to_owned(), message: problem }]),
            },
            K::NotFound => Self::NotFound,
            K::Unavailable(cause) => Self::Unavailable(cause),
            K::Internal(cause) => Self::Internal(cause),
        }
    }
}
